"""`storeview.StoreAdapter`'s fast lookups agree with `Store.ac_get` (no buildah needed)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from cache import Store
from orchestrator.model import BuildOutput
from orchestrator.storeview import StoreAdapter


def populate(root: Path, n: int) -> dict[str, str]:
    """n entries saved as a build saves them; key -> artefact digest."""
    adapter = StoreAdapter(Store(root, durable=False))
    out = {}
    try:
        for i in range(n):
            art, arc = root / "a", root / "i"
            art.write_bytes(f"artefact {i}".encode())
            arc.write_bytes(f"image {i}".encode())
            key = f"{i:032x}"
            rec = adapter.save(key, f"o{key}", f"cat/p{i}@1", BuildOutput(str(art), f"{i:064x}", f"localhost/x:{i}"),
                               str(arc), {"key": key})
            out[key] = rec.artifact
    finally:
        adapter.close()
    return out


@pytest.mark.parametrize("bulk", [False, True])
def test_lookups_match_the_store(tmp_path: Path, bulk: bool) -> None:
    saved = populate(tmp_path, 40)
    adapter = StoreAdapter.open(str(tmp_path))
    adapter.reader._next_try = 1 if bulk else 1 << 62
    try:
        for key, artifact in saved.items():
            rec = adapter.record(key)
            assert rec is not None and rec.artifact == artifact and rec.image_archive
            assert rec.image_name.startswith("localhost/x:")
        assert adapter.record("f" * 32) is None
        assert (adapter.reader._texts is not None) == bulk
    finally:
        adapter.close()
    with Store(tmp_path) as store:
        stats = store.stats()
        assert stats["hits"] >= 40 and stats["misses"] >= 1  # batched counters were written


@pytest.mark.parametrize("bulk", [False, True])
def test_damaged_entries_are_misses_and_removed(tmp_path: Path, bulk: bool) -> None:
    saved = populate(tmp_path, 3)
    keys = sorted(saved)
    with Store(tmp_path) as store:
        os.chmod(store.blob_path(saved[keys[0]]), 0o644)
        os.unlink(store.blob_path(saved[keys[0]]))  # artefact gone
        text = store.meta.get("ac:" + keys[1])
        assert text is not None
        store.meta.set("ac:" + keys[1], text.replace('"v":1', '"v":1,"x":2'))  # unknown shape
    adapter = StoreAdapter.open(str(tmp_path))
    adapter.reader._next_try = 1 if bulk else 1 << 62
    try:
        assert adapter.record(keys[0]) is None
        assert adapter.record(keys[1]) is None
        assert adapter.record(keys[2]) is not None
    finally:
        adapter.close()
    with Store(tmp_path) as store:
        assert store.meta.get("ac:" + keys[0]) is None  # the dangling entry was removed


def test_fresh_sees_what_another_process_wrote(tmp_path: Path) -> None:
    populate(tmp_path, 1)
    adapter = StoreAdapter.open(str(tmp_path))
    try:
        late = f"{7:032x}"
        assert adapter.record(late) is None
        writer = StoreAdapter.open(str(tmp_path))
        try:
            art = tmp_path / "late"
            art.write_bytes(b"late")
            writer.save(late, "o", "cat/late@1", BuildOutput(str(art), "", ""), None, {})
        finally:
            writer.close()
        assert adapter.record(late) is None  # remembered for this run
        fresh = adapter.record(late, fresh=True)
        assert fresh is not None and fresh.image_name == "" and fresh.image_archive == ""
        assert adapter.record(late) == fresh
    finally:
        adapter.close()


def test_waiting_for_a_key_lock_gives_up_on_cancel(tmp_path: Path) -> None:
    import threading
    import time

    from orchestrator.errors import Interrupted

    holder, waiter = StoreAdapter.open(str(tmp_path)), StoreAdapter.open(str(tmp_path))
    cancel = threading.Event()
    try:
        with holder.lock("k"):  # another orch building "k"
            threading.Timer(0.3, cancel.set).start()
            t0 = time.monotonic()
            with pytest.raises(Interrupted):
                with waiter.lock("k", cancel):
                    pytest.fail("got a lock that is held")
            assert time.monotonic() - t0 < 2
        with waiter.lock("k", cancel):  # free again: taken at once, cancelled or not
            pass
    finally:
        holder.close()
        waiter.close()


@pytest.mark.parametrize("expected,stored,bulk", [(300, 40, True), (300, 3000, False), (10, 40, False)])
def test_expect_reads_in_bulk_only_when_the_store_is_not_much_larger(
        tmp_path: Path, expected: int, stored: int, bulk: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """`expect(n)` (a plan of n packages) reads every entry at once when the store holds at most
    8n of them, else leaves the key-by-key schedule alone; the answers are the same."""
    from cache import batch

    saved = populate(tmp_path, 40)
    adapter = StoreAdapter.open(str(tmp_path))
    if stored > 40:  # pretend the store is large: the bulk read must decline
        real = batch.ActionReader._bulk_read
        monkeypatch.setattr(batch.ActionReader, "_bulk_read",
                            lambda self, limit: None if stored > limit else real(self, limit))
    try:
        adapter.expect(expected)
        assert (adapter.reader._texts is not None) == bulk
        for key, artifact in saved.items():
            rec = adapter.record(key)
            assert rec is not None and rec.artifact == artifact
    finally:
        adapter.close()
