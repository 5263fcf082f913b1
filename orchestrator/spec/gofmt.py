"""Go's `fmt` rules for template output, so translated luet trees print exactly what luet printed.

`{{ .x }}` prints a bool as `true`/`false`, a float the way Go's `%v` does (`1.5`, `1e+06`), a list
as `[a b]` and a map as `map[k:v]` (keys sorted). `sprintf` implements Go's `printf` verbs and
flags, including Go's in-band error notation (`%!d(string=x)`, `%!s(MISSING)`).
Written from the Go `fmt` documentation, not from its sources.
"""
from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_MAX_WIDTH = 10_000  # a width/precision larger than this is a bomb, not a format


class FormatFault(Exception):
    """A formatting request that Go would accept but orch refuses (e.g. a huge width)."""


def type_name(v: Any) -> str:
    """The Go type luet's YAML decoder would have produced for `v` (for `%T`, `typeOf`, errors)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, (datetime.date, datetime.datetime)):
        return "time.Time"
    return type(v).__name__


def format_float(f: float, verb: str = "v", prec: int = -1) -> str:
    """Go's %v/%g: shortest digits, exponent form when the exponent is < -4 or >= 6 (`1e+06`)."""
    if math.isnan(f):
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if prec >= 0:
        return _c_style(f, "g", prec)
    sign = "-" if f < 0 or (f == 0 and str(f).startswith("-")) else ""
    if f == 0:
        return sign + "0"
    tup = Decimal(repr(abs(f))).normalize().as_tuple()
    digits = "".join(map(str, tup.digits))
    exp_ = int(tup.exponent)
    dp = len(digits) + exp_  # position of the decimal point relative to the digit string
    x = dp - 1
    if x < -4 or x >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _c_style(f: float, verb: str, prec: int) -> str:
    s = f"%.{prec}{verb}" % f
    return s.replace("inf", "Inf").replace("nan", "NaN")


def gostr(v: Any, top: bool = True) -> str:
    """Go's `%v` (also what `{{ x }}` prints); `None` is `<nil>` inside containers."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return format_float(v)
    if v is None:
        return "<no value>" if top else "<nil>"
    if isinstance(v, str):
        return str(v)
    if isinstance(v, Mapping):
        items = " ".join(f"{gostr(k, False)}:{gostr(v[k], False)}" for k in sort_keys(v))
        return f"map[{items}]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(gostr(e, False) for e in v) + "]"
    if isinstance(v, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in v) + "]"
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    return str(v)


def _key_rank(k: Any) -> tuple[int, Any]:
    if isinstance(k, bool):
        return (0, k)
    if isinstance(k, (int, float)):
        return (1, k)
    if isinstance(k, str):
        return (2, k)
    return (3, repr(k))


def sort_keys(m: Mapping[Any, Any]) -> list[Any]:
    """Go sorts map keys when printing or ranging; order mixed key types stably by kind first."""
    return sorted(m, key=_key_rank)


def quote(s: str) -> str:
    """Go's strconv.Quote (`%q`, sprig `quote`)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _ESC:
            out.append(_ESC[ch])
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}

_VERB_RE = re.compile(r"%([-+# 0]*)(?:\[(\d+)\])?(\d+|\*)?(?:\.(\d+|\*)?)?(?:\[(\d+)\])?(.|$)", re.DOTALL)


def sprintf(fmt: str, args: tuple[Any, ...] | list[Any]) -> str:
    """Go's fmt.Sprintf for the verbs templates use; bad verbs/args use Go's `%!` notation."""
    out: list[str] = []
    pos = 0
    argi = 0
    reordered = False
    n = len(fmt)
    while pos < n:
        i = fmt.find("%", pos)
        if i < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:i])
        m = _VERB_RE.match(fmt, i)
        assert m is not None
        flags, idx1, width_s, prec_s, idx2, verb = m.groups()
        pos = m.end()
        if verb == "%" and not flags and width_s is None:
            out.append("%")
            continue
        if verb == "":
            out.append("%!(NOVERB)")
            break
        if idx1 is not None:
            argi, reordered = int(idx1) - 1, True
        width = prec = -1
        if width_s == "*":
            width, argi = _star(args, argi)
        elif width_s is not None:
            width = int(width_s)
        if prec_s == "*":
            prec, argi = _star(args, argi)
        elif prec_s is not None:
            prec = int(prec_s)
        elif m.group(0).find(".") >= 0 and verb != ".":
            prec = 0
        if idx2 is not None:
            argi, reordered = int(idx2) - 1, True
        if width > _MAX_WIDTH or prec > _MAX_WIDTH:
            raise FormatFault(f"printf: width/precision {max(width, prec)} exceeds {_MAX_WIDTH}")
        if argi < 0 or argi >= len(args):
            out.append(f"%!{verb}(BADINDEX)" if reordered else f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_pad(_one(verb, flags, prec, arg), width, flags, verb, arg))
    if not reordered and argi < len(args):
        extra = ", ".join(f"{type_name(a)}={gostr(a, False)}" if a is not None else "<nil>" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _star(args: tuple[Any, ...] | list[Any], argi: int) -> tuple[int, int]:
    if argi < len(args) and type(args[argi]) is int:
        return int(args[argi]), argi + 1
    return -1, argi + 1


def _bad(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(arg)}={gostr(arg, False)})"


def _one(verb: str, flags: str, prec: int, arg: Any) -> str:
    """Format one operand without width padding."""
    if verb == "T":
        return type_name(arg)
    if verb == "v":
        if isinstance(arg, float) and not isinstance(arg, bool):
            return _sign(format_float(arg, "v"), flags)
        if isinstance(arg, int) and not isinstance(arg, bool):
            return _sign(str(arg), flags)
        return gostr(arg, False)
    if isinstance(arg, bool):
        return ("true" if arg else "false") if verb == "t" else _bad(verb, arg)
    if isinstance(arg, int):
        return _int(verb, flags, prec, arg)
    if isinstance(arg, float):
        if verb in "eEfFgG":
            s = format_float(arg, verb, prec) if verb in "gG" and prec < 0 else _c_style(arg, verb, 6 if prec < 0 else prec)
            return _sign(s.upper() if verb in "EG" else s, flags)
        return _bad(verb, arg)
    if isinstance(arg, str):
        if verb == "s":
            return arg[:prec] if prec >= 0 else arg
        if verb == "q":
            return quote(arg[:prec] if prec >= 0 else arg)
        if verb in "xX":
            h = arg.encode().hex()
            return h.upper() if verb == "X" else h
        return _bad(verb, arg)
    if isinstance(arg, (list, tuple)) and verb in "sqdxXv":
        return "[" + " ".join(_one(verb, flags, prec, e) for e in arg) + "]"
    if isinstance(arg, Mapping) and verb in "sqdv":
        return "map[" + " ".join(f"{_one(verb, flags, prec, k)}:{_one(verb, flags, prec, arg[k])}" for k in sort_keys(arg)) + "]"
    if arg is None:
        return "%!" + verb + "(<nil>)"
    return _bad(verb, arg)


def _sign(s: str, flags: str) -> str:
    if not s.startswith("-"):
        if "+" in flags:
            return "+" + s
        if " " in flags:
            return " " + s
    return s


def _int(verb: str, flags: str, prec: int, v: int) -> str:
    neg, a = v < 0, abs(v)
    if verb == "d":
        s = str(a)
    elif verb in "xX":
        s = format(a, "x" if verb == "x" else "X")
        if "#" in flags:
            s = ("0x" if verb == "x" else "0X") + s
    elif verb == "o":
        s = ("0" if "#" in flags else "") + format(a, "o")
    elif verb == "O":
        s = "0o" + format(a, "o")
    elif verb == "b":
        s = format(a, "b")
    elif verb == "c":
        return chr(v) if 0 <= v <= 0x10FFFF else "\ufffd"
    elif verb == "q":
        return "'" + quote(chr(v))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'" if 0 <= v <= 0x10FFFF else _bad(verb, v)
    elif verb == "U":
        return f"U+{v:04X}"
    elif verb in "eEfFgG":
        return _bad(verb, v)
    else:
        return _bad(verb, v)
    if prec >= 0:
        s = s.zfill(prec) if prec > 0 or a != 0 else ""
    return _sign(("-" if neg else "") + s, flags)


def _pad(s: str, width: int, flags: str, verb: str, arg: Any) -> str:
    if width < 0 or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    numeric = isinstance(arg, (int, float)) and not isinstance(arg, bool) and verb not in "cqUsT"
    if "0" in flags and numeric:
        sign = s[0] if s[:1] in "+- " else ""
        return sign + s[len(sign):].zfill(width - len(sign))
    return " " * (width - len(s)) + s
