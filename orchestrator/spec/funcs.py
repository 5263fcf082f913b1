"""The template function library: Go builtins + the sprig/helm functions luet trees use.

One table (`FUNCS`) serves both dialects: Go templates call `name a b`, native Jinja calls
`name(a, b)` or, where Jinja has no built-in filter of that name, `b | name(a)` (the piped value
goes last, as in a Go pipeline).
Every function checks its arity and rejects undefined arguments (see `tmplrt`) unless it is one of
the documented tests. Semantics follow the Go/sprig documentation; map iteration order, which is
random in sprig (`keys`, `values`), is sorted here so output is deterministic. Functions whose
output is not reproducible (`now`, `date*`, `rand*`, `uuidv4`, `env`, crypto generators, …) and
`semver` are deliberately absent: `funcs_refused` gives templates that call them a clear error.
The table is split by topic: funcs_str, funcs_text (strings), funcs_coll (lists, dicts), funcs_data
(JSON, YAML, encodings), funcs_regex, funcs_more (paths, float math, misc), funcs_url.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from .gofmt import FormatFault, gostr, sort_keys, sprintf, type_name
from .tmplrt import MAX_OUTPUT, Fault, Missing, UndefinedValue, index

FUNCS: dict[str, Callable[..., Any]] = {}
MAX_LIST = 1_000_000
_PY_ERRORS = (ValueError, TypeError, ZeroDivisionError, OverflowError, KeyError, IndexError, AttributeError,
              FormatFault)


def register(*names: str, lenient: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add a function under `names`, wrapped with arity, undefined-value and size checks."""

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        params = list(inspect.signature(f).parameters.values())
        lo = sum(1 for p in params if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty)
        hi = None if any(p.kind == p.VAR_POSITIONAL for p in params) else len(params)
        for name in names:
            FUNCS[name] = _wrap(name, f, lo, hi, lenient)
        return f

    return deco


def _wrap(name: str, f: Callable[..., Any], lo: int, hi: int | None, lenient: bool) -> Callable[..., Any]:
    want = str(lo) if lo == hi else f"{lo}..{hi}" if hi is not None else f"at least {lo}"

    def call(*args: Any) -> Any:
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise Fault(f"wrong number of args for {name}: want {want} got {len(args)}")
        if not lenient:
            for a in args:
                if isinstance(a, Missing):
                    raise UndefinedValue(a.path, a._null, used_by=name)
        try:
            r = f(*args)
        except Fault:
            raise
        except _PY_ERRORS as e:
            raise Fault(f"error calling {name}: {e}") from None
        if type(r) is str and len(r) > MAX_OUTPUT:
            raise Fault(f"{name}: result exceeds {MAX_OUTPUT // (1024 * 1024)} MiB")
        return r

    call.__name__ = call.__qualname__ = name
    return call


# ------------------------------------------------------------------ argument coercion (Go typing)
def s_(v: Any, fn: str) -> str:
    if isinstance(v, str):
        return v
    raise Fault(f"{fn}: wrong type for value; expected string; got {type_name(v)}")


def i_(v: Any, fn: str) -> int:
    if type(v) is int:
        return v
    raise Fault(f"{fn}: wrong type for value; expected int; got {type_name(v)}")


def m_(v: Any, fn: str) -> dict[Any, Any]:
    if isinstance(v, dict):
        return v
    raise Fault(f"{fn}: wrong type for value; expected map[string]interface {{}}; got {type_name(v)}")


def l_(v: Any, fn: str) -> list[Any]:
    if isinstance(v, (list, tuple)):
        return list(v)
    raise Fault(f"Cannot {fn} on type {type_name(v)}")


def strval(v: Any) -> str:
    """sprig's strval: strings as-is, everything else as Go `%v`."""
    return v if isinstance(v, str) else gostr(v, False)


def strslice(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [strval(e) for e in v if e is not None]
    return [strval(v)]


def to_int(v: Any) -> int:
    """cast.ToInt64: numbers truncate, numeric strings parse (0x/0o/0b/0 prefixes), else 0."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if math.isfinite(v) else 0
    if isinstance(v, str):
        t = v.strip()
        if "." in t and t.rstrip("0").endswith("."):
            t = t.rstrip("0")[:-1]
        try:
            body = t.lstrip("+-")
            if len(body) > 1 and body[0] == "0" and body[1].isdigit():
                t = t.replace("0", "0o", 1)
            return int(t, 0)
        except ValueError:
            return 0
    return 0


def to_float(v: Any) -> float:
    if isinstance(v, (bool, int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return 0.0
    return 0.0


def empty(v: Any) -> bool:
    """Go/sprig emptiness: nil, false, 0, "", empty list/map (and undefined)."""
    return not v


# ------------------------------------------------------------------ Go builtins
def _kind(v: Any) -> str:
    if v is None or isinstance(v, Missing):
        return "nil"
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if t is str:
        return "string"
    return "other"


@register("eq", lenient=True)
def eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise Fault("missing argument for comparison")
    ka = _kind(a)
    for b in bs:
        kb = _kind(b)
        if ka != kb:
            if ka == "nil" or kb == "nil":
                continue
            raise Fault(f"incompatible types for comparison: {type_name(a)} and {type_name(b)}")
        if ka == "nil":
            return True
        if ka == "other" and isinstance(a, (dict, list)):
            raise Fault(f"non-comparable type {type_name(a)}")
        if a == b:
            return True
    return False


@register("ne", lenient=True)
def ne(a: Any, b: Any) -> bool:
    return not eq(a, b)


def _ordered(a: Any, b: Any) -> None:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
        raise Fault(f"invalid type for comparison: {type_name(a if ka not in ('int', 'float', 'string') else b)}")
    if ka != kb:
        raise Fault(f"incompatible types for comparison: {type_name(a)} and {type_name(b)}")


@register("lt")
def lt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a < b)


@register("le")
def le(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a <= b)


@register("gt")
def gt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a > b)


@register("ge")
def ge(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a >= b)


@register("len")
def len_(v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (list, tuple, Mapping)):
        return len(v)
    raise Fault(f"len of type {type_name(v)}")


@register("index", lenient=True)
def index_(item: Any, *keys: Any) -> Any:
    return index(item.path if isinstance(item, Missing) else "(index)", item, *keys)


@register("print")
def print_(*args: Any) -> str:
    parts: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            parts.append(" ")
        parts.append(gostr(a, False))
    return "".join(parts)


@register("println")
def println(*args: Any) -> str:
    return " ".join(gostr(a, False) for a in args) + "\n"


@register("printf")
def printf(fmt: Any, *args: Any) -> str:
    return sprintf(s_(fmt, "printf"), args)


@register("html")
def html(*args: Any) -> str:
    s = print_(*args)
    return s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")


@register("urlquery")
def urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(print_(*args), safe="")


# ------------------------------------------------------------------ logic / defaults
@register("default", lenient=True)
def default(d: Any, *given: Any) -> Any:
    return d if not given or empty(given[0]) else given[0]


@register("empty", lenient=True)
def empty_(v: Any) -> bool:
    return empty(v)


@register("coalesce", lenient=True)
def coalesce(*vs: Any) -> Any:
    return next((v for v in vs if not empty(v)), None)


@register("all", lenient=True)
def all_(*vs: Any) -> bool:
    return all(not empty(v) for v in vs)


@register("any", lenient=True)
def any_(*vs: Any) -> bool:
    return any(not empty(v) for v in vs)


@register("ternary", lenient=True)
def ternary(vt: Any, vf: Any, cond: Any) -> Any:
    return vt if cond else vf


@register("fail")
def fail(msg: Any) -> str:
    raise Fault(f"fail: {strval(msg)}")


@register("typeOf", lenient=True)
def type_of(v: Any) -> str:
    return "<nil>" if isinstance(v, Missing) else type_name(v)


@register("typeIs", lenient=True)
def type_is(t: str, v: Any) -> bool:
    return type_of(v) == t


@register("kindOf", lenient=True)
def kind_of(v: Any) -> str:
    k = _kind(v)
    return {"nil": "invalid", "float": "float64", "other": "map" if isinstance(v, Mapping) else
            "slice" if isinstance(v, (list, tuple)) else "struct"}.get(k, k)


@register("kindIs", lenient=True)
def kind_is(k: str, v: Any) -> bool:
    return kind_of(v) == k


def _deep_kind(v: Any) -> Any:
    if v is None or isinstance(v, Missing):
        return None
    if isinstance(v, Mapping):
        return Mapping
    if isinstance(v, (list, tuple)):
        return list
    return type(v)  # bool, int, float and str are distinct types, as in Go


def go_deep_equal(a: Any, b: Any) -> bool:
    """Go's reflect.DeepEqual on template data: values of different types are never equal (`1`,
    `1.0`, `true` and `"1"` are four different values; Python's `==` makes the first three equal),
    lists and maps compare element by element, NaN equals nothing (but a list or map equals itself,
    as Go compares the pointers first)."""
    ka = _deep_kind(a)
    if ka is not _deep_kind(b):
        return False
    if ka is None:
        return True
    if ka is list:
        return a is b or (len(a) == len(b) and all(go_deep_equal(x, y) for x, y in zip(a, b)))
    if ka is Mapping:
        if a is b:
            return True
        if len(a) != len(b):
            return False
        typed = {(type(k), k): v for k, v in b.items()}
        return all((type(k), k) in typed and go_deep_equal(v, typed[(type(k), k)]) for k, v in a.items())
    return bool(a == b)


@register("deepEqual")
def deep_equal(a: Any, b: Any) -> bool:
    return go_deep_equal(a, b)


from . import funcs_coll as _coll  # noqa: F401  (registers list/dict functions)
from . import funcs_data as _data  # noqa: F401  (registers encoding/semver functions)
from . import funcs_more as _more  # noqa: F401  (registers path, float math and misc functions)
from . import funcs_regex as _regex  # noqa: F401  (registers regex functions)
from . import funcs_str as _str  # noqa: F401  (registers string and number functions)
from . import funcs_text as _text  # noqa: F401  (registers case/wrap/abbrev functions and js)
from . import funcs_url as _url  # noqa: F401  (registers urlParse/urlJoin)

__all__ = ["FUNCS", "empty", "go_deep_equal", "register", "sort_keys", "strslice", "strval"]
