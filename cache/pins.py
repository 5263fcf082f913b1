"""Pins (what a running build needs kept) and per-key build locks, both on `flock`.

A pin file stays exclusively flock'ed by its process for its lifetime: if the lock can be
taken, its owner is dead (a `kill -9` releases it), whatever the PID says. GC reads pins under
the store's exclusive lock and pins are written under the shared one, so a pin is either seen
by a running GC or written after that GC is done.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator

import xxhash

from cache.digest import is_digest
from cache.errors import LockTimeout
from cache.fsutil import flock_wait, open_locked_tmp, reap_tmp


class Pin:
    """Digests and keys this process needs kept; grow it with `add`, drop it with `release`."""

    def __init__(self, directory: Path, lock: Callable[[], ContextManager[object]]) -> None:
        self._lock = lock
        self.digests: set[str] = set()
        self.keys: set[str] = set()
        with lock():
            self._fd, self.path = open_locked_tmp(directory, ".pin")

    def add(self, digests: Iterable[str] = (), keys: Iterable[str] = ()) -> None:
        self.digests.update(digests)
        self.keys.update(keys)
        data = json.dumps({"pid": os.getpid(), "digests": sorted(self.digests),
                           "keys": sorted(self.keys)}).encode()
        with self._lock():  # GC never reads a half-rewritten pin
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            os.close(self._fd)
            self._fd = -1


def live_pins(directory: Path) -> tuple[set[str], set[str]]:
    """(digests, keys) pinned by live processes; removes pin files of dead ones."""
    digests: set[str] = set()
    keys: set[str] = set()
    for entry in os.scandir(directory):
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # owner alive
                raw = os.pread(fd, 1 << 26, 0)
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    data = json.loads(raw) if raw else {}
                    digests.update(d for d in data.get("digests", []) if is_digest(d))
                    keys.update(k for k in data.get("keys", []) if isinstance(k, str))
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)  # stale: its process is gone
        finally:
            os.close(fd)
    return digests, keys


def key_lock_name(key: str) -> str:
    return xxhash.xxh3_128_hexdigest(key.encode()) + ".lock"


@contextlib.contextmanager
def key_lock(directory: Path, key: str, timeout: float | None) -> Iterator[None]:
    """Exclusive lock on one build key, across processes. Raises LockTimeout."""
    path = directory / key_lock_name(key)
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
        if not flock_wait(fd, fcntl.LOCK_EX, timeout):
            os.close(fd)
            raise LockTimeout(f"timed out after {timeout}s waiting for the lock on key {key!r}")
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file GC unlinked between our open and our lock
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)


def reap_key_locks(directory: Path) -> int:
    """Remove lock files nobody holds (holders re-check the inode, so this is race-free): the
    same rule as for temp files of dead writers."""
    return reap_tmp(directory)
