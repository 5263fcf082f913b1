"""`orch build`: plan, then run the scheduler over the plan with real buildah builds."""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from orchestrator.scheduler import Reporter
from orchestrator.planning import compute


@dataclass
class BuildReport:
    results: dict[str, Any]  # node -> scheduler.NodeResult, in build order
    keys: dict[str, str]
    logs: dict[str, str]  # node -> its build log (built or failed now, or built before: cached)
    artifacts: dict[str, str]
    warnings: list[str]
    failures: list[str]
    cancelled: bool = False

    def counts(self) -> dict[str, int]:
        out = {"built": 0, "cached": 0, "failed": 0, "skipped": 0, "cancelled": 0}
        for result in self.results.values():
            out[result.outcome.value] += 1
        return out

    @property
    def exit_code(self) -> int:
        if self.cancelled:
            return 130
        return 1 if self.failures else 0

    def to_json(self) -> dict[str, Any]:
        """`orch build --json`: one entry per package, in build order (cancelled counts as skipped)."""
        return {"packages": [
            {"id": node, "key": self.keys[node],
             "outcome": "skipped" if r.outcome.value == "cancelled" else r.outcome.value,
             "artifact": self.artifacts.get(node), "log": self.logs.get(node),
             "seconds": round(r.seconds, 3)}
            for node, r in self.results.items()]}


class _Offset:
    """A reporter seen by the scheduler, for a run whose first `done` packages were settled
    before it started (cached upfront): progress counts include them."""

    def __init__(self, inner: "Reporter", done: int) -> None:
        self.inner = inner
        self.done = done

    def started(self, node: str) -> None:
        self.inner.started(node)

    def finished(self, result: Any) -> None:
        self.inner.finished(result)

    def progress(self, done: int, total: int, running: Any, cached: int) -> None:
        self.inner.progress(done + self.done, total + self.done, running, cached + self.done)


def _logged_packages(logs_dir: str) -> set[str]:
    """Names of the package folders under the logs directory (empty when there is none)."""
    try:
        return set(os.listdir(logs_dir))
    except OSError:
        return set()


def build(trees: list[str], values: list[str], cache_dir: str, *, targets: list[str] | None = None,
          jobs: int = 1, keep_going: bool = False, isolation: str = "chroot",
          runtime: str | None = None, system_storage: bool = False, pull: bool = False,
          reporter: Any = None) -> BuildReport:
    """`orch build`: plan, then run the scheduler over the plan with real buildah builds.

    Packages the plan found in the store are settled upfront; only the rest go through the
    scheduler (a fully cached build starts no worker and no buildah process)."""
    import threading
    import traceback

    from orchestrator import images, scheduler
    from orchestrator.backend.adapter import BuildahBackend
    from orchestrator.execute import Executor, safe_name
    from orchestrator.storeview import StoreAdapter

    os.makedirs(cache_dir, exist_ok=True)
    reporter = reporter if reporter is not None else scheduler.Reporter()
    store = StoreAdapter.open(cache_dir, create=True)
    cancel = threading.Event()
    try:
        backend = BuildahBackend(cache_dir, isolation=isolation, runtime=runtime,
                                 system_storage=system_storage)
        try:
            resolve = images.resolver(store.image_digests(), pull=backend.resolve_image, refresh=pull,
                                      strict=True)
            planned = compute(trees, values, cache_dir, targets=targets, store=store, resolved_image=resolve)
            gc.freeze()  # the plan lives as long as the run: no collector pass over it again
            work_root = os.path.join(cache_dir, "work")
            os.makedirs(work_root, exist_ok=True)
            executor = Executor(planned, store, backend, work_root, os.path.join(cache_dir, "logs"),
                                cancel)
            if hasattr(reporter, "expect"):
                reporter.expect({i.id for i in planned.plan.items if i.action == "build"})
            with scheduler.install_signal_handlers(cancel), store.pin(list(planned.keys.values())):
                settled = executor.cached_upfront()
                for result in settled.values():
                    reporter.finished(result)
                rest = {n: [d for d in planned.deps[n] if d not in settled]
                        for n in planned.order if n not in settled}
                ran = scheduler.run(rest, executor.work, jobs=jobs, keep_going=keep_going,
                                    reporter=cast("Reporter", _Offset(reporter, len(settled))),
                                    cancel=cancel) if rest else {}
        finally:
            backend.close()
    finally:
        store.close()
    results = {n: settled[n] if n in settled else ran[n] for n in planned.order}
    failures = []
    for node, result in results.items():
        if result.outcome.value != "failed":
            continue
        log = executor.logs.get(node)
        text = str(result.error)
        if result.internal:  # a bug in orch, not a failed build: show where
            text = "internal error: " + "".join(traceback.format_exception(result.error)).rstrip()
        where = f" (log: {log})" if log and log not in text else ""
        failures.append(f"{node} failed: {text}{where}")
    logs = dict(executor.logs)
    logged = _logged_packages(os.path.join(cache_dir, "logs"))  # one listing, not a stat a package
    for node, result in results.items():
        if node not in logs and result.outcome.value == "cached" and safe_name(node) in logged:
            path = executor.log_file(node)
            if os.path.exists(path):
                logs[node] = path
    artifacts = {n: r.artifact for n, r in executor.records.items()}
    return BuildReport(results, planned.keys, logs, artifacts, planned.warnings, failures,
                       cancelled=cancel.is_set())
