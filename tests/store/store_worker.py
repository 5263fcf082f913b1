"""Commands run in separate processes by the store tests (python store_worker.py CMD ARGS…)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from cache import Manifest, Store


def _wait(go: str) -> None:
    while not os.path.exists(go):
        time.sleep(0.001)


def put_files(root: str, go: str, *files: str) -> None:
    """Put overlapping files at the same moment as the other workers, then read them back."""
    s = Store(root)
    _wait(go)
    out = {}
    for f in files:
        d = s.put_file(f)
        s.ac_put(f"key-{Path(f).name}", Manifest(artifact=d, artifact_size=os.path.getsize(f)))
        out[f] = d
    for f, d in out.items():
        assert s.get_bytes(d) == Path(f).read_bytes(), f
    print(json.dumps(out))


class _Stream:
    """A 16-byte random prefix then `base`: new content every time, no big allocation."""

    def __init__(self, base: bytes) -> None:
        self.parts = [os.urandom(16), memoryview(base)]

    def read(self, n: int = -1) -> bytes:
        while self.parts:
            head = self.parts[0]
            if len(head) == 0:
                self.parts.pop(0)
                continue
            chunk, self.parts[0] = head[:n], head[n:]
            return bytes(chunk)
        return b""


def crash_loop(root: str, base: str, limit: str) -> None:
    """Write large blobs and collect garbage forever (until SIGKILL); report each committed blob."""
    s = Store(root)
    data = Path(base).read_bytes()
    i = 0
    while True:
        d = s.put_stream(_Stream(data))
        s.ac_put(f"crash-{os.getpid()}-{i}", Manifest(artifact=d, artifact_size=len(data) + 16))
        print(d, flush=True)
        s.gc_max_size(int(limit))  # keeps the disk bounded, and gets killed inside GC too
        i += 1


def build_once(root: str, key: str, log: str, go: str) -> None:
    """The build-issue protocol: lock the key, build only on a miss."""
    s = Store(root)
    _wait(go)
    with s.lock_key(key):
        if s.ac_get(key) is None:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(0.3)
            d = s.put_bytes(b"artefact of " + key.encode())
            s.ac_put(key, Manifest(artifact=d, artifact_size=len(b"artefact of " + key.encode())))
    print("hit" if s.ac_get(key) is not None else "miss")


def gc_loop(root: str, seconds: str, limit: str) -> None:
    s = Store(root)
    end = time.monotonic() + float(seconds)
    n = 0
    while time.monotonic() < end:
        s.gc_max_size(int(limit))
        n += 1
    print(n)


def pinned_writer(root: str, seconds: str) -> None:
    """Put, pin, read back while GC runs: a pinned blob must never disappear."""
    s = Store(root)
    end = time.monotonic() + float(seconds)
    failures = rounds = 0
    while time.monotonic() < end:
        data = os.urandom(200_000)
        with s.pin() as pin:
            d = s.put_bytes(data)
            pin.add([d])
            # between put and pin a GC may have run: re-put under the pin (the build protocol)
            d = s.put_bytes(data)
            key = f"pw-{os.getpid()}-{rounds}"
            s.ac_put(key, Manifest(artifact=d, artifact_size=len(data)))
            pin.add(keys=[key])
            for _ in range(3):
                failures += s.get_bytes(d) != data
                failures += s.ac_get(key) is None
        rounds += 1
    print(json.dumps({"failures": failures, "rounds": rounds}))


def hold_pin(root: str, digest: str) -> None:
    s = Store(root)
    with s.pin([digest]):
        print("pinned", flush=True)
        time.sleep(60)


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    {"put-files": put_files, "crash-loop": crash_loop, "build-once": build_once,
     "gc-loop": gc_loop, "pinned-writer": pinned_writer, "hold-pin": hold_pin}[cmd](*rest)
