"""Render package folders in this process and in forked children at once: a cold plan of a
large tree is mostly rendering templates and parsing YAML, pure CPU work that one Python
process does on one core.

Children are forked after the renderer is built, so they inherit the compiled shared templates
and the merged values instead of receiving them. Tasks (a few folders each) are handed out in
order (`_Pool`): each child is kept a few ahead, and this process renders the next one itself
whenever the result it needs next is not back yet, so its own share never crosses a pipe. A
child answers with what rendering a folder gives (its cache entry as JSON text, its packages,
its warnings; multiprocessing's pipes, between this process and its own children, never a
file), and a user error as its fields, re-raised here at the folder where it happened. Results
come out in the scan's order, so they, the warnings and the first error are those of a serial
load. A child that dies (the kernel's OOM killer) is an environment error, never a hang.

`ORCH_LOAD_JOBS` sets the number of processes (default: the CPUs this process may use; 1: no
children). Small loads, and processes that already run threads (fork would copy their locks
mid-use), render in this process only.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from orchestrator import errors

MIN_PARALLEL = 32  # folders: below this, starting workers costs more than it saves (a folder of
# a real tree costs ~10 ms to render: compiling its templates dominates)
T = TypeVar("T")

# The function of this load, set in the parent just before the fork (workers inherit it).
_JOB: Callable[[Any], Any] | None = None


def can_fork() -> bool:
    """Whether this process may fork a helper: fork copies only the calling thread, so not
    while other threads run (their locks would be copied mid-use)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def jobs() -> int:
    text = os.environ.get("ORCH_LOAD_JOBS", "")
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def render_all(folders: list[Any], render_one: Callable[[Any], T],
               meanwhile: Callable[[], None] | None = None) -> Iterator[T]:
    """`render_one(folder)` for every folder, in order: in this process and, when it pays, in
    forked children too. `meanwhile`: other work of this process's, done once the children have
    their first share of the folders (in one process: first)."""
    n = jobs()
    if n < 2 or len(folders) < MIN_PARALLEL or not can_fork():
        if meanwhile is not None:
            meanwhile()
        for folder in folders:
            yield render_one(folder)
        return
    global _JOB
    _JOB = render_one
    pool = _Pool()
    try:
        pool.start(n - 1)
        for batch in pool.run(split(folders, n), meanwhile):
            for kind, payload in batch:
                if kind == "error":
                    raise _rebuild(payload)
                if kind == "bug":
                    raise RuntimeError(f"a worker rendering package folders failed:\n{payload}")
                yield payload
    finally:
        _JOB = None
        pool.stop()  # at once, on an error or interrupt too: children have nothing to finish


STEP = 24  # folders a task at most (~10 ms of the usual work)
AHEAD = 3  # tasks a child holds: it never waits for the next while this process renders one


def split(folders: list[Any], n: int) -> list[list[Any]]:
    """Tasks for `n` processes, smaller and smaller towards the end (guided scheduling: each
    a 4n-th of what is left, at most STEP folders): the last ones even the load out, whatever
    a folder costs (~0.5 ms for a plain one, ~10 ms where templates are compiled)."""
    tasks, at = [], 0
    while at < len(folders):
        size = max(1, min(STEP, (len(folders) - at) // (4 * n)))
        tasks.append(folders[at:at + size])
        at += size
    return tasks


class _Child:
    """A forked worker: takes (index, folders) from one pipe, answers (index, results) on the
    other. Never more task bytes in flight than half its pipe holds: this process then never
    blocks handing out a task, so it always reads the answers a child may be blocked writing."""

    def __init__(self, pid: int, tasks: Any, answers: Any, room: int) -> None:
        self.pid, self.tasks, self.answers = pid, tasks, answers
        self.room = room  # task bytes that may be in flight
        self.sizes: list[int] = []  # bytes of each task sent and not answered yet, in order

    @classmethod
    def fork(cls, others: list[_Child]) -> _Child | None:
        from multiprocessing.connection import Pipe  # only here: a warm plan does not import it

        try:
            take_tasks, give_tasks = Pipe(duplex=False)
            read_answers, write_answers = Pipe(duplex=False)
        except OSError:
            return None
        room = _widen(give_tasks.fileno()) // 2
        _widen(write_answers.fileno())  # a child seldom waits for this process to read
        try:
            pid = os.fork()
        except OSError:
            for conn in (take_tasks, give_tasks, read_answers, write_answers):
                conn.close()
            return None
        if pid == 0:
            code = 1
            try:
                _quiet()
                for conn in (give_tasks, read_answers, *(c for o in others for c in (o.tasks, o.answers))):
                    conn.close()
                _serve(take_tasks, write_answers)
                code = 0
            finally:
                os._exit(code)
        take_tasks.close()
        write_answers.close()
        return cls(pid, give_tasks, read_answers, room)

    def give(self, index: int, task: list[Any]) -> bool:
        """Hand a task over, unless it does not fit in what is left of the pipe."""
        from multiprocessing.reduction import ForkingPickler

        data = ForkingPickler.dumps((index, task))
        if sum(self.sizes) + len(data) > self.room:
            return False
        try:
            self.tasks.send_bytes(data)  # what `recv` reads back (multiprocessing's own framing)
        except OSError:  # its end is closed: it died
            raise _died() from None
        self.sizes.append(len(data))
        return True

    def receive(self) -> tuple[int, list[tuple[str, Any]]]:
        try:
            index, batch = self.answers.recv()
        except (EOFError, OSError):
            raise _died() from None
        self.sizes.pop(0)  # a child answers its tasks in the order it got them
        return index, batch


def _died() -> errors.EnvironmentProblem:
    return errors.EnvironmentProblem(
        "a worker rendering package folders died (out of memory?)", reason=errors.Reason.WORKER_DIED,
        hint="run again, or with ORCH_LOAD_JOBS=1 to render in one process")


def _serve(tasks: Any, answers: Any) -> None:
    """A child's life: render every task it is given, until this process closes the pipe."""
    while True:
        try:
            index, task = tasks.recv()
        except EOFError:
            return
        try:
            batch = _render_range(task)
        except Exception:  # a bug: shown by the parent, with its traceback
            import traceback

            batch = [("bug", traceback.format_exc())]
        answers.send((index, batch))


class _Pool:
    """Forked children plus this process, rendering tasks handed out in order. No threads: a
    process pool's feeder and result threads take the GIL from this process's rendering at
    every hand-off, which left its worker waiting for work."""

    def __init__(self) -> None:
        self.children: list[_Child] = []

    def start(self, children: int) -> None:
        for _ in range(children):
            child = _Child.fork(self.children)
            if child is None:
                break  # fewer children (or none: all of it here)
            self.children.append(child)

    def run(self, tasks: list[list[Any]], meanwhile: Callable[[], None] | None = None,
            ) -> Iterator[list[tuple[str, Any]]]:
        """Each task's results, in task order. Children start with a larger share (up to an
        `n`th of a quarter of the tasks, the largest ones), and this process does `meanwhile`
        first: a child that ran out of tasks meanwhile would wait."""
        from multiprocessing.connection import wait

        done: dict[int, list[tuple[str, Any]]] = {}
        by_conn = {c.answers: c for c in self.children}
        sent = 0  # tasks [0, sent) are handed out (to a child or to this process)

        def hand_out(child: _Child, ahead: int = AHEAD) -> None:
            nonlocal sent
            while len(child.sizes) < ahead and sent < len(tasks) and child.give(sent, tasks[sent]):
                sent += 1

        def take(timeout: float | None) -> None:
            for conn in wait(list(by_conn), timeout):
                child = by_conn[conn]  # type: ignore[index]
                index, batch = child.receive()
                done[index] = batch
                hand_out(child)

        first = max(AHEAD, len(tasks) // (4 * (len(self.children) + 1)))
        for child in self.children:
            hand_out(child, first)
        if meanwhile is not None:
            meanwhile()
        for i in range(len(tasks)):
            while i not in done:
                take(0)
                if i in done:
                    break
                for child in self.children:  # one may wait behind a task too large for its pipe
                    hand_out(child)
                if sent < len(tasks):  # `i` is this one (maybe too large for a pipe), or a child's
                    sent += 1
                    done[sent - 1] = _render_range(tasks[sent - 1])
                else:
                    take(None)  # every task is handed out: `i` is a child's
            yield done.pop(i)

    def stop(self) -> None:
        """End the children and reap them: killed, since one may be mid-task (their work is
        only rendering; they write nothing)."""
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            child.tasks.close()
            child.answers.close()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
        self.children = []


def _widen(fd: int) -> int:
    """Make a pipe as large as Linux allows without privileges (1 MiB; the default is 64 KiB);
    the bytes it holds."""
    import fcntl

    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    try:
        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return 1 << 16  # POSIX guarantees far less; Linux and the BSDs hold this much


def _quiet() -> None:
    """Workers leave Ctrl-C to the parent, which stops them (no tracebacks from each)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _render_range(task: list[Any]) -> list[tuple[str, Any]]:
    assert _JOB is not None
    render_one = _JOB
    out: list[tuple[str, Any]] = []
    for folder in task:
        try:
            out.append(("done", render_one(folder)))
        except errors.OrchError as exc:
            out.append(("error", (type(exc).__name__, exc.message, exc.reason.value, exc.file,
                                  exc.line, exc.hint)))
            break  # the parent stops at the first error: the rest of this range is not needed
    return out


def _rebuild(fields: tuple[str, str, str, str | None, int | None, str | None]) -> errors.OrchError:
    name, message, reason, file, line, hint = fields
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.OrchError)) or cls in (
            errors.UsageError, errors.Interrupted):
        cls = errors.SpecError
    return cls(message, reason=errors.Reason(reason), file=file, line=line, hint=hint)
