"""What a scan of the trees found, kept between runs so the next one can skip the walk.

A folder's mtime changes whenever an entry is added to it, removed or renamed, so when no
folder of the last walk changed, the tree holds exactly the files it held then, and statting
those (`restat.restat`) tells everything a new walk would, at a fraction of its cost (the
trick of git's untracked cache). The files whose stat data changed are then known too, which
lets an incremental plan look at their package folders only.

Stat data is kept flat, as arrays of 64-bit numbers (3 per folder: mtime_ns, inode, mode; 4
per file: size, mtime_ns, inode, mode), never as a tuple per file: a warm plan compares,
hashes and stores them whole, and 30,000 tuples would cost more than all of that.
"""
from __future__ import annotations

import array
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from orchestrator.spec.discover import Stat, TreeScan

Numbers = array.array  # of "q": flat stat data
_BLOCK = 256  # numbers (64 files) compared at once when looking for the changed files


def numbers(stats: Any) -> Numbers:
    """Tuples of stat data, flat."""
    return array.array("q", itertools.chain.from_iterable(stats))


@dataclass(frozen=True)
class Walk:
    trees: list[str]
    dirs: list[str]  # every folder walked, walk order
    dstats: Numbers  # of `dirs`: mtime_ns, inode, mode each
    files: list[str]  # every file seen, walk order
    fstats: Numbers  # of `files`: size, mtime_ns, inode, mode each
    templates: list[str]  # shared template files, walk order
    # files whose stat data differ from the stored walk's, by index: stored apart from it
    # (`patch_after`) so that a plan after an edit need not write the whole walk again
    patched: dict[int, Stat] = field(default_factory=dict)

    @staticmethod
    def of_scan(scan: TreeScan) -> "Walk":
        return Walk(scan.trees, list(scan.dirs), numbers(scan.dirs.values()), list(scan.stats),
                    numbers(scan.stats.values()), scan.templates)

    def restatted(self, fstats: Numbers) -> "Walk":
        """This walk with new stat data of its files (`restat.restat`'s answer)."""
        return Walk(self.trees, self.dirs, self.dstats, self.files, fstats, self.templates, self.patched)

    def changed_at(self, fstats: Numbers) -> list[int]:
        """Indices of the files whose stat data in `fstats` (a re-stat of `files`) differ from
        this walk's: array slices compared a block at a time, then file by file in a block that
        differs (an edit touches a few files of thousands)."""
        old = self.fstats
        if fstats == old:
            return []
        if len(fstats) != len(old):
            return list(range(len(self.files)))
        out: list[int] = []
        for start in range(0, len(old), _BLOCK):
            end = start + _BLOCK
            if fstats[start:end] != old[start:end]:
                out.extend(i // 4 for i in range(start, min(end, len(old)), 4) if fstats[i:i + 4] != old[i:i + 4])
        return out

    def patch_after(self, changed: list[int], fstats: Numbers) -> list[list[int]]:
        """`fstats` (a re-stat of this walk's files, `changed` the indices of those that differ)
        as a patch of the stored walk this one was read from (`from_json`): its own patch and
        the new changes, `[index, *stat]` per file."""
        out: dict[int, Any] = dict(self.patched)
        for i in changed:
            out[i] = fstats[4 * i:4 * i + 4]
        return [[i, *st] for i, st in sorted(out.items())]

    def to_json(self) -> dict[str, Any]:
        """Paths as one NUL-joined string, stat numbers as base64 of 64-bit integers: for 30,000
        files a few MB that decode in milliseconds (lists of numbers would take ten times longer
        and as much more memory)."""
        return {"trees": self.trees, "dirs": "\0".join(self.dirs), "dstats": _pack(self.dstats),
                "files": "\0".join(self.files), "fstats": _pack(self.fstats), "templates": self.templates}

    @staticmethod
    def from_json(doc: Any, patch: Any = None) -> "Walk | None":
        """The stored walk with its patch (`patch_after`) applied, or None when either is
        damaged (a full scan then runs)."""
        try:
            dirs = doc["dirs"].split("\0") if doc["dirs"] else []
            files = doc["files"].split("\0") if doc["files"] else []
            dstats, fstats = _unpack(doc["dstats"]), _unpack(doc["fstats"])
            if len(dstats) != 3 * len(dirs) or len(fstats) != 4 * len(files):
                return None
            patched: dict[int, Stat] = {}
            for i, size, mtime, ino, mode in patch or ():
                if not 0 <= i < len(files):
                    return None
                fstats[4 * i:4 * i + 4] = array.array("q", (size, mtime, ino, mode))
                patched[i] = (size, mtime, ino, mode)
            return Walk([str(t) for t in doc["trees"]], dirs, dstats, files, fstats,
                        [str(t) for t in doc["templates"]], patched)
        except (KeyError, TypeError, AttributeError, ValueError):
            return None


def _pack(flat: Numbers) -> str:
    return base64.b64encode(flat.tobytes()).decode("ascii")


def _unpack(text: str) -> Numbers:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 8:
        raise ValueError("not 64-bit numbers")
    out = array.array("q")
    out.frombytes(raw)
    return out
