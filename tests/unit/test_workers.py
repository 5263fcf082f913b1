"""Rendering in forked children and in this process at once gives exactly what one process
gives, in order, with the same first error; a child that dies or hits a bug is reported at
once; a load that stops early leaves no child behind."""
from __future__ import annotations

import collections
import os
import time
from typing import Any

import pytest

from orchestrator.errors import EnvironmentProblem, Reason, SpecError
from orchestrator.spec import workers

@pytest.fixture(autouse=True)
def _forks(monkeypatch: pytest.MonkeyPatch) -> None:
    if not workers.can_fork():
        pytest.skip("workers are not forked from a process that runs threads")
    monkeypatch.setenv("ORCH_LOAD_JOBS", "2")


def _where(i: int) -> tuple[int, int]:
    return i, os.getpid()


@pytest.mark.parametrize("count", [0, 1, workers.MIN_PARALLEL - 1, workers.MIN_PARALLEL, 97, 1000, 5003])
@pytest.mark.parametrize("jobs", ["2", "3"])
def test_results_come_in_order(monkeypatch: pytest.MonkeyPatch, count: int, jobs: str) -> None:
    monkeypatch.setenv("ORCH_LOAD_JOBS", jobs)
    out = list(workers.render_all(list(range(count)), _where))
    assert [i for i, _ in out] == list(range(count))
    if count < workers.MIN_PARALLEL:
        assert {pid for _, pid in out} <= {os.getpid()}


def _slow(i: int) -> tuple[int, int]:
    time.sleep(0.0005)  # a folder's worth of work: the child never keeps ahead of this process
    return i, os.getpid()


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_every_process_renders_a_share(monkeypatch: pytest.MonkeyPatch, jobs: str) -> None:
    monkeypatch.setenv("ORCH_LOAD_JOBS", jobs)
    out = list(workers.render_all(list(range(600)), _slow))
    assert [i for i, _ in out] == list(range(600))
    shares = collections.Counter(pid for _, pid in out)
    assert os.getpid() in shares and len(shares) == int(jobs)  # this process rendered too
    assert min(shares.values()) > 600 / int(jobs) / 4  # and the load is spread


def test_tasks_cover_every_folder_in_order_and_shrink_towards_the_end() -> None:
    for count in (1, 7, 39, 70, 1000, 8326):
        for n in (2, 3, 8):
            tasks = workers.split(list(range(count)), n)
            assert [i for task in tasks for i in task] == list(range(count))
            sizes = [len(t) for t in tasks]
            assert all(1 <= s <= workers.STEP for s in sizes)
            assert sizes == sorted(sizes, reverse=True)  # guided: never larger later
            assert sizes[-1] == 1


def test_meanwhile_runs_once_while_the_children_render() -> None:
    seen: list[bool] = []
    out = list(workers.render_all(list(range(300)), lambda i: i,
                                  meanwhile=lambda: seen.append(workers._JOB is not None)))
    assert out == list(range(300)) and seen == [True]
    seen.clear()
    assert list(workers.render_all(list(range(5)), lambda i: i, meanwhile=lambda: seen.append(True))) == [0, 1, 2, 3, 4]
    assert seen == [True]  # in one process too


@pytest.mark.parametrize("bad", [0, 5, 150, 299])
def test_the_first_error_in_order_is_the_one_reported(bad: int) -> None:
    """Whichever process renders which folder: the error of the first bad folder, in order,
    never a later one (every tenth folder after `bad` is bad too)."""
    def render(i: int) -> int:
        if i == bad or (i > bad and i % 10 == 0):
            raise SpecError(f"bad folder {i}", reason=Reason.INVALID_YAML, file=f"f{i}/build.yaml", line=3,
                            hint="fix it")
        return i

    results = workers.render_all(list(range(300)), render)
    got: list[int] = []
    with pytest.raises(SpecError) as caught:
        for r in results:
            got.append(r)
    assert got == list(range(bad))
    assert caught.value.message == f"bad folder {bad}"
    assert (caught.value.file, caught.value.line, caught.value.hint) == (f"f{bad}/build.yaml", 3, "fix it")
    assert caught.value.reason == Reason.INVALID_YAML


def test_a_dying_child_is_an_environment_error_not_a_hang() -> None:
    parent = os.getpid()

    def render(i: int) -> int:
        if os.getpid() != parent:
            os._exit(9)  # as the OOM killer's SIGKILL would
        return i

    with pytest.raises(EnvironmentProblem) as caught:
        list(workers.render_all(list(range(400)), render))
    assert "ORCH_LOAD_JOBS=1" in str(caught.value) and "\n" not in str(caught.value)


def test_a_bug_in_a_child_shows_its_traceback() -> None:
    parent = os.getpid()

    def render(i: int) -> int:
        if os.getpid() != parent:
            raise KeyError("in the child")
        return i

    with pytest.raises(RuntimeError) as caught:
        list(workers.render_all(list(range(400)), render))
    assert "KeyError" in str(caught.value) and "Traceback" in str(caught.value)


def test_stopping_early_leaves_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    results: Any = workers.render_all(list(range(5000)), lambda i: i)
    assert [next(results) for _ in range(10)] == list(range(10))
    results.close()  # the caller stops (an error in a folder it collected, Ctrl-C)
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(forked[0], os.WNOHANG)
    assert workers._JOB is None


@pytest.mark.parametrize("task_kb,answer_kb", [(200, 1), (1, 300), (200, 300)])
def test_large_tasks_and_answers_never_block_both_sides(task_kb: int, answer_kb: int) -> None:
    """Pipes hold far less than a folder with thousands of context files pickles to: a task
    too large for a child's pipe is rendered here, and answers are read while a child writes
    them (an alarm turns a deadlock into a failure)."""
    import signal

    def render(item: tuple[int, str]) -> tuple[int, str, int]:
        time.sleep(0.0005)
        return item[0], "y" * (answer_kb * 1024), os.getpid()

    def hang(*_: Any) -> None:
        raise TimeoutError("render_all blocked")

    items = [(i, "x" * (task_kb * 1024)) for i in range(200)]
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(30)
    try:
        out = list(workers.render_all(items, render))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert [i for i, _, _ in out] == list(range(200))
    assert all(len(y) == answer_kb * 1024 for _, y, _ in out)
    assert len({pid for _, _, pid in out}) == 2  # small tasks (the last ones) went to the child


def test_a_child_dead_before_its_first_task_is_an_environment_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Handing a task to a child that is gone fails like reading from one (never a broken
    pipe, which the command line takes for a reader of its output going away)."""
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid == 0:
            os._exit(9)  # dies at once, before any task
        time.sleep(0.2)  # gone, and its end of the pipes closed
        return pid

    monkeypatch.setattr(os, "fork", fork)
    with pytest.raises(EnvironmentProblem):
        list(workers.render_all(list(range(5000)), _slow))
