"""Render build.yaml/finalize.yaml templates the way luet 0.35 did, on Jinja2, with strict values.

**Render model (luet's):** every shared template file (`templates/**/*.yaml` of every tree, walk
order) is concatenated and followed by the build spec; the result is one template rendered with
data `{"Values": values}`. So `define`s are shared, and literal text outside `define`s in template
files is emitted at the top of every rendered spec (even one without `{{`). `{{-`/`-}}` trim across
that boundary exactly as in the concatenated text. Blocks cannot span files.

**Dialects:** a file whose name ends in `.j2` (`build.yaml.j2`, `templates/macros.yaml.j2`) is native
Jinja2; everything else is Go `text/template` + sprig, translated to Jinja2 (`gotmpl`, `goparse`,
`gojinja`). Native files see `Values`, every library function as a global and as a filter (piped
value last: `x | default("3")`; Jinja's own filters keep their meaning), `template(name, data)`/`include(name, data)` to call a Go `define`
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

import copy
import hashlib
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2.environment import TemplateModule

from ..errors import Reason, SpecError
from . import tmplenv, tmplrt
from .gojinja import MUTATING
from .gotmpl import SPACE, GoSyntaxError, scan_careful
from .tmplexec import (
    CONVERT,
    STATS,
    Source,
    Unit,
    Where,
    describe,
    exec_unit,
    locate,
    native_unit,
    prepare,
    tls,
)
from .tmplrt import MAX_DEPTH, MAX_OUTPUT, RECURSION_LIMIT, Fault, Limits

__all__ = ["ENGINE_VERSION", "NATIVE_SUFFIX", "STATS", "Renderer"]
ENGINE_VERSION = "orch-render/2"
NATIVE_SUFFIX = ".j2"


class _Run:
    """State of one render: local defines, native macro modules, values."""

    def __init__(self, renderer: Renderer, local: dict[str, tuple[Unit, tuple[str, ...], Where]],
                 values: Any) -> None:
        self.renderer, self.local, self.values = renderer, local, values
        self.limits = Limits()
        self._modules: list[tuple[Unit, TemplateModule, str]] | None = None
        self._macros: dict[str, tuple[Unit, Any]] = {}

    def modules(self) -> list[tuple[Unit, TemplateModule, str]]:
        if self._modules is None:
            self._modules = []
            for unit, where in self.renderer._native:
                ctxs: list[Any] = []
                body = exec_unit(unit, {"Values": self.values}, where, ctxs)
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
                return exec_unit(unit, {"_d0": arg, "_L": lits}, where)
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
            f.where.append(locate(f.__traceback__, unit, self.renderer._native_where[unit.filename]))
            raise
        except CONVERT as e:
            fault = Fault(describe(e))
            fault.where.append(locate(e.__traceback__, unit, self.renderer._native_where[unit.filename]))
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
        self._shared_src = Source(go)
        try:
            sc, comp = prepare(self._shared_src.text)
        except GoSyntaxError as e:
            raise _syntax_error(e, self._shared_src) from None
        self._shared_scan, self._shared = sc, comp
        where = Where(self._shared_src, sc)
        self._shared_where = where
        self._defines: dict[str, tuple[Unit, tuple[str, ...], Where]] = {
            name: (unit, sc.literals, where) for name, (unit, _) in comp.defines.items()}
        self._define_k = {name: k for name, (_, k) in comp.defines.items()}
        lits = sc.literals
        self._lits_rstrip = lits[:-1] + (lits[-1].rstrip(SPACE),)
        self._prelude = self._prelude_rs = None
        if comp.const_main is not None:
            self._prelude = "".join(lits[i] for i in comp.const_main)
            self._prelude_rs = "".join(self._lits_rstrip[i] for i in comp.const_main)
        self._lstrip_head = sc.last_rtrim and lits[-1] == ""
        self._native: list[tuple[Unit, Where]] = []
        for path, text in templates:
            if path.endswith(NATIVE_SUFFIX):
                self._native.append((native_unit(text, path), Where(Source([(path, text)]), None)))
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
        src = Source([(path, text)])
        try:
            sc, comp = prepare(text)
        except GoSyntaxError as e:
            raise _syntax_error(e, src) from None
        lits = sc.literals
        if self._lstrip_head:
            lits = (lits[0].lstrip(SPACE),) + lits[1:]
        where = Where(src, sc)
        local: dict[str, tuple[Unit, tuple[str, ...], Where]] = {}
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
                         + exec_unit(comp.main, {"_d0": data, "_L": lits}, where))

    def _top(self, run: _Run, data: dict[str, Any], rstrip: bool) -> str:
        """The shared templates' output outside defines (luet emits it atop every spec)."""
        if self._prelude is not None and self._prelude_rs is not None:
            top = self._prelude_rs if rstrip else self._prelude
        else:
            lits = self._lits_rstrip if rstrip else self._shared_scan.literals
            top = exec_unit(self._shared.main, {"_d0": data, "_L": lits}, self._shared_where)
        if self._native:
            top += "".join(body for _, _, body in run.modules())
        return top

    def _render_native(self, path: str, text: str, values: Mapping[str, Any]) -> str:
        unit = native_unit(text, path)
        if self._mutates or any(m in text for m in MUTATING):
            values = copy.deepcopy(values)
        where = Where(Source([(path, text)]), None)

        def go(run: _Run) -> str:
            tmplenv.name_values(values)
            top = self._top(run, {"Values": values}, False)
            env = {**run.macros(), "Values": values}
            return top + exec_unit(unit, env, where)

        return self._run(path, {}, values, go)

    def _run(self, path: str, local: dict[str, tuple[Unit, tuple[str, ...], Where]], values: Any,
             body: Any) -> str:
        run = _Run(self, local, values)
        old_run = getattr(tls, "run", None)
        tls.run = run
        old_limits = tmplrt.set_limits(run.limits)
        old_rec = sys.getrecursionlimit()
        raise_rec = old_rec < RECURSION_LIMIT and _deep_stack()
        if raise_rec:
            sys.setrecursionlimit(RECURSION_LIMIT)
        try:
            result: str = body(run)
        except Fault as f:
            raise _fault_error(f, path) from None
        finally:
            tls.run = old_run
            tmplrt.set_limits(old_limits)
            if raise_rec:
                sys.setrecursionlimit(old_rec)
        if len(result) > MAX_OUTPUT:
            raise SpecError(f"rendered output exceeds {MAX_OUTPUT // (1024 * 1024)} MiB",
                            reason=Reason.TEMPLATE_ERROR, file=path)
        return result


def _stack_limit_ok() -> bool:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
        return soft == resource.RLIM_INFINITY or soft >= _DEEP_STACK
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return False


_DEEP_STACK = 4 * 1024 * 1024  # C stack that RECURSION_LIMIT frames need, with margin (measured: ~1.5 MiB)
_STACK_OK = _stack_limit_ok()


def _deep_stack() -> bool:
    """May this thread use RECURSION_LIMIT Python frames? Only the main thread, whose stack size
    is known (RLIMIT_STACK); other threads keep Python's limit, so very deep template recursion
    there fails early as a SpecError instead of risking the C stack."""
    return _STACK_OK and threading.current_thread() is threading.main_thread()


def _syntax_error(e: GoSyntaxError, src: Source) -> SpecError:
    path, line = src.locate(e.offset) if e.offset >= 0 else (src.parts[0][0] if src.parts else "", None)
    if e.k >= 0:
        path, line = src.locate(scan_careful(src.text).offsets[e.k])
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
