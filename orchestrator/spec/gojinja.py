"""Go template AST -> Jinja2 source, one Jinja template per unit (main text or `define`).

The generated source never contains the file's literal text or constants: literals are emitted as
`_L[i]` from a per-file table and constants are template globals, so every file with the same
action skeleton shares one compiled template. Every Go action is generated on its own Jinja line;
`k_of_line` maps a Jinja line back to the action, and the caller maps that to the original line.
Runtime helpers are Jinja *filters* (`x|_fld(...)` compiles to a direct Python call, no per-call
sandbox dispatch; they are orch's own pure functions): `_fld` field access, `_out` Go printing with
the undefined check, `_rng` range items, `_tpl` template/include calls, `_idx` index, `_fn_<name>`
library functions (a call without arguments is a global `_fn_<name>()`).
Go `and`/`or`/`not` become Python's operators: they short-circuit and `and`/`or` return the
deciding operand, exactly like Go; an undefined value is falsy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .gotmpl import (
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
    Range,
    Stmt,
    Text,
    Tmpl,
    Unit,
    VarDecl,
    VarRef,
)

MUTATING = frozenset({"set", "unset", "merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"})


@dataclass
class JUnit:
    name: str
    source: str
    k_of_line: list[int]
    consts: dict[str, Any]
    funcs: frozenset[str]
    mutates: bool


@dataclass
class _Gen:
    unit: Unit
    lines: list[str] = field(default_factory=list)
    kmap: list[int] = field(default_factory=lambda: [-1])  # Jinja lines are 1-based
    consts: dict[str, Any] = field(default_factory=dict)
    const_names: dict[tuple[type, Any], str] = field(default_factory=dict)
    funcs: set[str] = field(default_factory=set)
    dot: str = "_d0"
    tmp: int = 0
    uses_ns: bool = False

    def emit(self, code: str, k: int) -> None:
        self.lines.append(code)
        self.kmap.append(k)

    # ------------------------------------------------------------ statements
    def block(self, body: list[Stmt]) -> None:
        for st in body:
            self.stmt(st)

    def stmt(self, st: Stmt) -> None:
        if isinstance(st, Text):
            self.emit(f"{{{{- _L[{st.i}] -}}}}", -1)
        elif isinstance(st, Out):
            expr = self.pipe(st.pipe, st.k)
            if st.pipe.decl:
                self.emit(self.assign(st.pipe.decl[0], expr), st.k)
            else:
                self.emit(f"{{{{- {_f('_out', [expr])} -}}}}", st.k)
        elif isinstance(st, If):
            self.if_(st)
        elif isinstance(st, Range):
            self.range_(st)
        elif isinstance(st, Tmpl):
            arg = self.pipe(st.pipe, st.k) if st.pipe is not None else "none"
            self.emit(f"{{{{- {_f('_tpl', [self.const(st.name), arg])} -}}}}", st.k)
        elif isinstance(st, Loop):
            self.emit(f"{{%- {st.word} -%}}", st.k)

    def assign(self, decl: VarDecl, expr: str) -> str:
        if decl.assigned:
            self.uses_ns = True
            return f"{{%- set _ns.{decl.jname} = {expr} -%}}"
        return f"{{%- set {decl.jname} = {expr} -%}}"

    def var(self, decl: VarDecl) -> str:
        return f"_ns.{decl.jname}" if decl.assigned else decl.jname

    def if_(self, st: If) -> None:
        expr = self.pipe(st.pipe, st.k)
        saved = self.dot
        if st.pipe.decl or st.is_with:
            self.tmp += 1
            t = f"_w{self.tmp}"
            code = f"{{%- set {t} = {expr} -%}}"
            if st.pipe.decl:
                code += self.assign(st.pipe.decl[0], t)
            self.emit(code + f"{{%- if {t} -%}}", st.k)
            if st.is_with:
                self.dot = t
        else:
            self.emit(f"{{%- if {expr} -%}}", st.k)
        self.block(st.body)
        self.dot = saved
        if st.orelse:
            self.emit("{%- else -%}", -1)
            self.block(st.orelse)
        self.emit("{%- endif -%}", -1)

    def range_(self, st: Range) -> None:
        expr = self.pipe(st.pipe, st.k)
        self.tmp += 1
        kv, vv = f"_k{self.tmp}", f"_v{self.tmp}"
        code = f"{{%- for {kv}, {vv} in {_f('_rng', [expr])} -%}}"
        decl = st.pipe.decl  # `range $i, $v = ...` assigns existing (namespace) variables
        if len(decl) == 1:
            code += self.assign(decl[0], vv)
        elif len(decl) == 2:
            code += self.assign(decl[0], kv) + self.assign(decl[1], vv)
        self.emit(code, st.k)
        saved, self.dot = self.dot, vv
        self.block(st.body)
        self.dot = saved
        if st.orelse:
            self.emit("{%- else -%}", -1)
            self.block(st.orelse)
        self.emit("{%- endfor -%}", -1)

    # ------------------------------------------------------------ expressions
    def const(self, value: Any) -> str:
        if value is None:
            return "none"
        if value is True or value is False:
            return "true" if value else "false"
        ck = (type(value), value)
        name = self.const_names.get(ck)
        if name is None:
            name = self.const_names[ck] = f"_c{len(self.consts)}"
            self.consts[name] = value
        return name

    def pipe(self, pipe: Pipe, k: int) -> str:
        expr = ""
        for i, cmd in enumerate(pipe.cmds):
            expr = self.cmd(cmd, k, expr if i else None)
        return expr

    def cmd(self, cmd: Cmd, k: int, piped: str | None) -> str:
        head = cmd.args[0]
        if not isinstance(head, Ident):
            return self.node(head, k)
        args = [self.node(a, k) for a in cmd.args[1:]]
        if piped is not None:
            args.append(piped)
        if head.name == "index" and args:  # keep the key path for "undefined value" messages
            shown = _shown(cmd.args[1]) if len(cmd.args) > 1 else "(...)"
            return _f("_idx", [self.const(shown)] + args)
        return self.call(head.name, args, k)

    def call(self, name: str, args: list[str], k: int) -> str:
        if name in ("and", "or"):
            if not args:
                raise GoSyntaxError(f"wrong number of args for {name}: want at least 1 got 0", k)
            return "(" + f" {name} ".join(args) + ")"
        if name == "not":
            if len(args) != 1:
                raise GoSyntaxError(f"wrong number of args for not: want 1 got {len(args)}", k)
            return f"(not {args[0]})"
        if name == "include":
            if len(args) != 2:
                raise GoSyntaxError(f"wrong number of args for include: want 2 got {len(args)}", k)
            return _f("_tpl", args)
        self.funcs.add(name)
        return _f(f"_fn_{name}", args) if args else f"_fn_{name}()"

    def node(self, node: Node, k: int) -> str:
        if isinstance(node, Const):
            return self.const(node.value)
        if isinstance(node, Dot):
            return self.dot
        if isinstance(node, Field):
            return self.field(self.dot, "", node.names)
        if isinstance(node, VarRef):
            base = self.var(node.decl)
            return self.field(base, node.decl.name, node.names) if node.names else base
        if isinstance(node, Ident):
            return self.call(node.name, [], k)
        if isinstance(node, Chain):
            return self.field(self.node(node.node, k), "(...)", node.names)
        return "(" + self.pipe(node, k) + ")"

    def field(self, base: str, shown: str, names: tuple[str, ...]) -> str:
        quoted = ", ".join(self.const(n) for n in names)
        return _f("_fld", [base, self.const(shown), quoted])


def _f(name: str, args: list[str]) -> str:
    """`name(a, b, c)` as the Jinja filter call `((a)|name(b, c))`."""
    rest = f"({', '.join(args[1:])})" if len(args) > 1 else ""
    return f"(({args[0]})|{name}{rest})"


def _shown(node: Node) -> str:
    if isinstance(node, Field):
        return "." + ".".join(node.names)
    if isinstance(node, VarRef):
        return node.decl.name + "".join("." + n for n in node.names)
    return "." if isinstance(node, Dot) else "(...)"


def generate(unit: Unit) -> JUnit:
    """Jinja2 source for one unit (its `.` and `$` are the `_d0` variable)."""
    g = _Gen(unit)
    g.block(unit.body)
    if g.uses_ns:
        g.lines.insert(0, "{%- set _ns = namespace() -%}")
        g.kmap.insert(1, -1)
    return JUnit(unit.name, "\n".join(g.lines), g.kmap, g.consts, frozenset(g.funcs), bool(g.funcs & MUTATING))
