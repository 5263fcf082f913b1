"""Small POSIX helpers: durable renames, flock-based locks, temp files that prove their owner is alive.

A temp file is held under an exclusive `flock` for as long as its writer lives, so recovery can
tell a live write from the leftovers of a `kill -9` without PIDs (which get reused) or ages.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from pathlib import Path
from typing import Iterator

_O_TMP = os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename/creation inside it survives a power cut (Gitaly#5072)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path, durable: bool) -> None:
    """mkdir -p that fsyncs each parent it added an entry to."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o755)
        if durable:
            fsync_dir(d.parent)


def open_locked_tmp(directory: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create a unique temp file, exclusively flock'ed; retries if recovery unlinked it first."""
    while True:
        path = directory / f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"
        fd = os.open(path, _O_TMP, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:  # still linked: recovery did not take it in the gap
            return fd, path
        os.close(fd)


def reap_tmp(directory: Path) -> int:
    """Delete temp files whose writer is dead (their flock is free). Returns how many."""
    reaped = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            st = os.stat(entry.path, follow_symlinks=False)
            if st.st_ino == os.fstat(fd).st_ino:
                os.unlink(entry.path)
                reaped += 1
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return reaped


def write_file_atomic(path: Path, data: bytes, durable: bool, mode: int = 0o644) -> None:
    """tmp + fsync + rename + fsync(dir): readers see the old file or the new one, never half."""
    fd, tmp = open_locked_tmp(path.parent, ".part")
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        if durable:
            os.fsync(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    if durable:
        fsync_dir(path.parent)


def flock_wait(fd: int, op: int, timeout: float | None) -> bool:
    """flock with an optional timeout (flock itself has none): poll with a short backoff."""
    if timeout is None:
        fcntl.flock(fd, op)
        return True
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


@contextlib.contextmanager
def file_lock(path: Path, exclusive: bool) -> Iterator[None]:
    """A whole-file flock (shared or exclusive) for the duration of the block."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock

