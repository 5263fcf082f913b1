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
from collections.abc import Callable
from typing import NoReturn, Protocol

from orchestrator.spec import workers

SPLIT_AT = 8192  # files: below this, a fork costs about what it saves
SPARE_SHARE = 1 / 3  # of the files, for a child that has more to do afterwards (see `Spare`)
_CHANGED = array.array("q", [-1]).tobytes()  # a child's whole answer when something changed
_FAILED = object()  # no usable answer from the child


class Spare(Protocol):
    """Work for the helper child once its share is statted (`prerender.Prerender`): it takes a
    smaller share, so that work overlaps the parent's share instead of following it."""

    def open(self) -> bool:
        """Get ready to fork (pipes); False: no spare work this time."""

    def become_child(self) -> NoReturn:
        """In the child, once its numbers are sent: do the work, then exit."""

    def adopt(self, pid: int) -> None:
        """In the parent: the child that will do the work."""


Folders = tuple[list[str], array.array]  # paths, and their mtime_ns, inode, mode (flat) as last seen


def restat(dirs: Folders, files: list[str], spare: Spare | None = None) -> array.array | None:
    """The stat data of `files` (paths in walk order; flat: size, mtime_ns, inode, mode each)
    when none of `dirs` changed since, else None (then the trees must be walked again).
    `spare`: see `Spare` (left alone when the files are too few to split)."""
    paths, known = dirs
    if len(files) < SPLIT_AT or not workers.can_fork():
        return _numbers(dirs, files)
    share = SPARE_SHARE if spare is not None else 0.5
    cut_d, cut_f = len(paths) - int(len(paths) * share), len(files) - int(len(files) * share)
    child = _start((paths[cut_d:], known[3 * cut_d:]), files[cut_f:], spare)
    try:
        first = _numbers((paths[:cut_d], known[:3 * cut_d]), files[:cut_f])
    finally:  # always read (and reap) the child: it would block on a full pipe
        second = _finish(child, 4 * (len(files) - cut_f)) if child is not None else _FAILED
    if second is _FAILED:  # its share, here
        second = _numbers((paths[cut_d:], known[3 * cut_d:]), files[cut_f:])
    return None if first is None or second is None else first + second  # type: ignore[operator]


def _numbers(dirs: Folders, files: list[str]) -> array.array | None:
    """size, mtime_ns, inode, mode of every file, flat; None when something changed."""
    lstat = os.lstat
    out = array.array("q")
    try:
        for path in dirs[0]:
            st = lstat(path)
            out.extend((st.st_mtime_ns, st.st_ino, st.st_mode))
        if out != dirs[1]:  # a folder changed (compared at once: they almost never do)
            return None
        del out[:]
        for path in files:
            st = lstat(path)
            if st.st_mode & 0o170000 == 0o040000:  # a file became a folder
                return None
            out.extend((st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode))
    except OSError:
        return None
    return out


def _start(dirs: Folders, files: list[str], spare: Spare | None,
           ) -> tuple[int, int, bool] | None:
    """Fork a child that stats `files` and answers with the numbers (or `_CHANGED`), then does
    the `spare` work, if any. Returns its pid, the pipe, and whether to reap it here."""
    if spare is not None and not spare.open():
        spare = None

    def answer() -> bytes:
        numbers = _numbers(dirs, files)
        return _CHANGED if numbers is None else numbers.tobytes()

    started = fork_answer(answer, spare)
    return None if started is None else (*started, spare is None)


def fork_answer(answer: Callable[[], bytes], spare: Spare | None = None) -> tuple[int, int] | None:
    """Fork a child that writes `answer()` to a pipe, then does the `spare` work, if any (else
    exits at once, with no clean-up of what it shares with the parent; 1 if `answer` failed).
    Its pid and the pipe's read end (see `drain`); None when it cannot be forked."""
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None  # a spare's pipes are its own to close (it never started)
    if pid == 0:  # the child
        code = 1
        try:
            os.close(read_end)
            data = memoryview(answer())
            while data:
                data = data[os.write(write_end, data):]
            code = 0
            if spare is not None:
                os.close(write_end)  # the parent reads to the end of the answer
                spare.become_child()
        finally:
            os._exit(code)
    os.close(write_end)
    if spare is not None:
        spare.adopt(pid)
    return pid, read_end


def _finish(child: tuple[int, int, bool], count: int) -> object:
    """The child's `count` numbers, None when it saw a change, `_FAILED` when it gave no
    usable answer (it died, or said too little or too much). A child that has spare work to do
    is not waited for: its answer is complete when its end of the pipe closes."""
    pid, read_end, reap = child
    data = drain(read_end)
    if reap:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return _FAILED
        if os.waitstatus_to_exitcode(status) != 0:
            return _FAILED
    if data == _CHANGED:
        return None
    if len(data) != 8 * count:
        return _FAILED
    numbers = array.array("q")
    numbers.frombytes(data)
    return numbers


def drain(read_end: int) -> bytes:
    """Everything a child writes to a pipe, up to its closing (nothing if reading fails); the
    pipe is closed."""
    chunks = []
    try:
        while chunk := os.read(read_end, 1 << 20):
            chunks.append(chunk)
    except OSError:
        chunks = []
    finally:
        os.close(read_end)
    return b"".join(chunks)
