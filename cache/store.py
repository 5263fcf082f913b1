"""`Store`: the one object the rest of orch uses; blobs (CAS) + action cache + kv + coordination.

On disk, under the cache directory (relative names only, so the directory can be moved):

    store/v1/FORMAT                         {"format": "orch-store", "version": 1, "algorithm": …}
    store/v1/blobs/<algorithm>/<2 hex>/<hex> immutable 0444 blobs
    store/v1/tmp/                            in-flight writes (flock'ed by their writer)
    store/v1/quarantine/                     damaged files set aside; emptied by gc
    store/v1/ac/cache.db                     diskcache: action cache + kv, JSON text only
    store/v1/index.sqlite                    accounting (derived, rebuildable)
    store/v1/locks/gc.lock, locks/keys/      store lock (shared: writers, exclusive: gc), key locks
    store/v1/pins/                           one flock'ed file per live pin
    store/v1/trash/                          GC victims between rename and unlink
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any, BinaryIO, ContextManager, Iterable, Iterator

from cache.blobs import Blobs, Readable, Staged
from cache.digest import ALGORITHMS, DEFAULT_ALGORITHM, Digest, parse_digest
from cache.errors import BadDigest, MissingBlob, StoreError
from cache.fsutil import file_lock, make_dirs, reap_tmp, write_file_atomic
from cache.index import Index
from cache.manifest import Manifest, check, from_json
from cache.meta import MAX_VALUE, Meta
from cache.pins import Pin, key_lock, live_pins
from cache.reports import GcReport, VerifyReport

FORMAT_VERSION = 1
AC, KV = "ac:", "kv:"
_NS_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= 4096 or "\0" in key:
        raise ValueError(f"invalid cache key: {key!r}")
    return key


class Store:
    """A content-addressed store in `root/store/v1`; safe for many processes at once."""

    def __init__(self, root: str | os.PathLike[str], *, algorithm: str | None = None,
                 durable: bool = True) -> None:
        """`durable=False` skips fsync: still safe against `kill -9`, not against power loss."""
        self.root = Path(root)
        self.base = self.root / "store" / f"v{FORMAT_VERSION}"
        self.durable = durable
        try:
            make_dirs(self.base, durable)
            self.algorithm = self._format(algorithm)
            self.blobs = Blobs(self.base, self.algorithm, durable)
            self.blobs.ensure_layout()
            for d in ("locks/keys", "pins", "trash"):
                make_dirs(self.base / d, durable)
            reap_tmp(self.blobs.tmp)
            self.meta = Meta(self.base / "ac", self.blobs.quarantine_dir)
            self.index = Index(self.base / "index.sqlite", self.blobs.quarantine_dir)
            self.index.open()
            if self.index.fresh:
                with self.exclusive():
                    if self.index.counter("initialized") == 0:
                        self.rebuild_index()
        except OSError as e:
            raise StoreError(f"cannot use cache directory {self.root}: {e.strerror or e}") from e
        except sqlite3.Error as e:  # e.g. locked for longer than the timeout, or unreadable
            raise StoreError(f"cannot use cache directory {self.root}: {e}") from e

    def _format(self, algorithm: str | None) -> str:
        path = self.base / "FORMAT"
        data: Any = None
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_bytes()[:4096])
        if isinstance(data, dict) and data.get("format") == "orch-store":
            if data.get("version") != FORMAT_VERSION or data.get("algorithm") not in ALGORITHMS:
                raise StoreError(f"{path}: unsupported store format {data!r}")
            default = str(data["algorithm"])
        else:  # missing or unreadable: (re)write it; the v1 directory already says what this is
            default = algorithm or DEFAULT_ALGORITHM
            if default not in ALGORITHMS:
                raise BadDigest(f"unknown digest algorithm {default!r}")
            body = {"format": "orch-store", "version": FORMAT_VERSION, "algorithm": default}
            write_file_atomic(path, json.dumps(body).encode() + b"\n", self.durable)
        algorithm = algorithm or default
        if algorithm not in ALGORITHMS:
            raise BadDigest(f"unknown digest algorithm {algorithm!r}")
        return algorithm

    def close(self) -> None:
        self.index.close()
        self.meta.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- locks -------------------------------------------------------------------------------
    def shared(self) -> ContextManager[None]:
        """Held briefly by every writer; excludes a running GC."""
        return file_lock(self.base / "locks" / "gc.lock", exclusive=False)

    def exclusive(self) -> ContextManager[None]:
        """Held by GC and repair: no write can register or name a blob meanwhile."""
        return file_lock(self.base / "locks" / "gc.lock", exclusive=True)

    def lock_key(self, key: str, timeout: float | None = None) -> ContextManager[None]:
        """Build-once lock: a second process building `key` waits here, then finds the entry."""
        return key_lock(self.base / "locks" / "keys", _check_key(key), timeout)

    @contextlib.contextmanager
    def pin(self, digests: Iterable[str] = (), keys: Iterable[str] = ()) -> Iterator[Pin]:
        """Keep these blobs and entries (and the blobs those name) through any GC until exit."""
        p = Pin(self.base / "pins", self.shared)
        try:
            p.add(digests, keys)
            yield p
        finally:
            p.release()

    def pinned(self) -> tuple[set[str], set[str]]:
        """(digests, keys) pinned by live processes, digests including those named by the keys."""
        digests, keys = live_pins(self.base / "pins")
        return digests | self.index.digests_of(keys), keys

    # ---- blobs -------------------------------------------------------------------------------
    def _commit(self, staged: Staged) -> str:
        try:
            self.blobs.commit(staged, self.shared,
                              lambda d, size: self.index.add_blob(str(d), size, time.time()))
        finally:
            staged.close()
        return str(staged.digest)

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store a file's content; returns its digest. Durable before this returns."""
        return self._commit(self.blobs.stage_file(Path(path)))

    def put_stream(self, reader: Readable) -> str:
        return self._commit(self.blobs.stage_stream(reader))

    def put_bytes(self, data: bytes) -> str:
        return self.put_stream(io.BytesIO(data))

    def _found(self, d: Digest, ok: bool) -> bool:
        if ok:
            self.index.touch(None, [str(d)], time.time(), "blob_hits")
        else:
            self.index.bump("blob_misses")
        return ok

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> bool:
        """Copy a blob to `dest`, verified; False (dest untouched) when missing or damaged."""
        d = parse_digest(digest)
        return self._found(d, self.blobs.copy_verified(d, Path(dest)))

    def open_blob(self, digest: str) -> BinaryIO | None:
        """A verified, read-only file object (hashed in full before it is returned), or None."""
        d = parse_digest(digest)
        f = self.blobs.open_verified(d)
        self._found(d, f is not None)
        return f

    def get_bytes(self, digest: str) -> bytes | None:
        f = self.open_blob(digest)
        if f is None:
            return None
        with f:
            return f.read()

    def contains(self, digest: str) -> bool:
        """Present under its name (not re-hashed: reads do that)."""
        try:
            return stat.S_ISREG(os.lstat(self.blob_path(digest)).st_mode)
        except FileNotFoundError:
            return False

    def blob_path(self, digest: str) -> Path:
        """Where a blob lives. Trusted uses only: not verified, and GC may remove it unless pinned."""
        return self.blobs.path(parse_digest(digest))

    def check_blob(self, digest: str) -> str:
        """'ok' | 'missing' | 'corrupt' after a full re-hash (a corrupt blob is quarantined)."""
        return self.blobs.check(parse_digest(digest))

    # ---- action cache ------------------------------------------------------------------------
    def ac_put(self, key: str, manifest: Manifest) -> None:
        """Record an entry. Every blob it names must already be in the store (durable)."""
        _check_key(key)
        problem = check(manifest)
        if problem:
            raise ValueError(f"invalid manifest: {problem}")
        now = time.time()
        if not manifest.created:
            manifest = dataclasses.replace(manifest, created=now)
        text = manifest.to_json()
        with self.shared():
            for b in manifest.blobs():
                try:
                    st = os.lstat(self.blob_path(b.digest))
                except FileNotFoundError:
                    raise MissingBlob(b.digest) from None
                if not stat.S_ISREG(st.st_mode) or st.st_size != b.size:
                    raise MissingBlob(b.digest)
            self.index.set_entry(key, [b.digest for b in manifest.blobs()], now)
            self.meta.set(AC + key, text)

    def _blob_ok(self, digest: str, size: int, verify: bool) -> bool:
        try:
            st = os.lstat(self.blob_path(digest))
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return False
        return not verify or self.check_blob(digest) == "ok"

    def ac_get(self, key: str, *, verify: bool = False) -> Manifest | None:
        """The entry for `key` if it and every blob it names are whole; otherwise None (a miss).

        Blobs are checked by size (one stat each), or re-hashed in full with `verify=True`.
        An entry naming a missing or damaged blob is removed.
        """
        _check_key(key)
        text = self.meta.get(AC + key)
        m = from_json(text) if text is not None else None
        if m is not None and not all(self._blob_ok(b.digest, b.size, verify) for b in m.blobs()):
            self.meta.delete_if(AC + key, str(text))
            m = None
        if m is None:
            self.index.bump("ac_misses")
            return None
        now = time.time()
        self.index.touch(key, [b.digest for b in m.blobs()], now, "ac_hits")
        return m.with_last_used(now)

    def ac_delete(self, key: str) -> None:
        self.meta.delete(AC + _check_key(key))
        self.index.drop_entries([key])

    def ac_keys(self) -> list[str]:
        return sorted(k[len(AC):] for _, k, _ in self.meta.scan() if k and k.startswith(AC))

    # ---- small JSON namespaces (e.g. early cutoff: input key → output digest) ----------------
    @staticmethod
    def _kv_key(namespace: str, key: str) -> str:
        if not namespace or len(namespace) > 64 or not set(namespace) <= _NS_CHARS:
            raise ValueError(f"invalid namespace: {namespace!r}")
        return f"{KV}{namespace}:{_check_key(key)}"

    def kv_put(self, namespace: str, key: str, value: Any) -> None:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        if len(text) > MAX_VALUE:
            raise ValueError("kv value larger than 1 MiB")
        self.meta.set(self._kv_key(namespace, key), text)

    def kv_get(self, namespace: str, key: str) -> Any | None:
        """The JSON value, or None when absent or unreadable."""
        text = self.meta.get(self._kv_key(namespace, key))
        if text is None:
            return None
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return None

    def kv_delete(self, namespace: str, key: str) -> None:
        self.meta.delete(self._kv_key(namespace, key))

    # ---- maintenance -------------------------------------------------------------------------
    def rebuild_index(self) -> int:
        """Re-derive the accounting from blobs/ and the action cache (caller holds exclusive())."""
        files = {str(f.digest): (f.size, f.mtime) for f in self.blobs.walk() if f.digest}
        entries: dict[str, set[str]] = {}
        for _, k, text in self.meta.scan():
            m = from_json(text) if k and k.startswith(AC) and text else None
            if m is not None and k is not None:
                entries[k[len(AC):]] = {b.digest for b in m.blobs()}
        return self.index.reconcile(files, entries)

    def gc_max_size(self, max_bytes: int) -> GcReport:
        """Evict least recently used blobs (their entries first) until at most `max_bytes`."""
        from cache.gc import gc_max_size
        return gc_max_size(self, max_bytes)

    def gc_keep(self, keys: Iterable[str]) -> GcReport:
        """Keep exactly these entries (plus pins) and the blobs they name; drop everything else."""
        from cache.gc import gc_keep
        return gc_keep(self, set(keys))

    def verify(self, repair: bool = False) -> VerifyReport:
        """Re-hash every blob and check every entry; with `repair`, remove what is damaged."""
        from cache.verify import verify
        return verify(self, repair)

    def stats(self) -> dict[str, Any]:
        n, total = self.index.totals()
        c = self.index.counters()
        return {
            "blobs": n, "bytes": total, "entries": self.meta.count(AC), "kv": self.meta.count(KV),
            "hits": c.get("ac_hits", 0), "misses": c.get("ac_misses", 0),
            "blob_hits": c.get("blob_hits", 0), "blob_misses": c.get("blob_misses", 0),
            "quarantined": sum(1 for _ in os.scandir(self.blobs.quarantine_dir)),
            "algorithm": self.algorithm,
        }
