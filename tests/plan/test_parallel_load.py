"""Loading in worker processes (a cold plan of a large tree) gives exactly what loading in one
process gives: the same plan, keys and stored state, and the same first error."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plan_helpers import REPO, age, orch

sys.path.insert(0, str(REPO / "benchmarks"))
import gen_tree  # noqa: E402

PACKAGES = 400  # above orchestrator.spec.workers.MIN_PARALLEL folders


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wide")
    gen_tree.generate(str(root), PACKAGES)
    age(root)
    return root


def plan(root: Path, cache: Path, jobs: int) -> tuple[int, str, str]:
    run = orch("plan", "-t", root / "packages", "--values", root / "values.yaml", "--json",
               "--cache-dir", cache, env={"ORCH_LOAD_JOBS": str(jobs)})
    return run.code, run.stdout, run.stderr


def test_workers_plan_exactly_as_one_process(tree: Path, tmp_path: Path) -> None:
    one = plan(tree, tmp_path / "one", 1)
    two = plan(tree, tmp_path / "two", 2)
    assert one[0] == 0, one[2]
    assert two == one
    assert one[1].count('"id":') == PACKAGES
    # and the state the workers' run stored serves a warm plan with the same result
    assert plan(tree, tmp_path / "two", 2) == one
    states = sorted(p.name for p in (tmp_path / "two" / "plan").iterdir())
    for name in states:
        body_one = (tmp_path / "one" / "plan" / name).read_bytes().partition(b"\n")[2]
        body_two = (tmp_path / "two" / "plan" / name).read_bytes().partition(b"\n")[2]
        if name.endswith(".dirs"):
            assert body_one == body_two


def _break(tree: Path, index: int, text: str, name: str = "build.yaml") -> Path:
    folders = sorted(p.parent for p in (tree / "packages").glob("*/*/build.yaml"))
    target = folders[index] / name
    target.write_text(text)
    return target


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_broken_folder_fails_the_same_way(tree: Path, tmp_path: Path, jobs: int) -> None:
    import shutil

    copy = tmp_path / "t"
    shutil.copytree(tree, copy)
    bad = _break(copy, 200, "steps: [unclosed\n")
    _break(copy, 260, "steps: {{ .Values.nothing_here }}\n")  # a later error is never reported first
    code, out, err = plan(copy, tmp_path / "c", jobs)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "invalid YAML" in lines[0]
    assert str(bad.relative_to(copy / "packages")) in lines[0]
    assert "Traceback" not in err


def test_undefined_value_in_a_worker_names_key_and_file(tree: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "t"
    shutil.copytree(tree, copy)
    bad = _break(copy, 220, "image: busybox\nsteps:\n- echo {{ .Values.nothing_here }}\n")
    code, _, err = plan(copy, tmp_path / "c", 2)
    assert code == 2
    assert "nothing_here" in err and str(bad.relative_to(copy / "packages")) in err
    assert len(err.strip().splitlines()) == 1


def test_a_dead_worker_is_an_error_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's OOM killer takes a worker: the load fails at once with a one-line
    environment error (exit 3), instead of waiting forever for the lost folders."""
    import os
    import threading

    from orchestrator.errors import EnvironmentProblem, ExitCode
    from orchestrator.spec import workers

    if threading.active_count() > 1:
        pytest.skip("workers are not forked from a process that runs threads")
    monkeypatch.setenv("ORCH_LOAD_JOBS", "2")
    parent = os.getpid()

    def render(i: int) -> int:
        if i == 50 and os.getpid() != parent:
            os._exit(9)  # as SIGKILL would
        return i * i

    with pytest.raises(EnvironmentProblem) as caught:
        list(workers.render_all(list(range(workers.MIN_PARALLEL * 4)), render))
    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    assert "ORCH_LOAD_JOBS=1" in str(caught.value) and "\n" not in str(caught.value)
    # and the same work without the fault, in workers, gives the serial answer in order
    assert list(workers.render_all(list(range(300)), lambda i: i * i)) == [i * i for i in range(300)]


@pytest.mark.parametrize("limit,during", [(10_000, True), (10, False)])
def test_the_callers_work_runs_during_a_small_render(tree: Path, monkeypatch: pytest.MonkeyPatch,
                                                     limit: int, during: bool) -> None:
    """`load(meanwhile=...)`: done once, while the workers render a small load (networkx's
    import, for a plan), not during a large one (left to the caller)."""
    from orchestrator.spec import load, workers

    monkeypatch.setenv("ORCH_LOAD_JOBS", "2")
    monkeypatch.setattr(load, "MEANWHILE_MAX", limit)
    seen: list[bool] = []
    loaded = load.load([str(tree / "packages")], [str(tree / "values.yaml")],
                       meanwhile=lambda: seen.append(workers._JOB is not None))
    assert len(loaded.packages) == PACKAGES
    assert seen == ([True] if during else [])
