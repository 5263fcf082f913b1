"""Go `text/template` front end: scanner (text/action split, exact `{{-`/`-}}` trimming), lexer, AST.

`scan()` is linear and cheap: it only splits the text, so many files that differ only in their
literal text share one parsed-and-compiled *skeleton* (the tuple of action contents). `goparse`
turns a skeleton into the AST defined here, `gojinja` turns that into Jinja2 source. Errors carry
the action index (or text offset) so the caller can report the line in the original file.
Semantics follow the Go `text/template` documentation.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

SPACE = " \t\r\n"
COMMENT = "/*"


class GoSyntaxError(Exception):
    """A template syntax error at action `k` (or at text offset `offset` for scanner errors)."""

    def __init__(self, message: str, k: int = -1, offset: int = -1) -> None:
        super().__init__(message)
        self.message, self.k, self.offset = message, k, offset


@dataclass(frozen=True)
class Scan:
    """A text split into literals and actions: `literals[i]` precedes action `key[i]`."""

    key: tuple[str, ...]
    literals: tuple[str, ...]
    text: str
    first_ltrim: bool  # the first action trims whitespace before it (matters when text is concatenated)
    last_rtrim: bool

    @property
    def offsets(self) -> tuple[int, ...]:
        """Where each action starts in `text` (needed only to report errors, so computed on demand)."""
        return _offsets(self.text)


@functools.lru_cache(maxsize=64)
def _offsets(text: str) -> tuple[int, ...]:
    return _careful(text)[1]


# One action, quotes respected; possessive quantifiers keep a failed match linear.
_FAST = re.compile(
    r"""\{\{(-[ \t\r\n])?((?:[^"'`}]++|"(?:[^"\\\n]|\\.)*+"|'(?:[^'\\\n]|\\.)*+'|`[^`]*+`|\}(?!\}))*+)\}\}""")


_RTRIM = frozenset({" -", "\t-", "\r-", "\n-"})
_COMMENT_START = re.compile(r"\{\{-[ \t\r\n]/\*")


def scan(text: str) -> Scan:
    """Split `text` into literal text and action contents, applying trim markers to literals.

    One regex split and a few list operations (C speed) handle well-formed text; comments and
    anything the split cannot judge go to `scan_careful`, the reference implementation, which
    also reports errors precisely.
    """
    if "{{/*" in text or ("/*" in text and _COMMENT_START.search(text)):
        return scan_careful(text)
    parts = _FAST.split(text)  # [literal, trim marker, content, literal, ..., literal]
    lits, key = parts[0::3], parts[2::3]
    if "{{" in "\0".join(lits):
        return scan_careful(text)
    for i in [i for i, c in enumerate(key) if c[-2:] in _RTRIM]:
        key[i] = key[i][:-2]
        lits[i + 1] = lits[i + 1].lstrip(SPACE)
    ltrims = [i for i, m in enumerate(parts[1::3]) if m is not None]
    for i in ltrims:
        lits[i] = lits[i].rstrip(SPACE)
    return Scan(tuple(key), tuple(lits), text, bool(ltrims) and ltrims[0] == 0,
                bool(key) and parts[-2][-2:] in _RTRIM)


def scan_careful(text: str) -> Scan:
    """Split `text` like `scan`, walking delimiters one by one; raises precise syntax errors."""
    return _careful(text)[0]


def _careful(text: str) -> tuple[Scan, tuple[int, ...]]:
    key: list[str] = []
    lits: list[str] = []
    offs: list[int] = []
    pos, rtrim, first_ltrim, n = 0, False, False, len(text)
    find = text.find
    while True:
        i = find("{{", pos)
        if i < 0:
            break
        lit = text[pos:i]
        j = i + 2
        ltrim = text.startswith("-", j) and j + 1 < n and text[j + 1] in SPACE
        if ltrim:
            j += 2
            lit = lit.rstrip(SPACE)
        if rtrim:
            lit = lit.lstrip(SPACE)
        if not offs:
            first_ltrim = ltrim
        if text.startswith(COMMENT, j):
            e = find("*/", j + 2)
            if e < 0:
                raise GoSyntaxError("unclosed comment", offset=i)
            e += 2
            if text.startswith("}}", e):
                rtrim, end = False, e + 2
            elif e < n and text[e] in SPACE and text.startswith("-}}", e + 1):
                rtrim, end = True, e + 4
            else:
                raise GoSyntaxError("comment ends before closing delimiter", offset=i)
            content = COMMENT
        else:
            e = find("}}", j)
            if e < 0:
                raise GoSyntaxError("unclosed action (no matching '}}')", offset=i)
            seg = text[j:e]
            if '"' in seg or "`" in seg or "'" in seg:
                e = _close_quoted(text, j, i)
            rtrim = e - 2 >= j and text[e - 1] == "-" and text[e - 2] in SPACE
            content = text[j:e - 2] if rtrim else text[j:e]
            end = e + 2
        lits.append(lit)
        key.append(content)
        offs.append(i)
        pos = end
    lit = text[pos:]
    lits.append(lit.lstrip(SPACE) if rtrim else lit)
    return Scan(tuple(key), tuple(lits), text, first_ltrim, rtrim and bool(key)), tuple(offs)


_STOP = re.compile(r"""["'`]|\}\}""")
_QUOTED = {'"': re.compile(r'"(?:[^"\\\n]|\\.)*"'), "'": re.compile(r"'(?:[^'\\\n]|\\.)*'"),
           "`": re.compile(r"`[^`]*`")}


def _close_quoted(text: str, j: int, start: int) -> int:
    """Find the closing `}}` of an action that contains quotes (a `}}` inside a string does not close)."""
    p = j
    while True:
        m = _STOP.search(text, p)
        if m is None:
            raise GoSyntaxError("unclosed action (no matching '}}')", offset=start)
        c = m.group()
        if c == "}}":
            return m.start()
        q = _QUOTED[c].match(text, m.start())
        if q is None:
            kind = "raw quoted string" if c == "`" else "quoted string"
            raise GoSyntaxError(f"unterminated {kind}", offset=start)
        p = q.end()


# ------------------------------------------------------------------ lexer for one action
_TOKEN = re.compile(
    r"""(?P<sp>\s+)
    |(?P<str>"(?:[^"\\\n]|\\.)*")
    |(?P<raw>`[^`]*`)
    |(?P<char>'(?:[^'\\\n]|\\[^\n]+?)')
    |(?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)i?)
    |(?P<field>(?:\.[^\W\d]\w*)+)
    |(?P<var>\$\w*(?:\.[^\W\d]\w*)*)
    |(?P<ident>[^\W\d]\w*)
    |(?P<dot>\.)
    |(?P<decl>:=)
    |(?P<punct>[()|,=])""",
    re.VERBOSE,
)
KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"})
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
_ESC_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.DOTALL)


@dataclass(frozen=True)
class Tok:
    kind: str  # str num char field var ident kw dot decl ( ) | , = bool nil
    text: str
    space: bool  # whitespace before this token


def lex(content: str, k: int) -> list[Tok]:
    toks: list[Tok] = []
    pos, space, n = 0, True, len(content)
    while pos < n:
        m = _TOKEN.match(content, pos)
        if m is None:
            raise GoSyntaxError(f"unexpected character {content[pos]!r} in action", k)
        kind = m.lastgroup or ""
        text = m.group()
        pos = m.end()
        if kind == "sp":
            space = True
            continue
        if kind == "num" and pos < n and (content[pos].isalnum() or content[pos] in "_."):
            raise GoSyntaxError(f"bad number syntax: {text + content[pos]!r}", k)
        if kind == "punct":
            kind = text
        elif kind == "ident":
            kind = "kw" if text in KEYWORDS else "bool" if text in ("true", "false") else "nil" if text == "nil" else kind
        elif kind == "raw":
            kind = "str"
        toks.append(Tok(kind, text, space))
        space = False
    return toks


def unquote(tok: Tok, k: int) -> str:
    """Decode a Go string literal (interpreted or raw)."""
    t = tok.text
    if t.startswith("`"):
        return t[1:-1].replace("\r", "")

    def esc(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] in "xuU" and len(s) > 1:
            return chr(int(s[1:], 16))
        if s[0] in "01234567" and len(s) == 3:
            return chr(int(s, 8))
        if s in _ESCAPES and s != "'":
            return _ESCAPES[s]
        raise GoSyntaxError(f"invalid escape \\{s} in string {t}", k)

    return _ESC_RE.sub(esc, t[1:-1])


def number(text: str, k: int) -> int | float:
    """Go number constant: an int unless written with a fraction/exponent."""
    t = text.replace("_", "")
    if t.endswith("i"):
        raise GoSyntaxError(f"complex number {text} not supported", k)
    try:
        low = t.lower().lstrip("+-")
        if low.startswith(("0x", "0b", "0o")):
            return int(t, 0)
        if any(c in t for c in ".eE"):
            return float(t)
        if len(low) > 1 and low.startswith("0"):
            return int(t.replace("0", "0o", 1) if not t.startswith(("+", "-")) else t[0] + "0o" + t[2:], 0)
        return int(t)
    except ValueError:
        raise GoSyntaxError(f"bad number syntax: {text!r}", k) from None


# ------------------------------------------------------------------ AST
@dataclass(eq=False)
class VarDecl:
    name: str
    jname: str
    assigned: bool = False  # target of `=`: stored in a Jinja namespace so loops can update it


@dataclass(eq=False)
class Const:
    value: Any


@dataclass(eq=False)
class Dot:
    pass


@dataclass(eq=False)
class Field:  # .a.b on dot
    names: tuple[str, ...]


@dataclass(eq=False)
class VarRef:  # $x.a.b
    decl: VarDecl
    names: tuple[str, ...] = ()


@dataclass(eq=False)
class Ident:  # function name
    name: str


@dataclass(eq=False)
class Chain:  # (pipe).a.b  or  fn.a
    node: Node
    names: tuple[str, ...]


@dataclass(eq=False)
class Cmd:
    args: list[Node]


@dataclass(eq=False)
class Pipe:
    cmds: list[Cmd]
    decl: list[VarDecl] = field(default_factory=list)
    assign: bool = False  # `=` instead of `:=`


Node = Const | Dot | Field | VarRef | Ident | Chain | Pipe


@dataclass(eq=False)
class Text:
    i: int


@dataclass(eq=False)
class Out:
    k: int
    pipe: Pipe


@dataclass(eq=False)
class If:
    k: int
    pipe: Pipe
    body: list[Stmt]
    orelse: list[Stmt]
    is_with: bool = False


@dataclass(eq=False)
class Range:
    k: int
    pipe: Pipe
    body: list[Stmt]
    orelse: list[Stmt]


@dataclass(eq=False)
class Tmpl:
    k: int
    name: str
    pipe: Pipe | None


@dataclass(eq=False)
class Loop:
    k: int
    word: str  # break / continue


Stmt = Text | Out | If | Range | Tmpl | Loop


@dataclass
class Unit:
    """A body that is rendered on its own with its own `.`: the main text or one `define`."""

    name: str
    body: list[Stmt]
    k: int  # action index of the `define` (or -1 for the main text)
    nvars: int = 0


@dataclass
class Program:
    main: Unit
    defines: dict[str, Unit]
