"""The content-addressed store (blobs + action cache). Imports nothing from `orchestrator`.

    with Store(cache_dir) as s:
        d = s.put_file("pkg.tar.zst")                    # 'xxh3-128:…', durable on return
        s.ac_put(key, Manifest(artifact=d, artifact_size=size))
        m = s.ac_get(key)                                # None on miss, damage or dangling
        s.get_file(m.artifact, "out.tar.zst")            # re-hashed; False if damaged
"""
from cache.digest import ALGORITHMS, DEFAULT_ALGORITHM, Digest, digest_bytes, is_digest, parse_digest
from cache.errors import BadDigest, LockTimeout, MissingBlob, StoreError
from cache.manifest import BlobRef, Manifest
from cache.pins import Pin
from cache.reports import Dangling, GcReport, VerifyReport
from cache.store import Store
from cache.batch import ActionReader

__all__ = [
    "ALGORITHMS", "ActionReader", "DEFAULT_ALGORITHM", "BadDigest", "BlobRef", "Dangling",
    "Digest", "GcReport", "LockTimeout", "Manifest", "MissingBlob", "Pin", "Store", "StoreError",
    "VerifyReport", "digest_bytes", "is_digest", "parse_digest",
]
