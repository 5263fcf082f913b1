"""`kill -9` in the middle of large writes, repeatedly: nothing partial is ever registered."""
from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from cache import Manifest, Store
from storehelp import start_worker

SIZE = 50 << 20
LIMIT = 2 * (SIZE + 16)


def test_kill_9_during_large_writes(tmp_path: Path) -> None:
    """Each round a writer puts 50 MB blobs (and GCs to two of them) until SIGKILL lands."""
    root = tmp_path / "cache"
    base = tmp_path / "base"
    base.write_bytes(os.urandom(SIZE))
    Store(root).close()
    rng = random.Random(1)
    committed: list[str] = []
    for i in range(10):
        p = start_worker("crash-loop", root, base, LIMIT)
        if i >= 7:  # make sure some rounds get past a first commit (and into the next write or GC)
            assert p.stdout is not None
            committed.append(p.stdout.readline().strip())
            time.sleep(rng.uniform(0, 0.4))
        else:
            time.sleep(rng.uniform(0.25, 1.2))  # start-up ≈ 0.2 s, then ≈ 0.2–0.4 s per blob
        os.kill(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        committed += out.split()
        assert p.returncode == -signal.SIGKILL
    with Store(root) as s:  # opening reaps the dead writers' temp files
        assert list(s.blobs.tmp.iterdir()) == []
        report = s.verify()
        assert report.clean, report.lines()
        for f in s.blobs.walk():  # every file under its final name is a whole blob
            assert f.digest is not None and f.size == SIZE + 16
        for key in s.ac_keys():
            m = s.ac_get(key, verify=True)
            assert m is not None and m.artifact_size == SIZE + 16
        assert committed[-1] in s.index.blob_rows() or not s.contains(committed[-1])
        rows = s.index.blob_rows()
        assert all(s.contains(d) or size == SIZE + 16 for d, size in rows.items())
        # later writes and reads are whole
        data = os.urandom(5 << 20)
        d = s.put_bytes(data)
        s.ac_put("after", Manifest(artifact=d, artifact_size=len(data)))
        assert s.get_bytes(d) == data and s.ac_get("after", verify=True) is not None
        assert s.verify().clean
        s.gc_max_size(0)  # a GC killed mid-way left trash: the next one empties it
        assert list((s.base / "trash").iterdir()) == [] and s.stats()["bytes"] == 0


def test_writer_killed_between_register_and_rename(tmp_path: Path) -> None:
    """The index may over-count a crashed write (a row, no file); GC and verify absorb it."""
    with Store(tmp_path / "c") as s:
        s.index.add_blob("xxh3-128:" + "1" * 32, 10 << 20, 0.0)  # the crash left only the row
        d = s.put_bytes(b"real")
        assert s.stats()["blobs"] == 2
        assert s.gc_max_size(1 << 20).removed_blobs == 1  # the phantom is the LRU victim
        assert s.get_bytes(d) == b"real"
        s.index.add_blob("xxh3-128:" + "2" * 32, 5, 0.0)
        report = s.verify()
        assert report.clean and report.index_fixed == 1
        assert s.stats()["blobs"] == 1


def test_stale_temp_files_are_reaped_live_ones_kept(tmp_path: Path) -> None:
    from cache.fsutil import open_locked_tmp, reap_tmp

    with Store(tmp_path / "c") as s:
        (s.blobs.tmp / "123-dead.tmp").write_bytes(b"partial")  # nobody holds its lock
        fd, live = open_locked_tmp(s.blobs.tmp)
        assert reap_tmp(s.blobs.tmp) == 1
        assert live.exists() and not (s.blobs.tmp / "123-dead.tmp").exists()
        os.close(fd)
        assert reap_tmp(s.blobs.tmp) == 1
