"""sprig string and number functions (`upper`, `replace`, `indent`, `quote`, `add`, `until`, …).

Typed like sprig's Go signatures: a string parameter given a number is an error, as in luet.
Functions that can build big strings check the result size before building it.
"""
from __future__ import annotations

from typing import Any

from .funcs import MAX_LIST, i_, register, s_, strslice, strval, to_float, to_int
from .tmplrt import MAX_OUTPUT, Fault, charge


# ------------------------------------------------------------------ strings
@register("upper")
def upper(s: Any) -> str:
    return s_(s, "upper").upper()


@register("lower")
def lower(s: Any) -> str:
    return s_(s, "lower").lower()


def _is_sep(c: str) -> bool:
    if c < "\x80":
        return not (c.isalnum() or c == "_")
    return not c.isalnum() and c.isspace()


@register("title")
def title(s: Any) -> str:
    out, prev = [], " "
    for c in s_(s, "title"):
        t = c.title()
        out.append(t if _is_sep(prev) and len(t) == 1 else c)
        prev = c
    return "".join(out)


@register("untitle")
def untitle(s: Any) -> str:
    out, prev = [], " "
    for c in s_(s, "untitle"):
        out.append(c.lower() if _is_sep(prev) else c)
        prev = c
    return "".join(out)


@register("trim")
def trim(s: Any) -> str:
    return s_(s, "trim").strip()


@register("trimAll", "trimall")
def trim_all(cut: Any, s: Any) -> str:
    return s_(s, "trimAll").strip(s_(cut, "trimAll"))


@register("trimPrefix")
def trim_prefix(p: Any, s: Any) -> str:
    return s_(s, "trimPrefix").removeprefix(s_(p, "trimPrefix"))


@register("trimSuffix")
def trim_suffix(p: Any, s: Any) -> str:
    return s_(s, "trimSuffix").removesuffix(s_(p, "trimSuffix"))


@register("hasPrefix")
def has_prefix(p: Any, s: Any) -> bool:
    return s_(s, "hasPrefix").startswith(s_(p, "hasPrefix"))


@register("hasSuffix")
def has_suffix(p: Any, s: Any) -> bool:
    return s_(s, "hasSuffix").endswith(s_(p, "hasSuffix"))


@register("contains")
def contains(sub: Any, s: Any) -> bool:
    return s_(sub, "contains") in s_(s, "contains")


@register("replace")
def replace(old: Any, new: Any, src: Any) -> str:
    old, new, src = s_(old, "replace"), s_(new, "replace"), s_(src, "replace")
    grow = (len(src) + 1) * len(new) if not old else src.count(old) * (len(new) - len(old))
    if len(src) + grow > MAX_OUTPUT:
        raise Fault(f"replace: result exceeds {MAX_OUTPUT // (1024 * 1024)} MiB")
    return src.replace(old, new)


@register("repeat")
def repeat(n: Any, s: Any) -> str:
    n, s = i_(n, "repeat"), s_(s, "repeat")
    if n * len(s) > MAX_OUTPUT:
        raise Fault(f"repeat: result exceeds {MAX_OUTPUT // (1024 * 1024)} MiB")
    return s * max(n, 0)


@register("substr")
def substr(start: Any, end: Any, s: Any) -> str:
    start, end, s = i_(start, "substr"), i_(end, "substr"), s_(s, "substr")
    if start < 0:
        return s[:end]
    if end < 0 or end > len(s):
        return s[start:]
    return s[start:end]


@register("trunc")
def trunc(c: Any, s: Any) -> str:
    c, s = i_(c, "trunc"), s_(s, "trunc")
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c:]
    return s[:c] if c >= 0 else s


@register("nospace")
def nospace(s: Any) -> str:
    return "".join(s_(s, "nospace").split())


@register("indent")
def indent(n: Any, s: Any) -> str:
    n, s = i_(n, "indent"), s_(s, "indent")
    if n < 0 or n * (s.count("\n") + 1) + len(s) > MAX_OUTPUT:
        raise Fault(f"indent: bad width {n} for a {len(s)}-character text")
    pad = " " * n
    return pad + s.replace("\n", "\n" + pad)


@register("nindent")
def nindent(n: Any, s: Any) -> str:
    return "\n" + indent(n, s)


@register("quote")
def quote(*args: Any) -> str:
    from .gofmt import quote as q

    return " ".join(q(strval(a)) for a in args if a is not None)


@register("squote")
def squote(*args: Any) -> str:
    return " ".join(f"'{strval(a)}'" for a in args if a is not None)


@register("cat")
def cat(*args: Any) -> str:
    return " ".join(strval(a) for a in args if a is not None)


@register("toString")
def to_string(v: Any) -> str:
    return strval(v)


@register("toStrings")
def to_strings(v: Any) -> list[str]:
    return strslice(v)


@register("join")
def join(sep: Any, v: Any) -> str:
    return s_(sep, "join").join(strslice(v))


@register("split")
def split(sep: Any, s: Any) -> dict[str, str]:
    return {f"_{i}": p for i, p in enumerate(split_list(sep, s))}


@register("splitList")
def split_list(sep: Any, s: Any) -> list[str]:
    sep, s = s_(sep, "splitList"), s_(s, "splitList")
    return list(s) if sep == "" else s.split(sep)


@register("splitn")
def splitn(sep: Any, n: Any, s: Any) -> dict[str, str]:
    n = i_(n, "splitn")
    parts = s_(s, "splitn").split(s_(sep, "splitn"), n - 1) if n > 0 else []
    return {f"_{i}": p for i, p in enumerate(parts)}


# ------------------------------------------------------------------ numbers
@register("int", "int64")
def int_(v: Any) -> int:
    return to_int(v)


@register("float64")
def float64(v: Any) -> float:
    return to_float(v)


@register("atoi")
def atoi(s: Any) -> int:
    t = s_(s, "atoi")
    return int(t) if t.lstrip("+-").isdigit() and t.isascii() else 0


@register("add")
def add(*vs: Any) -> int:
    return sum(to_int(v) for v in vs)


@register("add1")
def add1(v: Any) -> int:
    return to_int(v) + 1


@register("sub")
def sub(a: Any, b: Any) -> int:
    return to_int(a) - to_int(b)


@register("mul")
def mul(a: Any, *vs: Any) -> int:
    r = to_int(a)
    for v in vs:
        r *= to_int(v)
    return r


def _quo(a: int, b: int) -> int:
    if b == 0:
        raise Fault("integer divide by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@register("div")
def div(a: Any, b: Any) -> int:
    return _quo(to_int(a), to_int(b))


@register("mod")
def mod(a: Any, b: Any) -> int:
    x, y = to_int(a), to_int(b)
    return x - _quo(x, y) * y


@register("max", "biggest")
def max_(a: Any, *vs: Any) -> int:
    return max([to_int(a)] + [to_int(v) for v in vs])


@register("min")
def min_(a: Any, *vs: Any) -> int:
    return min([to_int(a)] + [to_int(v) for v in vs])


def _steps(start: int, stop: int, step: int) -> list[int]:
    if step == 0:
        return []
    n = max(0, (stop - start + step - (1 if step > 0 else -1)) // step)
    if n > MAX_LIST:
        raise Fault(f"list of {n} elements exceeds the limit of {MAX_LIST}")
    charge(n // 8)
    return list(range(start, stop, step))


@register("until")
def until(n: Any) -> list[int]:
    n = i_(n, "until")
    return _steps(0, n, 1 if n >= 0 else -1)


@register("untilStep")
def until_step(start: Any, stop: Any, step: Any) -> list[int]:
    return _steps(i_(start, "untilStep"), i_(stop, "untilStep"), i_(step, "untilStep"))


@register("seq")
def seq(*params: Any) -> str:
    p = [i_(x, "seq") for x in params]
    if not p or len(p) > 3:
        return ""
    start, step, end = (1, 1, p[0]) if len(p) == 1 else (p[0], 1, p[1]) if len(p) == 2 else (p[0], p[1], p[2])
    if len(p) < 3 and end < start:
        step = -1
    if len(p) == 3 and ((end < start and step > 0) or (end > start and step < 0) or step == 0):
        return ""
    return " ".join(map(str, _steps(start, end + (1 if step > 0 else -1), step)))
