"""Re-stat the files of the last walk: the whole of a warm no-op plan's IO, and most of its time.

When none of the last walk's folders changed (a folder's mtime changes whenever an entry is
added, removed or renamed in it), no file was added, removed or renamed anywhere, and statting
the known files tells exactly what a new walk would, for a fraction of its cost (no listing,
sorting or classifying).

A large tree is statted by two processes (git's preloaded index does the same with threads; a
Python thread gains nothing here, each call needs the interpreter lock to build its result): a
forked child stats the second half and sends the numbers back through a pipe. Anything odd
with the child (it cannot be forked, dies, or sends a short answer) only means the parent
stats that half itself.
"""
from __future__ import annotations

import array
import os
import threading

from orchestrator.spec.discover import DirStat, Stat

SPLIT_AT = 8192  # files: below this, a fork costs about what it saves
_CHANGED = array.array("q", [-1]).tobytes()  # a child's whole answer when something changed
_FAILED = object()  # no usable answer from the child


def restat(dirs: list[tuple[str, DirStat]], files: list[str]) -> dict[str, Stat] | None:
    """The stat data of `files` (paths in walk order) when none of `dirs` changed since, else
    None (then the trees must be walked again)."""
    if len(files) < SPLIT_AT or not hasattr(os, "fork") or threading.active_count() > 1:
        numbers = _numbers(dirs, files)
    else:
        half_d, half_f = len(dirs) // 2, len(files) // 2
        child = _start(dirs[half_d:], files[half_f:])
        try:
            first = _numbers(dirs[:half_d], files[:half_f])
        finally:  # always read and reap the child (it would block on a full pipe)
            second = _finish(child, 4 * (len(files) - half_f)) if child is not None else _FAILED
        if second is _FAILED:  # its half, here
            second = _numbers(dirs[half_d:], files[half_f:])
        numbers = None if first is None or second is None else first + second  # type: ignore[operator]
    if numbers is None:
        return None
    it = iter(numbers)
    return {path: (size, mtime, ino, mode) for path, size, mtime, ino, mode in zip(files, it, it, it, it)}


def _numbers(dirs: list[tuple[str, DirStat]], files: list[str]) -> array.array | None:
    """size, mtime_ns, inode, mode of every file, flat; None when something changed."""
    lstat = os.lstat
    out = array.array("q")
    try:
        for path, known in dirs:
            st = lstat(path)
            if (st.st_mtime_ns, st.st_ino, st.st_mode) != known:
                return None
        for path in files:
            st = lstat(path)
            if st.st_mode & 0o170000 == 0o040000:  # a file became a folder
                return None
            out.extend((st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode))
    except OSError:
        return None
    return out


def _start(dirs: list[tuple[str, DirStat]], files: list[str]) -> tuple[int, int] | None:
    """Fork a child that stats `files` and writes the numbers (or `_CHANGED`) to a pipe."""
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: this, then out at once (no clean-up of what it shares with the parent)
        code = 1
        try:
            os.close(read_end)
            numbers = _numbers(dirs, files)
            data = memoryview(_CHANGED if numbers is None else numbers.tobytes())
            while data:
                data = data[os.write(write_end, data):]
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def _finish(child: tuple[int, int], count: int) -> object:
    """The child's `count` numbers, None when it saw a change, `_FAILED` when it gave no
    usable answer (it died, or said too little or too much)."""
    pid, read_end = child
    chunks = []
    try:
        while chunk := os.read(read_end, 1 << 20):
            chunks.append(chunk)
    except OSError:
        chunks = []
    finally:
        os.close(read_end)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return _FAILED
    data = b"".join(chunks)
    if os.waitstatus_to_exitcode(status) != 0:
        return _FAILED
    if data == _CHANGED:
        return None
    if len(data) != 8 * count:
        return _FAILED
    numbers = array.array("q")
    numbers.frombytes(data)
    return numbers
