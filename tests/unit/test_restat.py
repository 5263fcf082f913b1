"""Re-statting the last walk's files: in one process or two, the same answer as a new scan;
a changed folder or file means None; a child that fails only costs its half being done here."""
from __future__ import annotations

import array
import os
import time
from pathlib import Path
from typing import NoReturn

import pytest

from orchestrator.spec import discover, restat
from orchestrator.spec.walk import numbers


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("big")
    for i in range(300):
        folder = root / f"d{i:03d}"
        folder.mkdir()
        for j in range(30):  # 9,000 files: over the two-process threshold
            (folder / f"f{j}").write_text("x" * j)
    return root


def _known(tree: Path) -> tuple[restat.Folders, list[str], array.array]:
    scan = discover.scan([str(tree)])
    return (list(scan.dirs), numbers(scan.dirs.values())), list(scan.stats), numbers(scan.stats.values())


def test_two_processes_give_what_a_scan_gives(tree: Path) -> None:
    dirs, files, stats = _known(tree)
    assert len(files) >= restat.SPLIT_AT
    assert restat.restat(dirs, files) == stats
    assert restat._numbers(dirs, files) == stats  # and one process agrees


@pytest.mark.parametrize("where", ["first half", "second half"])
def test_a_change_anywhere_means_none(tree: Path, where: str) -> None:
    dirs, files, _ = _known(tree)
    path = Path(files[10] if where == "first half" else files[-10])
    path.write_text("changed, and longer")
    assert restat.restat(dirs, files) is not None  # an edit in place: new stat data, same folders
    new = path.parent / "new-file"
    new.write_text("a new entry changes its folder's mtime")
    later = time.time() + 5
    os.utime(path.parent, (later, later))
    try:
        assert restat.restat(dirs, files) is None
    finally:
        new.unlink()


def test_a_failing_child_costs_only_time(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs, files, stats = _known(tree)

    def no_fork() -> int:
        raise OSError("no fork today")

    monkeypatch.setattr(os, "fork", no_fork)
    assert restat.restat(dirs, files) == stats
    monkeypatch.undo()
    real = restat._finish
    monkeypatch.setattr(restat, "_finish", lambda child, count: (real(child, count), restat._FAILED)[1])
    assert restat.restat(dirs, files) == stats  # the child answered, but not usably
    monkeypatch.setattr(restat, "_finish", lambda child, count: real(child, count + 4))
    assert restat.restat(dirs, files) == stats  # a short answer is not used either


class _Spare:
    """Work for the helper after its share: leaves its pid in a file (`prerender.Prerender`
    does real work there)."""

    def __init__(self, marker: Path) -> None:
        self.marker, self.pid = marker, 0

    def open(self) -> bool:
        return True

    def become_child(self) -> NoReturn:
        self.marker.write_text(str(os.getpid()))
        os._exit(0)

    def adopt(self, pid: int) -> None:
        self.pid = pid


def test_the_helper_takes_spare_work_after_its_share(tree: Path, tmp_path: Path) -> None:
    """With spare work, the helper stats a smaller share, answers, then does the work; the parent
    gets the same stat data and is left the helper to reap."""
    dirs, files, stats = _known(tree)
    spare = _Spare(tmp_path / "spare")
    assert restat.restat(dirs, files, spare) == stats
    assert spare.pid
    _, status = os.waitpid(spare.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "spare").read_text() == str(spare.pid)
