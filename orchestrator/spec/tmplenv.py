"""The one Jinja2 environment both dialects run in: sandboxed, immutable, bounded.

`ImmutableSandboxedEnvironment` blocks attribute escapes (`__class__`, `mro`, …) and mutation of
data; on top of that: no default globals (no `lipsum`, `cycler`, `joiner`; `range` counts against
the loop budget), no width bombs (`'%999999999s'`, `'{:>999999999}'`, `'a' * 10**10`), no
non-deterministic or width-taking filters (`random`, `center`, `wordwrap`), and no template loader
(`{% include %}`/`{% import %}` cannot read files). Undefined values are `tmplrt.Missing`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from . import tmplrt
from .funcs import FUNCS
from .tmplrt import Fault, Missing, charge

_MAX_RANGE = 100_000
_WIDTH = re.compile(r"%[-+ #0]*(?:\*|\d{5,})|\.\d{5,}|\{[^{}]*:[^{}]*?\d{5,}[^{}]*\}|\{[^{}]*:[^{}]*\{")


def _check_format(fmt: str) -> None:
    if _WIDTH.search(fmt):
        raise Fault("format string with a huge or indirect width/precision")


class OrchEnvironment(ImmutableSandboxedEnvironment):
    """Sandbox with size-checked operators and key paths for undefined values (native dialect)."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

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

    def format_string(self, s: str, args: tuple[Any, ...], kwargs: dict[str, Any], format_func: Any = None) -> str:
        _check_format(s)
        return str(super().format_string(s, args, kwargs, format_func))

    def getattr(self, obj: Any, attribute: str) -> Any:
        v = super().getattr(obj, attribute)
        if isinstance(v, Missing) and not isinstance(obj, Missing) and v.path == attribute:
            return Missing(path=_name_of(obj) + "." + attribute)
        if isinstance(v, Mapping) and isinstance(obj, Mapping):
            _remember(v, _name_of(obj) + "." + attribute)
        return v

    def getitem(self, obj: Any, argument: Any) -> Any:
        v = super().getitem(obj, argument)
        if isinstance(v, Missing) and not isinstance(obj, Missing):
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


def make_env() -> OrchEnvironment:
    env = OrchEnvironment(autoescape=False, keep_trailing_newline=True, undefined=Missing,
                          extensions=["jinja2.ext.loopcontrols"])
    env.globals.clear()
    for name in ("random", "center", "wordwrap", "indent", "format", "xmlattr", "filesizeformat"):
        env.filters.pop(name, None)
    env.filters.update({name: _as_filter(fn) for name, fn in FUNCS.items()})
    env.filters["format"] = _format
    return env


ENV = make_env()
NATIVE_GLOBALS: dict[str, Any] = {**FUNCS, "range": _range, "namespace": Namespace}
