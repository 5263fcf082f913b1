"""Walk a large tree with two processes: a cold plan's first, serial, step.

Walking is listing, sorting and classifying entries and statting files: mostly interpreter
work, so a thread gains nothing, but the tree's top-level folders are independent walks. Once
the walk has taken long enough to be worth sharing, a forked child walks half of the folders
left and sends back what it found, packed flat: paths and package folders as JSON, their stat
numbers as one array (decoding thousands of small tuples one by one would cost the parent
much of what the child saved it). The parent walks the rest meanwhile, then puts the pieces in
the order one walk visits them: the result is the same, order included (the stored walk and
the plan's signature follow it), and so is the first error.

As with `restat`'s child, anything odd (no fork, the child dies, an error in its share, a
short answer) only means the parent walks that share itself, and reports any error there.
"""
from __future__ import annotations

import array
import json
import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from orchestrator import jsontext
from orchestrator.errors import SpecError
from orchestrator.spec import discover, restat, walk, workers
from orchestrator.spec.discover import PackageDir, TreeScan

SPLIT_AFTER = 0.02  # seconds: a walk this short so far walks on alone (most trees are done by then)
SPLIT_MIN = 4  # top-level folders left to share (all trees together)
CHILD_SHARE = 0.5  # of the top-level folders left (measured best: the child walks a little slower,
# the parent imports the template stack meanwhile and unpacks the answer)
_clock = time.perf_counter

Job = tuple[str, str]  # (tree root, folder): one walk, of a top-level folder or of a whole tree


def scan(roots: list[str], alongside: Callable[[], AbstractContextManager[object]]) -> TreeScan:
    """`discover.scan` of absolute tree roots; `alongside` is entered once any child is forked."""
    result = TreeScan(roots, [], [], {})
    tops = []
    for root in roots:
        dstat, entries, is_package = discover.top(root)
        tops.append((root, dstat, is_package, [] if is_package else [(e.path, discover.classify(e)) for e in entries]))
    # every walk, in the order of one walk (a tree that is a package folder is one): errors are
    # reported as one walk would, the first in that order. Keyed by tree too: trees may nest.
    jobs: list[Job] = [(root, path) for root, _, is_package, kinds in tops
                       for path in ([root] if is_package else [p for p, kind in kinds if kind == "folder"])]
    pieces: dict[Job, TreeScan] = {}
    done, start = 0, _clock()
    if _can_fork():  # the first folders here, until the walk proves long enough to share
        while done < len(jobs) and _clock() - start < SPLIT_AFTER:
            pieces[jobs[done]] = _walk_one(jobs[done])
            done += 1
    rest = [job for job in jobs[done:] if job[0] != job[1]]
    theirs = _share(rest) if len(rest) >= SPLIT_MIN and _can_fork() else []
    child = _start(theirs) if theirs else None
    at = {job: i for i, job in enumerate(jobs)}
    failed: tuple[int, SpecError] | None = None
    try:
        with alongside():
            skip = set(theirs)
            for job in jobs[done:]:
                if job not in skip:
                    try:
                        pieces[job] = _walk_one(job)
                    except SpecError as exc:
                        failed = (at[job], exc)  # a share of the child's may hold an earlier one
                        break
            if child is not None:
                answer, child = _finish(child), None
                pieces.update(answer or {})
            for job in theirs:  # the child's share, when it gave no answer
                if job not in pieces and (failed is None or at[job] < failed[0]):
                    pieces[job] = _walk_one(job)
    finally:
        if child is not None:  # interrupted, or an error here: stop the child, and reap it
            _stop(child)
    if failed is not None:
        raise failed[1]
    for root, dstat, is_package, kinds in tops:  # in the order of one walk
        if is_package:
            _merge(result, pieces[(root, root)])
            continue
        result.dirs[root] = dstat
        for path, kind in kinds:
            if isinstance(kind, tuple):
                result.stats[path] = kind
            elif kind is not None:
                _merge(result, pieces[(root, path)])
    return result


def _walk_one(job: Job) -> TreeScan:
    root, path = job
    piece = TreeScan([root], [], [], {})
    if path == root:  # a tree that is a package folder: one walk
        discover.walk_tree(root, piece)
    else:
        discover.walk_folder(root, path, piece)
    return piece


def _can_fork() -> bool:
    """Two processes can walk at once: a fork copies no thread, and a second CPU is ours."""
    return workers.can_fork() and workers.jobs() >= 2


def _share(units: list[Job]) -> list[Job]:
    """The child's folders: every one whose running share passes a whole number, spread over
    the tree (neighbouring folders tend to be alike in size)."""
    return [u for i, u in enumerate(units) if int((i + 1) * CHILD_SHARE) > int(i * CHILD_SHARE)]


def _merge(out: TreeScan, piece: TreeScan) -> None:
    out.packages.extend(piece.packages)
    out.templates.extend(piece.templates)
    out.stats.update(piece.stats)
    out.dirs.update(piece.dirs)


# -- the child ------------------------------------------------------------------------------
def _start(theirs: list[Job]) -> tuple[int, int] | None:
    """Fork the child that walks `theirs`; its pid and the pipe it answers through."""
    return restat.fork_answer(lambda: _pack([(job, _walk_one(job)) for job in theirs]))


def _finish(child: tuple[int, int]) -> dict[Job, TreeScan] | None:
    """The child's pieces; None when it gave no usable answer."""
    pid, read_end = child
    data = restat.drain(read_end)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        return None
    try:
        return _unpack(data)
    except Exception:  # noqa: BLE001 - a garbled answer: walk that share here
        return None


def _stop(child: tuple[int, int]) -> None:
    pid, read_end = child
    try:
        os.close(read_end)
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


# -- the answer, packed flat ----------------------------------------------------------------
def _pack(pieces: list[tuple[Job, TreeScan]]) -> bytes:
    """JSON of the pieces' paths and package folders (each with the names of its stat entries:
    their data is found again under the folder's path), its length first (8 bytes), then every
    piece's stat numbers as one array: 4 per file, then 3 per folder."""
    doc, numbers = [], array.array("q")
    for (root, path), piece in pieces:
        numbers += walk.numbers(piece.stats.values())
        numbers += walk.numbers(piece.dirs.values())
        pkgs = [[p.tree, p.rel, p.spec_files, p.build_file, p.finalize, p.ignore, p.context, p.excluded,
                 p.ignored, [n for n, _ in p.spec_stats], [n for n, _ in p.ctx_stats]] for p in piece.packages]
        doc.append([root, path, piece.templates, list(piece.stats), list(piece.dirs), pkgs])
    text = jsontext.compact(doc).encode()
    return len(text).to_bytes(8, "little") + text + numbers.tobytes()


def _unpack(data: bytes) -> dict[Job, TreeScan]:
    size = int.from_bytes(data[:8], "little")
    doc = json.loads(data[8:8 + size])
    numbers = array.array("q")
    numbers.frombytes(data[8 + size:])
    if len(numbers) != sum(4 * len(files) + 3 * len(dirs) for _, _, _, files, dirs, _ in doc):
        raise ValueError("a short answer")
    it = iter(numbers)
    out = {}
    for root, path, templates, files, dirs, pkgs in doc:
        stats = dict(zip(files, zip(it, it, it, it)))
        piece = TreeScan([root], [], templates, stats, dict(zip(dirs, zip(it, it, it))))
        for tree, rel, spec_files, build_file, finalize, ignore, context, excluded, ignored, snames, cnames in pkgs:
            pdir = PackageDir(tree, rel, spec_files, build_file, finalize, ignore, context, excluded, ignored)
            base = pdir.path + os.sep
            pdir.spec_stats = [(n, stats[base + n]) for n in snames]
            pdir.ctx_stats = [(n, stats[base + (n if os.sep == "/" else n.replace("/", os.sep))])
                              for n in cnames]
            piece.packages.append(pdir)
        out[(root, path)] = piece
    return out
