"""Accounting index (stdlib sqlite3, WAL): blob sizes and last use, entry→blob refs, counters.

It is *derived* data: every row can be rebuilt from `blobs/` and the action cache, so `verify`
repairs it and a damaged file is simply set aside and rebuilt. It lets GC and `stats` answer
"how big, what is oldest, who names this blob" without walking the store. Only integers, reals
and text are stored; every query is parameterised.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from cache.errors import is_corruption

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, size INTEGER NOT NULL,
                                  last_used REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_lru ON blobs(last_used, digest);
CREATE TABLE IF NOT EXISTS refs (key TEXT NOT NULL, digest TEXT NOT NULL,
                                 PRIMARY KEY (key, digest)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refs_digest ON refs(digest);
CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, last_used REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
_BATCH = 500  # stay far below SQLite's bound-parameter limit


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class Index:
    def __init__(self, path: Path, quarantine_dir: Path) -> None:
        self.path = path
        self._quarantine_dir = quarantine_dir
        self._lock = threading.RLock()
        self._con: sqlite3.Connection | None = None
        self._pid = 0
        self.fresh = False  # True when the file was (re)created and must be rebuilt from disk

    # ---- connection ----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # derived data: losing the last commits is fine
        return con

    def open(self) -> None:
        """Open, checking integrity; a damaged index is moved to quarantine and recreated."""
        con: sqlite3.Connection | None = None
        try:
            con = self._connect()
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            if not is_corruption(e):
                raise
            if con is not None:
                con.close()
            stamp = f"{time.time_ns()}-{os.getpid()}"
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{self.path}{suffix}", self._quarantine_dir / f"index.sqlite{suffix}.{stamp}")
            con = self._connect()
            con.executescript(_SCHEMA)
        self._con, self._pid = con, os.getpid()
        self.fresh = self.counter("initialized") == 0

    def close(self) -> None:
        with self._lock:
            if self._con is not None and self._pid == os.getpid():
                self._con.close()
            self._con = None

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None or self._pid != os.getpid():  # after fork: never share a connection
            self._con, self._pid = self._connect(), os.getpid()
        return self._con

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE avoids upgrade deadlocks)."""
        with self._lock:
            con = self.con
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # ---- blobs ---------------------------------------------------------------------------
    def add_blob(self, digest: str, size: int, now: float) -> None:
        with self.tx() as con:
            con.execute("INSERT INTO blobs VALUES (?,?,?) ON CONFLICT(digest) DO UPDATE SET"
                        " size=excluded.size, last_used=excluded.last_used", (digest, size, now))

    def drop_blobs(self, digests: Iterable[str]) -> None:
        with self.tx() as con:
            for batch in _chunks(digests):
                con.execute(f"DELETE FROM blobs WHERE digest IN ({','.join('?' * len(batch))})", batch)

    def blob_size(self, digest: str) -> int | None:
        with self._lock:
            row = self.con.execute("SELECT size FROM blobs WHERE digest=?", (digest,)).fetchone()
        return None if row is None else int(row[0])

    def lru(self) -> Iterator[tuple[str, int]]:
        """(digest, size), least recently used first (snapshot; safe to delete while iterating)."""
        with self._lock:
            rows = self.con.execute("SELECT digest, size FROM blobs ORDER BY last_used, digest").fetchall()
        for d, s in rows:
            yield str(d), int(s)

    def blob_rows(self) -> dict[str, int]:
        with self._lock:
            return {str(d): int(s) for d, s in self.con.execute("SELECT digest, size FROM blobs")}

    def totals(self) -> tuple[int, int]:
        with self._lock:
            n, total = self.con.execute("SELECT COUNT(*), COALESCE(SUM(size),0) FROM blobs").fetchone()
        return int(n), int(total)

    # ---- entries -------------------------------------------------------------------------
    def set_entry(self, key: str, digests: Iterable[str], now: float) -> None:
        """Record which blobs an entry names (before the entry itself is written)."""
        ds = sorted(set(digests))
        with self.tx() as con:
            con.execute("DELETE FROM refs WHERE key=?", (key,))
            con.executemany("INSERT INTO refs VALUES (?,?)", [(key, d) for d in ds])
            con.execute("INSERT OR REPLACE INTO entries VALUES (?,?)", (key, now))
            con.executemany("UPDATE blobs SET last_used=? WHERE digest=?", [(now, d) for d in ds])

    def touch(self, key: str | None, digests: Iterable[str], now: float, counter: str) -> None:
        """On a hit: the entry's last use first, then its blobs' (Bazel's order), and count it."""
        with self.tx() as con:
            if key is not None:
                con.execute("INSERT OR REPLACE INTO entries VALUES (?,?)", (key, now))
            con.executemany("UPDATE blobs SET last_used=? WHERE digest=?", [(now, d) for d in digests])
            con.execute("INSERT INTO counters VALUES (?,1) ON CONFLICT(name) DO UPDATE SET value=value+1",
                        (counter,))

    def drop_entries(self, keys: Iterable[str]) -> None:
        with self.tx() as con:
            for batch in _chunks(keys):
                marks = ",".join("?" * len(batch))
                con.execute(f"DELETE FROM refs WHERE key IN ({marks})", batch)
                con.execute(f"DELETE FROM entries WHERE key IN ({marks})", batch)

    def keys_naming(self, digests: Iterable[str]) -> set[str]:
        out: set[str] = set()
        with self._lock:
            for batch in _chunks(digests):
                q = f"SELECT DISTINCT key FROM refs WHERE digest IN ({','.join('?' * len(batch))})"
                out.update(str(k) for (k,) in self.con.execute(q, batch))
        return out

    def digests_of(self, keys: Iterable[str]) -> set[str]:
        out: set[str] = set()
        with self._lock:
            for batch in _chunks(keys):
                q = f"SELECT digest FROM refs WHERE key IN ({','.join('?' * len(batch))})"
                out.update(str(d) for (d,) in self.con.execute(q, batch))
        return out

    def entry_last_used(self, key: str) -> float | None:
        with self._lock:
            row = self.con.execute("SELECT last_used FROM entries WHERE key=?", (key,)).fetchone()
        return None if row is None else float(row[0])

    def entry_count(self) -> int:
        with self._lock:
            return int(self.con.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    # ---- counters and rebuild ------------------------------------------------------------
    def bump(self, name: str, n: int = 1) -> None:
        with self.tx() as con:
            con.execute("INSERT INTO counters VALUES (?,?) ON CONFLICT(name) DO UPDATE SET value=value+?",
                        (name, n, n))

    def counter(self, name: str) -> int:
        with self._lock:
            row = self.con.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {str(k): int(v) for k, v in self.con.execute("SELECT name, value FROM counters")}

    def reconcile(self, files: dict[str, tuple[int, float]], entries: dict[str, set[str]]) -> int:
        """Make rows match what is on disk (files: digest→(size, mtime); entries: key→digests).

        Returns how many rows changed. Caller holds the store's exclusive lock.
        """
        changed = 0
        rows = self.blob_rows()
        with self.tx() as con:
            gone = [d for d in rows if d not in files]
            for batch in _chunks(gone):
                con.execute(f"DELETE FROM blobs WHERE digest IN ({','.join('?' * len(batch))})", batch)
            changed += len(gone)
            for d, (size, mtime) in files.items():
                if rows.get(d) != size:
                    con.execute("INSERT INTO blobs VALUES (?,?,?) ON CONFLICT(digest) DO UPDATE SET"
                                " size=excluded.size", (d, size, mtime))
                    changed += 1
            have = {(str(k), str(d)) for k, d in con.execute("SELECT key, digest FROM refs")}
            want = {(k, d) for k, ds in entries.items() for d in ds}
            con.executemany("DELETE FROM refs WHERE key=? AND digest=?", sorted(have - want))
            con.executemany("INSERT INTO refs VALUES (?,?)", sorted(want - have))
            changed += len(have ^ want)
            known = {str(k) for (k,) in con.execute("SELECT key FROM entries")}
            con.executemany("DELETE FROM entries WHERE key=?", [(k,) for k in known - entries.keys()])
            now = time.time()
            con.executemany("INSERT INTO entries VALUES (?,?)", [(k, now) for k in entries.keys() - known])
            changed += len(known ^ entries.keys())
            con.execute("INSERT OR REPLACE INTO counters VALUES ('initialized', 1)")
        self.fresh = False
        return changed
