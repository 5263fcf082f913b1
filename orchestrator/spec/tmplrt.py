"""Template runtime shared by both dialects: undefined values, faults, limits, field access, printing.

Undefined values (orch differs from luet on purpose): a missing key — or a key whose value is null —
is a `Missing` object that remembers its key path. *Testing* it is allowed and it counts as false
(`if`, `with`, `and`/`or`/`not`, `default`, `empty`, `coalesce`, `hasKey`, `ternary`, ranging over
it gives no iterations); fields of it are `Missing` too. *Using* it — printing it, or passing it to
any other function — raises `UndefinedValue` naming the path, where luet would print `<no value>`.
`eq`/`ne` compare it like luet compares Go's nil: equal only to another undefined value or nil
(so `eq .Values.missing "x"` is false and `ne .Values.missing "x"` is true, as in luet).
Containers (`dict`, `list`, `set`, `append`) may hold it; the check happens where it is used.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from jinja2 import Undefined, UndefinedError
from jinja2.utils import missing as _jmissing

from .gofmt import gostr, sort_keys, type_name

MAX_OUTPUT = 16 * 1024 * 1024  # bytes of rendered text (and of any single string a function builds)
MAX_ITERATIONS = 1_000_000  # range/loop elements per render
MAX_DEPTH = 1000  # nested template/include calls, like luet's include cap
# Python frames a render may use: 4 per nested Go template call, plus headroom. Raised only for the
# duration of a render, and only in the main thread (other threads may have small C stacks).
RECURSION_LIMIT = 4 * MAX_DEPTH + 1000
UNDEFINED_HINT = "define it in a values file or the package definition"


class Fault(Exception):
    """A render-time template error; `where` collects (file, line, template) frames, innermost first."""

    undefined = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint
        self.where: list[tuple[str, int | None, str]] = []


class UndefinedValue(Fault):
    undefined = True

    def __init__(self, path: str, null: bool = False, used_by: str = "") -> None:
        what = f"value '{path}' is null" if null else f"undefined value '{path}'"
        super().__init__(what + (f" passed to {used_by}" if used_by else ""), UNDEFINED_HINT)
        self.path = path


class Missing(Undefined):
    """An undefined value that knows its key path; falsy, fails when printed or used.

    A `hint` (set by the sandbox for an unsafe attribute) makes any use a template error naming it.
    """

    __slots__ = ("_null", "_path")

    def __init__(self, hint: str | None = None, obj: Any = _jmissing, name: str | None = None,
                 exc: type[UndefinedError] = UndefinedError, path: str | None = None, null: bool = False) -> None:
        super().__init__(hint, obj, name, exc)
        self._path = path if path is not None else (name or "?")
        self._null = null

    @property
    def path(self) -> str:
        return self._path

    @property
    def unsafe(self) -> bool:
        return self._undefined_hint is not None

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_hint is not None:
            raise Fault(f"unsafe template operation: {self._undefined_hint}")
        raise UndefinedValue(self._path, self._null)

    def _child(self, path: str) -> Missing:
        return Missing(self._undefined_hint, path=path)

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self._child(f"{self._path}.{name}")

    def __getitem__(self, key: Any) -> Any:
        return self._child(f"{self._path}[{json.dumps(key) if isinstance(key, str) else key}]")

    def __bool__(self) -> bool:
        return False

    def __iter__(self) -> Any:
        return iter(())

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, Missing)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"Missing({self._path!r})"

    __str__ = __len__ = __call__ = __int__ = __float__ = __complex__ = _fail_with_undefined_error
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail_with_undefined_error
    __pos__ = __neg__ = __lt__ = __le__ = __gt__ = __ge__ = __pow__ = __rpow__ = _fail_with_undefined_error


# ------------------------------------------------------------------ per-render limits
class Limits:
    __slots__ = ("depth", "iterations")

    def __init__(self) -> None:
        self.iterations = MAX_ITERATIONS
        self.depth = 0


_tls = threading.local()


def limits() -> Limits | None:
    return getattr(_tls, "limits", None)


def set_limits(lim: Limits | None) -> Limits | None:
    old = getattr(_tls, "limits", None)
    _tls.limits = lim
    return old


def charge(n: int) -> None:
    """Count loop elements against the per-render budget (bounds `range until 1e9` style bombs)."""
    lim = getattr(_tls, "limits", None)
    if lim is not None:
        lim.iterations -= n
        if lim.iterations < 0:
            raise Fault(f"template loops exceed {MAX_ITERATIONS} iterations", "a template loop runs away")


def check_size(s: str) -> str:
    if len(s) > MAX_OUTPUT:
        raise Fault(f"template output exceeds {MAX_OUTPUT // (1024 * 1024)} MiB")
    return s


# ------------------------------------------------------------------ Go-dialect helpers
def _path(shown: str, names: tuple[str, ...], upto: int) -> str:
    return shown + "." + ".".join(names[: upto + 1])


def fld(base: Any, shown: str, *names: str) -> Any:
    """Go field chain `.a.b` on maps: a missing or null key gives a `Missing` with its path."""
    cur = base
    for i, name in enumerate(names):
        if type(cur) is dict or isinstance(cur, Mapping):
            v = cur.get(name, _jmissing)
            if v is _jmissing or v is None:
                return Missing(path=_path(shown, names, i), null=v is None)
            cur = v
        elif isinstance(cur, Missing):
            return Missing(path=cur.path + "." + ".".join(names[i:]))
        elif cur is None:
            return Missing(path=_path(shown, names, i))
        else:
            where = _path(shown, names, i - 1) if i else (shown or ".")
            raise Fault(f"can't evaluate field {name} in {where} of type {type_name(cur)}")
    return cur


def index(shown: str, item: Any, *keys: Any) -> Any:
    """Go `index`: map keys (missing -> `Missing`), list/string positions (out of range -> error)."""
    cur = item
    path = shown
    for key in keys:
        path += f"[{json.dumps(key) if isinstance(key, str) else gostr(key, False)}]"
        if isinstance(cur, Missing):
            return Missing(path=cur.path + path[len(shown):])
        if cur is None:
            return Missing(path=path)
        if isinstance(cur, Mapping):
            v = cur.get(key, _jmissing)
            if v is _jmissing or v is None:
                return Missing(path=path, null=v is None)
            cur = v
        elif isinstance(cur, (list, tuple, str)):
            if isinstance(key, Missing):
                raise UndefinedValue(key.path, used_by="index")
            if type(key) is not int:
                raise Fault(f"cannot index slice/array with type {type_name(key)}")
            seq = cur.encode() if isinstance(cur, str) else cur
            if not 0 <= key < len(seq):
                raise Fault(f"error calling index: index out of range: {key}")
            cur = seq[key]
        else:
            raise Fault(f"can't index item of type {type_name(cur)}")
    return cur


def out(v: Any) -> str:
    """What `{{ x }}` prints (Go `%v`); undefined/null values are an error instead of `<no value>`."""
    if type(v) is str:
        return v  # type: ignore[no-any-return]
    if isinstance(v, Missing):
        raise UndefinedValue(v.path, v._null)
    if v is None:
        raise Fault("value is nil (luet would print '<no value>')", UNDEFINED_HINT)
    return check_size(gostr(v))


def rng(v: Any) -> list[tuple[Any, Any]] | tuple[()]:
    """Items to `range` over: list -> (index, elem), map -> (key, value) in sorted key order."""
    if isinstance(v, (list, tuple)):
        charge(len(v))
        return list(enumerate(v))
    if isinstance(v, Mapping):
        charge(len(v))
        return [(k, v[k]) for k in sort_keys(v)]
    if v is None or isinstance(v, Missing):
        return ()
    raise Fault(f"range can't iterate over {gostr(v, False)} (a {type_name(v)})")
