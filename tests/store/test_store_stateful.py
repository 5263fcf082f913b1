"""A Hypothesis state machine drives the store (put, get, entries, gc, corrupt, crash, reopen)
and checks it against a plain dict model after every step."""
from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, consumes, initialize, invariant,
                                 precondition, rule)

from cache import Manifest, Store, digest_bytes
from storehelp import flip_byte

POOL = [b"", b"a", b"hello world", bytes(range(256)) * 8, b"z" * 5000]
datas = st.one_of(st.sampled_from(POOL), st.binary(min_size=1, max_size=3000))
keys = st.sampled_from([f"k{i}" for i in range(6)])


class StoreMachine(RuleBasedStateMachine):
    digests = Bundle("digests")

    @initialize()
    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="orch-stateful-"))
        self.store = Store(self.dir, durable=False)
        self.blobs: dict[str, bytes] = {}     # model: digest -> content
        self.corrupt: set[str] = set()        # damaged in place, not yet noticed
        self.entries: dict[str, str] = {}     # model: key -> artifact digest

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(target=digests, data=datas)
    def put(self, data: bytes) -> str:
        d = self.store.put_bytes(data)
        assert d == str(digest_bytes(data))
        self.blobs[d] = data
        self.corrupt.discard(d)  # a damaged copy is replaced by the good one
        return d

    @rule(d=digests)
    def get(self, d: str) -> None:
        got = self.store.get_bytes(d)
        event("get: damaged blob" if d in self.corrupt else "get: present" if d in self.blobs else "get: absent")
        if d in self.blobs and d not in self.corrupt:
            assert got == self.blobs[d]
        else:
            assert got is None  # never wrong bytes
            self.blobs.pop(d, None)
            self.corrupt.discard(d)

    @rule(key=keys, d=digests)
    def ac_put(self, key: str, d: str) -> None:
        if d in self.blobs:
            self.store.ac_put(key, Manifest(artifact=d, artifact_size=len(self.blobs[d])))
            self.entries[key] = d

    @rule(key=keys)
    def ac_get(self, key: str) -> None:
        m = self.store.ac_get(key, verify=True)
        d = self.entries.get(key)
        if d is not None and d in self.blobs and d not in self.corrupt:
            assert m is not None and m.artifact == d
        else:
            assert m is None
            self.entries.pop(key, None)
            if d in self.corrupt:  # the full check quarantined it
                self.corrupt.discard(d)
                self.blobs.pop(d, None)

    @precondition(lambda self: any(self.blobs.values()))
    @rule(r=st.randoms(use_true_random=False))
    def corrupt_one(self, r: random.Random) -> None:
        d = r.choice(sorted(d for d, v in self.blobs.items() if v))
        p = self.store.blob_path(d)
        flip_byte(p, r.randrange(p.stat().st_size))
        self.corrupt.add(d)

    @rule(limit=st.integers(0, 20_000))
    def gc_max_size(self, limit: int) -> None:
        self.store.gc_max_size(limit)
        assert self.store.stats()["bytes"] <= limit
        self._sync_after_gc()

    @rule(keep=st.sets(keys))
    def gc_keep(self, keep: set[str]) -> None:
        self.store.gc_keep(keep)
        self.entries = {k: d for k, d in self.entries.items() if k in keep}
        assert set(self.store.ac_keys()) == set(self.entries)
        on_disk = {str(f.digest) for f in self.store.blobs.walk()}
        assert on_disk == {d for d in self.entries.values() if d in self.blobs}
        self.blobs = {d: v for d, v in self.blobs.items() if d in on_disk}
        self.corrupt &= on_disk

    def _sync_after_gc(self) -> None:
        for d in list(self.blobs):
            if not self.store.contains(d):
                del self.blobs[d]
                self.corrupt.discard(d)
        stored = set(self.store.ac_keys())
        assert stored <= set(self.entries)
        for k in set(self.entries) - stored:  # evicted only together with its blob
            assert self.entries[k] not in self.blobs
        self.entries = {k: d for k, d in self.entries.items() if k in stored}

    @rule(seed=st.integers(0, 2**16))
    def crash(self, seed: int) -> None:
        """A real process killed (SIGKILL) somewhere inside a put of unrelated content."""
        event("crash")
        r = random.Random(seed)
        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            try:
                Store(self.dir, durable=False).put_bytes(os.urandom(4 << 20))
            finally:
                os._exit(0)
        time.sleep(r.uniform(0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    @rule(drop_index=st.booleans())
    def reopen(self, drop_index: bool) -> None:
        self.store.close()
        if drop_index:
            for f in self.dir.glob("store/v1/index.sqlite*"):
                f.unlink()
        self.store = Store(self.dir, durable=False)

    @rule()
    def verify(self) -> None:
        present_corrupt = {d for d in self.corrupt if d in self.blobs}
        event(f"verify: {min(len(present_corrupt), 2)}+ damaged")
        report = self.store.verify()
        assert set(report.corrupt) == present_corrupt
        assert not report.stray and not report.malformed
        assert {x.key for x in report.dangling} == {
            k for k, d in self.entries.items() if d not in self.blobs or d in self.corrupt}

    @invariant()
    def entries_agree(self) -> None:
        if hasattr(self, "store"):
            assert self.store.stats()["entries"] == len(self.entries)


StoreMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestStoreMachine = StoreMachine.TestCase
