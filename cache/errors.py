"""Errors of the store. Damage found while reading is *not* an error (it is a miss)."""
from __future__ import annotations

import sqlite3


class StoreError(Exception):
    """The store cannot do what was asked (unusable directory, unknown format, I/O failure)."""


class BadDigest(StoreError, ValueError):
    """A string is not a digest this store understands (`<algorithm>:<lowercase hex>`)."""


class MissingBlob(StoreError):
    """An action-cache entry was to name a blob that is not (or no longer) in the store."""

    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__(f"blob {digest} is not in the store")


class LockTimeout(StoreError):
    """`Store.lock_key(key, timeout=…)` gave up waiting for another process."""


def is_corruption(e: sqlite3.DatabaseError) -> bool:
    """A damaged database file, as opposed to a busy one (which must never be thrown away)."""
    text = str(e).lower()
    return not isinstance(e, sqlite3.OperationalError) or "malformed" in text or "not a database" in text
