"""`verify`: re-hash every blob, check every entry, fix the accounting; `repair` removes damage.

Damage is reported, not silently fixed, unless `repair` is asked: corrupt blobs go to
quarantine, stray files too, and broken or dangling entries are deleted. The index is derived
data, so it is always brought back in line with what is on disk.
"""
from __future__ import annotations

import json
import os
import stat
import time
from typing import TYPE_CHECKING

from cache.fsutil import reap_tmp
from cache.manifest import from_json
from cache.reports import Dangling, VerifyReport

if TYPE_CHECKING:
    from cache.store import Store

_AC, _KV = "ac:", "kv:"


def _blob_state(store: Store, digest: str, size: int, corrupt: set[str]) -> str:
    if digest in corrupt:
        return "damaged"
    try:
        st = os.lstat(store.blob_path(digest))
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        return "damaged"
    return ""


def verify(store: Store, repair: bool) -> VerifyReport:
    t0 = time.monotonic()
    reap_tmp(store.blobs.tmp)
    corrupt: list[str] = []
    stray: list[str] = []
    checked = checked_bytes = 0
    for f in store.blobs.walk():
        if f.digest is None:
            stray.append(f.rel)
            continue
        state = store.blobs.check(f.digest, quarantine=False)
        if state == "missing":  # removed by a concurrent GC while we walked
            continue
        checked += 1
        checked_bytes += f.size
        if state == "corrupt":
            corrupt.append(str(f.digest))
    bad = set(corrupt)
    dangling: list[Dangling] = []
    malformed: list[str] = []
    bad_rows: list[int] = []
    bad_keys: list[str] = []
    entries = 0
    with store.shared():  # GC deletes an entry before its blobs; don't watch it halfway
        for rowid, k, text in store.meta.scan():
            if k is None or text is None or not k.startswith((_AC, _KV)):
                malformed.append(k if k is not None else f"(row {rowid}: key is not text)")
                bad_rows.append(rowid)
                continue
            if k.startswith(_KV):
                try:
                    json.loads(text)
                except (ValueError, RecursionError):
                    malformed.append(k)
                    bad_rows.append(rowid)
                continue
            entries += 1
            m = from_json(text)
            if m is None:
                malformed.append(k[len(_AC):])
                bad_rows.append(rowid)
                bad_keys.append(k[len(_AC):])
                continue
            problems = [(b.digest, _blob_state(store, b.digest, b.size, bad)) for b in m.blobs()]
            problems = [(d, why) for d, why in problems if why]
            dangling += [Dangling(k[len(_AC):], d, why) for d, why in problems]
            if problems:
                bad_rows.append(rowid)
                bad_keys.append(k[len(_AC):])
    with store.exclusive():
        if repair:
            store.meta.delete_rows(bad_rows)
            store.index.drop_entries(bad_keys)
            for d in corrupt:
                store.blobs.quarantine(store.blob_path(d))
            for rel in stray:
                store.blobs.quarantine(store.blobs.root / rel)
        fixed = store.rebuild_index()
    if repair:
        store.index.drop_blobs(corrupt)
    return VerifyReport(
        checked_blobs=checked, checked_bytes=checked_bytes, checked_entries=entries,
        corrupt=tuple(sorted(corrupt)), stray=tuple(sorted(stray)), dangling=tuple(dangling),
        malformed=tuple(malformed), index_fixed=fixed, repaired=repair,
        seconds=time.monotonic() - t0)



