"""Walking a tree with two processes gives exactly what one walk gives, order included; a child
that fails, or a share with an error, costs only time or gives the one walk's error; an
interrupted walk leaves no child behind."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec import discover, scansplit
from orchestrator.spec.discover import TreeScan


def _package(folder: Path, name: str, *, build: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "definition.yaml").write_text(f"name: {name}\ncategory: c\nversion: '1'\n")
    if build:
        (folder / "build.yaml").write_text("image: busybox\n")


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two trees: one with many top-level folders of every kind, one that is a package folder."""
    root = tmp_path_factory.mktemp("split")
    big = root / "big"
    (big / ".git" / "objects").mkdir(parents=True)
    (big / "README.md").write_text("root files are stat-ed, not walked\n")
    (big / "templates").mkdir(parents=True)
    (big / "templates" / "common.yaml").write_text("{{ define \"x\" }}x{{ end }}\n")
    for i in range(12):
        cat = big / f"cat{i:02d}"
        cat.mkdir()
        for j in range(i % 4):  # uneven sizes, some empty folders
            pkg = cat / f"pkg{j}"
            _package(pkg, f"p{i}-{j}")
            (pkg / "files").mkdir()
            (pkg / "files" / "patch.diff").write_text(f"{i}{j}\n")
            if j == 1:  # a nested package folder and a nested templates folder
                _package(pkg / "sub", f"p{i}-{j}-sub")
                (pkg / "templates").mkdir()
                (pkg / "templates" / "more.yaml").write_text("x\n")
                (pkg / ".orchignore").write_text("*.log\n")
                (pkg / "build.log").write_text("ignored\n")
            if j == 2:
                os.symlink("files/patch.diff", pkg / "link.diff")
                (pkg / ".git").mkdir()
    os.symlink("cat01", big / "zz-link-to-a-folder")  # a symlink is a file to the walk
    (big / "zz-top-file").write_text("last\n")
    own = root / "own"
    _package(own, "root-package")
    for i in range(3):
        _package(own / f"nested{i}", f"n{i}", build=i != 2)  # one runtime-only package
    return [str(big), str(own)]


def _units(tree: str) -> list[tuple[str, str]]:
    """The top-level folders a walk goes into, in its order, with their tree."""
    return [(tree, str(Path(tree) / n)) for n in sorted(os.listdir(tree))
            if n != ".git" and (Path(tree) / n).is_dir() and not (Path(tree) / n).is_symlink()]


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Share the walk from the start, on any machine (these trees are walked in milliseconds)."""
    monkeypatch.setattr(scansplit, "SPLIT_AFTER", 0.0)
    monkeypatch.setattr(scansplit.workers, "jobs", lambda: 2)


def _serial(trees: list[str], monkeypatch: pytest.MonkeyPatch) -> TreeScan:
    """One walk of each tree, from its root, in this process: what `scan` did before it shared."""
    roots = discover.roots(trees)
    out = TreeScan(roots, [], [], {})
    for root in roots:
        discover.walk_tree(root, out)
    with monkeypatch.context() as m:  # and the shared scan never sharing agrees
        m.setattr(scansplit, "SPLIT_MIN", 10**9)
        _same(discover.scan(trees), out)
    return out


def _same(a: TreeScan, b: TreeScan) -> None:
    assert a.trees == b.trees
    assert a.packages == b.packages
    assert [(p.spec_stats, p.ctx_stats, p.path) for p in a.packages] == \
           [(p.spec_stats, p.ctx_stats, p.path) for p in b.packages]
    assert a.templates == b.templates
    assert list(a.stats.items()) == list(b.stats.items())  # the order too: the stored walk follows it
    assert list(a.dirs.items()) == list(b.dirs.items())


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Children forked by this process, and a check that the answer came from one."""
    pids: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(scansplit.os, "fork", fork)
    return pids


@pytest.mark.usefixtures("split")
def test_two_processes_walk_as_one(trees: list[str], monkeypatch: pytest.MonkeyPatch, forks: list[int]) -> None:
    answers: list[Any] = []
    real = scansplit._finish
    monkeypatch.setattr(scansplit, "_finish", lambda child: answers.append(real(child)) or answers[-1])
    split = discover.scan(trees)
    assert len(forks) == 1 and answers and answers[0]  # the child walked its share and answered
    assert set(answers[0]) == set(scansplit._share(_units(trees[0])))
    serial = _serial(trees, monkeypatch)
    _same(split, serial)
    assert any(p.rel == "" and p.tree == trees[1] for p in split.packages)
    assert any(t.endswith("more.yaml") for t in split.templates)


@pytest.mark.usefixtures("split")
def test_nested_trees_walk_as_one(trees: list[str], monkeypatch: pytest.MonkeyPatch, forks: list[int]) -> None:
    """A tree inside another (`-t big -t big/cat03`, or a package folder given as a tree): each
    folder is walked for the tree it was given under."""
    nested = [trees[0], str(Path(trees[0]) / "cat03"), str(Path(trees[0]) / "cat03" / "pkg1"), trees[1]]
    split = discover.scan(nested)
    assert len(forks) == 1
    _same(split, _serial(nested, monkeypatch))
    assert {p.tree for p in split.packages} == set(nested)


def test_quick_walks_stay_in_one_process(trees: list[str], monkeypatch: pytest.MonkeyPatch,
                                         forks: list[int]) -> None:
    monkeypatch.setattr(scansplit.workers, "jobs", lambda: 2)
    scan = discover.scan(trees)  # a walk of milliseconds: never shared
    assert forks == []
    _same(scan, _serial(trees, monkeypatch))
    monkeypatch.setattr(scansplit, "SPLIT_AFTER", 0.0)
    monkeypatch.setattr(scansplit.workers, "jobs", lambda: 1)  # one CPU: nothing to share it with
    discover.scan(trees)
    assert forks == []


@pytest.mark.usefixtures("split")
def test_sharing_can_start_late(trees: list[str], monkeypatch: pytest.MonkeyPatch, forks: list[int]) -> None:
    """The first folders walked here, the rest shared: still one walk's result."""
    clock = iter(range(1000))
    monkeypatch.setattr(scansplit, "SPLIT_AFTER", 3.0)
    monkeypatch.setattr(scansplit, "_clock", lambda: float(next(clock)))
    scan = discover.scan(trees)
    assert len(forks) == 1
    _same(scan, _serial(trees, monkeypatch))


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("failure", ["no fork", "child fails", "garbled answer"])
def test_a_failing_child_costs_only_time(trees: list[str], monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    serial = _serial(trees, monkeypatch)
    if failure == "no fork":
        def no_fork() -> int:
            raise OSError("no fork today")
        monkeypatch.setattr(scansplit.os, "fork", no_fork)
    elif failure == "child fails":
        def boom(pieces: Any) -> Any:
            raise RuntimeError("the child's packing fails")
        monkeypatch.setattr(scansplit, "_pack", boom)
    else:
        real = scansplit._pack
        monkeypatch.setattr(scansplit, "_pack", lambda pieces: real(pieces)[:-8])
    _same(discover.scan(trees), serial)


@pytest.mark.usefixtures("split")
@pytest.mark.parametrize("bad", [
    [("cat02/pkg1", "parent")],
    [("cat03/pkg1", "child")],
    [("cat01/pkg0", "child"), ("cat02/pkg1", "parent")],  # the child's comes first in walk order
    [("cat02/pkg1", "parent"), ("cat03/pkg1", "child")],  # the parent's comes first
])
def test_an_unreadable_folder_is_the_one_walks_error(trees: list[str], monkeypatch: pytest.MonkeyPatch,
                                                     bad: list[tuple[str, str]]) -> None:
    """Wherever bad folders fall (the child's share or the parent's), the error is the one a
    single walk reports: the first in walk order."""
    theirs = scansplit._share(_units(trees[0]))
    assert [("child" if (trees[0], str(Path(trees[0]) / b.split("/")[0])) in theirs else "parent") for b, _ in bad] == \
           [who for _, who in bad]
    real, unreadable = os.scandir, {str(Path(trees[0]) / b) for b, _ in bad}

    def scandir(path: Any) -> Any:
        if str(path) in unreadable:
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(discover.os, "scandir", scandir)
    with pytest.raises(SpecError) as split:
        discover.scan(trees)
    with pytest.raises(SpecError) as serial:
        _serial(trees, monkeypatch)
    assert str(split.value) == str(serial.value)
    assert str(Path(trees[0]) / bad[0][0]) in str(split.value) and "Permission denied" in str(split.value)


@pytest.mark.usefixtures("split")
def test_an_interrupted_walk_leaves_no_child(trees: list[str], monkeypatch: pytest.MonkeyPatch, forks: list[int]) -> None:
    parent = os.getpid()
    real = discover.walk_folder

    def walk_folder(root: str, folder: str, out: TreeScan) -> None:
        if os.getpid() == parent:
            raise KeyboardInterrupt
        real(root, folder, out)

    monkeypatch.setattr(discover, "walk_folder", walk_folder)
    with pytest.raises(KeyboardInterrupt):
        discover.scan(trees)
    assert len(forks) == 1
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(forks[0], os.WNOHANG)
