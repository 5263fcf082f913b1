"""The stored walk: when no folder changed, a plan re-stats the known files instead of walking
the trees, and an edit looks at its own package folder only; any added, removed or renamed
file changes a folder's mtime, and the walk runs again."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.spec import discover
from test_warm import compute, doc, keys, make_tree


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    tree, values = make_tree(tmp_path / "src")
    when = time.time() - 3600  # folders too: a folder modified just now is not trusted (racy)
    for dirpath, _, _ in os.walk(tree):
        os.utime(dirpath, (when, when))
    return tree, values, tmp_path / "cache"


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What was walked: whole trees (`discover.scan`), or one package folder (`scan_folder`)."""
    started: list[str] = []
    scan, scan_folder = discover.scan, discover.scan_folder

    def counting_scan(trees: list[str], *args: Any, **kwargs: Any) -> Any:
        started.extend(trees)
        return scan(trees, *args, **kwargs)

    def counting_folder(root: str, folder: str) -> Any:
        started.append(folder)
        return scan_folder(root, folder)

    monkeypatch.setattr(discover, "scan", counting_scan)
    monkeypatch.setattr(discover, "scan_folder", counting_folder)
    return started


def settle(path: Path) -> None:
    when = time.time() - 1800  # not racy, and unlike any other file's mtime
    os.utime(path, (when, when))


def test_unchanged_tree_is_not_walked(setup: tuple[Path, Path, Path], walks: list[str]) -> None:
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    assert walks == [str(tree)]
    walks.clear()
    warm = compute(tree, values, cache)
    assert walks == [] and doc(warm) == doc(cold)


def test_in_place_edit_looks_at_its_folder_only(setup: tuple[Path, Path, Path], walks: list[str],
                                                tmp_path: Path) -> None:
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    walks.clear()
    script = tree / "b" / "files" / "script.sh"
    with open(script, "a") as fh:  # in place: no folder's mtime changes
        fh.write("echo more\n")
    settle(script)
    edited = compute(tree, values, cache)
    assert walks == [str(tree / "b")]
    assert {k for k in keys(cold) if keys(cold)[k] != keys(edited)[k]} == {"c/b@1.0"}
    assert doc(edited) == doc(compute(tree, values, tmp_path / "fresh"))


@pytest.mark.parametrize("change", ["add-nested", "remove", "rename", "new-package"])
def test_added_removed_or_renamed_files_are_seen(setup: tuple[Path, Path, Path], walks: list[str],
                                                 tmp_path: Path, change: str) -> None:
    tree, values, cache = setup
    cold = compute(tree, values, cache)
    walks.clear()
    if change == "add-nested":
        (tree / "b" / "files" / "extra.sh").write_text("echo extra\n")
        settle(tree / "b" / "files" / "extra.sh")
    elif change == "remove":
        (tree / "d" / "data.txt").unlink()
    elif change == "rename":
        (tree / "d" / "data.txt").rename(tree / "d" / "data2.txt")
    else:
        (tree / "n").mkdir()
        (tree / "n" / "definition.yaml").write_text("name: n\ncategory: c\nversion: '1.0'\n")
        settle(tree / "n" / "definition.yaml")
    after = compute(tree, values, cache)
    assert str(tree) in walks  # the tree was walked again
    assert doc(after) == doc(compute(tree, values, tmp_path / "fresh"))
    changed = {k for k in keys(cold) if keys(cold)[k] != keys(after).get(k)}
    expected = {"add-nested": {"c/b@1.0"}, "remove": {"c/d@1.0"}, "rename": {"c/d@1.0"},
                "new-package": set()}[change]
    assert changed == expected
    if change == "new-package":
        assert "c/n@1.0" in keys(after)


def test_racy_folders_are_not_remembered(tmp_path: Path, walks: list[str]) -> None:
    tree, values = make_tree(tmp_path / "src")  # folders made just now
    compute(tree, values, tmp_path / "cache")
    walks.clear()
    compute(tree, values, tmp_path / "cache")
    assert walks == [str(tree)]


def test_damaged_walk_record_means_a_walk(setup: tuple[Path, Path, Path], walks: list[str]) -> None:
    from orchestrator import planstate

    tree, values, cache = setup
    cold = compute(tree, values, cache)
    state = next((cache / "plan").glob("*.result"))
    doc_ = planstate._read(str(state))
    doc_["walk"]["fstats"] = doc_["walk"]["fstats"][:-1]
    planstate._write(str(state), doc_, lines="specs")
    walks.clear()
    again = compute(tree, values, cache)
    assert walks == [str(tree)] and doc(again) == doc(cold)
