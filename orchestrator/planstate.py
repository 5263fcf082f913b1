"""The warm planner's memory: per package folder, the rendered result; per context file,
its digest — each trusted only while the files' stat data is unchanged.

Stored as one file per (trees, values files) configuration under `<cache>/plan/`, written
atomically: a JSON header line (schema, digest of the body) and a JSON body. A body that
does not match its digest, or has the wrong shape, is ignored (a cold plan).

Stat data can lie when a file is modified within the filesystem's timestamp granularity of
the moment we read it ("racy git"): an entry whose files' mtimes are within `RACY_NS` of the
start of the run that read them is not remembered, so the next run reads those files again.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import xxhash

from orchestrator import __version__

STATE_SCHEMA = 2
RACY_NS = 2_000_000_000  # 2 s: coarser than any filesystem orch runs on (ext4/xfs: ns, FAT: 2 s)
Stat = tuple[int, int, int, int]


def config_id(trees: list[str], values: list[str]) -> str:
    parts = [os.path.realpath(t) for t in trees] + ["--values"] + [os.path.realpath(v) for v in values]
    return xxhash.xxh3_64_hexdigest("\0".join(parts).encode())


class PlanState:
    """Implements `orchestrator.spec.load.LoadCache`, plus context-file digests."""

    def __init__(self, cache_dir: str | None, config: str) -> None:
        self.path = os.path.join(cache_dir, "plan", f"{config}.json") if cache_dir else None
        self.dirs: dict[str, Any] = {}
        self.files: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.started_ns = time.time_ns()  # before anything is read: the racy bound of this run
        self.dirty = False
        self._used_dirs: set[str] = set()
        self._used_files: set[str] = set()
        if self.path:
            self._read()

    def _read(self) -> None:
        assert self.path
        try:
            with open(self.path, "rb") as fh:
                header_line, _, body = fh.read().partition(b"\n")
            header = json.loads(header_line)
            if (not isinstance(header, dict) or header.get("schema") != [STATE_SCHEMA, __version__]
                    or header.get("digest") != xxhash.xxh3_128_hexdigest(body)):
                return
            doc = json.loads(body)
        except (OSError, ValueError):
            return  # missing or damaged: plan cold, rewrite it
        if not isinstance(doc, dict):
            return
        dirs, files, result = doc.get("dirs"), doc.get("files"), doc.get("result")
        if isinstance(dirs, dict) and isinstance(files, dict) and isinstance(result, (dict, type(None))):
            self.dirs, self.files, self.result = dirs, files, result

    def settled(self, mtime_ns: int) -> bool:
        """True when a file with this mtime cannot change unseen (it is not racy in this run)."""
        return mtime_ns < self.started_ns - RACY_NS

    # -- LoadCache -------------------------------------------------------------------------
    def get_dir(self, path: str, sig: list[Any]) -> dict[str, Any] | None:
        self._used_dirs.add(path)
        hit = self.dirs.get(path)
        if not isinstance(hit, dict) or hit.get("sig") != json.dumps(sig):
            return None
        entry: dict[str, Any] = hit["entry"]
        return entry

    def put_dir(self, path: str, sig: list[Any], entry: dict[str, Any]) -> None:
        """Remember a rendered folder, unless one of its files is racy (`sig[-1]`: [name, *stat])."""
        self._used_dirs.add(path)
        if all(self.settled(st[2]) for st in sig[-1] if len(st) > 2):
            self.dirs[path] = {"sig": json.dumps(sig), "entry": entry}
        else:
            self.dirs.pop(path, None)
        self.dirty = True

    # -- context file digests ----------------------------------------------------------------
    def file_digest(self, path: str, st: Stat) -> str:
        """`x:xxh3-128` (or `-:`, by the executable bit) of a file (a symlink: `l:target`),
        served from stat data when it was recorded for a non-racy file."""
        self._used_files.add(path)
        hit = self.files.get(path)
        if isinstance(hit, list) and hit[:4] == list(st):
            digest: str = hit[4]
            return digest
        digest = hash_file(path, st)
        if self.settled(st[1]):
            self.files[path] = [*st, digest]
        else:
            self.files.pop(path, None)
        self.dirty = True
        return digest

    # -- whole-plan result (the no-change fast path) ------------------------------------------
    def get_result(self, signature: str) -> dict[str, Any] | None:
        if self.result and self.result.get("signature") == signature:
            return self.result
        return None

    def put_result(self, signature: str, result: dict[str, Any]) -> None:
        self.result = {"signature": signature, **result}
        self.dirty = True

    def save(self) -> None:
        """Atomic rewrite; entries not used by this run are dropped so the state never grows."""
        if not self.path or not self.dirty:
            return
        self.dirs = {k: v for k, v in self.dirs.items() if k in self._used_dirs}
        self.files = {k: v for k, v in self.files.items() if k in self._used_files}
        body = json.dumps({"dirs": self.dirs, "files": self.files, "result": self.result},
                          separators=(",", ":")).encode()
        header = json.dumps({"schema": [STATE_SCHEMA, __version__],
                             "digest": xxhash.xxh3_128_hexdigest(body)}).encode()
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".state-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(header + b"\n" + body)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise


def hash_file(path: str, st: Stat) -> str:
    mode = st[3]
    if (mode & 0o170000) == 0o120000:
        return "l:" + os.readlink(path)
    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    # only the executable bit: checkouts and copies disagree on group/other bits, builds don't
    return f"{'x' if mode & 0o111 else '-'}:{h.hexdigest()}"
