"""orchestrator.scheduler with a fake `work`: timing, ordering, failure/cancel semantics, overhead."""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import BuildError, Interrupted, Reason
from orchestrator.scheduler import NodeResult, Outcome, Reporter, install_signal_handlers, run

Graph = dict[str, list[str]]


class Fake:
    """A `work` callable: per-node sleep and behaviour; records start/finish times and concurrency."""

    def __init__(self, sleep: Mapping[str, float] | None = None, behave: Mapping[str, object] | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.sleep = dict(sleep or {})
        self.behave = dict(behave or {})
        self.cancel = cancel
        self.lock = threading.Lock()
        self.start: dict[str, float] = {}
        self.finish: dict[str, float] = {}
        self.started: list[str] = []
        self.live = 0
        self.max_live = 0

    def __call__(self, node: str) -> Outcome | NodeResult:
        with self.lock:
            self.start[node] = time.perf_counter()
            self.started.append(node)
            self.live += 1
            self.max_live = max(self.max_live, self.live)
        try:
            return self._do(node)
        finally:
            with self.lock:
                self.live -= 1
                self.finish[node] = time.perf_counter()

    def _do(self, node: str) -> Outcome | NodeResult:
        action = self.behave.get(node, Outcome.BUILT)
        if action == "wait-cancel":  # a long build that notices cancellation, like the buildah backend
            assert self.cancel is not None
            if self.cancel.wait(5):
                raise Interrupted()
            return Outcome.BUILT
        if self.sleep.get(node):
            time.sleep(self.sleep[node])
        if isinstance(action, BaseException):
            raise action
        return action  # type: ignore[return-value]


def _build_error(node: str) -> BuildError:
    return BuildError(f"{node}: step 2 exited 1", reason=Reason.BUILD_FAILED)


def _outcomes(results: Mapping[str, NodeResult]) -> dict[str, str]:
    return {n: r.outcome.value for n, r in results.items()}


def _random_dag(n: int, seed: int, max_deps: int = 4) -> Graph:
    rng = random.Random(seed)
    names = [f"pkg{i:04d}" for i in range(n)]
    return {name: rng.sample(names[:i], min(i, rng.randint(0, max_deps))) for i, name in enumerate(names)}


# diamond a -> (b, c) -> d, plus an independent chain x -> y
DIAMOND: Graph = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "x": [], "y": ["x"]}


# ------------------------------------------------------------------ parallelism and ordering
def test_two_jobs_run_two_independent_nodes_in_parallel() -> None:
    fake = Fake(sleep={"p": 0.2, "q": 0.2})
    t0 = time.perf_counter()
    results = run({"p": [], "q": []}, fake, jobs=2)
    elapsed = time.perf_counter() - t0
    assert _outcomes(results) == {"p": "built", "q": "built"}
    assert fake.max_live == 2
    assert elapsed < 0.35, elapsed
    assert all(0.19 < r.seconds < 0.35 for r in results.values())


def test_one_job_runs_serially() -> None:
    fake = Fake(sleep={"p": 0.1, "q": 0.1})
    t0 = time.perf_counter()
    run({"p": [], "q": []}, fake, jobs=1)
    assert time.perf_counter() - t0 >= 0.2 and fake.max_live == 1


def test_node_never_starts_before_its_dependencies_finish() -> None:
    graph = _random_dag(60, seed=7)
    rng = random.Random(1)
    fake = Fake(sleep={n: rng.choice([0, 0.001, 0.005]) for n in graph})
    results = run(graph, fake, jobs=6)
    assert all(r.outcome is Outcome.BUILT for r in results.values())
    for node, deps in graph.items():
        for dep in deps:
            assert fake.finish[dep] <= fake.start[node], (dep, node)
    assert fake.max_live <= 6


def test_jobs_one_start_order_is_critical_path_then_name() -> None:
    fake = Fake()
    run(DIAMOND, fake, jobs=1)
    # paths: a=3, b=c=x=2, d=y=1
    assert fake.started == ["a", "b", "c", "x", "d", "y"]


def test_cost_weights_the_critical_path() -> None:
    fake = Fake()
    run(DIAMOND, fake, jobs=1, cost={"y": 10.0})
    assert fake.started[:2] == ["x", "y"]


def test_start_order_is_reproducible() -> None:
    graph = _random_dag(300, seed=3)
    orders = []
    for _ in range(3):
        fake = Fake()
        run(graph, fake, jobs=1)
        orders.append(fake.started)
    assert orders[0] == orders[1] == orders[2]


def test_results_cover_every_node_in_input_order_and_keep_detail() -> None:
    fake = Fake(behave={"b": NodeResult("b", Outcome.CACHED, detail={"key": "k1"}), "x": Outcome.CACHED})
    results = run(DIAMOND, fake, jobs=3)
    assert list(results) == list(DIAMOND)
    assert results["b"].outcome is Outcome.CACHED and results["b"].detail == {"key": "k1"}
    assert _outcomes(results)["x"] == "cached"


# ------------------------------------------------------------------ failures
def test_fail_fast_on_diamond() -> None:
    fake = Fake(behave={"b": _build_error("b")})
    results = run(DIAMOND, fake, jobs=1)
    assert _outcomes(results) == {"a": "built", "b": "failed", "c": "skipped", "d": "skipped",
                                  "x": "skipped", "y": "skipped"}
    assert results["d"].blocked_by == "b" and results["c"].blocked_by is None
    assert fake.started == ["a", "b"]


def test_fail_fast_lets_running_work_finish() -> None:
    fake = Fake(sleep={"x": 0.2, "a": 0.02}, behave={"a": _build_error("a")})
    results = run(DIAMOND, fake, jobs=4)
    assert _outcomes(results) == {"a": "failed", "b": "skipped", "c": "skipped", "d": "skipped",
                                  "x": "built", "y": "skipped"}
    assert results["b"].blocked_by == results["d"].blocked_by == "a"
    assert results["y"].blocked_by is None


def test_keep_going_on_diamond() -> None:
    fake = Fake(behave={"b": _build_error("b")})
    results = run(DIAMOND, fake, jobs=2, keep_going=True)
    assert _outcomes(results) == {"a": "built", "b": "failed", "c": "built", "d": "skipped",
                                  "x": "built", "y": "built"}
    assert results["d"].blocked_by == "b"


def test_skipped_propagates_root_failure_transitively() -> None:
    graph: Graph = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"]}
    results = run(graph, Fake(behave={"a": _build_error("a")}), jobs=2, keep_going=True)
    assert [results[n].blocked_by for n in "bcd"] == ["a", "a", "a"]


def test_orch_error_is_a_failure_other_exceptions_are_internal() -> None:
    err = _build_error("b")
    bug = KeyError("oops")
    fake = Fake(behave={"b": err, "x": bug, "c": None})
    results = run(DIAMOND, fake, jobs=2, keep_going=True)
    assert results["b"].outcome is Outcome.FAILED and results["b"].error is err and not results["b"].internal
    assert results["x"].outcome is Outcome.FAILED and results["x"].error is bug and results["x"].internal
    assert results["c"].internal and isinstance(results["c"].error, TypeError)  # work returned None
    assert results["d"].outcome is results["y"].outcome is Outcome.SKIPPED
    assert results["y"].blocked_by == "x"


def test_internal_error_also_fails_fast() -> None:
    results = run(DIAMOND, Fake(behave={"a": RuntimeError("bug")}), jobs=1)
    assert results["a"].internal
    assert {r.outcome for n, r in results.items() if n != "a"} == {Outcome.SKIPPED}


# ------------------------------------------------------------------ cancellation
def test_cancel_stops_new_starts_and_marks_cancelled() -> None:
    cancel = threading.Event()
    graph: Graph = {"a": [], "b": [], "c": ["a"], "d": [], "e": ["d"], "quick": []}
    # paths: a=2, d=2, b=1, quick=1: with 3 jobs a, d and b start; quick finishes later on its slot
    fake = Fake(behave={"a": "wait-cancel", "d": "wait-cancel"}, sleep={"b": 0.15}, cancel=cancel)
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    results = run(graph, fake, jobs=3, cancel=cancel)
    timer.join()
    assert sorted(fake.started) == ["a", "b", "d"]
    assert _outcomes(results) == {"a": "cancelled", "b": "built", "c": "cancelled", "d": "cancelled",
                                  "e": "cancelled", "quick": "cancelled"}
    assert isinstance(results["a"].error, Interrupted) and results["c"].error is None


def test_cancel_before_run_starts_nothing() -> None:
    cancel = threading.Event()
    cancel.set()
    fake = Fake()
    results = run(DIAMOND, fake, jobs=4, cancel=cancel)
    assert fake.started == [] and {r.outcome for r in results.values()} == {Outcome.CANCELLED}


def test_errors_while_cancelled() -> None:
    cancel = threading.Event()

    def work(node: str) -> Outcome:
        cancel.set()
        if node == "bug":
            raise ValueError("bug")
        raise _build_error(node)  # e.g. buildah killed by the terminal's SIGINT

    results = run({"b": [], "bug": []}, work, jobs=2, cancel=cancel)
    assert results["b"].outcome is Outcome.CANCELLED
    assert results["bug"].outcome is Outcome.FAILED and results["bug"].internal  # bugs are never hidden


def test_interrupted_from_work_cancels_the_rest() -> None:
    results = run(DIAMOND, Fake(behave={"a": Interrupted()}), jobs=1, keep_going=True)
    assert {r.outcome for r in results.values()} == {Outcome.CANCELLED}


def test_signal_handlers_set_event_then_restore() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    cancel = threading.Event()
    with install_signal_handlers(cancel) as event:
        assert event is cancel
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert cancel.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# ------------------------------------------------------------------ graph validation
@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}, "a -> b -> c -> a"),
        ({"a": ["a"]}, "a -> a"),
        ({"a": [], "b": ["a", "c"], "c": ["d"], "d": ["c"]}, "c -> d -> c"),
    ],
)
def test_cycle_raises(graph: Graph, message: str) -> None:
    fake = Fake()
    with pytest.raises(ValueError, match="cycle") as exc:
        run(graph, fake, jobs=2)
    assert message in str(exc.value) and fake.started == []


def test_unknown_dependency_and_bad_jobs_raise() -> None:
    with pytest.raises(ValueError, match="unknown"):
        run({"a": ["zz"]}, Fake(), jobs=1)
    with pytest.raises(ValueError, match="jobs"):
        run({"a": []}, Fake(), jobs=0)


def test_empty_graph() -> None:
    assert run({}, Fake(), jobs=2) == {}


# ------------------------------------------------------------------ reporter
class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.last: tuple[int, int, list[str], int] = (0, 0, [], 0)
        self.threads: set[int] = set()

    def started(self, node: str) -> None:
        self.events.append(("start", node))
        self.threads.add(threading.get_ident())

    def finished(self, result: NodeResult) -> None:
        self.events.append((result.outcome.value, result.node))
        self.threads.add(threading.get_ident())

    def progress(self, done: int, total: int, running: Sequence[str], cached: int) -> None:
        self.last = (done, total, list(running), cached)
        self.threads.add(threading.get_ident())


def test_reporter_sees_every_node_once_from_the_calling_thread() -> None:
    rec = Recorder()
    run(DIAMOND, Fake(behave={"c": _build_error("c"), "x": Outcome.CACHED}), jobs=2, keep_going=True, reporter=rec)
    finished = [n for kind, n in rec.events if kind != "start"]
    assert sorted(finished) == sorted(DIAMOND)
    assert ("skipped", "d") in rec.events and ("failed", "c") in rec.events
    assert rec.last == (6, 6, [], 1)
    assert rec.threads == {threading.get_ident()}


# ------------------------------------------------------------------ properties and scale
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10_000), st.integers(1, 4), st.sets(st.integers(0, 39), max_size=5))
def test_keep_going_outcomes_are_exactly_reachability(n: int, seed: int, jobs: int, fail: set[int]) -> None:
    graph = _random_dag(n, seed)
    names = list(graph)
    failing = {names[i] for i in fail if i < n}
    results = run(graph, Fake(behave={f: _build_error(f) for f in failing}), jobs=jobs, keep_going=True)
    broken: set[str] = set()
    for node in names:  # names are already in dependency order
        if node in failing or any(d in broken for d in graph[node]):
            broken.add(node)
    for node in names:
        blocked = any(d in broken for d in graph[node])
        expected = "skipped" if blocked else "failed" if node in failing else "built"
        assert results[node].outcome.value == expected


def test_2000_node_dag_ordering_and_overhead() -> None:
    graph = _random_dag(2000, seed=11, max_deps=6)
    lock = threading.Lock()
    seq: dict[str, int] = {}

    def work(node: str) -> Outcome:
        with lock:
            seq[node] = len(seq)
        return Outcome.CACHED if hash(node) % 3 == 0 else Outcome.BUILT

    best = float("inf")
    for _ in range(3):
        seq.clear()
        t0 = time.perf_counter()
        results = run(graph, work, jobs=8)
        best = min(best, time.perf_counter() - t0)
        assert all(r.outcome.ok for r in results.values())
        assert all(seq[d] < seq[n] for n, deps in graph.items() for d in deps)
    per_node_ms = best / len(graph) * 1000
    print(f"\nscheduler overhead: {per_node_ms * 1000:.1f} us/node ({best * 1000:.0f} ms for {len(graph)} nodes)")
    assert per_node_ms < 1.0
