"""Compiled template units and their execution: the machinery under `render.Renderer`.

A *unit* is one compiled Jinja template: the main text of a Go-dialect file, one Go `define`, or
one native `.j2` file. Go units are cached per action skeleton (`gotmpl.scan().key`), so texts that
differ only in literal text share a compilation; the per-text literals are passed at render time.
`exec_unit` runs a unit with output accounting and turns any failure into a `tmplrt.Fault` that
knows the file and line (Jinja line -> Go action -> offset in the original text).
"""
from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import jinja2
from jinja2.utils import Namespace

from ..errors import Reason, SpecError
from . import tmplenv
from .funcs import FUNCS
from .gojinja import JUnit, generate
from .goparse import parse
from .gotmpl import GoSyntaxError, Scan, Text, scan
from .tmplrt import MAX_OUTPUT, Fault, fld, index, out, rng

GO_FUNCS = frozenset(FUNCS) | {"and", "or", "not", "include"}
STATS = {"skeletons": 0, "units": 0, "native": 0}  # compilations, for tests and benchmarks
_CACHE_LIMIT = 4096  # per cache: skeletons, native
# Distinct build.yaml texts rarely repeat (a collection renders its text once per stanza, in a
# row): a few recent ones suffice, and a big cache only holds every text and its scan in memory.
_TEXT_LIMIT = 64
_SEQ = itertools.count()
tls = threading.local()


class Source:
    """One text, or a concatenation of files, whose offsets map back to (file, line)."""

    def __init__(self, parts: Sequence[tuple[str, str]]) -> None:
        self.parts = parts

    @property
    def text(self) -> str:
        return "".join(t for _, t in self.parts)

    def locate(self, offset: int) -> tuple[str, int | None]:
        """(file, 1-based line) of an offset in the concatenated text."""
        if not self.parts:
            return "", None
        starts = list(itertools.accumulate((len(t) for _, t in self.parts), initial=0))
        i = min(max(bisect.bisect_right(starts, offset) - 1, 0), len(self.parts) - 1)
        path, text = self.parts[i]
        return path, text.count("\n", 0, offset - starts[i]) + 1


@dataclass
class Unit:
    """One compiled Jinja template; `filename` marks its frames in tracebacks."""

    name: str
    template: jinja2.Template
    filename: str
    k_of_line: list[int] | None  # None: native, the Jinja line is the file line


@dataclass
class Where:
    """The text a unit is executed for: maps a Go action index to the original file and line."""

    source: Source
    scan: Scan | None  # None: native, the Jinja line is the file line

    @property
    def offsets(self) -> tuple[int, ...] | None:
        return self.scan.offsets if self.scan is not None else None


@dataclass
class Compiled:
    """One Go skeleton: its main unit and its defines."""

    main: Unit
    defines: dict[str, tuple[Unit, int]]  # name -> (unit, action index of the define)
    mutates: bool
    const_main: tuple[int, ...] | None  # literal indices of a main text without actions


def call_template(name: Any, arg: Any = None) -> str:
    """`template`/`include`: run a define (or native macro) of the render in progress."""
    run: Any = getattr(tls, "run", None)  # render._Run of the render in progress
    if run is None:
        raise Fault("template/include used outside a render")
    if not isinstance(name, str):
        raise Fault(f"template name must be a string, got {name!r}")
    return run.call(name, arg)


_RUNTIME: dict[str, Any] = {"namespace": Namespace}
NATIVE_GLOBALS = {**tmplenv.NATIVE_GLOBALS, "template": call_template, "include": call_template}
tmplenv.trust(call_template)
tmplenv.ENV.filters.update({"_fld": fld, "_out": out, "_rng": rng, "_tpl": call_template, "_idx": index})
tmplenv.ENV.filters.update({f"_fn_{name}": fn for name, fn in FUNCS.items()})


def compile_go(junit: JUnit) -> Unit:
    """Compile generated Jinja source; constants and used functions become template globals."""
    filename = f"<orch-go-{next(_SEQ)}>"
    code = tmplenv.ENV.compile(junit.source, name=junit.name or "main", filename=filename)
    g = dict(_RUNTIME)
    g.update((f"_fn_{n}", FUNCS[n]) for n in junit.funcs)
    g.update(junit.consts)
    tmpl = tmplenv.ENV.template_class.from_code(tmplenv.ENV, code, g)  # a plain dict: cheap per-render copy
    STATS["units"] += 1
    return Unit(junit.name, tmpl, filename, junit.k_of_line)


def compile_native(text: str, path: str) -> Unit:
    """Compile a native `.j2` text; syntax errors are SpecErrors with the file's line."""
    filename = f"<orch-j2-{next(_SEQ)}>"
    try:
        code = tmplenv.ENV.compile(text, name=path, filename=filename)
    except jinja2.TemplateSyntaxError as e:
        raise SpecError(f"template syntax error: {e.message}", reason=Reason.TEMPLATE_ERROR, file=path,
                        line=e.lineno, hint="fix the Jinja2 syntax") from None
    tmpl = tmplenv.ENV.template_class.from_code(tmplenv.ENV, code, dict(NATIVE_GLOBALS))
    STATS["native"] += 1
    return Unit(path, tmpl, filename, None)


_SKELETONS: dict[tuple[str, ...], Compiled | GoSyntaxError] = {}
_TEXTS: dict[str, tuple[Scan, Compiled]] = {}
_NATIVE: dict[tuple[str, str], Unit] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any, limit: int = _CACHE_LIMIT) -> None:
    if len(cache) >= limit:
        try:  # evict the oldest entry; tolerate another thread doing the same
            del cache[next(iter(cache))]
        except (StopIteration, KeyError, RuntimeError):
            pass
    cache[key] = value


def skeleton(key: tuple[str, ...]) -> Compiled:
    """Parse + generate + compile an action skeleton once (syntax errors are cached too)."""
    hit = _SKELETONS.get(key)
    if hit is None:
        try:
            prog = parse(key, GO_FUNCS)
            main = generate(prog.main)
            defs = {name: generate(u) for name, u in prog.defines.items()}
            const = None
            if all(isinstance(st, Text) for st in prog.main.body):
                const = tuple(st.i for st in prog.main.body if isinstance(st, Text))
            hit = Compiled(compile_go(main), {n: (compile_go(j), prog.defines[n].k) for n, j in defs.items()},
                            main.mutates or any(j.mutates for j in defs.values()), const)
            STATS["skeletons"] += 1
        except GoSyntaxError as e:
            hit = e
        _remember(_SKELETONS, key, hit)
    if isinstance(hit, GoSyntaxError):
        raise hit
    return hit


def prepare(text: str) -> tuple[Scan, Compiled]:
    """A Go-dialect text's scan (literals) and compiled skeleton, cached per distinct text."""
    hit = _TEXTS.get(text)
    if hit is None:
        sc = scan(text)
        hit = (sc, skeleton(sc.key))
        _remember(_TEXTS, text, hit, _TEXT_LIMIT)
    return hit


# ------------------------------------------------------------------ execution
CONVERT = (jinja2.TemplateError, RecursionError, MemoryError, TypeError, ValueError, ArithmeticError, LookupError,
            AttributeError)


def _jinja_line(tb: TracebackType | None, unit: Unit) -> int | None:
    """Line of `unit` where the error happened, ignoring deeper (nested template) executions."""
    line, first = None, True
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == unit.filename:
            line = unit.template.get_corresponding_lineno(tb.tb_lineno)
        elif code is exec_unit.__code__:
            if not first and line is not None:
                break
            first = False
        tb = tb.tb_next
    return line


def locate(tb: TracebackType | None, unit: Unit, where: Where) -> tuple[str, int | None, str]:
    """(file, line, unit name) of an error raised while `unit` ran."""
    jline = _jinja_line(tb, unit)
    path = where.source.parts[0][0] if where.source.parts else ""
    if jline is None:
        return path, None, unit.name
    offsets = where.offsets
    if unit.k_of_line is None or offsets is None:
        return path, jline, unit.name
    k = unit.k_of_line[jline] if 0 <= jline < len(unit.k_of_line) else -1
    if k < 0:
        return path, None, unit.name
    p, line = where.source.locate(offsets[k])
    return p, line, unit.name


def exec_unit(unit: Unit, env: dict[str, Any], where: Where, ctx_out: list[Any] | None = None) -> str:
    """Run one compiled unit with size accounting; errors get the unit's file and line attached."""
    tmpl = unit.template
    ctx = tmpl.new_context(env)
    parts: list[str] = []
    size = 0
    try:
        chunks = tmpl.root_render_func(ctx)
        # taken a few hundred pieces at a time (C loops), the size checked after each batch
        while batch := list(itertools.islice(chunks, 256)):
            size += sum(map(len, batch))
            if size > MAX_OUTPUT:
                raise Fault(f"template output exceeds {MAX_OUTPUT // (1024 * 1024)} MiB")
            parts += batch
    except Fault as f:
        f.where.append(locate(f.__traceback__, unit, where))
        raise
    except CONVERT as e:
        fault = Fault(describe(e))
        fault.where.append(locate(e.__traceback__, unit, where))
        raise fault from None
    if ctx_out is not None:
        ctx_out.append(ctx)
    return "".join(parts)


def describe(e: BaseException) -> str:
    """One line for a Python/Jinja exception raised inside a template."""
    if isinstance(e, RecursionError):
        return "template recursion too deep"
    if isinstance(e, MemoryError):
        return "template needs too much memory"
    if isinstance(e, jinja2.exceptions.SecurityError):
        return f"unsafe template operation: {e}"
    if isinstance(e, jinja2.TemplateError):
        return str(e.message or e)
    return f"{type(e).__name__}: {e}"


def native_unit(text: str, path: str) -> Unit:
    """The compiled native template for a text, cached per (path, text)."""
    unit = _NATIVE.get((path, text))
    if unit is None:
        unit = compile_native(text, path)
        _remember(_NATIVE, (path, text), unit)
    return unit
