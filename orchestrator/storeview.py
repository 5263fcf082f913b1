"""The orchestrator's view of the store (`cache.Store`): what planning asks (is this key
cached? what did its last build see?) and what execution records (artefact, package image
archive, early-cutoff key, explanation). The only module that knows the store's API.

Speed (10,000 cached packages): lookups go through `cache.ActionReader` (bulk reads, index
writes batched at close) and are remembered for the run.

Namespaces in the store's JSON key-value space:
  `equiv/<output key>` → input key of a build with those dependency outputs (early cutoff)
  `explain/<package id>` → what went into the last build of that package (plan reasons)
  `image/<reference>` → resolved digest of a base image
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from cache import ActionReader, BlobRef, LockTimeout, Manifest, Store, StoreError
from orchestrator.errors import EnvironmentProblem, Interrupted, Reason
from orchestrator.execute import Record
from orchestrator.model import BuildOutput



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
        self._lock = threading.Lock()
        self.reader = ActionReader(store)

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
        self.reader.flush()

    def image_digests(self) -> ImageDigests:
        return ImageDigests(self.store)

    # ------------------------------------------------------------------ planning (StoreView)
    def expect(self, count: int) -> None:
        """A hint: about `count` keys are about to be asked for (see `cache.ActionReader`)."""
        self.reader.expect(count)

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
        manifest = self.reader.get(key, fresh)
        record = None if manifest is None else _record(key, manifest)
        with self._lock:
            self._memo[key] = record
        return record

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
