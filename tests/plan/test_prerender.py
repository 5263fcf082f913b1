"""After an edit, the folders to render are rendered by a child forked (and made ready) while
the plan decoded its stored state; anything wrong with the child means the parent renders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator import app
from orchestrator.errors import SpecError
from orchestrator.spec import load
from orchestrator.spec.prerender import Prerender
from test_warm import make_tree


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _facts(rendered: list[tuple[object, list[object], list[str]]]) -> list[object]:
    return [(pdir.path, [(p.id, p.rendered, p.values_json, p.spec and p.spec.raw_json, p) for p in pkgs], warnings)
            for pdir, pkgs, warnings in rendered]  # type: ignore[attr-defined]


def _started(prep: load.Prepared) -> Prerender:
    child = Prerender()
    child.start()
    child.setup(prep)
    return child


def test_the_child_renders_what_the_parent_would(tmp_path: Path) -> None:
    tree, values = make_tree(tmp_path)
    prep = load.prepare([str(tree)], [str(values)])
    child = _started(prep)
    pid = child._pid
    assert pid
    got = child.render(prep.scan.packages)
    assert got is not None and _facts(got) == _facts(load.render_folders(prep, prep.scan.packages))
    assert _gone(pid)


def test_a_failing_child_leaves_the_folders_and_the_error_to_the_parent(tmp_path: Path) -> None:
    tree, values = make_tree(tmp_path)
    (tree / "a" / "build.yaml").write_text("steps: [unclosed\n")
    prep = load.prepare([str(tree)], [str(values)])
    child = _started(prep)
    pid = child._pid
    assert child.render(prep.scan.packages) is None and _gone(pid)
    with pytest.raises(SpecError, match="build.yaml"):
        load.render_folders(prep, prep.scan.packages)


def test_an_unused_child_is_stopped(tmp_path: Path) -> None:
    tree, values = make_tree(tmp_path)
    child = _started(load.prepare([str(tree)], [str(values)]))
    pid = child._pid
    child.close()
    assert _gone(pid) and child.render([]) is None


def test_an_edit_is_rendered_by_the_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree, values = make_tree(tmp_path / "src")
    cache = tmp_path / "cache"
    app.compute([str(tree)], [str(values)], str(cache))
    build = tree / "b" / "build.yaml"
    build.write_text(build.read_text() + "- echo edited\n")
    parent, original = os.getpid(), load.render_folders

    def only_in_the_child(prep: load.Prepared, pdirs: list[object], renderer: object = None) -> object:
        assert os.getpid() != parent or not pdirs, "the parent rendered"
        return original(prep, pdirs, renderer)  # type: ignore[arg-type]

    monkeypatch.setattr(load, "render_folders", only_in_the_child)
    planned = app.compute([str(tree)], [str(values)], str(cache))
    assert planned.rendered == 1
    monkeypatch.undo()
    fresh = app.compute([str(tree)], [str(values)], str(tmp_path / "cold"))
    assert dict(planned.keys) == dict(fresh.keys) and planned.plan.to_json() == fresh.plan.to_json()


def test_on_a_large_tree_the_restat_helper_renders_the_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With enough files to re-stat in two processes, the helper child stats its share, then
    becomes the pre-render child: no other process is forked for it."""
    from orchestrator.spec import restat

    tree, values = make_tree(tmp_path / "src")
    many = tree / "d" / "many"
    many.mkdir()
    for i in range(restat.SPLIT_AT):
        (many / f"f{i}").write_text("")
    when = os.stat(tree / "d" / "data.txt").st_mtime
    for path in [many, *many.iterdir()]:
        os.utime(path, (when, when))  # as old as the rest: not racy
    cache = tmp_path / "cache"
    app.compute([str(tree)], [str(values)], str(cache))
    build = tree / "b" / "build.yaml"
    build.write_text(build.read_text() + "- echo edited\n")
    parent, forks, real_fork = os.getpid(), [], os.fork
    original = load.render_folders

    def only_in_the_child(prep: load.Prepared, pdirs: list[object], renderer: object = None) -> object:
        assert os.getpid() != parent or not pdirs, "the parent rendered"
        return original(prep, pdirs, renderer)  # type: ignore[arg-type]

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(load, "render_folders", only_in_the_child)
    monkeypatch.setattr(os, "fork", counting_fork)
    planned = app.compute([str(tree)], [str(values)], str(cache))
    monkeypatch.undo()
    assert planned.rendered == 1 and len(forks) == 1  # the re-stat's helper, and nothing else
    fresh = app.compute([str(tree)], [str(values)], str(tmp_path / "cold"))
    assert dict(planned.keys) == dict(fresh.keys) and planned.plan.to_json() == fresh.plan.to_json()
