"""A small, generic parallel DAG executor (doit's runner loop, BuildStream's build queue).

It knows nodes only as strings and their dependencies; what a node *does* is the `work` callable
(a build: subprocess-bound, so a thread pool is the right tool). Everything that decides an
outcome happens in one loop thread, so reporters need no locking and runs are reproducible:
ready nodes start by critical-path length (longest chain of dependents), then by name.
Cache hits go through the same pool: `work` answers CACHED in microseconds, so a hit holds a
slot only for as long as its cache lookup takes.

Outcomes follow doit's split between "the task failed" and "we could not run the task":

* `work` raises an :class:`~orchestrator.errors.OrchError` (a ``BuildError``...) -> FAILED;
* `work` raises anything else -> FAILED with ``internal=True``: a bug, to be shown with a traceback;
* dependents of a FAILED node are SKIPPED (``blocked_by`` names the failed node); without
  `keep_going` nothing new starts after the first failure and the rest are SKIPPED too;
* once `cancel` is set (or `work` raises ``Interrupted``) nothing new starts, running work is
  expected to notice and raise, and every node that did not finish is CANCELLED.
"""
from __future__ import annotations

import contextlib
import enum
import heapq
import queue
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from orchestrator.errors import Interrupted, OrchError

__all__ = ["Outcome", "NodeResult", "Reporter", "Work", "run", "install_signal_handlers"]


class Outcome(enum.Enum):
    BUILT = "built"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def ok(self) -> bool:
        """Dependents may start only after an ok outcome."""
        return self in (Outcome.BUILT, Outcome.CACHED)


@dataclass(frozen=True)
class NodeResult:
    """What happened to one node. `seconds` is wall time measured by the scheduler (0 if never run)."""

    node: str
    outcome: Outcome
    seconds: float = 0.0
    error: BaseException | None = None
    detail: Any = None
    internal: bool = False  # `error` is not an OrchError: a bug, not a failed build
    blocked_by: str | None = None  # SKIPPED: the failed node upstream (None: stopped by fail-fast)


class Reporter:
    """Progress hooks with no-op defaults; all calls come from the thread that called :func:`run`."""

    def started(self, node: str) -> None:
        """`node` was handed to a worker."""

    def finished(self, result: NodeResult) -> None:
        """Called exactly once per node, including those never started (SKIPPED/CANCELLED)."""

    def progress(self, done: int, total: int, running: Sequence[str], cached: int) -> None:
        """Called after every batch of starts and completions."""


Work = Callable[[str], "Outcome | NodeResult"]


def _graph(nodes: Mapping[str, Collection[str]]) -> tuple[list[str], dict[str, list[str]]]:
    """Dependencies-first order (Kahn) and node -> dependents; ValueError on an unknown node or a cycle."""
    indegree: dict[str, int] = {}
    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    for node, deps in nodes.items():
        unique = set(deps)
        for dep in unique:
            if dep not in nodes:
                raise ValueError(f"{node!r} depends on unknown node {dep!r}")
            dependents[dep].append(node)
        indegree[node] = len(unique)
    order = [n for n, d in indegree.items() if d == 0]
    for node in order:  # `order` grows while we walk it
        for dependent in dependents[node]:
            indegree[dependent] -= 1
            if indegree[dependent] == 0:
                order.append(dependent)
    if len(order) != len(nodes):
        raise ValueError(f"dependency cycle: {_find_cycle(nodes, set(nodes) - set(order))}")
    return order, dependents


def _find_cycle(nodes: Mapping[str, Collection[str]], stuck: set[str]) -> str:
    # Every stuck node has a stuck dependency, so walking dependencies must revisit a node.
    path: list[str] = [min(stuck)]
    seen: dict[str, int] = {path[0]: 0}
    while True:
        nxt = min(d for d in nodes[path[-1]] if d in stuck)
        if nxt in seen:
            return " -> ".join(path[seen[nxt]:] + [nxt])
        seen[nxt] = len(path)
        path.append(nxt)


def _execute(work: Work, node: str, cancel: threading.Event) -> NodeResult:
    """Run one node in a worker thread and classify whatever comes back."""
    start = time.perf_counter()
    try:
        value = work(node)
        if isinstance(value, Outcome) and value is not Outcome.SKIPPED:
            return NodeResult(node, value, time.perf_counter() - start)
        if isinstance(value, NodeResult) and value.outcome is not Outcome.SKIPPED:
            return replace(value, node=node, seconds=time.perf_counter() - start)
        raise TypeError(f"work({node!r}) returned {value!r}, not BUILT/CACHED/FAILED/CANCELLED or a NodeResult")
    except OrchError as exc:
        stopped = cancel.is_set() or isinstance(exc, Interrupted)
        outcome = Outcome.CANCELLED if stopped else Outcome.FAILED
        return NodeResult(node, outcome, time.perf_counter() - start, error=exc)
    except BaseException as exc:  # noqa: BLE001 - a bug in `work`: reported, never hidden as "cancelled"
        return NodeResult(node, Outcome.FAILED, time.perf_counter() - start, error=exc, internal=True)


def _worker(work: Work, node: str, cancel: threading.Event, done: queue.SimpleQueue[NodeResult]) -> None:
    done.put(_execute(work, node, cancel))


def run(
    nodes: Mapping[str, Collection[str]],
    work: Work,
    *,
    jobs: int,
    keep_going: bool = False,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
    cost: Mapping[str, float] | None = None,
) -> dict[str, NodeResult]:
    """Run `work(node)` for every node of `nodes` (node -> its dependencies), at most `jobs` at once.

    A node starts only after all its dependencies ended BUILT or CACHED. `work` returns an
    :class:`Outcome` or a :class:`NodeResult` (its `detail` is kept; `seconds` is re-measured) and
    raises on failure. `cost` (e.g. last build durations) weights the critical path; default 1 per node.
    Returns a result for every node, in the iteration order of `nodes`.
    Raises ValueError on an unknown dependency, a cycle or `jobs < 1`; nothing runs then.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    order, dependents = _graph(nodes)
    report = reporter if reporter is not None else Reporter()
    cancel = cancel if cancel is not None else threading.Event()
    waiting = {node: len(set(deps)) for node, deps in nodes.items()}
    # Critical path: a node's own cost plus the longest chain of dependents behind it.
    path: dict[str, float] = {}
    for node in reversed(order):
        tail = max((path[d] for d in dependents[node]), default=0.0)
        path[node] = (cost.get(node, 1.0) if cost else 1.0) + tail
    ready: list[tuple[float, str]] = [(-path[n], n) for n in order if waiting[n] == 0]
    heapq.heapify(ready)

    results: dict[str, NodeResult] = {}
    running: set[str] = set()
    done: queue.SimpleQueue[NodeResult] = queue.SimpleQueue()
    failed = interrupted = False
    cached = 0

    def settle(result: NodeResult) -> None:
        nonlocal failed, interrupted, cached
        running.discard(result.node)
        results[result.node] = result
        report.finished(result)
        if result.outcome.ok:
            cached += result.outcome is Outcome.CACHED
            for dependent in dependents[result.node]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    heapq.heappush(ready, (-path[dependent], dependent))
        elif result.outcome is Outcome.CANCELLED:
            interrupted = True
        else:
            failed = True

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="orch-work")
    try:
        while True:
            interrupted = interrupted or cancel.is_set()
            while ready and len(running) < jobs and not interrupted and (keep_going or not failed):
                node = heapq.heappop(ready)[1]
                running.add(node)
                report.started(node)
                pool.submit(_worker, work, node, cancel, done)
            report.progress(len(results), len(nodes), sorted(running), cached)
            if not running:
                break
            settle(done.get())
            while True:  # drain everything that finished meanwhile before scheduling again
                try:
                    settle(done.get_nowait())
                except queue.Empty:
                    break
    except BaseException:
        cancel.set()  # e.g. KeyboardInterrupt without our handlers: tell running work to stop
        raise
    finally:
        pool.shutdown(wait=True)

    for node in order:  # dependencies first, so `blocked_by` of a dependency is already known
        if node not in results:
            result = _not_run(node, nodes[node], results, interrupted)
            results[node] = result
            report.finished(result)
    report.progress(len(results), len(nodes), [], cached)
    return {n: results[n] for n in nodes}


def _not_run(node: str, deps: Collection[str], results: Mapping[str, NodeResult], interrupted: bool) -> NodeResult:
    for dep in sorted(deps):
        prior = results[dep]
        if prior.outcome is Outcome.FAILED:
            return NodeResult(node, Outcome.SKIPPED, blocked_by=dep)
        if prior.outcome is Outcome.SKIPPED and prior.blocked_by is not None:
            return NodeResult(node, Outcome.SKIPPED, blocked_by=prior.blocked_by)
    return NodeResult(node, Outcome.CANCELLED if interrupted else Outcome.SKIPPED)


@contextlib.contextmanager
def install_signal_handlers(cancel: threading.Event) -> Iterator[threading.Event]:
    """While active, the first SIGINT/SIGTERM sets `cancel`; a second one stops hard.

    The handler only sets the event: killing children from a signal handler is not safe. The
    caller's `work` must wait on its subprocess in a loop that checks `cancel`, terminate the child
    and raise ``Interrupted`` (a Ctrl-C also reaches children in the terminal's process group).
    A second signal raises KeyboardInterrupt in the main thread. Previous handlers are restored
    on exit. Must be entered from the main thread (a `signal` module rule).
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in wanted}
    try:
        for sig in wanted:
            signal.signal(sig, handler)
        yield cancel
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
