"""The action cache and small key/value namespaces on diskcache, holding JSON *text* only.

diskcache pickles by default, and even `JSONDisk` falls back to `pickle.load` for a row whose
`mode` column says PICKLE (CVE-2025-69872). A cache directory restored from CI is attacker
input, so `_TextDisk` never pickles or unpickles, never touches value files, and rejects any row
that is not raw text. Before diskcache opens the database we check it, drop settings, triggers
and views it did not create (its settings feed `PRAGMA` statements), and set every setting.
A damaged database is set aside and recreated: losing entries only means misses.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import diskcache
from diskcache.core import DEFAULT_SETTINGS, METADATA, MODE_RAW

from cache.errors import is_corruption

MAX_VALUE = 1 << 20  # a manifest or kv value larger than 1 MiB is garbage by definition
_SETTINGS: dict[str, Any] = {
    "statistics": 0, "tag_index": 0, "eviction_policy": "none", "size_limit": 2**62,
    "cull_limit": 0, "sqlite_auto_vacuum": 1, "sqlite_cache_size": 2**13,
    "sqlite_journal_mode": "wal", "sqlite_mmap_size": 2**26,
    "sqlite_synchronous": 2,  # FULL: entries are the valuable, non-derivable part
    "disk_min_file_size": 2**62, "disk_pickle_protocol": 0,
}
_TRIGGERS = {"Settings_count_insert", "Settings_count_delete", "Settings_size_insert",
             "Settings_size_update", "Settings_size_delete"}
assert set(_SETTINGS) == set(DEFAULT_SETTINGS)


class _TextDisk(diskcache.Disk):
    """Keys and values are `str` stored inline as TEXT; anything else is refused."""

    def __init__(self, directory: str, **_ignored: Any) -> None:
        super().__init__(directory)

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError("store keys are str")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if raw and type(key) is str:
            return key
        raise ValueError("non-text key in action cache")

    def store(self, value: Any, read: bool, key: Any = None) -> tuple[int, int, None, str]:
        if read or type(value) is not str:
            raise TypeError("store values are JSON text")
        return 0, MODE_RAW, None, value

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> str:
        if mode != MODE_RAW or filename is not None or type(value) is not str or read:
            raise ValueError("action-cache row is not inline text")
        return value

    def remove(self, file_path: Any) -> None:
        """We never create value files, so any filename in a row is hostile: touch nothing."""


def _sanitize(db: Path) -> None:
    """Integrity-check an existing database and strip what diskcache did not put there."""
    if not db.exists():
        return
    con = sqlite3.connect(db, timeout=60, isolation_level=None)
    try:
        if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        names = {str(r[0]) for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        known = set(DEFAULT_SETTINGS) | set(METADATA)
        if "Settings" in names:
            bad = [str(k) for (k,) in con.execute("SELECT key FROM Settings") if k not in known]
            if bad:
                con.executemany("DELETE FROM Settings WHERE key=?", [(k,) for k in bad])
        for kind, name in con.execute("SELECT type, name FROM sqlite_master WHERE type IN"
                                      " ('trigger','view')").fetchall():
            if kind == "view" or name not in _TRIGGERS:
                quoted = str(name).replace('"', '""')
                con.execute(f'DROP {kind.upper()} IF EXISTS "{quoted}"')
    finally:
        con.close()


class Meta:
    """`ac:<key>` → manifest JSON and `kv:<namespace>:<key>` → JSON, in one diskcache."""

    def __init__(self, directory: Path, quarantine_dir: Path) -> None:
        self.directory = directory
        self.db = directory / "cache.db"
        self._quarantine_dir = quarantine_dir
        self.cache = self._open()

    def _open(self) -> diskcache.Cache:
        try:
            _sanitize(self.db)
            return diskcache.Cache(str(self.directory), timeout=60, disk=_TextDisk, **_SETTINGS)
        except sqlite3.DatabaseError as e:
            if not is_corruption(e):
                raise
            dest = self._quarantine_dir / f"ac.{time.time_ns()}-{os.getpid()}"
            os.rename(self.directory, dest)
            return diskcache.Cache(str(self.directory), timeout=60, disk=_TextDisk, **_SETTINGS)

    def close(self) -> None:
        self.cache.close()

    def get(self, key: str) -> str | None:
        """The raw JSON text, or None when absent *or unreadable* (an unreadable row is a miss)."""
        try:
            value = self.cache.get(key, default=None, retry=True)
        except (ValueError, TypeError, sqlite3.DatabaseError):
            return None
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            return None
        return value

    def set(self, key: str, text: str) -> None:
        self.cache.set(key, text, retry=True)

    def delete(self, key: str) -> None:
        self.cache.delete(key, retry=True)

    def delete_if(self, key: str, text: str) -> bool:
        """Delete only if the value is still `text` (another process may have healed it)."""
        with self.cache.transact(retry=True):
            if self.get(key) == text:
                self.cache.delete(key)
                return True
        return False

    def delete_rows(self, rowids: list[int]) -> None:
        """Delete rows by id, for rows too broken to be addressed by key."""
        con = self.cache._con  # diskcache's own connection: same transaction discipline
        with self.cache.transact(retry=True):
            con.executemany("DELETE FROM Cache WHERE rowid=?", [(r,) for r in rowids])

    def scan(self) -> Iterator[tuple[int, str | None, str | None]]:
        """(rowid, key, value) for every row; key/value None where not text. Never deserialises."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=60)
        try:
            rows = con.execute("SELECT rowid, key, raw, mode, filename, value FROM Cache").fetchall()
        finally:
            con.close()
        for rowid, key, raw, mode, filename, value in rows:
            k = key if raw == 1 and isinstance(key, str) else None
            ok = mode == MODE_RAW and filename is None and isinstance(value, str) and len(value) <= MAX_VALUE
            yield int(rowid), k, value if ok else None

    def count(self, prefix: str) -> int:
        with contextlib.suppress(sqlite3.DatabaseError):
            con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=60)
            try:
                hi = prefix[:-1] + chr(ord(prefix[-1]) + 1)
                q = "SELECT COUNT(*) FROM Cache WHERE key >= ? AND key < ? AND raw = 1"
                return int(con.execute(q, (prefix, hi)).fetchone()[0])
            finally:
                con.close()
        return 0
