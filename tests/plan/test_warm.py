"""The warm planner: an unchanged tree is neither rendered nor YAML-parsed again; an edit
re-renders exactly its folder; racy stat data and a damaged state file are never trusted."""
from __future__ import annotations

import glob
import os
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import app, planning, planstate
from orchestrator.spec import yamlload
from plan_helpers import age, pkg_files, write

BUILD = """\
image: alpine
env:
- NAME={{ .Values.name }}
steps:
- echo {{ .Values.name }} {{ .Values.flavour }}
"""
USER = """\
requires:
- {name: a, category: c, version: ">=0"}
steps:
- echo user of a
"""


def make_tree(root: Path) -> tuple[Path, Path]:
    files: dict[str, str] = {"values.yaml": "flavour: green\n",
                             "packages/templates/t.yaml": '{{ define "x" }}- X=1{{ end }}\n'}
    for name in ("a", "b", "d"):
        files.update(pkg_files(f"packages/{name}", name, build=BUILD))
    files.update(pkg_files("packages/u", "u", build=USER))
    files["packages/col/collection.yaml"] = (
        "packages:\n- {name: c1, category: c, version: '1.0'}\n- {name: c2, category: c, version: '1.0'}\n")
    files["packages/col/build.yaml"] = BUILD
    files["packages/b/files/script.sh"] = "#!/bin/sh\necho hello\n"
    files["packages/d/data.txt"] = "0123456789\n"
    write(root, files)
    age(root)  # not racy: the state may trust stat data older than its own write by 2 s
    return root / "packages", root / "values.yaml"


def compute(tree: Path, values: Path, cache: Path) -> app.Planned:
    return app.compute([str(tree)], [str(values)], str(cache))


def keys(planned: app.Planned) -> dict[str, str]:
    return dict(planned.keys)


def doc(planned: app.Planned) -> dict[str, Any]:
    result: dict[str, Any] = planned.plan.to_json()
    return result


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    tree, values = make_tree(tmp_path / "src")
    return tree, values, tmp_path / "cache"


def test_second_plan_renders_and_parses_nothing(setup: tuple[Path, Path, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    assert cold.rendered == 5  # a, b, d, u, col
    parsed: list[str] = []
    real = yamlload.load

    def counting(text: str, path: str) -> Any:
        parsed.append(path)
        return real(text, path)

    monkeypatch.setattr(yamlload, "load", counting)
    warm = compute(tree, values, cache)
    assert warm.rendered == 0
    spec_parses = [p for p in parsed if os.path.abspath(p).startswith(str(tree))]
    assert spec_parses == [], f"warm plan YAML-parsed {spec_parses}"
    assert doc(warm) == doc(cold)
    assert warm.warnings == cold.warnings
    again = compute(tree, values, cache)
    assert again.rendered == 0 and doc(again) == doc(cold)


def test_state_persists_in_cache_dir(setup: tuple[Path, Path, Path]) -> None:
    tree, values, cache = setup
    compute(tree, values, cache)
    states = sorted(Path(p).suffix for p in glob.glob(str(cache / "plan" / "*")))
    assert states == [".dirs", ".explain", ".result"], states
    # another cache dir knows nothing
    assert compute(tree, values, cache.parent / "other").rendered == 5


@pytest.mark.parametrize("rel,changed_ids", [
    ("a/build.yaml", {"c/a@1.0", "c/u@1.0"}),
    ("b/definition.yaml", set()),  # comment only: re-rendered, same key
    ("col/collection.yaml", set()),
])
def test_edit_rerenders_exactly_one_folder(setup: tuple[Path, Path, Path], rel: str,
                                           changed_ids: set[str]) -> None:
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    assert compute(tree, values, cache).rendered == 0
    path = tree / rel
    text = path.read_text()
    path.write_text(text.replace("echo {{", "echo edited {{") if rel.endswith("build.yaml")
                    else text + "# a comment\n")
    edited = compute(tree, values, cache)
    assert edited.rendered == 1
    assert {k for k in keys(cold) if keys(cold)[k] != keys(edited)[k]} == changed_ids


def test_template_or_values_edit_rerenders_everything(setup: tuple[Path, Path, Path]) -> None:
    tree, values, cache = setup
    compute(tree, values, cache)
    (tree / "templates" / "t.yaml").write_text('{{ define "x" }}- X=2{{ end }}\n')
    assert compute(tree, values, cache).rendered == 5
    values.write_text("flavour: blue\n")
    assert compute(tree, values, cache).rendered == 5


def test_new_and_removed_folders(setup: tuple[Path, Path, Path]) -> None:
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    write(tree, pkg_files("e", "e", build=BUILD))
    added = compute(tree, values, cache)
    assert added.rendered == 1
    assert set(keys(added)) == set(keys(cold)) | {"c/e@1.0"}
    import shutil

    shutil.rmtree(tree / "e")
    removed = compute(tree, values, cache)
    assert removed.rendered == 0
    assert keys(removed) == keys(cold)


def _same_size_edit(path: Path, old: str, new: str) -> None:
    """Change content, keep size, inode and mtime: only the racy rule can notice."""
    assert len(old) == len(new)
    st = os.stat(path)
    text = path.read_text()
    assert old in text
    with open(path, "r+", encoding="utf-8") as fh:  # in place: same inode
        fh.write(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    st2 = os.stat(path)
    assert (st2.st_size, st2.st_mtime_ns, st2.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def test_racy_spec_is_reread(tmp_path: Path) -> None:
    tree, values = make_tree(tmp_path / "src")
    cache = tmp_path / "cache"
    build = tree / "a" / "build.yaml"
    now = time.time()
    os.utime(build, (now, now))  # modified "just now": within 2 s of the state write below
    cold = compute(tree, values, cache)
    _same_size_edit(build, "echo {{", "ECHO {{")
    warm = compute(tree, values, cache)
    assert warm.rendered >= 1
    assert keys(warm)["c/a@1.0"] != keys(cold)["c/a@1.0"]
    step = next(i for i in warm.plan.items if i.id == "c/a@1.0").spec["steps"][0]
    assert step.startswith("ECHO")


def test_a_plan_of_only_racy_edits_keeps_the_stored_plan(tmp_path: Path) -> None:
    """An edit planned within the racy window is planned right, but not stored: the next run
    looks at that folder again whatever is stored. Once the edit settles, it is stored."""
    tree, values = make_tree(tmp_path / "src")
    cache = tmp_path / "cache"
    compute(tree, values, cache)
    stored = _state_file(cache, "result").read_bytes()
    build = tree / "a" / "build.yaml"
    build.write_text(BUILD.replace("echo {{", "echo racy {{"))  # mtime: now
    racy = compute(tree, values, cache)
    assert racy.rendered == 1
    fresh = compute(tree, values, tmp_path / "fresh")
    assert keys(racy) == keys(fresh) and doc(racy) == doc(fresh)
    assert _state_file(cache, "result").read_bytes() == stored
    when = time.time() - 1800
    os.utime(build, (when, when))
    settled = compute(tree, values, cache)
    assert settled.rendered == 1 and keys(settled) == keys(fresh)
    assert _state_file(cache, "result").read_bytes() != stored
    assert compute(tree, values, cache).rendered == 0  # and now the fast path


@pytest.mark.parametrize("damage_explain", [False, True])
def test_racy_edit_explains_like_a_fresh_plan(tmp_path: Path, damage_explain: bool) -> None:
    """A plan of only racy edits stores nothing, so it reads the stored explanations only when
    one is asked for; they equal a fresh plan's, even when the stored ones are damaged."""
    tree, values = make_tree(tmp_path / "src")
    cache = tmp_path / "cache"
    compute(tree, values, cache)
    if damage_explain:
        state = _state_file(cache, "explain")
        state.write_bytes(state.read_bytes()[:-10])
    (tree / "a" / "build.yaml").write_text(BUILD.replace("echo {{", "echo racy {{"))  # mtime: now
    racy = compute(tree, values, cache)
    assert racy.rendered == 1
    fresh = compute(tree, values, tmp_path / "fresh")
    assert keys(racy) == keys(fresh)
    for node in fresh.order:  # the edited package, its dependent and the untouched ones
        assert racy.inputs[node] == fresh.inputs[node]
    assert [i.explanation for i in racy.plan.items] == [i.explanation for i in fresh.plan.items]


def test_racy_context_file_is_rehashed(tmp_path: Path) -> None:
    tree, values = make_tree(tmp_path / "src")
    cache = tmp_path / "cache"
    data = tree / "d" / "data.txt"
    now = time.time()
    os.utime(data, (now, now))
    cold = compute(tree, values, cache)
    _same_size_edit(data, "0123", "4567")
    warm = compute(tree, values, cache)
    assert keys(warm)["c/d@1.0"] != keys(cold)["c/d@1.0"]


def test_old_stat_data_is_trusted(tmp_path: Path) -> None:
    """The other side of the racy rule (what makes the two tests above able to fail): stat data
    older than the state's write by more than 2 s is trusted, so the same trick goes unseen."""
    tree, values = make_tree(tmp_path / "src")
    cache = tmp_path / "cache"
    cold = compute(tree, values, cache)
    _same_size_edit(tree / "d" / "data.txt", "0123", "4567")
    _same_size_edit(tree / "a" / "build.yaml", "echo {{", "ECHO {{")
    warm = compute(tree, values, cache)
    assert warm.rendered == 0
    assert keys(warm) == keys(cold)


def _state_file(cache: Path, kind: str) -> Path:
    (state,) = glob.glob(str(cache / "plan" / f"*.{kind}"))
    return Path(state)


@pytest.mark.parametrize("kind", ["dirs", "result", "explain"])
@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "wrong-shape", "flipped-step",
                                    "flipped-digest", "other-version"])
def test_corrupt_state_is_ignored(setup: tuple[Path, Path, Path], damage: str, kind: str) -> None:
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    state = _state_file(cache, kind)
    raw = state.read_bytes()
    header, _, body = raw.partition(b"\n")
    if damage == "garbage":
        state.write_bytes(b"\x00\xffnot a state file at all" * 10)
    elif damage == "empty":
        state.write_bytes(b"")
    elif damage == "truncated":
        state.write_bytes(raw[: len(raw) // 2])
    elif damage == "wrong-shape":  # a well-formed file (right digest) holding the wrong structure
        planstate._write(str(state), [1, 2, 3] if kind == "dirs" else {"signature": 7, "nodes": "x"})
    elif damage == "flipped-step":  # a rendered step altered in place, digest not updated
        assert b"echo a green" in body
        state.write_bytes(header + b"\n" + body.replace(b"echo a green", b"echo a GREEN"))
    elif damage == "flipped-digest":  # one byte of the body's digest in the header
        last = header[-1:]
        state.write_bytes(header[:-1] + (b"0" if last != b"0" else b"1") + b"\n" + body)
    else:  # written by another orch/Python version: same digest rule, other header
        state.write_bytes(header.replace(b"orch-plan-state", b"orch-plan-state-0") + b"\n" + body)
    warm = compute(tree, values, cache)
    assert doc(warm) == doc(cold), f"a damaged state ({kind}: {damage}) changed the plan"
    assert [i.explanation for i in warm.plan.items] == [i.explanation for i in cold.plan.items]
    # and it heals: the next run is warm again
    healed = compute(tree, values, cache)
    assert healed.rendered == 0 and doc(healed) == doc(cold)


def test_result_with_wrong_shape_and_matching_signature(setup: tuple[Path, Path, Path]) -> None:
    """Even a result whose signature matches but whose content is malformed must not crash."""
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    state = _state_file(cache, "result")
    good = planstate._read(str(state))
    planstate._write(str(state), {"signature": good["signature"], "nodes": {}, "order": ["c/zz@1"]})
    assert doc(compute(tree, values, cache)) == doc(cold)


def test_context_file_edit_changes_only_that_package(setup: tuple[Path, Path, Path]) -> None:
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    (tree / "b" / "files" / "script.sh").write_text("#!/bin/sh\necho hello, edited\n")
    edited = compute(tree, values, cache)
    assert edited.rendered == 0  # a context file is hashed, not rendered
    assert {k for k in keys(cold) if keys(cold)[k] != keys(edited)[k]} == {"c/b@1.0"}
    (tree / "b" / "files" / "new.txt").write_text("new\n")
    added = compute(tree, values, cache)
    assert {k for k in keys(edited) if keys(edited)[k] != keys(added)[k]} == {"c/b@1.0"}


def test_state_does_not_grow(setup: tuple[Path, Path, Path]) -> None:
    tree, values, cache = setup
    compute(tree, values, cache)
    size = _state_file(cache, "dirs").stat().st_size
    for i in range(3):
        (tree / "d" / "data.txt").write_text(f"{i}\n" * 3)
        compute(tree, values, cache)
    assert _state_file(cache, "dirs").stat().st_size < size * 1.2


def test_configurations_have_separate_states(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    tree, values, cache = setup
    other = tmp_path / "other.yaml"
    other.write_text("flavour: blue\n")
    green = compute(tree, values, cache)
    blue = compute(tree, other, cache)
    assert keys(green) != keys(blue)
    assert compute(tree, values, cache).rendered == 0
    assert compute(tree, other, cache).rendered == 0


@pytest.mark.parametrize("damage_explain", [False, True])
def test_fast_path_lazy_parts_equal_cold(setup: tuple[Path, Path, Path], damage_explain: bool) -> None:
    """What the build stage reads from a warm plan (packages, contexts, key inputs,
    explanations) equals the cold plan's, even when the stored explanations are damaged."""
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    if damage_explain:
        state = _state_file(cache, "explain")
        state.write_bytes(state.read_bytes()[:-10])
    warm = compute(tree, values, cache)
    assert warm.rendered == 0
    assert warm.keys == cold.keys and warm.order == cold.order and warm.deps == cold.deps
    assert warm.kinds == cold.kinds
    for node in cold.order:
        assert warm.inputs[node] == cold.inputs[node]
    assert [i.explanation for i in warm.plan.items] == [i.explanation for i in cold.plan.items]
    assert sorted(warm.packages) == sorted(cold.packages)
    assert warm.packages["c/a@1.0"] == cold.packages["c/a@1.0"]
    assert warm.contexts["c/b@1.0"].context == cold.contexts["c/b@1.0"].context


@pytest.mark.parametrize("edit", ["step", "new-dependency", "comment", "context"])
def test_incremental_plan_equals_a_fresh_plan(setup: tuple[Path, Path, Path], tmp_path: Path,
                                              edit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit planned from the stored plan (only the changed folder re-rendered, stored edges
    reused when the tree's shape holds) gives exactly what a plan from scratch gives: items,
    keys, edges, warnings and every explanation."""
    tree, values, cache = setup
    compute(tree, values, cache)
    if edit == "step":
        edited = tree / "a" / "build.yaml"
        edited.write_text(BUILD.replace("echo {{", "echo changed {{"))
    elif edit == "new-dependency":  # the shape changes: the graph is rebuilt
        edited = tree / "d" / "build.yaml"
        edited.write_text(USER.replace("echo user of a", "echo d now needs a"))
    elif edit == "comment":
        edited = tree / "u" / "build.yaml"
        edited.write_text("# a comment\n" + USER)
    else:
        edited = tree / "b" / "files" / "script.sh"
        edited.write_text("#!/bin/sh\necho changed\n")
    when = time.time() - 1800  # not racy, and unlike any other file's mtime
    os.utime(edited, (when, when))
    full_paths: list[int] = []
    real = planning._compute

    def counting(*args: Any, **kwargs: Any) -> Any:
        full_paths.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(planning, "_compute", counting)
    incremental = compute(tree, values, cache)
    assert len(full_paths) == (1 if edit == "new-dependency" else 0)  # else: stored edges, no graph
    monkeypatch.undo()
    fresh = compute(tree, values, tmp_path / "fresh-cache")
    assert incremental.rendered == (0 if edit == "context" else 1)
    assert doc(incremental) == doc(fresh)
    assert incremental.keys == fresh.keys and incremental.order == fresh.order
    assert incremental.deps == fresh.deps and incremental.kinds == fresh.kinds
    assert incremental.warnings == fresh.warnings
    assert [i.explanation for i in incremental.plan.items] == [i.explanation for i in fresh.plan.items]
    for node in fresh.order:
        assert incremental.inputs[node] == fresh.inputs[node]
    again = compute(tree, values, cache)  # and the stored result is the fast path's again
    assert again.rendered == 0 and doc(again) == doc(fresh)


def test_non_plain_yaml_loads_the_same_fresh_and_cached(tmp_path: Path) -> None:
    """Dates, integer keys and sets are not JSON data: a freshly rendered folder gives the
    packages a load from the state gives (their JSON round trip), not the raw YAML values."""
    files = pkg_files("packages/a", "a", build="image: alpine\nsteps:\n- echo 2020-01-01\n")
    files["packages/a/definition.yaml"] += "labels: {released: 2020-01-01, 1: one}\n"
    write(tmp_path / "src", {**files, "values.yaml": "x: 1\n"})
    age(tmp_path / "src")
    tree, values = tmp_path / "src" / "packages", tmp_path / "src" / "values.yaml"
    assert yamlload.load_plain("a: 2020-01-01", "x") == ({"a": __import__("datetime").date(2020, 1, 1)}, False)
    assert yamlload.load_plain("a: [1, 2.5, null, yes, b]", "x")[1] is True
    cold = compute(tree, values, tmp_path / "cache")
    assert cold.rendered == 1
    assert cold.packages["c/a@1.0"].definition["labels"] == {"released": "2020-01-01", "1": "one"}
    state = planstate.PlanState(str(tmp_path / "cache"), planstate.config_id([str(tree)], [str(values)]))
    state.result  # noqa: B018 - read it; then make the next plan take the load-cache path
    os.unlink(state.result_path)  # type: ignore[arg-type]
    warm = compute(tree, values, tmp_path / "cache")
    assert warm.rendered == 0
    assert warm.packages["c/a@1.0"] == cold.packages["c/a@1.0"]
    assert doc(warm) == doc(cold)


@pytest.mark.parametrize("when", ["first write", "result write", "cold"])
def test_a_state_that_cannot_be_written_costs_a_warning(setup: tuple[Path, Path, Path], when: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk (or no permission) under the cache dir: the plan is still made and right,
    one warning says the state could not be written, and the last state stays intact."""
    tree, values, cache = setup
    before = compute(tree, values, cache)
    files = {p.name: p.read_bytes() for p in (cache / "plan").iterdir()}
    (tree / "a" / "build.yaml").write_text(BUILD.replace("echo {{", "echo full {{"))
    age(tree)
    real = planstate._Writer.write
    calls: list[int] = []

    def full_disk(self: Any, text: str) -> None:
        calls.append(1)
        if when != "result write" or self.path.endswith(".result"):
            raise OSError(28, "No space left on device")
        real(self, text)

    monkeypatch.setattr(planstate._Writer, "write", full_disk)
    if when == "cold":  # the folder entries stream out while rendering: the first write fails there
        cache = cache.parent / "cold"
        files = {}
    planned = compute(tree, values, cache)
    monkeypatch.undo()
    assert calls
    assert [w for w in planned.warnings if "plan state" in w] == [
        f"cannot write the plan state in {cache / 'plan'}: No space left on device (the next plan starts cold)"]
    fresh = compute(tree, values, cache.parent / "fresh")
    assert keys(planned) == keys(fresh) and keys(planned) != keys(before)
    left = {p.name: p.read_bytes() for p in (cache / "plan").iterdir()}
    if when != "result write":
        assert left == files  # nothing half-written, nothing lost
    else:
        assert sorted(left) == sorted(files)  # no temporary file left behind
    assert keys(compute(tree, values, cache)) == keys(fresh)  # and the next plan is right


def _settled_edit(path: Path, old: str, new: str) -> None:
    """An edit made a while ago, in place: the folder's own mtime stays (the stored walk holds)."""
    path.write_text(path.read_text().replace(old, new))
    when = time.time() - 1800
    os.utime(path, (when, when))


def test_edits_are_stored_as_a_delta_of_the_whole_plan(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """After an edit the whole plan is not rewritten: the changes go to a small delta, which
    adds up over edits, serves the no-change fast path, and is equal to a fresh plan's result;
    a damaged delta only costs re-rendering what it recorded."""
    tree, values, cache = setup
    age(tree.parent, folders=True)  # the stored walk holds: its changes are a delta too
    compute(tree, values, cache)
    whole = {kind: _state_file(cache, kind).read_bytes() for kind in ("result", "explain")}
    _settled_edit(tree / "a" / "build.yaml", "echo {{", "echo first {{")
    first = compute(tree, values, cache)
    assert first.rendered == 1
    assert {kind: _state_file(cache, kind).read_bytes() for kind in ("result", "explain")} == whole
    assert _state_file(cache, "delta").stat().st_size < len(whole["result"])
    _settled_edit(tree / "col" / "build.yaml", "echo {{", "echo second {{")
    assert compute(tree, values, cache).rendered == 1
    _settled_edit(tree / "d" / "data.txt", "0123", "3210")  # a context file: rehashed, not rendered
    third = compute(tree, values, cache)
    assert third.rendered == 0
    assert {kind: _state_file(cache, kind).read_bytes() for kind in ("result", "explain")} == whole
    fresh = compute(tree, values, tmp_path / "fresh")
    fast = compute(tree, values, cache)  # the no-change fast path, from the delta
    assert fast.rendered == 0
    for planned in (third, fast):
        assert doc(planned) == doc(fresh) and planned.keys == fresh.keys
        assert [i.explanation for i in planned.plan.items] == [i.explanation for i in fresh.plan.items]
        for node in fresh.order:
            assert planned.inputs[node] == fresh.inputs[node]
    delta = _state_file(cache, "delta")
    delta.write_bytes(delta.read_bytes()[:-5])
    damaged = compute(tree, values, cache)  # the whole plan alone: the edited folders again
    assert damaged.rendered == 2 and doc(damaged) == doc(fresh)
    assert [i.explanation for i in damaged.plan.items] == [i.explanation for i in fresh.plan.items]
    assert compute(tree, values, cache).rendered == 0


def test_a_large_delta_becomes_a_whole_plan(setup: tuple[Path, Path, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    tree, values, cache = setup
    age(tree.parent, folders=True)
    compute(tree, values, cache)
    _settled_edit(tree / "a" / "build.yaml", "echo {{", "echo first {{")
    compute(tree, values, cache)
    assert _state_file(cache, "delta").exists()
    result = _state_file(cache, "result").read_bytes()
    monkeypatch.setattr(planstate, "DELTA_MIN", 0)  # a delta may now be an eighth of the whole plan
    _settled_edit(tree / "b" / "build.yaml", "echo {{", "echo second {{")
    planned = compute(tree, values, cache)
    assert not glob.glob(str(cache / "plan" / "*.delta"))
    assert _state_file(cache, "result").read_bytes() != result
    fresh = compute(tree, values, tmp_path / "fresh")
    assert doc(planned) == doc(fresh)
    again = compute(tree, values, cache)
    assert again.rendered == 0 and doc(again) == doc(fresh)
    assert [i.explanation for i in again.plan.items] == [i.explanation for i in fresh.plan.items]


def test_a_delta_that_cannot_be_written_costs_a_warning(setup: tuple[Path, Path, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tree, values, cache = setup
    age(tree.parent, folders=True)
    compute(tree, values, cache)
    before = {p.name: p.read_bytes() for p in (cache / "plan").iterdir()}
    _settled_edit(tree / "a" / "build.yaml", "echo {{", "echo full {{")  # stored as a delta (see above)

    def full_disk(self: Any, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(planstate._Writer, "write", full_disk)
    planned = compute(tree, values, cache)
    monkeypatch.undo()
    assert [w for w in planned.warnings if "plan state" in w] == [
        f"cannot write the plan state in {cache / 'plan'}: No space left on device (the next plan starts cold)"]
    assert {p.name: p.read_bytes() for p in (cache / "plan").iterdir()} == before
    fresh = compute(tree, values, tmp_path / "fresh")
    assert doc(planned) == doc(fresh) and doc(compute(tree, values, cache)) == doc(fresh)
