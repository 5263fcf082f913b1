"""GC: LRU to a size bound (entries before blobs, pins kept), or exactly the plan's keys."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import cache.gc
from cache import BlobRef, Manifest, Store
from storehelp import run_orch, start_worker

MiB = 1 << 20


def _entry(s: Store, key: str, size: int) -> str:
    data = os.urandom(size)
    d = s.put_bytes(data)
    s.ac_put(key, Manifest(artifact=d, artifact_size=size))
    return d


def test_max_size_10m_via_cli(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with Store(root) as s:
        for i in range(40):
            _entry(s, f"k{i}", MiB)
        assert s.stats()["bytes"] == 40 * MiB
    r = run_orch("gc", "--max-size", "10M", "--cache-dir", root)
    assert r.returncode == 0, r.stderr
    assert "removed 30 blobs" in r.stdout
    with Store(root) as s:
        st = s.stats()
        assert st["bytes"] <= 10 * MiB and st["blobs"] == 10 and st["entries"] == 10
        disk = sum(f.size for f in s.blobs.walk())
        assert disk == st["bytes"]  # the accounting matches the disk
        assert s.verify().clean  # no entry dangles


def test_lru_order_and_entries_first(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = [_entry(store, f"k{i}", 1000) for i in range(5)]
    time.sleep(0.01)
    assert store.ac_get("k0") is not None  # k0 is now the most recently used
    order: list[str] = []
    real_delete, real_move = store.meta.delete, cache.gc._Trash.move
    monkeypatch.setattr(store.meta, "delete", lambda k: (order.append("entry:" + k), real_delete(k)))
    monkeypatch.setattr(cache.gc._Trash, "move", lambda t, d: (order.append(f"blob:{d}"), real_move(t, d))[1])
    report = store.gc_max_size(2000)
    assert report.removed_blobs == 3 and report.removed_entries == 3
    assert sorted(store.ac_keys()) == ["k0", "k4"]
    assert store.contains(ds[0]) and store.contains(ds[4])
    first_blob = min(i for i, e in enumerate(order) if e.startswith("blob:"))
    assert all(e.startswith("entry:") for e in order[:first_blob]) and first_blob == 3
    assert list((store.base / "trash").iterdir()) == []  # victims were unlinked after the lock


def test_gc_does_not_walk_the_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(20):
        _entry(store, f"k{i}", 100)

    def no_walk() -> None:
        raise AssertionError("gc --max-size must use the index, not walk blobs/")

    monkeypatch.setattr(store.blobs, "walk", no_walk)
    assert store.gc_max_size(1000).removed_blobs == 10
    store.stats()


def test_pins_survive(store: Store) -> None:
    old = _entry(store, "old", 1000)
    kept_by_key = _entry(store, "by-key", 1000)
    for i in range(5):
        _entry(store, f"new{i}", 1000)
    with store.pin([old], keys=["by-key"]) as pin:
        r = store.gc_max_size(0)
        assert r.pinned_blobs == 2 and r.removed_blobs == 5
        assert store.contains(old) and store.ac_get("by-key") is not None
        pin.add([kept_by_key])
        r = store.gc_keep(set())
        assert store.contains(old) and store.ac_get("by-key") is not None
    store.gc_max_size(0)
    assert not store.contains(old) and not store.contains(kept_by_key)


def test_pin_of_another_process_and_stale_pins(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with Store(root) as s:
        d = _entry(s, "k", 1000)
        p = start_worker("hold-pin", root, d)
        assert p.stdout is not None and p.stdout.readline().strip() == "pinned"
        assert s.gc_max_size(0).removed_blobs == 0 and s.contains(d)
        os.kill(p.pid, signal.SIGKILL)  # a dead build's pin no longer counts (whatever its PID)
        p.wait()
        assert s.gc_max_size(0).removed_blobs == 1 and not s.contains(d)
        assert list((s.base / "pins").iterdir()) == []


def test_keep_plan_exactly(store: Store) -> None:
    keep = {f"k{i}" for i in range(0, 10, 2)}
    shared = store.put_bytes(b"shared log")
    ds = {}
    for i in range(10):
        data = os.urandom(500)
        d = store.put_bytes(data)
        ds[f"k{i}"] = d
        store.ac_put(f"k{i}", Manifest(artifact=d, artifact_size=500,
                                       extra_blobs=(BlobRef(shared, 10),)))
        store.kv_put("cutoff", f"k{i}", {"o": d})
    orphan = store.put_bytes(b"named by nothing")
    report = store.gc_keep(keep | {"not-in-store"})
    assert sorted(store.ac_keys()) == sorted(keep)
    assert {d for k, d in ds.items() if store.contains(d)} == {ds[k] for k in keep}
    assert store.contains(shared) and not store.contains(orphan)
    assert report.removed_entries == 5 and report.removed_blobs == 6
    assert all(store.kv_get("cutoff", f"k{i}") is not None for i in range(10))  # kv: left alone
    assert store.stats()["blobs"] == 6 and store.verify().clean


def test_keep_plan_cli_wiring(tmp_path: Path) -> None:
    r = run_orch("gc", "--keep-plan", "--cache-dir", tmp_path / "c")
    assert r.returncode == 2 and "-t TREE" in r.stderr


def test_max_size_zero_empties(store: Store) -> None:
    for i in range(3):
        _entry(store, f"k{i}", 10)
    r = store.gc_max_size(0)
    assert (r.removed_blobs, r.removed_entries, r.remaining_bytes) == (3, 3, 0)
    assert store.stats()["entries"] == 0
