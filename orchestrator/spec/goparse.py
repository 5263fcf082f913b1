"""Parser for Go `text/template` actions: skeleton (tuple of action contents) -> `gotmpl.Program`.

Recursive descent over each action's tokens plus a block stack for `if/else/range/with/define/
block/end`. Variables are resolved here, as Go's parser does, so `$x` use before declaration is a
syntax error; each declaration gets a unique Jinja name, and variables re-assigned with `=` are
flagged so the code generator can store them where Jinja loops can update them.
"""
from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from .funcs_refused import refusal
from .gotmpl import (
    COMMENT,
    Chain,
    Cmd,
    Const,
    Dot,
    Field,
    GoSyntaxError,
    Ident,
    If,
    Loop,
    Node,
    Out,
    Pipe,
    Program,
    Range,
    Stmt,
    Text,
    Tmpl,
    Tok,
    Unit,
    VarDecl,
    VarRef,
    lex,
    number,
    unquote,
)


@dataclass
class _Frame:
    kind: str  # root define block if with range
    k: int
    body: list[Stmt]
    node: If | Range | Unit | None = None
    chained: bool = False  # opened by `else if`/`else with`: closed by the same {{end}}
    in_else: bool = False
    saved: list[dict[str, VarDecl]] = field(default_factory=list)  # outer scopes (define/block)


class Parser:
    """One-shot parser of a skeleton; `funcs` are the function names templates may call."""

    def __init__(self, key: tuple[str, ...], funcs: Container[str]) -> None:
        self.key, self.funcs = key, funcs
        self.defines: dict[str, Unit] = {}
        self.main = Unit("", [], -1)
        self.unit = self.main
        self.scopes: list[dict[str, VarDecl]] = [{"$": VarDecl("$", "_d0")}]
        self.stack = [_Frame("root", -1, self.main.body)]

    def parse(self) -> Program:
        for k, content in enumerate(self.key):
            self.stack[-1].body.append(_text(k))
            if content != COMMENT:
                self._action(k, content)
        self.stack[-1].body.append(_text(len(self.key)))
        top = self.stack[-1]
        if top.kind != "root":
            raise GoSyntaxError(f"unclosed {{{{{top.kind}}}}} (missing {{{{end}}}})", top.k)
        return Program(self.main, self.defines)

    # ------------------------------------------------------------ actions
    def _action(self, k: int, content: str) -> None:
        toks = lex(content, k)
        if not toks:
            raise GoSyntaxError("missing value for command", k)
        if toks[0].kind != "kw":
            pipe = self._pipeline(toks, 0, k, decl_ok=True)
            self.stack[-1].body.append(Out(k, pipe))
            return
        word, rest = toks[0].text, toks[1:]
        if word in ("if", "with", "range"):
            self._open(k, word, rest, chained=False)
        elif word == "else":
            self._else(k, rest)
        elif word == "end":
            if rest:
                raise GoSyntaxError(f"unexpected {rest[0].text!r} in {{{{end}}}}", k)
            self._end(k)
        elif word in ("define", "block"):
            self._define(k, word, rest)
        elif word == "template":
            name, i = self._name(rest, k, "template")
            arg = self._pipeline(rest, i, k, decl_ok=False) if i < len(rest) else None
            self.stack[-1].body.append(Tmpl(k, name, arg))
        else:  # break / continue
            if rest:
                raise GoSyntaxError(f"unexpected {rest[0].text!r} in {{{{{word}}}}}", k)
            if not any(f.kind == "range" and not f.in_else for f in self._unit_frames()):
                raise GoSyntaxError(f"{{{{{word}}}}} outside {{{{range}}}}", k)
            self.stack[-1].body.append(Loop(k, word))

    def _unit_frames(self) -> list[_Frame]:
        out: list[_Frame] = []
        for f in reversed(self.stack):
            if f.kind in ("root", "define", "block"):
                break
            out.append(f)
        return out

    def _open(self, k: int, word: str, toks: list[Tok], chained: bool) -> None:
        if not toks:
            raise GoSyntaxError(f"missing value for {word}", k)
        self.scopes.append({})  # control-pipeline variables live until {{end}}
        pipe = self._pipeline(toks, 0, k, decl_ok=True, max_decl=2 if word == "range" else 1)
        node: If | Range = Range(k, pipe, [], []) if word == "range" else If(k, pipe, [], [], word == "with")
        self.stack[-1].body.append(node)
        self.scopes.append({})
        self.stack.append(_Frame(word, k, node.body, node, chained))

    def _else(self, k: int, rest: list[Tok]) -> None:
        top = self.stack[-1]
        if top.kind not in ("if", "with", "range") or top.in_else:
            raise GoSyntaxError("unexpected {{else}}", k)
        assert isinstance(top.node, (If, Range))
        top.in_else, top.body = True, top.node.orelse
        self.scopes[-1] = {}
        if rest:
            word = rest[0].text if rest[0].kind == "kw" else ""
            if (word, top.kind) not in (("if", "if"), ("with", "with")):
                raise GoSyntaxError(f"unexpected {rest[0].text!r} after {{{{else}}}}", k)
            self._open(k, word, rest[1:], chained=True)

    def _end(self, k: int) -> None:
        while True:
            top = self.stack.pop()
            if top.kind == "root":
                raise GoSyntaxError("unexpected {{end}} (no open block)", k)
            if top.kind in ("define", "block"):
                assert isinstance(top.node, Unit)
                self._register(top.node)
                self.scopes, self.unit = top.saved, self.main
                return
            del self.scopes[-2:]
            if not top.chained:
                return

    def _define(self, k: int, word: str, toks: list[Tok]) -> None:
        name, i = self._name(toks, k, word)
        if word == "define":
            if len(self.stack) != 1:
                raise GoSyntaxError("{{define}} is only allowed at the top level", k)
            if i < len(toks):
                raise GoSyntaxError(f"unexpected {toks[i].text!r} in {{{{define}}}}", k)
        else:
            pipe = self._pipeline(toks, i, k, decl_ok=False) if i < len(toks) else None
            self.stack[-1].body.append(Tmpl(k, name, pipe))
        if self.unit is not self.main:
            raise GoSyntaxError(f"{{{{{word}}}}} inside a define is not supported", k)
        unit = Unit(name, [], k)
        self.stack.append(_Frame(word, k, unit.body, unit, saved=self.scopes))
        self.scopes, self.unit = [{"$": VarDecl("$", "_d0")}], unit

    def _register(self, unit: Unit) -> None:
        old = self.defines.get(unit.name)
        if old is not None and _has_actions(old) and _has_actions(unit):
            raise GoSyntaxError(f"template: multiple definition of template {unit.name!r}", unit.k)
        if old is None or _has_actions(unit):
            self.defines[unit.name] = unit

    def _name(self, toks: list[Tok], k: int, word: str) -> tuple[str, int]:
        if not toks or toks[0].kind != "str":
            raise GoSyntaxError(f"{{{{{word}}}}} needs a quoted template name", k)
        return unquote(toks[0], k), 1

    # ------------------------------------------------------------ pipelines
    def _pipeline(self, toks: list[Tok], i: int, k: int, decl_ok: bool, max_decl: int = 1) -> Pipe:
        names: list[str] = []
        op = ""
        if decl_ok and i < len(toks) and toks[i].kind == "var" and "." not in toks[i].text:
            if i + 1 < len(toks) and toks[i + 1].kind in ("decl", "="):
                names, op, i = [toks[i].text], toks[i + 1].kind, i + 2
            elif (max_decl == 2 and i + 3 < len(toks) and toks[i + 1].kind == "," and toks[i + 2].kind == "var"
                  and toks[i + 3].kind in ("decl", "=")):
                names, op, i = [toks[i].text, toks[i + 2].text], toks[i + 3].kind, i + 4
        cmds, i = self._cmds(toks, i, k)
        if i < len(toks):
            raise GoSyntaxError(f"unexpected {toks[i].text!r} in operand", k)
        pipe = Pipe(cmds, assign=op == "=")
        for name in names:
            if op == "=":
                decl = self._lookup(name, k)
                decl.assigned = True
            else:
                self.unit.nvars += 1
                decl = VarDecl(name, f"v{self.unit.nvars}")
                self.scopes[-1][name] = decl
            pipe.decl.append(decl)
        return pipe

    def _cmds(self, toks: list[Tok], i: int, k: int) -> tuple[list[Cmd], int]:
        cmds: list[Cmd] = []
        while True:
            args: list[Node] = []
            while i < len(toks) and toks[i].kind not in ("|", ")"):
                node, i = self._operand(toks, i, k)
                args.append(node)
            if not args:
                raise GoSyntaxError("missing value for command", k)
            head = args[0]
            if not isinstance(head, Ident):
                if isinstance(head, Const) and head.value is None and len(args) == 1 and not cmds:
                    raise GoSyntaxError("nil is not a command", k)
                if cmds and isinstance(head, (Const, Dot)):
                    raise GoSyntaxError(f"non executable command in pipeline stage {len(cmds) + 1}", k)
                if len(args) > 1 or cmds:
                    raise GoSyntaxError("can't give argument to non-function", k)
            cmds.append(Cmd(args))
            if i < len(toks) and toks[i].kind == "|":
                i += 1
                continue
            return cmds, i

    def _operand(self, toks: list[Tok], i: int, k: int) -> tuple[Node, int]:
        t = toks[i]
        node: Node
        if t.kind == "str":
            node = Const(unquote(t, k))
        elif t.kind == "num":
            node = Const(number(t.text, k))
        elif t.kind == "char":
            s = unquote(Tok("str", '"' + t.text[1:-1] + '"', False), k)
            if len(s) != 1:
                raise GoSyntaxError(f"malformed character constant {t.text}", k)
            node = Const(ord(s))
        elif t.kind == "bool":
            node = Const(t.text == "true")
        elif t.kind == "nil":
            node = Const(None)
        elif t.kind == "dot":
            node = Dot()
        elif t.kind == "field":
            node = Field(tuple(t.text[1:].split(".")))
        elif t.kind == "var":
            name, *rest = t.text.split(".")
            node = VarRef(self._lookup(name, k), tuple(rest))
        elif t.kind == "ident":
            if t.text not in self.funcs:
                raise GoSyntaxError(refusal(t.text) or f'function "{t.text}" not defined', k)
            node = Ident(t.text)
        elif t.kind == "(":
            cmds, j = self._cmds(toks, i + 1, k)
            if j >= len(toks) or toks[j].kind != ")":
                raise GoSyntaxError("unclosed left paren", k)
            node, i = Pipe(cmds), j
        else:
            raise GoSyntaxError(f"unexpected {t.text!r} in operand", k)
        i += 1
        while i < len(toks) and toks[i].kind == "field" and not toks[i].space:
            names = tuple(toks[i].text[1:].split("."))
            if isinstance(node, Field):
                node = Field(node.names + names)
            elif isinstance(node, VarRef):
                node = VarRef(node.decl, node.names + names)
            elif isinstance(node, (Const, Dot)):
                raise GoSyntaxError(f"unexpected . after term {t.text!r}", k)
            else:
                node = Chain(node, names)
            i += 1
        return node, i

    def _lookup(self, name: str, k: int) -> VarDecl:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise GoSyntaxError(f'undefined variable "{name}"', k)


def _text(i: int) -> Stmt:
    return Text(i)


def _has_actions(unit: Unit) -> bool:
    return any(not isinstance(s, Text) for s in unit.body)


def parse(key: tuple[str, ...], funcs: Container[str]) -> Program:
    """Parse a skeleton into a Program (main text + defines); raises GoSyntaxError."""
    return Parser(key, funcs).parse()
