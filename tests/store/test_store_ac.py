"""Action cache and kv: JSON-only entries, written after their blobs, damage is a miss."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from cache import BlobRef, Manifest, MissingBlob, Store
from cache.manifest import from_json

from storehelp import flip_byte


def _put(store: Store, data: bytes) -> Manifest:
    d = store.put_bytes(data)
    return Manifest(artifact=d, artifact_size=len(data))


def _raw_set(store: Store, key: str, value: object) -> None:
    """Write a row behind the store's back, as a tampered CI cache would."""
    con = sqlite3.connect(store.meta.db)
    con.execute("UPDATE Cache SET value=? WHERE key=?", (value, key))
    con.commit()
    con.close()


def test_round_trip_and_last_use(store: Store) -> None:
    log = store.put_bytes(b"log")
    m = Manifest(artifact=store.put_bytes(b"art"), artifact_size=3, image="sha256:" + "a" * 64,
                 output="xxh3-128:" + "b" * 32, metadata={"pkg": "a/b@1", "n": [1, 2]},
                 extra_blobs=(BlobRef(log, 3),))
    store.ac_put("k", m)
    got = store.ac_get("k")
    assert got is not None
    assert (got.artifact, got.image, got.output, got.metadata, got.extra_blobs) == \
        (m.artifact, m.image, m.output, m.metadata, m.extra_blobs)
    assert got.created > 0 and got.last_used >= got.created
    again = store.ac_get("k")
    assert again is not None and again.last_used >= got.last_used
    assert store.ac_get("other") is None
    st = store.stats()
    assert (st["entries"], st["hits"], st["misses"]) == (1, 2, 1)


def test_entry_needs_its_blobs_first(store: Store) -> None:
    with pytest.raises(MissingBlob):
        store.ac_put("k", Manifest(artifact="xxh3-128:" + "1" * 32, artifact_size=1))
    m = _put(store, b"abc")
    with pytest.raises(MissingBlob):  # wrong size: not the blob the build thinks it is
        store.ac_put("k", Manifest(artifact=m.artifact, artifact_size=4))
    with pytest.raises(ValueError):
        store.ac_put("k", Manifest(artifact="not-a-digest", artifact_size=1))
    assert store.ac_get("k") is None


def test_missing_blob_is_a_miss_and_entry_goes(store: Store) -> None:
    m = _put(store, b"abc")
    store.ac_put("k", m)
    os.unlink(store.blob_path(m.artifact))
    assert store.ac_get("k") is None
    assert store.ac_keys() == []


def test_flipped_byte_caught_by_full_verify(store: Store) -> None:
    m = _put(store, os.urandom(10_000))
    store.ac_put("k", m)
    flip_byte(store.blob_path(m.artifact))
    assert store.ac_get("k") is not None  # quick check: size only (a stat)
    assert store.ac_get("k", verify=True) is None  # full re-hash: miss, blob quarantined
    assert not store.contains(m.artifact)
    assert store.stats()["quarantined"] == 1


@pytest.mark.parametrize("garbage", [
    "{", "[]", "null", '"x"', json.dumps({"v": 2}), "1" * 100, b"\x80\x04K\x01.",
    json.dumps({"v": 1, "artifact": "../../etc/passwd", "artifact_size": 1, "image": "",
                "output": "", "extra_blobs": [], "metadata": {}, "created": 0}),
    json.dumps({"v": 1, "artifact": "xxh3-128:" + "0" * 32, "artifact_size": -1, "image": "",
                "output": "", "extra_blobs": [], "metadata": {}, "created": 0}),
    "[" * 100_000 + "]" * 100_000,
])
def test_garbled_entries_are_misses(store: Store, garbage: object) -> None:
    m = _put(store, b"abc")
    store.ac_put("k", m)
    _raw_set(store, "ac:k", garbage)
    assert store.ac_get("k") is None
    assert not store.verify().clean


def test_manifest_parser_rejects_extra_fields() -> None:
    m = Manifest(artifact="xxh3-128:" + "0" * 32, artifact_size=1)
    raw = json.loads(m.to_json())
    assert from_json(json.dumps(raw)) == m
    raw["evil"] = 1
    assert from_json(json.dumps(raw)) is None


def test_keys_are_validated(store: Store) -> None:
    m = _put(store, b"abc")
    for bad in ("", "a\0b", "x" * 5000):
        with pytest.raises(ValueError):
            store.ac_put(bad, m)
    store.ac_put("pkg/name@1.0 with spaces: ü", m)
    assert store.ac_get("pkg/name@1.0 with spaces: ü") is not None


def test_kv_namespace(store: Store) -> None:
    store.kv_put("cutoff", "in-key", {"output": "xxh3-128:" + "0" * 32})
    assert store.kv_get("cutoff", "in-key") == {"output": "xxh3-128:" + "0" * 32}
    assert store.kv_get("cutoff", "other") is None
    assert store.kv_get("other-ns", "in-key") is None
    with pytest.raises(ValueError):
        store.kv_put("Bad:NS", "k", 1)
    with pytest.raises(ValueError):
        store.kv_put("ns", "k", float("nan"))
    _raw_set(store, "kv:cutoff:in-key", "{broken")
    assert store.kv_get("cutoff", "in-key") is None
    store.kv_delete("cutoff", "in-key")
    assert store.stats()["kv"] == 0


def test_dangling_entry_healed_by_rebuild(store: Store, tmp_path: Path) -> None:
    """The build protocol: miss → rebuild → put → ac_put; the store ends clean."""
    m = _put(store, b"payload")
    store.ac_put("k", m)
    os.chmod(store.blob_path(m.artifact), 0o644)
    os.unlink(store.blob_path(m.artifact))
    report = store.verify()
    assert [x.key for x in report.dangling] == ["k"]
    assert store.ac_get("k") is None
    store.ac_put("k", _put(store, b"payload"))
    assert store.ac_get("k") is not None and store.verify().clean
