"""The orchestrator's view of the store (`cache.Store`): what planning asks (is this key
cached? what did its last build see?) and what execution records (artefact, package image
archive, early-cutoff key, explanation). The only module that knows the store's API.

Speed (10,000 cached packages): a hit is read as `Store.ac_get` reads it, without its
per-key index write (batched at close), with a lighter parse, and for many keys from one
bulk read; anything unexpected goes to `Store.ac_get` itself (see `StoreAdapter`).

Namespaces in the store's JSON key-value space:
  `equiv/<output key>` → input key of a build with those dependency outputs (early cutoff)
  `explain/<package id>` → what went into the last build of that package (plan reasons)
  `image/<reference>` → resolved digest of a base image
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
from collections.abc import Iterator
from typing import Any

from cache import BlobRef, LockTimeout, Manifest, Store, StoreError
from cache.manifest import VERSION as MANIFEST_VERSION
from cache.meta import MAX_VALUE
from cache.store import AC
from diskcache.core import MODE_RAW
from orchestrator.errors import EnvironmentProblem, Interrupted, Reason
from orchestrator.execute import Record
from orchestrator.model import BuildOutput


_AC_END = AC[:-1] + chr(ord(AC[-1]) + 1)  # upper bound of the action-cache key range
# cache.manifest's shape, for `_parse`; should it drift, `_parse` says None and the store decides
_FIELDS = {"v", "artifact", "artifact_size", "image", "output", "extra_blobs", "metadata", "created"}
_REF = re.compile(r"[a-z0-9][a-z0-9-]{0,15}:[0-9a-f]{16,128}")


class ImageDigests:
    """`images.DigestCache` over the store's key-value space."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, name: str) -> str | None:
        value = self.store.kv_get("image", name)
        return value if isinstance(value, str) else None

    def put(self, name: str, digest: str) -> None:
        self.store.kv_put("image", name, digest)


class StoreAdapter:
    """Lookups are remembered for the adapter's life (one orch run): the plan looks every key
    up once and execution asks again for the same keys. A hit is checked like `Store.ac_get`
    (entry parses, every blob it names is there with its size), but its LRU touch and the
    hit/miss counters are batched into one index transaction at `close` instead of one per
    key; a damaged entry goes through `Store.ac_get` itself (which removes it)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._memo: dict[str, Record | None] = {}
        self._touched: list[str] = []  # digests of hits not yet touched in the index
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()
        self._roots: dict[str, str] = {}  # digest algorithm -> its blob directory ("": unknown layout)
        self._texts: dict[str, str] | None = None  # every entry's text, once read in bulk
        self._asked = 0
        self._next_try = 256  # lookups before a bulk read is considered (then doubling)

    @classmethod
    def open(cls, cache_dir: str, create: bool = False) -> "StoreAdapter":
        try:
            return cls(Store(cache_dir))
        except (StoreError, OSError) as exc:
            raise EnvironmentProblem(f"cannot open the store: {exc}", reason=Reason.STORE_ERROR,
                                     file=cache_dir, hint="check permissions, or pass another --cache-dir") from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.store.close()

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

    def image_digests(self) -> ImageDigests:
        return ImageDigests(self.store)

    # ------------------------------------------------------------------ planning (StoreView)
    def output_of(self, key: str) -> dict[str, str] | None:
        record = self.record(key)
        return record.outputs if record else None

    def output_of_equivalent(self, okey: str) -> dict[str, str] | None:
        record = self.equivalent(okey)
        return record.outputs if record else None

    def last_build(self, package_id: str) -> dict[str, Any] | None:
        value = self.store.kv_get("explain", package_id)
        return value if isinstance(value, dict) else None

    # ------------------------------------------------------------------ execution (execute.Store)
    def record(self, key: str, fresh: bool = False) -> Record | None:
        """The entry for `key` as a Record, or None; `fresh`: ask the store again (another
        process may have written it since)."""
        if not fresh:
            with self._lock:
                if key in self._memo:
                    return self._memo[key]
        manifest = self._peek(key, fresh)
        record = None if manifest is None else _record(key, manifest)
        with self._lock:
            self._memo[key] = record
        return record

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

    def equivalent(self, okey: str) -> Record | None:
        key = self.store.kv_get("equiv", okey)
        return self.record(key) if isinstance(key, str) else None

    def alias(self, key: str, record: Record, package_id: str, explanation: dict[str, Any]) -> None:
        """Hash equivalence: `key` produced what `record.key` did; register it under `key` too."""
        manifest = self.store.ac_get(record.key)
        if manifest is None:
            return
        aliased = Manifest(
            artifact=manifest.artifact, artifact_size=manifest.artifact_size, image=manifest.image,
            output=manifest.output, metadata={**manifest.metadata, "equivalent_to": record.key},
            extra_blobs=manifest.extra_blobs)
        self.store.ac_put(key, aliased)
        self.store.kv_put("explain", package_id, explanation)
        with self._lock:
            self._memo[key] = _record(key, aliased)

    @contextlib.contextmanager
    def lock(self, key: str, cancel: threading.Event | None = None) -> Iterator[None]:
        """The key's build-once lock. While another process holds it (building that key), wait;
        give up with `Interrupted` once `cancel` is set (^C must not wait for the other build)."""
        with contextlib.ExitStack() as stack:
            while True:
                try:
                    stack.enter_context(self.store.lock_key(key, timeout=0.2))
                    break
                except LockTimeout:
                    if cancel is not None and cancel.is_set():
                        raise Interrupted() from None
            yield

    def pin(self, keys: list[str]) -> contextlib.AbstractContextManager[Any]:
        return self.store.pin(keys=keys)

    def fetch_artifact(self, record: Record, dest: str) -> bool:
        return self.store.get_file(record.artifact, dest)

    def fetch_image_archive(self, record: Record, dest: str) -> bool:
        return bool(record.image_archive) and self.store.get_file(record.image_archive, dest)

    def save(self, key: str, okey: str, package_id: str, output: BuildOutput,
             image_archive: str | None, explanation: dict[str, Any]) -> Record:
        """Blobs first (durable), then the entry naming them, then the lookups that lead to it."""
        artifact = self.store.put_file(output.artifact)
        extra = []
        archive_digest = ""
        if image_archive:
            archive_digest = self.store.put_file(image_archive)
            extra.append(BlobRef(archive_digest, os.path.getsize(image_archive)))
        subs = {}
        for ref, path in output.subpackages:
            digest = self.store.put_file(path)
            subs[ref.id] = digest
            extra.append(BlobRef(digest, os.path.getsize(path)))
        image = f"sha256:{output.image_id}" if output.image_id and ":" not in output.image_id else output.image_id
        self.store.ac_put(key, Manifest(
            artifact=artifact, artifact_size=os.path.getsize(output.artifact), image=image,
            metadata={"id": package_id, "image_name": output.image_name, "output_key": okey,
                      "subpackages": subs, "image_archive": archive_digest},
            extra_blobs=tuple(extra)))
        self.store.kv_put("equiv", okey, key)
        self.store.kv_put("explain", package_id, explanation)
        record = Record(key, artifact, image, output.image_name, archive_digest)
        with self._lock:
            self._memo[key] = record
        return record


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


def _record(key: str, manifest: Manifest) -> Record:
    meta = manifest.metadata
    name = meta.get("image_name")
    archive = meta.get("image_archive")
    if not isinstance(archive, str):  # entries written before `image_archive` was recorded
        archive = manifest.extra_blobs[0].digest if manifest.extra_blobs and name else ""
    return Record(key, manifest.artifact, manifest.image, name if isinstance(name, str) else "", archive)


@contextlib.contextmanager
def opened(cache_dir: str) -> Iterator[StoreAdapter]:
    adapter = StoreAdapter.open(cache_dir, create=True)
    try:
        yield adapter
    finally:
        adapter.close()
