"""sprig list and dict functions (`list`, `dict`, `get`, `set`, `merge`, `has`, `keys`, `uniq`, …).

A sprig `mustX` variant is registered with its `X`: sprig's plain versions panic where the must
versions return the error, and either ends the render. `set`/`unset`/`merge`/`mergeOverwrite`/
`mustMerge`/`mustMergeOverwrite` change their map argument like sprig does (later uses in the same
render see the change); they are in `gojinja.MUTATING`, so the renderer deep-copies the values
before rendering any template that uses them and a template never changes the values another
package sees; what lands where follows mergo (`_merge`). `has`, `uniq` and `without` compare
like Go's reflect.DeepEqual (`go_deep_equal`): `1`, `1.0`, `true` and `"1"` are all different.
`slice` is sprig's (it replaces text/template's builtin in luet): lists only, indices converted
like cast.ToInt.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .funcs import (
    empty,
    go_deep_equal,
    i_,
    kind_of,
    l_,
    m_,
    register,
    s_,
    strslice,
    strval,
    to_int,
)
from .gofmt import sort_keys
from .tmplrt import Fault, Missing


@register("list", "tuple", lenient=True)
def list_(*vs: Any) -> list[Any]:
    return list(vs)


@register("dict", lenient=True)
def dict_(*kv: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(kv), 2):
        k = kv[i]
        if isinstance(k, Missing):
            raise Fault(f"undefined value '{k.path}' used as a dict key")
        out[strval(k)] = kv[i + 1] if i + 1 < len(kv) else ""
    return out


@register("get", lenient=True)
def get(d: Any, key: Any) -> Any:
    if isinstance(d, Missing):
        return Missing(path=f"{d.path}.{key}")
    return m_(d, "get").get(s_(key, "get"), "")


@register("set", lenient=True)
def set_(d: Any, key: Any, value: Any) -> Any:
    m_(d, "set")[s_(key, "set")] = value
    return d


@register("unset")
def unset(d: Any, key: Any) -> Any:
    m_(d, "unset").pop(s_(key, "unset"), None)
    return d


@register("hasKey", lenient=True)
def has_key(d: Any, key: Any) -> bool:
    return isinstance(d, Mapping) and key in d


@register("pluck")
def pluck(name: Any, *ds: Any) -> list[Any]:
    return [d[name] for d in ds if isinstance(d, Mapping) and name in d]


@register("keys")
def keys(*ds: Any) -> list[Any]:
    return sorted((k for d in ds for k in m_(d, "keys")), key=lambda k: (str(type(k)), k))


@register("values")
def values(d: Any) -> list[Any]:
    m = m_(d, "values")
    return [m[k] for k in sort_keys(m)]


@register("pick")
def pick(d: Any, *ks: Any) -> dict[Any, Any]:
    m = m_(d, "pick")
    return {k: m[k] for k in (s_(k, "pick") for k in ks) if k in m}  # keys ...string, as in sprig


@register("omit")
def omit(d: Any, *ks: Any) -> dict[Any, Any]:
    m = m_(d, "omit")
    drop = {s_(k, "omit") for k in ks}
    return {k: v for k, v in m.items() if k not in drop}


def _merge(dst: dict[Any, Any], src: Mapping[Any, Any], overwrite: bool) -> None:
    """mergo's deepMerge of two map[string]interface{} (Merge, or MergeWithOverwrite), in place.

    A nil source value only ever lands with overwrite. A source map is merged into a destination
    map; a non-empty destination value then stays, even a scalar facing a map or a list. A source
    list replaces the destination value with overwrite (even an empty list does), otherwise only
    fills a missing or empty one. A scalar replaces with overwrite (even an empty one), otherwise
    fills a missing or empty value. Source maps and lists are put in as they are, not copied.
    """
    for k, sv in src.items():
        has = k in dst
        dv = dst.get(k)
        if sv is None or isinstance(sv, Missing):
            if overwrite:
                dst[k] = sv
            continue
        if isinstance(sv, (Mapping, list, tuple)):
            if isinstance(sv, Mapping):
                if isinstance(dv, dict):
                    _merge(dv, sv, overwrite)
            elif overwrite:
                dst[k] = dv = sv
            if has and not empty(dv):
                continue
        if overwrite or not has or empty(dv):
            dst[k] = sv


@register("merge", "mustMerge")
def merge(dst: Any, *srcs: Any) -> Any:
    """Merge into the first dict (changed, and returned), as sprig/mergo do."""
    d = m_(dst, "merge")
    for s in srcs:
        _merge(d, m_(s, "merge"), False)
    return d


@register("mergeOverwrite", "mustMergeOverwrite")
def merge_overwrite(dst: Any, *srcs: Any) -> Any:
    d = m_(dst, "mergeOverwrite")
    for s in srcs:
        _merge(d, m_(s, "mergeOverwrite"), True)
    return d


@register("dig", lenient=True)
def dig(*args: Any) -> Any:
    if len(args) < 3:
        raise Fault(f"wrong number of args for dig: want at least 3 got {len(args)}")
    *path, dflt, d = args
    cur = d
    for k in path:
        if not isinstance(cur, Mapping) or k not in cur:
            return dflt
        cur = cur[k]
    return cur


@register("append", "push", "mustAppend", "mustPush", lenient=True)
def append(lst: Any, v: Any) -> list[Any]:
    return l_(lst, "push") + [v]


@register("prepend", "mustPrepend", lenient=True)
def prepend(lst: Any, v: Any) -> list[Any]:
    return [v] + l_(lst, "prepend")


@register("concat")
def concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for x in lists:
        out.extend(l_(x, "concat"))
    return out


@register("first", "mustFirst")
def first(lst: Any) -> Any:
    v = l_(lst, "find first")
    return v[0] if v else None


@register("last", "mustLast")
def last(lst: Any) -> Any:
    v = l_(lst, "find last")
    return v[-1] if v else None


@register("rest", "mustRest")
def rest(lst: Any) -> list[Any]:
    return l_(lst, "find rest")[1:]


@register("initial", "mustInitial")
def initial(lst: Any) -> list[Any]:
    return l_(lst, "find initial")[:-1]


@register("reverse", "mustReverse")
def reverse(lst: Any) -> list[Any]:
    return l_(lst, "find reverse")[::-1]


@register("compact", "mustCompact")
def compact(lst: Any) -> list[Any]:
    return [v for v in l_(lst, "compact") if not empty(v)]


def _in(needle: Any, haystack: list[Any]) -> bool:
    """sprig's inList: reflect.DeepEqual against each element."""
    return any(go_deep_equal(needle, h) for h in haystack)


@register("without", "mustWithout")
def without(lst: Any, *vs: Any) -> list[Any]:
    omit = list(vs)
    return [v for v in l_(lst, "find without") if not _in(v, omit)]


@register("uniq", "mustUniq")
def uniq(lst: Any) -> list[Any]:
    out: list[Any] = []
    for v in l_(lst, "find uniq"):
        if not _in(v, out):
            out.append(v)
    return out


@register("has", "mustHas")
def has(needle: Any, haystack: Any) -> bool:
    if haystack is None:
        return False
    return _in(needle, l_(haystack, "find has"))


@register("slice", "mustSlice")
def slice_(lst: Any, *idx: Any) -> Any:
    """sprig's slice: `slice list [start [end]]`, indices via cast.ToInt; an empty list gives nil;
    indices outside 0 <= start <= end <= len fail like Go's reflect.Value.Slice."""
    if not isinstance(lst, (list, tuple)):
        raise Fault(f"list should be type of slice or array but {kind_of(lst)}")
    v = list(lst)
    if not v:
        return None
    start = to_int(idx[0]) if idx else 0
    end = to_int(idx[1]) if len(idx) > 1 else len(v)
    if not 0 <= start <= end <= len(v):
        raise Fault("reflect.Value.Slice: slice index out of bounds")
    return v[start:end]


@register("sortAlpha")
def sort_alpha(lst: Any) -> list[str]:
    return sorted(strslice(lst)) if isinstance(lst, (list, tuple)) else [strval(lst)]


@register("chunk", "mustChunk")
def chunk(size: Any, lst: Any) -> list[list[Any]]:
    n, v = i_(size, "chunk"), l_(lst, "chunk")
    if n <= 0:
        raise Fault("chunk: size must be positive")
    return [v[i:i + n] for i in range(0, len(v), n)]
