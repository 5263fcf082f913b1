"""`orch build`: arguments, progress display and summary. The work is `app.build`."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Sequence

from orchestrator.scheduler import NodeResult, Outcome, Reporter


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("build", help="build what changed, in parallel, through buildah")
    common(p)
    p.add_argument("targets", nargs="*", metavar="PKG", help="build these and their dependencies")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="parallel builds (default: cores)")
    p.add_argument("-k", "--keep-going", action="store_true",
                   help="build everything that does not depend on a failure")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.add_argument("--isolation", choices=("chroot", "oci"), default="chroot",
                   help="chroot (default) or oci (hermetic; uses --runtime, default runc)")
    p.add_argument("--runtime", default=None, help="OCI runtime for --isolation oci (default runc)")
    p.add_argument("--system-storage", action="store_true",
                   help="use the system's container storage instead of the private one in the cache dir")
    p.add_argument("--pull", action="store_true", help="resolve registry image tags again")
    p.set_defaults(func=run)


class ConsoleReporter(Reporter):
    """A live status line on a terminal, plain lines otherwise (CI logs)."""

    def __init__(self, stream: Any = sys.stderr, live: bool | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.to_build: set[str] | None = None  # set by the caller once the plan is known

    def expect(self, to_build: set[str]) -> None:
        self.to_build = to_build

    def started(self, node: str) -> None:
        if not self.live and (self.to_build is None or node in self.to_build):
            print(f"building {node}", file=self.stream, flush=True)

    def finished(self, result: NodeResult) -> None:
        planned_build = self.to_build is not None and result.node in self.to_build
        if result.outcome is Outcome.CACHED and not planned_build:
            return  # the plan already said so
        if result.outcome in (Outcome.BUILT, Outcome.FAILED, Outcome.CACHED) or not self.live:
            self._clear()
            extra = ""
            if result.outcome is Outcome.BUILT:
                extra = f" ({result.seconds:.1f}s)"
            elif result.outcome is Outcome.CACHED:  # planned to build, then found after all
                extra = " (its dependencies' outputs are unchanged, or another orch built it)"
            elif result.outcome is Outcome.SKIPPED and result.blocked_by:
                extra = f" (needs {result.blocked_by}, which failed)"
            print(f"{result.outcome.value:>8} {result.node}{extra}", file=self.stream, flush=True)

    def progress(self, done: int, total: int, running: Sequence[str], cached: int) -> None:
        if self.live:
            names = ", ".join(list(running)[:3]) + (" …" if len(running) > 3 else "")
            line = f"[{done}/{total}] {cached} cached, running: {names or '-'}"
            self.stream.write("\r\033[K" + line[:200])
            self.stream.flush()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")


def run(args: argparse.Namespace) -> int:
    from orchestrator import app
    from orchestrator.cli import _warn, cache_dir

    started = time.monotonic()
    reporter = ConsoleReporter()
    report = app.build(
        args.tree, args.values, cache_dir(args), targets=args.targets or None, jobs=max(1, args.jobs),
        keep_going=args.keep_going, isolation=args.isolation, runtime=args.runtime,
        system_storage=args.system_storage, pull=args.pull, reporter=reporter,
    )
    reporter._clear()
    _warn(report.warnings)
    elapsed = time.monotonic() - started
    if args.json:
        write_json(report.to_json(), sys.stdout)
    for failure in report.failures:
        print(f"orch: error: {failure}", file=sys.stderr)
    counts = report.counts()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "nothing to do"
    print(f"orch: {summary} in {elapsed:.1f}s", file=sys.stderr)
    return report.exit_code


def write_json(doc: dict[str, Any], out: Any) -> None:
    """`{"packages": [...]}` with one package a line (C-speed encoding: 10,000 lines in ~50 ms)."""
    out.write('{"packages": [\n')
    out.write(",\n".join(json.dumps(p) for p in doc["packages"]))
    out.write("\n]}\n" if doc["packages"] else "]}\n")
