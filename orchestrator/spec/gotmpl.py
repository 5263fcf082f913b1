"""Go `text/template` front end: scanner (text/action split with exact `{{-`/`-}}` trimming) and parser.

`scan()` is linear and cheap: it only splits the text, so many files that differ only in their
literal text share one parsed-and-compiled *skeleton* (the tuple of action contents). `parse()` turns
a skeleton into an AST (`gojinja` turns that into Jinja2 source). Errors carry the action index so the
caller can report the line in the original file. Semantics follow the Go `text/template` docs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

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
    offsets: tuple[int, ...]
    first_ltrim: bool  # the first action trims whitespace before it (matters when text is concatenated)
    last_rtrim: bool


def scan(text: str) -> Scan:
    """Split `text` into literal text and action contents, applying trim markers to literals.

    Linear: `str.find` for delimiters; a character walk only for actions containing quotes.
    """
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
    return Scan(tuple(key), tuple(lits), tuple(offs), first_ltrim, rtrim and bool(key))


def _close_quoted(text: str, j: int, start: int) -> int:
    """Find the closing `}}` of an action that contains quotes (a `}}` inside a string does not close)."""
    p, n = j, len(text)
    while p < n:
        c = text[p]
        if c == '"' or c == "'":
            q = p + 1
            while q < n and text[q] != c:
                if text[q] == "\n":
                    raise GoSyntaxError("unterminated quoted string", offset=start)
                q += 2 if text[q] == "\\" else 1
            if q >= n:
                raise GoSyntaxError("unterminated quoted string", offset=start)
            p = q + 1
        elif c == "`":
            q = text.find("`", p + 1)
            if q < 0:
                raise GoSyntaxError("unterminated raw quoted string", offset=start)
            p = q + 1
        elif text.startswith("}}", p):
            return p
        else:
            p += 1
    raise GoSyntaxError("unclosed action (no matching '}}')", offset=start)


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
    re.X,
)
KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"})
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
_ESC_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)


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
            kind, text = "str", text
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
    node: "Node"
    names: tuple[str, ...]


@dataclass(eq=False)
class Cmd:
    args: list["Node"]


@dataclass(eq=False)
class Pipe:
    cmds: list[Cmd]
    decl: list[VarDecl] = field(default_factory=list)
    assign: bool = False  # `=` instead of `:=`


Node = Union[Const, Dot, Field, VarRef, Ident, Chain, Pipe]


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
    body: list["Stmt"]
    orelse: list["Stmt"]
    is_with: bool = False


@dataclass(eq=False)
class Range:
    k: int
    pipe: Pipe
    body: list["Stmt"]
    orelse: list["Stmt"]


@dataclass(eq=False)
class Tmpl:
    k: int
    name: str
    pipe: Pipe | None


@dataclass(eq=False)
class Loop:
    k: int
    word: str  # break / continue


Stmt = Union[Text, Out, If, Range, Tmpl, Loop]


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
