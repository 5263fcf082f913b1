"""Render build.yaml/finalize.yaml templates the way luet 0.35 did, on Jinja2, with strict values.

**Render model (luet's):** every shared template file (`templates/**/*.yaml` of every tree, walk
order) is concatenated and followed by the build spec; the result is one template rendered with
data `{"Values": values}`. So `define`s are shared, and literal text outside `define`s in template
files is emitted at the top of every rendered spec (even one without `{{`). `{{-`/`-}}` trim across
that boundary exactly as in the concatenated text. Blocks cannot span files.

**Dialects:** a file whose name ends in `.j2` (`build.yaml.j2`, `templates/macros.yaml.j2`) is native
Jinja2; everything else is Go `text/template` + sprig, translated to Jinja2 (`gotmpl`, `goparse`,
`gojinja`). Native files see `Values`, every library function as a global and as a filter (piped
value last: `x | default("3")`), `template(name, data)`/`include(name, data)` to call a Go `define`
(or a native macro of that name), and every macro of the native shared templates by name. Go files
can `template`/`include` a native macro by name too (a Go `define` of the same name wins). Native
shared templates' top-level output follows the Go templates' output at the top of each spec.

**Undefined values:** see `tmplrt` — testing an undefined key is false, using it is a
`SpecError(UNDEFINED_VALUE)` naming the key path, file and line; `eq`/`ne` treat it as Go's nil.

**Cost:** a text without `{{` is returned as is (after the shared prelude). Otherwise the text is
scanned (linear) and its action skeleton looks up a compiled Jinja template: files that differ only
in literal text share one compilation; literals are passed in at render time.

**Limits:** 16 MiB of output, 1,000,000 loop elements, 1000 nested template calls (luet's include
cap); exceeding one is a SpecError, never a MemoryError or a hang.
"""
from __future__ import annotations

import bisect
import copy
import hashlib
import itertools
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import jinja2
from jinja2.environment import TemplateModule
from jinja2.utils import Namespace

from ..errors import Reason, SpecError
from . import tmplenv, tmplrt
from .funcs import FUNCS
from .gojinja import MUTATING, JUnit, generate
from .goparse import parse
from .gotmpl import SPACE, GoSyntaxError, Scan, Text, scan
from .tmplrt import MAX_DEPTH, MAX_OUTPUT, Fault, Limits, fld, index, out, rng

ENGINE_VERSION = "orch-render/1"
NATIVE_SUFFIX = ".j2"
GO_FUNCS = frozenset(FUNCS) | {"and", "or", "not", "include"}
STATS = {"skeletons": 0, "units": 0, "native": 0}  # compilations, for tests and benchmarks
_CACHE_LIMIT = 20_000
_SEQ = itertools.count()
_tls = threading.local()


class _Source:
    """One text, or a concatenation of files, whose offsets map back to (file, line)."""

    def __init__(self, parts: Sequence[tuple[str, str]]) -> None:
        self.parts = parts

    @property
    def text(self) -> str:
        return "".join(t for _, t in self.parts)

    def locate(self, offset: int) -> tuple[str, int | None]:
        if not self.parts:
            return "", None
        self.starts = list(itertools.accumulate((len(t) for _, t in self.parts), initial=0))
        i = min(max(bisect.bisect_right(self.starts, offset) - 1, 0), len(self.parts) - 1)
        path, text = self.parts[i]
        return path, text.count("\n", 0, offset - self.starts[i]) + 1


@dataclass
class _Unit:
    name: str
    template: jinja2.Template
    filename: str
    k_of_line: list[int] | None  # None: native, the Jinja line is the file line


@dataclass
class _Where:
    source: _Source
    offsets: tuple[int, ...] | None


@dataclass
class _Compiled:
    main: _Unit
    defines: dict[str, tuple[_Unit, int]]  # name -> (unit, action index of the define)
    mutates: bool
    const_main: tuple[int, ...] | None  # literal indices of a main text without actions


def _tpl(name: Any, arg: Any = None) -> str:
    run: _Run | None = getattr(_tls, "run", None)
    if run is None:
        raise Fault("template/include used outside a render")
    if not isinstance(name, str):
        raise Fault(f"template name must be a string, got {name!r}")
    return run.call(name, arg)


_RUNTIME: dict[str, Any] = {"_fld": fld, "_out": out, "_rng": rng, "_tpl": _tpl, "_idx": index, "namespace": Namespace}
_NATIVE_GLOBALS = {**tmplenv.NATIVE_GLOBALS, "template": _tpl, "include": _tpl}
tmplenv.trust(fld, out, rng, _tpl, index)


def _compile_go(junit: JUnit) -> _Unit:
    filename = f"<orch-go-{next(_SEQ)}>"
    code = tmplenv.ENV.compile(junit.source, name=junit.name or "main", filename=filename)
    g = dict(_RUNTIME)
    g.update((f"_fn_{n}", FUNCS[n]) for n in junit.funcs)
    g.update(junit.consts)
    tmpl = tmplenv.ENV.template_class.from_code(tmplenv.ENV, code, g)  # a plain dict: cheap per-render copy
    STATS["units"] += 1
    return _Unit(junit.name, tmpl, filename, junit.k_of_line)


def _compile_native(text: str, path: str) -> _Unit:
    filename = f"<orch-j2-{next(_SEQ)}>"
    try:
        code = tmplenv.ENV.compile(text, name=path, filename=filename)
    except jinja2.TemplateSyntaxError as e:
        raise SpecError(f"template syntax error: {e.message}", reason=Reason.TEMPLATE_ERROR, file=path,
                        line=e.lineno, hint="fix the Jinja2 syntax") from None
    tmpl = tmplenv.ENV.template_class.from_code(tmplenv.ENV, code, dict(_NATIVE_GLOBALS))
    STATS["native"] += 1
    return _Unit(path, tmpl, filename, None)


_SKELETONS: dict[tuple[str, ...], _Compiled | GoSyntaxError] = {}
_TEXTS: dict[str, tuple[Scan, _Compiled]] = {}
_NATIVE: dict[tuple[str, str], _Unit] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        try:  # evict the oldest entry; tolerate another thread doing the same
            del cache[next(iter(cache))]
        except (StopIteration, KeyError, RuntimeError):
            pass
    cache[key] = value


def _skeleton(key: tuple[str, ...]) -> _Compiled:
    hit = _SKELETONS.get(key)
    if hit is None:
        try:
            prog = parse(key, GO_FUNCS)
            main = generate(prog.main)
            defs = {name: generate(u) for name, u in prog.defines.items()}
            const = None
            if all(isinstance(st, Text) for st in prog.main.body):
                const = tuple(st.i for st in prog.main.body if isinstance(st, Text))
            hit = _Compiled(_compile_go(main), {n: (_compile_go(j), prog.defines[n].k) for n, j in defs.items()},
                            main.mutates or any(j.mutates for j in defs.values()), const)
            STATS["skeletons"] += 1
        except GoSyntaxError as e:
            hit = e
        _remember(_SKELETONS, key, hit)
    if isinstance(hit, GoSyntaxError):
        raise hit
    return hit


def _prepare(text: str) -> tuple[Scan, _Compiled]:
    hit = _TEXTS.get(text)
    if hit is None:
        sc = scan(text)
        hit = (sc, _skeleton(sc.key))
        _remember(_TEXTS, text, hit)
    return hit


# ------------------------------------------------------------------ execution
_CONVERT = (jinja2.TemplateError, RecursionError, MemoryError, TypeError, ValueError, ArithmeticError, LookupError,
            AttributeError)


def _jinja_line(tb: TracebackType | None, unit: _Unit) -> int | None:
    """Line of `unit` where the error happened, ignoring deeper (nested template) executions."""
    line, first = None, True
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == unit.filename:
            line = unit.template.get_corresponding_lineno(tb.tb_lineno)
        elif code is _exec.__code__:
            if not first and line is not None:
                break
            first = False
        tb = tb.tb_next
    return line


def _locate(tb: TracebackType | None, unit: _Unit, where: _Where) -> tuple[str, int | None, str]:
    jline = _jinja_line(tb, unit)
    path = where.source.parts[0][0] if where.source.parts else ""
    if jline is None:
        return path, None, unit.name
    if unit.k_of_line is None or where.offsets is None:
        return path, jline, unit.name
    k = unit.k_of_line[jline] if 0 <= jline < len(unit.k_of_line) else -1
    if k < 0:
        return path, None, unit.name
    p, line = where.source.locate(where.offsets[k])
    return p, line, unit.name


def _exec(unit: _Unit, env: dict[str, Any], where: _Where, ctx_out: list[Any] | None = None) -> str:
    """Run one compiled unit with size accounting; errors get the unit's file and line attached."""
    tmpl = unit.template
    ctx = tmpl.new_context(env)
    parts: list[str] = []
    size = 0
    try:
        for s in tmpl.root_render_func(ctx):
            size += len(s)
            if size > MAX_OUTPUT:
                raise Fault(f"template output exceeds {MAX_OUTPUT // (1024 * 1024)} MiB")
            parts.append(s)
    except Fault as f:
        f.where.append(_locate(f.__traceback__, unit, where))
        raise
    except _CONVERT as e:
        fault = Fault(_describe(e))
        fault.where.append(_locate(e.__traceback__, unit, where))
        raise fault from None
    if ctx_out is not None:
        ctx_out.append(ctx)
    return "".join(parts)


def _describe(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "template recursion too deep"
    if isinstance(e, MemoryError):
        return "template needs too much memory"
    if isinstance(e, jinja2.exceptions.SecurityError):
        return f"unsafe template operation: {e}"
    if isinstance(e, jinja2.TemplateError):
        return str(e.message or e)
    return f"{type(e).__name__}: {e}"


class _Run:
    """State of one render: local defines, native macro modules, values."""

    def __init__(self, renderer: Renderer, local: dict[str, tuple[_Unit, tuple[str, ...], _Where]],
                 values: Any) -> None:
        self.renderer, self.local, self.values = renderer, local, values
        self.limits = Limits()
        self._modules: list[tuple[_Unit, TemplateModule, str]] | None = None
        self._macros: dict[str, tuple[_Unit, Any]] = {}

    def modules(self) -> list[tuple[_Unit, TemplateModule, str]]:
        if self._modules is None:
            self._modules = []
            for unit, where in self.renderer._native:
                ctxs: list[Any] = []
                body = _exec(unit, {"Values": self.values}, where, ctxs)
                module = TemplateModule(unit.template, ctxs[0], [body])
                self._modules.append((unit, module, body))
                for name, obj in vars(module).items():
                    if not name.startswith("_") and callable(obj):
                        self._macros.setdefault(name, (unit, obj))
        return self._modules

    def macros(self) -> dict[str, Any]:
        self.modules()
        return {name: obj for name, (_, obj) in self._macros.items()}

    def call(self, name: str, arg: Any) -> str:
        lim = self.limits
        if lim.depth >= MAX_DEPTH:
            raise Fault(f"template calls nested deeper than {MAX_DEPTH} (at template {name!r})")
        entry = self.local.get(name) or self.renderer._defines.get(name)
        lim.depth += 1
        try:
            if entry is not None:
                unit, lits, where = entry
                return _exec(unit, {"_d0": arg, "_L": lits}, where)
            if self.renderer._native:
                self.modules()
                if name in self._macros:
                    return self._call_macro(name, arg)
            raise Fault(f"no such template {name!r}", "define it with {{ define }} in a templates/ file")
        finally:
            lim.depth -= 1

    def _call_macro(self, name: str, arg: Any) -> str:
        unit, macro = self._macros[name]
        try:
            return str(macro() if arg is None else macro(arg))
        except Fault as f:
            f.where.append(_locate(f.__traceback__, unit, self.renderer._native_where[unit.filename]))
            raise
        except _CONVERT as e:
            fault = Fault(_describe(e))
            fault.where.append(_locate(e.__traceback__, unit, self.renderer._native_where[unit.filename]))
            raise fault from None


class Renderer:
    """Renders build specs against a fixed set of shared template files (compiled once)."""

    def __init__(self, templates: Sequence[tuple[str, str]]) -> None:
        """templates: (display path, text) of shared template files, in walk order."""
        h = hashlib.sha256(ENGINE_VERSION.encode())
        for path, text in templates:
            raw = text.encode()
            h.update(b"j2" if path.endswith(NATIVE_SUFFIX) else b"go")
            h.update(len(raw).to_bytes(8, "big") + raw)
        self._fingerprint = h.hexdigest()
        go = [(p, t) for p, t in templates if not p.endswith(NATIVE_SUFFIX)]
        self._shared_src = _Source(go)
        try:
            sc, comp = _prepare(self._shared_src.text)
        except GoSyntaxError as e:
            raise _syntax_error(e, self._shared_src) from None
        self._shared_scan, self._shared = sc, comp
        where = _Where(self._shared_src, sc.offsets)
        self._shared_where = where
        self._defines: dict[str, tuple[_Unit, tuple[str, ...], _Where]] = {
            name: (unit, sc.literals, where) for name, (unit, _) in comp.defines.items()}
        self._define_k = {name: k for name, (_, k) in comp.defines.items()}
        lits = sc.literals
        self._lits_rstrip = lits[:-1] + (lits[-1].rstrip(SPACE),)
        self._prelude = self._prelude_rs = None
        if comp.const_main is not None:
            self._prelude = "".join(lits[i] for i in comp.const_main)
            self._prelude_rs = "".join(self._lits_rstrip[i] for i in comp.const_main)
        self._lstrip_head = sc.last_rtrim and lits[-1] == ""
        self._native: list[tuple[_Unit, _Where]] = []
        for path, text in templates:
            if path.endswith(NATIVE_SUFFIX):
                self._native.append((_native_unit(text, path), _Where(_Source([(path, text)]), None)))
        self._native_where = {u.filename: w for u, w in self._native}
        self._mutates = comp.mutates or any(
            m in t for p, t in templates if p.endswith(NATIVE_SUFFIX) for m in MUTATING)

    @property
    def fingerprint(self) -> str:
        """Stable hash of all shared template texts (and dialects, order, engine version)."""
        return self._fingerprint

    def render(self, path: str, text: str, values: Mapping[str, Any]) -> str:
        """Render one build.yaml/finalize.yaml text with data {"Values": values}; raises SpecError."""
        if path.endswith(NATIVE_SUFFIX):
            return self._render_native(path, text, values)
        if "{{" not in text and self._prelude is not None and not self._native:
            return self._prelude + (text.lstrip(SPACE) if self._lstrip_head else text)
        src = _Source([(path, text)])
        try:
            sc, comp = _prepare(text)
        except GoSyntaxError as e:
            raise _syntax_error(e, src) from None
        lits = sc.literals
        if self._lstrip_head:
            lits = (lits[0].lstrip(SPACE),) + lits[1:]
        where = _Where(src, sc.offsets)
        local: dict[str, tuple[_Unit, tuple[str, ...], _Where]] = {}
        for name, (unit, k) in comp.defines.items():
            if name in self._defines:
                other = self._shared_src.locate(self._shared_scan.offsets[self._define_k[name]])
                raise SpecError(f"template {name!r} is already defined in {other[0]}:{other[1]}",
                                reason=Reason.TEMPLATE_ERROR, file=path, line=src.locate(sc.offsets[k])[1],
                                hint="rename one of the defines")
            local[name] = (unit, lits, where)
        if comp.mutates or self._mutates:
            values = copy.deepcopy(values)
        data = {"Values": values}
        rstrip = bool(sc.key) and sc.first_ltrim and lits[0] == ""
        return self._run(path, local, values, lambda run: self._top(run, data, rstrip)
                         + _exec(comp.main, {"_d0": data, "_L": lits}, where))

    def _top(self, run: _Run, data: dict[str, Any], rstrip: bool) -> str:
        """The shared templates' output outside defines (luet emits it atop every spec)."""
        if self._prelude is not None and self._prelude_rs is not None:
            top = self._prelude_rs if rstrip else self._prelude
        else:
            lits = self._lits_rstrip if rstrip else self._shared_scan.literals
            top = _exec(self._shared.main, {"_d0": data, "_L": lits}, self._shared_where)
        if self._native:
            top += "".join(body for _, _, body in run.modules())
        return top

    def _render_native(self, path: str, text: str, values: Mapping[str, Any]) -> str:
        unit = _native_unit(text, path)
        if self._mutates or any(m in text for m in MUTATING):
            values = copy.deepcopy(values)
        where = _Where(_Source([(path, text)]), None)

        def go(run: _Run) -> str:
            tmplenv.name_values(values)
            top = self._top(run, {"Values": values}, False)
            env = {**run.macros(), "Values": values}
            return top + _exec(unit, env, where)

        return self._run(path, {}, values, go)

    def _run(self, path: str, local: dict[str, tuple[_Unit, tuple[str, ...], _Where]], values: Any,
             body: Any) -> str:
        run = _Run(self, local, values)
        old_run = getattr(_tls, "run", None)
        _tls.run = run
        old_limits = tmplrt.set_limits(run.limits)
        old_rec = sys.getrecursionlimit()
        if old_rec < 20_000:
            sys.setrecursionlimit(20_000)
        try:
            result: str = body(run)
        except Fault as f:
            raise _fault_error(f, path) from None
        finally:
            _tls.run = old_run
            tmplrt.set_limits(old_limits)
            if old_rec < 20_000:
                sys.setrecursionlimit(old_rec)
        if len(result) > MAX_OUTPUT:
            raise SpecError(f"rendered output exceeds {MAX_OUTPUT // (1024 * 1024)} MiB",
                            reason=Reason.TEMPLATE_ERROR, file=path)
        return result


def _native_unit(text: str, path: str) -> _Unit:
    unit = _NATIVE.get((path, text))
    if unit is None:
        unit = _compile_native(text, path)
        _remember(_NATIVE, (path, text), unit)
    return unit


def _syntax_error(e: GoSyntaxError, src: _Source) -> SpecError:
    path, line = src.locate(e.offset) if e.offset >= 0 else (src.parts[0][0] if src.parts else "", None)
    if e.k >= 0:
        path, line = src.locate(scan(src.text).offsets[e.k])
    return SpecError(f"template syntax error: {e.message}", reason=Reason.TEMPLATE_ERROR, file=path, line=line,
                     hint="fix the template action")


def _fault_error(f: Fault, path: str) -> SpecError:
    frames = f.where or [(path, None, "")]
    file, line, _ = frames[-1]
    msg = f.message
    if len(frames) > 1:
        ifile, iline, iname = frames[0]
        msg += f" in template {iname!r} ({ifile}:{iline})" if iline else f" in template {iname!r} ({ifile})"
    reason = Reason.UNDEFINED_VALUE if f.undefined else Reason.TEMPLATE_ERROR
    return SpecError(msg, reason=reason, file=file or path, line=line, hint=f.hint)
