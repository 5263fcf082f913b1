"""sprig text functions that come from Go helper libraries: case conversion, abbreviation, wrapping.

Each is a port of the exact code sprig v3.2.2 calls (goutils v1.1.1 for `abbrev`, `initials`,
`wrap`, `swapcase`; huandu/xstrings v1.3.1 for `snakecase`, `camelcase`, `kebabcase`), quirks
included, because luet printed whatever those produced. goutils works on bytes, not characters:
`abbrev`/`wrapWith` can cut a multi-byte character in two, where Go emits the broken bytes and orch
emits U+FFFD. Character classes follow Go's `unicode` package (category Lu/Ll/Lt/N, Go's own list
of spaces, simple one-to-one case mappings).
Also Go's builtin `js` (text/template's JSEscapeString).
"""
from __future__ import annotations

import unicodedata
from typing import Any

from .funcs import i_, print_, register, s_
from .tmplrt import MAX_OUTPUT, Fault

# unicode.IsSpace: Latin-1 spaces plus the White_Space property (not Python's str.isspace)
_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                    "\u200a\u2028\u2029\u202f\u205f\u3000")


def is_space(c: str) -> bool:
    return c in _SPACES


def is_upper(c: str) -> bool:
    return unicodedata.category(c) == "Lu"


def is_lower(c: str) -> bool:
    return unicodedata.category(c) == "Ll"


def is_number(c: str) -> bool:
    return unicodedata.category(c)[0] == "N"


def to_upper(c: str) -> str:
    """unicode.ToUpper: a simple (one-character) mapping, else the character unchanged (ß stays ß)."""
    u = c.upper()
    if len(u) == 1:
        return u
    t = c.title()  # e.g. U+1F80: full upper is two characters, the simple mapping is its titlecase
    return t if len(t) == 1 else c


def to_lower(c: str) -> str:
    lo = c.lower()
    return lo if len(lo) == 1 else "i" if c == "\u0130" else c


def to_title(c: str) -> str:
    t = c.title()
    return t if len(t) == 1 else c


def _text(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


# ------------------------------------------------------------------ goutils (byte-based)
def _abbreviate(b: bytes, offset: int, width: int) -> bytes | None:
    """goutils.AbbreviateFull; None is its error result (sprig then prints "")."""
    if not b:
        return b
    if width < 4:
        return None
    if len(b) <= width:
        return b
    offset = min(offset, len(b))
    if len(b) - offset < width - 3:
        offset = len(b) - (width - 3)
    if offset <= 4:
        return b[:width - 3] + b"..."
    if width < 7:
        return None
    if offset + width - 3 < len(b):
        return b"..." + (_abbreviate(b[offset:], 0, width - 3) or b"")
    return b"..." + b[len(b) - (width - 3):]


@register("abbrev")
def abbrev(width: Any, s: Any) -> str:
    width, s = i_(width, "abbrev"), s_(s, "abbrev")
    if width < 4:
        return s
    return _text(_abbreviate(s.encode(), 0, width) or b"")


@register("abbrevboth")
def abbrevboth(left: Any, right: Any, s: Any) -> str:
    left, right, s = i_(left, "abbrevboth"), i_(right, "abbrevboth"), s_(s, "abbrevboth")
    if right < 4 or (left > 0 and right < 7):
        return s
    return _text(_abbreviate(s.encode(), left, right) or b"")


@register("initials")
def initials(s: Any) -> str:
    """goutils.Initials reads bytes as runes: a non-ASCII first letter comes out as its lead byte."""
    out: list[str] = []
    gap = True
    for byte in s_(s, "initials").encode():
        ch = chr(byte)
        if is_space(ch):
            gap = True
        elif gap:
            out.append(ch)
            gap = False
    return "".join(out)


def _wrap(s: str, width: int, sep: str, long_words: bool, fn: str) -> str:
    """goutils.WrapCustom: break at the last space within `width` bytes; long words per `long_words`."""
    b, nl = s.encode(), (sep or "\n").encode()
    if not b:
        return ""
    width = max(width, 1)
    out: list[bytes] = []
    size, offset, n = 0, 0, len(b)

    def put(*parts: bytes) -> None:
        nonlocal size
        size += sum(map(len, parts))
        if size > MAX_OUTPUT:
            raise Fault(f"{fn}: result exceeds {MAX_OUTPUT // (1024 * 1024)} MiB")
        out.extend(parts)

    while n - offset > width:
        if b[offset] == 0x20:
            offset += 1
            continue
        space = b.rfind(b" ", offset, width + offset + 1)
        if space >= offset:
            put(b[offset:space], nl)
            offset = space + 1
        elif long_words:
            put(b[offset:offset + width], nl)
            offset += width
        else:
            space = b.find(b" ", width + offset)
            if space >= 0:
                put(b[offset:space], nl)
                offset = space + 1
            else:
                put(b[offset:])
                offset = n
    put(b[offset:])
    return _text(b"".join(out))


@register("wrap")
def wrap(width: Any, s: Any) -> str:
    return _wrap(s_(s, "wrap"), i_(width, "wrap"), "", False, "wrap")


@register("wrapWith")
def wrap_with(width: Any, sep: Any, s: Any) -> str:
    return _wrap(s_(s, "wrapWith"), i_(width, "wrapWith"), s_(sep, "wrapWith"), True, "wrapWith")


@register("swapcase")
def swapcase(s: Any) -> str:
    """goutils.SwapCase: upper/title -> lower; lower -> title after a space (or at the start), else upper."""
    out: list[str] = []
    after_space = True
    for c in s_(s, "swapcase"):
        cat = unicodedata.category(c)
        if cat in ("Lu", "Lt"):
            out.append(to_lower(c))
            after_space = False
        elif cat == "Ll":
            out.append(to_title(c) if after_space else to_upper(c))
            after_space = False
        else:
            out.append(c)
            after_space = is_space(c)
    return "".join(out)


@register("plural")
def plural(one: Any, many: Any, count: Any) -> str:
    one, many = s_(one, "plural"), s_(many, "plural")
    return one if i_(count, "plural") == 1 else many


# ------------------------------------------------------------------ xstrings v1.3.1
@register("camelcase")
def camelcase(s: Any) -> str:
    """xstrings.ToCamelCase: `_` separates words; leading/doubled/trailing `_` stay; the rest is lowered."""
    rs = s_(s, "camelcase")
    if not rs:
        return ""
    out: list[str] = []
    i, n, r0 = 0, len(rs), ""
    while i < n:  # leading underscores are kept
        r0 = rs[i]
        i += 1
        if r0 != "_":
            r0 = to_upper(r0)
            break
        out.append(r0)
    if i >= n:
        out.append(r0)  # v1.3.1's one-rune special case (it also doubles a lone trailing "_")
        return "".join(out)
    while i < n:
        r1, r0 = r0, rs[i]
        i += 1
        if r1 == "_" and r0 == "_":
            out.append(r1)
            continue
        r0 = to_upper(r0) if r1 == "_" else to_lower(r0)
        if r1 != "_":
            out.append(r1)
    out.append(r0)
    return "".join(out)


def _lower_words(s: str, conn: str) -> str:
    """xstrings' camelCaseToLowerCase (v1.3.1): `conn` before each capitalised word or number run."""
    out: list[str] = []
    i, n, r0 = 0, len(s), conn
    while i < n:
        prev, r0 = r0, s[i]
        i += 1
        if r0 == "\ufffd":
            out.append(r0)
        elif is_upper(r0):
            if prev != conn and not is_number(prev):
                out.append(conn)
            out.append(to_lower(r0))
            if i >= n:
                continue
            r0 = s[i]
            i += 1
            if not is_upper(r0):
                out.append(r0)
                continue
            while i < n:  # an upper-case run: "HTTPServer" -> "http_server"
                r1, r0 = r0, s[i]
                i += 1
                if r0 == "\ufffd":
                    out += [to_lower(r1), r0]
                    break
                if not is_upper(r0):
                    if r0 in "_ -":
                        r0 = conn
                        out.append(to_lower(r1))
                    elif is_number(r0):
                        out += [to_lower(r1), conn, r0]
                    else:
                        out += [conn, to_lower(r1), r0]
                    break
                out.append(to_lower(r1))
            if i >= n or r0 == conn:
                out.append(to_lower(r0))
        elif is_number(r0):
            if prev != conn and not is_number(prev):
                out.append(conn)
            out.append(r0)
        else:
            if r0 in " -_":
                r0 = conn
            out.append(r0)
    return "".join(out)


@register("snakecase")
def snakecase(s: Any) -> str:
    return _lower_words(s_(s, "snakecase"), "_")


@register("kebabcase")
def kebabcase(s: Any) -> str:
    return _lower_words(s_(s, "kebabcase"), "-")


# ------------------------------------------------------------------ Go builtin js
_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


@register("js")
def js(*args: Any) -> str:
    """text/template's JSEscapeString of the arguments printed like `print`."""
    s = args[0] if len(args) == 1 and isinstance(args[0], str) else print_(*args)
    if len(s) > MAX_OUTPUT:
        raise Fault(f"js: result exceeds {MAX_OUTPUT // (1024 * 1024)} MiB")
    out: list[str] = []
    for c in s:
        o = ord(c)
        if c in _JS:
            out.append(_JS[c])
        elif o < 0x20:
            out.append(f"\\u00{o:02X}")
        elif o < 0x80 or c.isprintable():
            out.append(c)
        else:
            out.append(f"\\u{o:04X}")
    return "".join(out)


@register("hello")
def hello() -> str:
    """sprig's smoke-test function."""
    return "Hello!"
