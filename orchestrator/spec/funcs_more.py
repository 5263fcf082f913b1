"""The rest of sprig's deterministic functions: paths, float math, deep copies, helm's `required`.

Paths follow Go's `path` package (slash-separated; `os*` are `path/filepath`, identical on Linux).
Float math follows sprig exactly: `floor`/`ceil`/`maxf`/`minf` are Go's `math`; `round` is sprig's
own, which compares the signed fraction with roundOn, so a negative number with a fraction rounds
down (`round -2.4 0` is -3, as in luet); 10^places is computed the way Go's math.Pow does.
`addf`/`subf`/`mulf`/`divf` go through shopspring/decimal: each float64 becomes its shortest
decimal, the arithmetic is exact (`divf` rounds to 16 decimal places, half away from zero) and the
result is the nearest float64. `fractions.Fraction` does the exact part here, so every finite
input gives the same float64 as in luet.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .funcs import i_, register, s_, strval, to_float, type_of
from .gofmt import format_float, type_name
from .tmplrt import Fault, Missing, charge

if TYPE_CHECKING:  # imported where used: fractions brings in decimal, ~4 ms of every template import
    from fractions import Fraction


# ------------------------------------------------------------------ paths (Go's path package)
def clean(p: str) -> str:
    """path.Clean: one slash between elements, no `.`, `..` cancels the element before it."""
    rooted = p.startswith("/")
    parts: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg != "..":
            parts.append(seg)
        elif parts and parts[-1] != "..":
            parts.pop()
        elif not rooted:
            parts.append("..")
    out = "/".join(parts)
    return ("/" + out if rooted else out) or "."


def base(p: str) -> str:
    if p == "":
        return "."
    p = p.rstrip("/")
    return p[p.rfind("/") + 1:] or "/"


def ext(p: str) -> str:
    i = len(p) - 1
    while i >= 0 and p[i] != "/":
        if p[i] == ".":
            return p[i:]
        i -= 1
    return ""


def _path_fn(name: str, f: Callable[[str], Any]) -> None:
    def call(p: Any) -> Any:
        return f(s_(p, name))

    register(name)(call)


for _go, _os, _f in (("base", "osBase", base), ("clean", "osClean", clean),
                     ("dir", "osDir", lambda p: clean(p[: p.rfind("/") + 1])), ("ext", "osExt", ext),
                     ("isAbs", "osIsAbs", lambda p: p.startswith("/"))):
    _path_fn(_go, _f)
    _path_fn(_os, _f)


# ------------------------------------------------------------------ float math
def _floor(x: float) -> float:
    """math.Floor: infinities and NaN pass through, zero keeps its sign."""
    return x if not math.isfinite(x) else float(math.floor(x)) or math.copysign(0.0, x)


def _ceil(x: float) -> float:
    return x if not math.isfinite(x) else float(math.ceil(x)) or math.copysign(0.0, x)


@register("floor")
def floor(a: Any) -> float:
    return _floor(to_float(a))


@register("ceil")
def ceil(a: Any) -> float:
    return _ceil(to_float(a))


def pow10(y: int) -> float:
    """Go's math.Pow(10, y) for integral y, by its own repeated squaring (bit-identical results)."""
    if y == 0:
        return 1.0
    if y == 1:
        return 10.0
    if abs(y) >= 1 << 63:
        return math.inf if y > 0 else 0.0
    a1, ae = 1.0, 0
    x1, xe = math.frexp(10.0)
    i = abs(y)
    while i:
        if xe < -(1 << 12) or (1 << 12) < xe:
            ae += xe
            break
        if i & 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1, ae = (1 / a1 if a1 else a1), -ae
    try:
        return math.ldexp(a1, ae)
    except OverflowError:
        return math.inf


def _f64(v: Any, fn: str) -> float:
    """A `float64` parameter: numbers only (Go converts integer constants)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    raise Fault(f"{fn}: wrong type for value; expected float64; got {type_name(v)}")


@register("round")
def round_(a: Any, places: Any, *round_on: Any) -> float:
    """sprig's round: scale by 10^places, ceil if the fraction is >= roundOn (.5), else floor."""
    on = _f64(round_on[0], "round") if round_on else 0.5
    scale = pow10(i_(places, "round"))
    digit = scale * to_float(a)
    frac = math.modf(digit)[0] if math.isfinite(digit) else math.nan
    return (_ceil(digit) if frac >= on else _floor(digit)) / scale if scale else math.nan


def _maxmin(fn: str, pick_max: bool) -> Callable[..., float]:
    def go(x: float, y: float) -> float:  # math.Max / math.Min special cases
        inf = math.inf if pick_max else -math.inf
        if x == inf or y == inf:
            return inf
        if math.isnan(x) or math.isnan(y):
            return math.nan
        if x == 0 and y == 0:
            neg = math.copysign(1, x) < 0
            return x if neg != pick_max else y
        return max(x, y) if pick_max else min(x, y)

    def call(a: Any, *vs: Any) -> float:
        r = to_float(a)
        for v in vs:
            r = go(r, to_float(v))
        return r

    register(fn)(call)
    return call


maxf, minf = _maxmin("maxf", True), _maxmin("minf", False)


def _dec(v: Any) -> Fraction:
    """decimal.NewFromFloat(cast.ToFloat64(v)): the shortest decimal that reads back as the float."""
    f = to_float(v)
    if not math.isfinite(f):
        raise Fault(f"Cannot create a Decimal from {format_float(f)}")
    from fractions import Fraction

    return Fraction(repr(f))


def _float(d: Fraction) -> float:
    """decimal.Float64: the nearest float64 (an infinity when too large)."""
    try:
        return float(d)
    except OverflowError:
        return math.copysign(math.inf, d)


def _div(a: Fraction, b: Fraction) -> Fraction:
    """decimal.Div: the quotient rounded to 16 decimal places, half away from zero."""
    if b == 0:
        raise Fault("decimal division by zero")
    scaled = a / b * 10**16
    q = int(scaled)  # truncates toward zero
    if 2 * abs(scaled - q) >= 1:
        q += 1 if scaled > 0 else -1
    from fractions import Fraction

    return Fraction(q, 10**16)


def _decimal_op(first: Fraction, rest: tuple[Any, ...], op: Callable[[Fraction, Fraction], Fraction]) -> float:
    acc = first
    for v in rest:
        acc = op(acc, _dec(v))
    return _float(acc)


@register("addf")
def addf(*vs: Any) -> float:
    return _decimal_op(_dec(0), vs, lambda x, y: x + y)


@register("add1f")
def add1f(a: Any) -> float:
    return _decimal_op(_dec(a), (1,), lambda x, y: x + y)


@register("subf")
def subf(a: Any, *vs: Any) -> float:
    return _decimal_op(_dec(a), vs, lambda x, y: x - y)


@register("mulf")
def mulf(a: Any, *vs: Any) -> float:
    return _decimal_op(_dec(a), vs, lambda x, y: x * y)


@register("divf")
def divf(a: Any, *vs: Any) -> float:
    return _decimal_op(_dec(a), vs, _div)


@register("toDecimal")
def to_decimal(v: Any) -> int:
    """strconv.ParseInt(fmt.Sprint(v), 8, 64): a Unix mode like "0755" -> 493; anything else -> 0."""
    s = strval(v)
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or any(c not in "01234567" for c in body):
        return 0
    n = int(s, 8)
    return n if -(1 << 63) <= n < 1 << 63 else 0


# ------------------------------------------------------------------ lists, dicts, types
def copy_plain(v: Any) -> Any:
    """A deep copy of template data (maps, lists, scalars), counted against the loop budget."""
    if isinstance(v, Mapping):
        charge(len(v) // 8)
        return {k: copy_plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        charge(len(v) // 8)
        return [copy_plain(x) for x in v]
    return v


@register("deepCopy", "mustDeepCopy")
def deep_copy(v: Any) -> Any:
    return copy_plain(v)


@register("typeIsLike", lenient=True)
def type_is_like(t: Any, v: Any) -> bool:
    """sprig: the type is `t` or a pointer to it; template data holds no pointers."""
    return type_of(v) in (t, f"*{t}")


@register("required", lenient=True)
def required(msg: Any, v: Any) -> Any:
    """helm's required: the value, unless it is undefined, null or the empty string."""
    text = s_(msg, "required")
    if v is None or isinstance(v, Missing) or v == "":
        raise Fault(text)
    return v
