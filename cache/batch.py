"""Many action-cache lookups at once: what one orch run does for thousands of keys.

`Store.ac_get` is the reference: it parses the entry, stats every blob it names and writes
the entry's last use to the index — one transaction per key. `ActionReader` gives the same
answers (a damaged or unexpected entry is handed to `Store.ac_get`, which removes it) but
reads many entries in one query, parses them with fewer checks on the hot path, and batches
the LRU touches and hit/miss counters into one transaction at `flush`.

Measured: 10,000 lookups one by one cost ~0.3 s in diskcache alone; one range query ~0.05 s.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import stat
import threading
import time

from diskcache.core import MODE_RAW

from cache.errors import StoreError
from cache.manifest import VERSION as MANIFEST_VERSION
from cache.manifest import BlobRef, Manifest
from cache.meta import MAX_VALUE
from cache.store import AC, Store

_AC_END = AC[:-1] + chr(ord(AC[-1]) + 1)  # upper bound of the action-cache key range
_FIELDS = {"v", "artifact", "artifact_size", "image", "output", "extra_blobs", "metadata", "created"}
_REF = re.compile(r"[a-z0-9][a-z0-9-]{0,15}:[0-9a-f]{16,128}")


class ActionReader:
    """Batched, read-mostly view of the action cache for one run (thread-safe)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._touched: list[str] = []  # digests of hits not yet touched in the index
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()
        self._roots: dict[str, str] = {}  # digest algorithm -> its blob directory ("": unknown layout)
        self._texts: dict[str, str] | None = None  # every entry's text, once read in bulk
        self._asked = 0
        self._next_try = 256  # lookups before a bulk read is considered (then doubling)

    def expect(self, count: int) -> None:
        """About `count` lookups follow (a plan's packages): when the store holds not many more
        entries than that, read them all now rather than key by key until the schedule of
        `_text` gets there (for 10,000 cached packages, the first 2,000 lookups one by one)."""
        with self._lock:
            if self._texts is None and count >= 256:
                self._texts = self._bulk_read(limit=8 * count)

    def get(self, key: str, fresh: bool = False) -> Manifest | None:
        """`Store.ac_get(key)`; `fresh`: skip the bulk snapshot (another process may have written it)."""
        return self._peek(key, fresh)

    def flush(self) -> None:
        """Record the batched hits in the store's accounting (LRU order, hit counter)."""
        with self._lock:
            digests, hits, misses = self._touched, self._hits, self._misses
            self._touched, self._hits, self._misses = [], 0, 0
        with contextlib.suppress(StoreError, OSError, sqlite3.Error):
            if hits:
                self.store.index.touch(None, sorted(set(digests)), time.time(), "ac_hits")
                if hits > 1:
                    self.store.index.bump("ac_hits", hits - 1)
            if misses:
                self.store.index.bump("ac_misses", misses)

    def _peek(self, key: str, fresh: bool = False) -> Manifest | None:
        """`Store.ac_get` for a whole entry, minus its per-key index write (batched in `flush`)."""
        text = self.store.meta.get(AC + key) if fresh else self._text(key)
        if text is None:  # a plain miss: counted at `flush`
            with self._lock:
                self._misses += 1
            return None
        manifest = _parse(text)
        if manifest is None or not all(self._blob_ok(b) for b in manifest.blobs()):
            return self.store.ac_get(key)  # damage, or a shape we do not know: the store decides
        with self._lock:
            self._touched.extend(b.digest for b in manifest.blobs())
            self._hits += 1
        return manifest

    def _text(self, key: str) -> str | None:
        """The entry's JSON text: from one bulk read of every entry once this adapter has been
        asked for many keys and the store holds not many more (see `_bulk_read`), else one read."""
        with self._lock:
            self._asked += 1
            texts = self._texts
            if texts is None and self._asked >= self._next_try:
                self._next_try *= 2
                texts = self._texts = self._bulk_read(limit=8 * self._asked)
        if texts is not None:
            return texts.get(key)
        return self.store.meta.get(AC + key)

    def _bulk_read(self, limit: int) -> dict[str, str] | None:
        """Every action-cache entry's text in one read-only query, if there are at most `limit`.

        Why: 10,000 lookups one by one cost ~0.3 s in diskcache alone; one range query ~0.05 s.
        The doubling schedule in `_text` bounds the cost of a store much bigger than the plan.
        Rows are checked as `Meta.scan` checks them; anything unexpected means: not here (the
        per-key path, i.e. `Store.ac_get`, decides). Entries written after this read are found
        there too, as a key missing from the snapshot falls back to the store."""
        try:
            con = sqlite3.connect(f"file:{self.store.meta.db}?mode=ro", uri=True, timeout=60)
            try:
                count = con.execute("SELECT COUNT(*) FROM Cache WHERE key >= ? AND key < ?",
                                    (AC, _AC_END)).fetchone()[0]
                if count > limit:
                    return None
                rows = con.execute("SELECT key, raw, mode, filename, value FROM Cache"
                                   " WHERE key >= ? AND key < ?", (AC, _AC_END)).fetchall()
            finally:
                con.close()
        except (sqlite3.Error, OSError, AttributeError, TypeError):
            self._next_try = 1 << 62  # never again
            return None
        return {key[len(AC):]: value for key, raw, mode, filename, value in rows
                if raw == 1 and isinstance(key, str) and key.startswith(AC) and mode == MODE_RAW
                and filename is None and isinstance(value, str) and len(value) <= MAX_VALUE}

    def _blob_ok(self, blob: BlobRef) -> bool:
        try:
            st = os.lstat(self._blob_path(blob.digest))
        except (OSError, StoreError):
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == blob.size

    def _blob_path(self, digest: str) -> str:
        """`Store.blob_path` as a string, without pathlib per call (10,000 cached packages are
        20,000 of these): `<blobs>/<algorithm>/<2 hex>/<hex>`, checked once against the store."""
        algorithm, _, hexpart = digest.partition(":")
        root = self._roots.get(algorithm)
        if root is None:
            real = str(self.store.blob_path(digest))  # validates the digest
            guess = os.path.join(os.path.dirname(os.path.dirname(real)), hexpart[:2], hexpart)
            root = os.path.dirname(os.path.dirname(real)) if guess == real else ""
            self._roots[algorithm] = root
        if not root or not hexpart.isalnum():
            return str(self.store.blob_path(digest))
        return f"{root}/{hexpart[:2]}/{hexpart}"


def _parse(text: str) -> Manifest | None:
    """`cache.manifest.from_json` for the hot path: the same shape checks, except that blob
    digests are not parsed here (the caller then finds each blob by its name, which only a
    well-formed digest has); None on anything unexpected (the caller asks the store then)."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if type(raw) is not dict or raw.keys() != _FIELDS or raw["v"] != MANIFEST_VERSION:
        return None
    art, size, image, output, meta, extra, created = (
        raw["artifact"], raw["artifact_size"], raw["image"], raw["output"], raw["metadata"],
        raw["extra_blobs"], raw["created"])
    if (type(art) is not str or type(size) is not int or type(image) is not str or type(output) is not str
            or type(meta) is not dict or type(extra) is not list or type(created) not in (int, float)):
        return None
    blobs = []
    for item in extra:
        if type(item) is not list or len(item) != 2 or type(item[0]) is not str or type(item[1]) is not int:
            return None
        blobs.append(BlobRef(item[0], item[1]))
    if (image and not _REF.fullmatch(image)) or (output and not _REF.fullmatch(output)):
        return None
    return Manifest(artifact=art, artifact_size=size, image=image, output=output, metadata=meta,
                    extra_blobs=tuple(blobs), created=float(created))
