"""Render package folders in worker processes: a cold plan of a large tree is mostly
rendering templates and parsing YAML, pure CPU work that one Python process does on one core.

Workers are forked after the renderer is built, so they inherit the compiled shared templates
and the merged values instead of receiving them. Each returns what rendering a folder gives
(its cache entry as JSON text, its packages, its warnings; sent back by the standard library's
process pool, between this process and its own children, never through a file), and a user
error as its fields, re-raised by the parent at the folder where it happened. The parent keeps
the order of the scan, so results, warnings and the first error are those of a serial load.
A worker that dies (the kernel's OOM killer) is an environment error, never a hang.

`ORCH_LOAD_JOBS` sets the number of workers (default: the CPUs this process may use; 1 turns
the pool off). Small loads, and processes that already run threads (fork would copy their
locks mid-use), render in-process.
"""
from __future__ import annotations

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


def render_all(folders: list[Any], render_one: Callable[[Any], T]) -> Iterator[T]:
    """`render_one(folder)` for every folder, in order; in worker processes when it pays (the
    results then come back through multiprocessing's pipe: plain data of our own children)."""
    n = jobs()
    if n < 2 or len(folders) < MIN_PARALLEL or not can_fork():
        for folder in folders:
            yield render_one(folder)
        return
    import multiprocessing  # only here: a warm plan does not pay for importing it
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    global _JOB
    _JOB = render_one
    step = max(8, len(folders) // (n * 16))  # small tasks: even load, early first results
    # The folders travel with their tasks (pickled: a few KB each) instead of being read from the
    # parent's memory: touching inherited objects (refcounts) copies their pages into every
    # worker, and the scan's objects are spread over all of them.
    tasks = [folders[i:i + step] for i in range(0, len(folders), step)]
    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"), initializer=_quiet)
    try:
        results = pool.map(_render_range, tasks)
        for batch in results:
            for kind, payload in batch:
                if kind == "error":
                    raise _rebuild(payload)
                yield payload
    except BrokenProcessPool:
        raise errors.EnvironmentProblem(
            "a worker rendering package folders died (out of memory?)", reason=errors.Reason.WORKER_DIED,
            hint="run again, or with ORCH_LOAD_JOBS=1 to render in one process") from None
    finally:
        _JOB = None
        # on an error or interrupt too: queued folders are dropped, the few running finish
        pool.shutdown(wait=True, cancel_futures=True)


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
