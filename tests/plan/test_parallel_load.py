"""Loading in worker processes (a cold plan of a large tree) gives exactly what loading in one
process gives: the same plan, keys and stored state, and the same first error."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


def test_the_callers_work_runs_during_the_render(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`load(meanwhile=...)`: done once, while the workers render (networkx's import, for a
    plan); not at all when nothing is rendered (the caller does it)."""
    from orchestrator.planstate import PlanState
    from orchestrator.spec import load, workers

    monkeypatch.setenv("ORCH_LOAD_JOBS", "2")
    seen: list[bool] = []
    args = ([str(tree / "packages")], [str(tree / "values.yaml")])
    state = PlanState(str(tree.parent / "meanwhile-cache"), "c")
    loaded = load.load(*args, cache=state, meanwhile=lambda: seen.append(workers._JOB is not None))
    assert len(loaded.packages) == PACKAGES
    assert seen == [True]
    state.save_dirs()
    again = load.load(*args, cache=PlanState(str(tree.parent / "meanwhile-cache"), "c"),
                      meanwhile=lambda: seen.append(False))
    assert again.rendered == 0 and seen == [True]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_each_folder_is_handed_to_the_caller_once_in_order(tree: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, jobs: str) -> None:
    """`load(each=...)`: every folder, rendered or from the cache, with its packages, in scan
    order, and the digests of a rendered folder's context files already there."""
    from orchestrator.planstate import PlanState
    from orchestrator.spec import load

    monkeypatch.setenv("ORCH_LOAD_JOBS", jobs)
    args = ([str(tree / "packages")], [str(tree / "values.yaml")])
    for run in ("cold", "cached"):
        seen: list[tuple[str, list[str]]] = []
        missing: list[str] = []

        def each(pdir: Any, packages: list[Any], digests: dict[str, str]) -> None:
            seen.append((pdir.path, [p.id for p in packages]))
            missing.extend(p for rel in pdir.context if (p := f"{pdir.path}/{rel}") not in digests)

        state = PlanState(str(tmp_path / "cache"), "c")
        loaded = load.load(*args, cache=state, each=each)
        state.save_dirs()
        assert seen == [(pdir.path, ids) for pdir, ids, _ in loaded.folders], run
        assert [p.path for p in loaded.scan.packages] == [path for path, _ in seen]
        assert (loaded.rendered, missing == []) == ((len(seen), True) if run == "cold" else (0, False))
