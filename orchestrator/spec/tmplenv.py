"""The one Jinja2 environment both dialects run in: sandboxed, immutable, bounded.

`ImmutableSandboxedEnvironment` blocks attribute escapes (`__class__`, `mro`, …) and mutation of
data; on top of that: no default globals (no `lipsum`, `cycler`, `joiner`; `range` counts against
the loop budget), no width bombs (`'%999999999s'`, `'{:>999999999}'`, `'a' * 10**10`), no
non-deterministic or width-taking filters (`random`, `center`, `wordwrap`), and no template loader
(`{% include %}`/`{% import %}` cannot read files). Undefined values are `tmplrt.Missing`.
Functions orch refuses on purpose (`funcs_refused`: `now`, `env`, `uuidv4`, …) are globals and
filters that fail with the same explanation the Go dialect gives, not as undefined values; a
macro of the same name from a shared template still wins.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from . import tmplrt
from .funcs import FUNCS
from .funcs_refused import REFUSED, refusal
from .tmplrt import Fault, Missing, charge

_MAX_RANGE = 100_000
_MAX_WIDTH = 10_000
_WIDTH = re.compile(r"%[-+ #0]*(?:\*|\d{5,})|\.\d{5,}|\{[^{}]*:[^{}]*?\d{5,}[^{}]*\}|\{[^{}]*:[^{}]*\{")


def _check_format(fmt: str) -> None:
    if _WIDTH.search(fmt):
        raise Fault("format string with a huge or indirect width/precision")


class OrchEnvironment(ImmutableSandboxedEnvironment):
    """Sandbox with size-checked operators and key paths for undefined values (native dialect)."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})
    trusted: ClassVar[set[int]] = set()  # ids of orch's own helper/library functions: called without the sandbox detour

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if id(obj) in self.trusted:
            if kwargs:  # inside loops Jinja passes its scope bookkeeping along
                kwargs.pop("_loop_vars", None)
                kwargs.pop("_block_vars", None)
            if not kwargs:
                return obj(*args)
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > tmplrt.MAX_OUTPUT:
                    raise Fault("sequence repetition exceeds the output limit")
        elif operator_ == "**":
            if isinstance(right, (int, float)) and abs(right) > 64 and isinstance(left, int) and abs(left) > 1:
                raise Fault("exponent too large")
        elif operator_ == "+":
            if isinstance(left, (str, list)) and isinstance(right, (str, list)) and \
                    len(left) + len(right) > tmplrt.MAX_OUTPUT:
                raise Fault("concatenation exceeds the output limit")
        elif operator_ == "%" and isinstance(left, str):
            _check_format(left)
        return super().call_binop(context, operator_, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format(value.__self__)
        return wrapped

    def getattr(self, obj: Any, attribute: str) -> Any:
        v = super().getattr(obj, attribute)
        if isinstance(v, Missing) and not v.unsafe and not isinstance(obj, Missing) and v.path == attribute:
            return Missing(path=_name_of(obj) + "." + attribute)
        if isinstance(v, Mapping) and isinstance(obj, Mapping):
            _remember(v, _name_of(obj) + "." + attribute)
        return v

    def getitem(self, obj: Any, argument: Any) -> Any:
        if type(obj) is tuple and type(argument) is int:
            return obj[argument]
        v = super().getitem(obj, argument)
        if isinstance(v, Missing) and not v.unsafe and not isinstance(obj, Missing):
            return Missing(path=f"{_name_of(obj)}[{argument!r}]")
        if isinstance(v, Mapping) and isinstance(obj, Mapping) and isinstance(argument, str):
            _remember(v, f"{_name_of(obj)}.{argument}")
        return v


def _names() -> dict[int, str]:
    d: dict[int, str] | None = getattr(tmplrt._tls, "names", None)
    if d is None:
        d = tmplrt._tls.names = {}
    return d


def _name_of(obj: Any) -> str:
    return _names().get(id(obj), "(value)")


def _remember(obj: Any, name: str) -> None:
    names = _names()
    if len(names) < 10_000:
        names[id(obj)] = name


def name_values(values: Any) -> None:
    """Start a native render: `Values` is the root of the key paths shown in errors."""
    tmplrt._tls.names = {id(values): "Values"}


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > _MAX_RANGE:
        raise Fault(f"range of {len(r)} elements exceeds the limit of {_MAX_RANGE}")
    charge(len(r))
    return r


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    s = str(value)
    _check_format(s)
    return s % (kwargs or args)


def _as_filter(fn: Any) -> Any:
    """Jinja filters receive the piped value first; sprig (like a Go pipeline) takes it last."""

    def flt(value: Any, *args: Any) -> Any:
        return fn(*args, value)

    flt.__name__ = getattr(fn, "__name__", "filter")
    return flt


def _bounded(flt: Any) -> Any:
    """A Jinja filter whose numeric arguments (widths, counts) may not be huge."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for a in list(args[1:]) + list(kwargs.values()):
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > _MAX_WIDTH:
                raise Fault(f"filter {flt.__name__}: argument {a} exceeds {_MAX_WIDTH}")
        return flt(*args, **kwargs)

    for attr in ("jinja_pass_arg",):
        if hasattr(flt, attr):
            setattr(wrapper, attr, getattr(flt, attr))
    wrapper.__name__ = flt.__name__
    return wrapper


class _Refused:
    """A stand-in for a refused function: calling it, piping into it or printing it fails with
    the reason."""

    __slots__ = ("__name__",)

    def __init__(self, name: str) -> None:
        self.__name__ = name

    def fail(self, *args: Any, **kwargs: Any) -> Any:
        raise Fault(refusal(self.__name__) or self.__name__)

    __call__ = __str__ = fail


REFUSED_STUBS: dict[str, Any] = {name: _Refused(name) for name in REFUSED if name not in FUNCS}


def make_env() -> OrchEnvironment:
    """Jinja's built-in filters keep their meaning; library functions that are not already a Jinja
    filter are added as filters (piped value last)."""
    env = OrchEnvironment(autoescape=False, keep_trailing_newline=True, undefined=Missing,
                          extensions=["jinja2.ext.loopcontrols"])
    env.globals.clear()
    env.filters.pop("random", None)
    for name in ("center", "indent", "wordwrap", "slice", "truncate", "batch"):
        env.filters[name] = _bounded(env.filters[name])
    env.filters["format"] = _format
    for name, fn in FUNCS.items():
        env.filters.setdefault(name, _as_filter(fn))
    for name, fn in REFUSED_STUBS.items():
        env.filters.setdefault(name, fn)
    return env


ENV = make_env()
NATIVE_GLOBALS: dict[str, Any] = {**REFUSED_STUBS, **FUNCS, "range": _range, "namespace": Namespace}


def trust(*fns: Any) -> None:
    """Mark module-level functions (which live as long as the process) as safe to call directly."""
    OrchEnvironment.trusted.update(id(f) for f in fns)


trust(*FUNCS.values(), _range)
