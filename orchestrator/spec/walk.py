"""What a scan of the trees found, kept between runs so the next one can skip the walk.

A folder's mtime changes whenever an entry is added to it, removed or renamed, so when no
folder of the last walk changed, the tree holds exactly the files it held then, and statting
those (`restat.restat`) tells everything a new walk would, at a fraction of its cost (the
trick of git's untracked cache). The files whose stat data changed are then known too, which
lets an incremental plan look at their package folders only.
"""
from __future__ import annotations

import array
import base64
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.spec.discover import DirStat, Stat, TreeScan


@dataclass(frozen=True)
class Walk:
    trees: list[str]
    dirs: list[tuple[str, DirStat]]  # every folder walked, walk order
    files: list[str]  # every file seen, walk order
    stats: list[Stat]  # of `files`, in the same order
    templates: list[str]  # shared template files, walk order
    # files whose stat data differ from the stored walk's, by index: stored apart from it
    # (`patch_after`) so that a plan after an edit need not write the whole walk again
    patched: dict[int, Stat] = field(default_factory=dict)

    @staticmethod
    def of_scan(scan: TreeScan) -> "Walk":
        return Walk(scan.trees, list(scan.dirs.items()), list(scan.stats), list(scan.stats.values()),
                    scan.templates)

    def restatted(self, stats: dict[str, Stat]) -> "Walk":
        return Walk(self.trees, self.dirs, self.files, [stats[p] for p in self.files], self.templates,
                    self.patched)

    def changed(self, stats: dict[str, Stat]) -> set[str]:
        """Files whose stat data differ from this walk's."""
        return {p for p, st in zip(self.files, self.stats) if stats.get(p) != st}

    def patch_after(self, changed: set[str], stats: dict[str, Stat]) -> list[list[int]]:
        """`stats` (a re-stat of this walk's files, `changed` those that differ from it) as a
        patch of the stored walk this one was read from (`from_json`): its own patch and the
        new changes, `[index, *stat]` per file."""
        out = dict(self.patched)
        index = {p: i for i, p in enumerate(self.files)} if len(changed) > 8 else None
        for path in changed:
            out[index[path] if index is not None else self.files.index(path)] = stats[path]
        return [[i, *st] for i, st in sorted(out.items())]

    def to_json(self) -> dict[str, Any]:
        """Paths as one NUL-joined string, stat numbers as base64 of 64-bit integers: for 30,000
        files a few MB that decode in milliseconds (lists of numbers would take ten times longer
        and as much more memory)."""
        return {"trees": self.trees, "dirs": "\0".join(p for p, _ in self.dirs),
                "dstats": _pack(itertools.chain.from_iterable(st for _, st in self.dirs)),
                "files": "\0".join(self.files), "fstats": _pack(itertools.chain.from_iterable(self.stats)),
                "templates": self.templates}

    @staticmethod
    def from_json(doc: Any, patch: Any = None) -> "Walk | None":
        """The stored walk with its patch (`patch_after`) applied, or None when either is
        damaged (a full scan then runs)."""
        try:
            dirs = doc["dirs"].split("\0") if doc["dirs"] else []
            files = doc["files"].split("\0") if doc["files"] else []
            dflat, fflat = _unpack(doc["dstats"]), _unpack(doc["fstats"])
            if len(dflat) != 3 * len(dirs) or len(fflat) != 4 * len(files):
                return None
            patched: dict[int, Stat] = {}
            for i, size, mtime, ino, mode in patch or ():
                if not 0 <= i < len(files):
                    return None
                fflat[4 * i:4 * i + 4] = array.array("q", (size, mtime, ino, mode))
                patched[i] = (size, mtime, ino, mode)
            dstats: list[DirStat] = list(zip(dflat[0::3], dflat[1::3], dflat[2::3]))
            fstats: list[Stat] = list(zip(fflat[0::4], fflat[1::4], fflat[2::4], fflat[3::4]))
            return Walk([str(t) for t in doc["trees"]], list(zip(dirs, dstats)), files, fstats,
                        [str(t) for t in doc["templates"]], patched)
        except (KeyError, TypeError, AttributeError, ValueError):
            return None


def _pack(numbers: Iterable[int]) -> str:
    return base64.b64encode(array.array("q", numbers).tobytes()).decode("ascii")


def _unpack(text: str) -> array.array[int]:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 8:
        raise ValueError("not 64-bit numbers")
    out = array.array("q")
    out.frombytes(raw)
    return out
