"""Garbage collection: LRU to a size bound, or keep exactly a plan's entries (what CI saves).

Both decide under the store's exclusive lock, read live pins first, and delete action-cache
entries *before* the blobs they name, so no entry ever dangles. Under the lock a victim is only
renamed into `trash/`: a rename frees no blocks, and measured ~20x cheaper than an unlink here
(ext4 with online discard). The unlinks happen after the lock is released, so writers wait
briefly. Sizes come from the index: `gc_max_size` never walks the store. The kv namespaces are
left alone: they are small, and a value naming a removed key only leads to a miss.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from typing import TYPE_CHECKING

from cache.digest import Digest, parse_digest
from cache.fsutil import reap_tmp
from cache.manifest import from_json
from cache.pins import reap_key_locks
from cache.reports import GcReport

if TYPE_CHECKING:
    from cache.store import Store

_AC, _KV = "ac:", "kv:"


def _evict(store: Store, digests: list[str], protected_keys: set[str]) -> tuple[int, int]:
    """Remove these blobs, first removing every entry that names one. Returns (entries, blobs)."""
    entries = blobs = 0
    trash = _Trash(store)
    for i in range(0, len(digests), 1000):
        batch = digests[i:i + 1000]
        keys = store.index.keys_naming(batch) - protected_keys
        with store.meta.cache.transact(retry=True):
            for k in keys:
                store.meta.delete(_AC + k)
        store.index.drop_entries(keys)
        entries += len(keys)
        for d in batch:
            blobs += trash.move(parse_digest(d))  # index rows are untrusted: validate the name
        store.index.drop_blobs(batch)
    return entries, blobs


class _Trash:
    """Moves blobs into trash/ with plain string paths (pathlib costs more than the rename)."""

    def __init__(self, store: Store) -> None:
        self.blobs = str(store.blobs.root)
        self.prefix = f"{store.base / 'trash'}/{uuid.uuid4().hex[:12]}-"
        self.n = 0

    def move(self, d: Digest) -> bool:
        self.n += 1
        try:
            os.rename(f"{self.blobs}/{d.algorithm}/{d.hex[:2]}/{d.hex}", f"{self.prefix}{self.n}")
        except FileNotFoundError:
            return False
        return True


def empty_trash(store: Store) -> None:
    """Unlink what GC set aside (this run's, or a killed run's); safe to race with another GC."""
    for e in os.scandir(store.base / "trash"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(e.path)


def _finish(store: Store, t0: float, removed: tuple[int, int, int], pinned: int) -> GcReport:
    """Called at the end of the locked phase: report, then unlink outside the lock."""
    n, total = store.index.totals()
    locked = time.monotonic() - t0
    return GcReport(removed_blobs=removed[0], removed_bytes=removed[1], removed_entries=removed[2],
                    remaining_blobs=n, remaining_bytes=total, pinned_blobs=pinned,
                    seconds=locked, locked_seconds=locked)


def _unlocked_cleanup(store: Store, report: GcReport, t0: float) -> GcReport:
    """Slow file deletions, none of which a writer needs to wait for."""
    empty_trash(store)
    store.blobs.purge_quarantine()
    reap_key_locks(store.base / "locks" / "keys")
    return dataclasses.replace(report, seconds=time.monotonic() - t0)


def gc_max_size(store: Store, max_bytes: int) -> GcReport:
    t0 = time.monotonic()
    return _unlocked_cleanup(store, _gc_max_size(store, max_bytes, t0), t0)


def _gc_max_size(store: Store, max_bytes: int, t0: float) -> GcReport:
    with store.exclusive():
        reap_tmp(store.blobs.tmp)
        pinned_digests, pinned_keys = store.pinned()
        _, total = store.index.totals()
        victims: list[str] = []
        freed = 0
        if total > max_bytes:
            for d, size in store.index.lru():
                if d in pinned_digests:
                    continue
                victims.append(d)
                freed += size
                if total - freed <= max_bytes:
                    break
        entries, _ = _evict(store, victims, pinned_keys)
        return _finish(store, t0, (len(victims), freed, entries), len(pinned_digests))


def gc_keep(store: Store, keys: set[str]) -> GcReport:
    t0 = time.monotonic()
    return _unlocked_cleanup(store, _gc_keep(store, keys, t0), t0)


def _gc_keep(store: Store, keys: set[str], t0: float) -> GcReport:
    with store.exclusive():
        reap_tmp(store.blobs.tmp)
        pinned_digests, pinned_keys = store.pinned()
        keep_keys = keys | pinned_keys
        keep = set(pinned_digests)
        drop_rows: list[int] = []
        dropped: list[str] = []
        for rowid, k, text in store.meta.scan():
            if k is not None and k.startswith(_KV):
                continue  # kv is small metadata with its own meaning: GC leaves it alone
            if k is not None and k.startswith(_AC):
                m = from_json(text) if text else None
                if k[len(_AC):] in keep_keys and m is not None:
                    keep.update(b.digest for b in m.blobs())
                    continue
                dropped.append(k[len(_AC):])
            drop_rows.append(rowid)  # an entry not kept, or a row that is not ours at all
        store.meta.delete_rows(drop_rows)  # entries first ...
        store.index.drop_entries(dropped)
        removed = freed = 0
        trash = _Trash(store)
        on_disk: set[str] = set()
        for f in store.blobs.walk():  # ... then blobs; a listing (no hashing) so that no orphan survives
            if f.digest is None:
                continue
            if str(f.digest) in keep:
                on_disk.add(str(f.digest))
            elif trash.move(f.digest):
                removed += 1
                freed += f.size
        store.index.drop_blobs([d for d in store.index.blob_rows() if d not in on_disk])
        return _finish(store, t0, (removed, freed, len(dropped)), len(pinned_digests))
