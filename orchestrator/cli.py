"""`orch`: parse the command line, call one `app` function, print. Nothing else lives here.

Exit codes (README): 0 ok, 1 a build failed, 2 bad spec or usage, 3 environment problem,
130 interrupted, 70 an internal error (a bug: the traceback is printed).
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import traceback
from typing import Any

from orchestrator import __version__
from orchestrator.errors import ExitCode, OrchError


def _common(p: argparse.ArgumentParser, *, tree: bool = True) -> None:
    if tree:
        p.add_argument("-t", "--tree", action="append", default=[], metavar="DIR",
                       help="a luet-format tree (repeatable)")
        p.add_argument("--values", action="extend", nargs="+", default=[], metavar="FILE",
                       help="values files; the rightmost wins (repeatable)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="cache directory (default: $ORCH_CACHE_DIR, else the XDG cache dir)")


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` (`plan` or `graph`, the first argument), only
    what parsing that command needs (the other commands' modules cost a plan's start time)."""
    top = argparse.ArgumentParser(prog="orch", description="Incremental builds of luet-format OS trees.")
    top.add_argument("--version", action="version", version=f"orch {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("plan", help="dry run: what is cached, what must build, and why")
    _common(p)
    p.add_argument("targets", nargs="*", metavar="PKG", help="limit to these packages and their deps")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--explain", metavar="PKG", help="show everything that went into one key")

    g = sub.add_parser("graph", help="draw the build DAG (DOT; SVG when Graphviz is installed)")
    _common(g)
    g.add_argument("targets", nargs="*", metavar="PKG")
    g.add_argument("-o", "--output", metavar="FILE", help="write here (.dot or .svg); default stdout DOT")

    if command in COMMANDS:
        return top
    from orchestrator import cachecmd

    cachecmd.register(sub)
    try:
        from orchestrator import buildcmd
    except ImportError:  # pragma: no cover - during bring-up
        pass
    else:
        buildcmd.register(sub, _common)
    return top


def cache_dir(args: argparse.Namespace) -> str:
    from orchestrator.paths import default_cache_dir

    return str(args.cache_dir or default_cache_dir())


# The machine's trouble, not orch's: a full disk or quota, a failing or read-only device.
_MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG})

# What a command that wrote out all of its work leaves behind, kept to the end (see `run`).
_EXIT_AT_ONCE: list[Any] = []
# Whether this process is `orch` itself (`run`), which exits as soon as the command is done,
# rather than a caller of `main` that goes on (tests).
_ONE_SHOT = False


def run() -> None:
    """The `orch` command: `main`, then exit. A plan leaves tens of MB of objects behind;
    freeing them and tearing the interpreter down costs up to a fifth of a warm plan's time and
    does nothing for a command whose work is all written out (its state file committed, its
    children reaped, nothing registered to run at exit). Such commands (`plan`) say so; the
    rest exit the usual way."""
    global _ONE_SHOT
    _ONE_SHOT = True
    code = main()
    if not _EXIT_AT_ONCE or sys.getprofile() is not None or sys.gettrace() is not None:
        raise SystemExit(code)  # a profiler or coverage writes its data at exit
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`orch plan | head`): not an error
        pass
    except OSError as exc:  # a full disk, say: the output is incomplete
        print(f"orch: error: cannot write the output: {exc.strerror}", file=sys.stderr)
        code = int(ExitCode.ENVIRONMENT)
    try:
        sys.stderr.flush()
    finally:
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    _EXIT_AT_ONCE.clear()
    try:
        args_in = sys.argv[1:] if argv is None else argv
        args = parser(args_in[0] if args_in else None).parse_args(args_in)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help 0
        return int(exc.code or 0)
    if sys.stderr.isatty():
        from orchestrator import progress

        progress.install(progress.terminal_line)
    try:
        result: int = args.func(args) if hasattr(args, "func") else COMMANDS[args.command](args)
        return result
    except OrchError as err:
        print(f"orch: error: {err}", file=sys.stderr)
        return int(err.exit_code)
    except KeyboardInterrupt:
        print("orch: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in _MACHINE_ERRNOS:
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"orch: error: {exc.strerror}{where} (free space or fix the device, then run again)",
                  file=sys.stderr)
            return int(ExitCode.ENVIRONMENT)
        traceback.print_exc()  # a bug: show everything
        print("orch: internal error (this is a bug; please report it with the traceback above)",
              file=sys.stderr)
        return 70


def _warn(warnings: list[str]) -> None:
    for line in dict.fromkeys(warnings):
        print(f"orch: warning: {line}", file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    import gc

    # One shot, and almost no cycles among many long-lived objects: the cyclic collector would
    # only walk them again and again (a warm plan's output alone triggers dozens of passes).
    # `orch` itself never turns it back on: every object the plan made is still in the youngest
    # generation, so the first allocation after would walk them all (~0.25 s for 10,000
    # packages) just before the process exits.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan(args)
    finally:
        if collecting and not _ONE_SHOT:
            gc.enable()


def _plan(args: argparse.Namespace) -> int:
    from orchestrator import app

    planned = app.plan(args.tree, args.values, cache_dir(args), targets=args.targets or None)
    _EXIT_AT_ONCE.append(planned)
    _warn(planned.warnings)
    if args.explain:
        doc = app.explain(planned, args.explain)
        print(json.dumps(doc, indent=2) if args.json else app.format_explain(doc))
        return 0
    if args.json:
        planned.plan.write_json(sys.stdout)
        return 0
    rows = [(i.id, i.action, i.key[:12], "; ".join(i.reasons)) for i in planned.plan.items]
    width = max((len(r[0]) for r in rows), default=7)
    print(f"{'PACKAGE':<{width}}  {'ACTION':<6}  {'KEY':<12}  WHY")
    for pid, action, key, why in rows:
        print(f"{pid:<{width}}  {action:<6}  {key:<12}  {why}")
    counts = planned.plan.counts()
    print(f"{len(rows)} packages: {counts['build']} to build, {counts['cached']} cached")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from orchestrator import app

    dot = app.graph_dot(args.tree, args.values, cache_dir(args), targets=args.targets or None)
    out: str | None = args.output
    if not out:
        sys.stdout.write(dot)
        return 0
    if out.endswith(".svg"):
        app.write_svg(dot, out)
    else:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(dot)
    print(f"wrote {os.path.abspath(out)}")
    return 0


COMMANDS: dict[str, Any] = {"plan": cmd_plan, "graph": cmd_graph}
