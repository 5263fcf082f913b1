"""The warm planner's memory, per (trees, values files) configuration under `<cache>/plan/`:

* `<config>.dirs`: per package folder, the rendered result; per context file, its digest —
  each trusted only while the files' stat data is unchanged. Read only when something changed;
  written as folders are rendered (a line each), never held whole.
* `<config>.result`: the last whole plan, the signature of everything it read (the no-change
  fast path) and the last walk of the trees (`orchestrator.spec.walk`); `<config>.explain`:
  what went into each of its keys, read only when a plan or a build needs it.
* `<config>.delta`: what plans after small edits changed of that whole plan (git's split
  index, in effect): entries by position, a few whole small values, the changed explanations.
  Rewriting tens of MB for one edited package would cost a third of such a plan; the changes
  accumulate here until they are worth a whole rewrite (`put_delta`). A delta is tied to its
  whole plan by the plan's token: one that does not match, or is damaged, is ignored, which
  is always safe (the whole plan is an older, consistent state of its own).

Each file is written atomically: a header line (schema, digest of the body) and a compact
JSON body, encoded and hashed a part at a time. A body that does not match its digest, or has
the wrong shape, is ignored (a cold plan). Large parts that are only passed through (rendered
specs, explanations) are JSON *texts*, kept as texts: a folder's entry is a string inside the
body; the specs and explanations follow the body a line each, read back with one split.

Stat data can lie when a file is modified within the filesystem's timestamp granularity of
the moment we read it ("racy git"): an entry whose files' mtimes are within `RACY_NS` of the
start of the run that read them is not remembered, so the next run reads those files again.
"""
from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

import xxhash

from orchestrator import __version__, jsontext

STATE_SCHEMA = 9  # 9: a tree's root is never a shared-templates folder (the stored walk differs)
RACY_NS = 2_000_000_000  # 2 s: coarser than any filesystem orch runs on (ext4/xfs: ns, FAT: 2 s)
Stat = tuple[int, int, int, int]
DELTA_MIN = 64 * 1024  # bytes: a delta may always grow this large (else an eighth of the whole plan)
_HEADER = f"orch-plan-state {STATE_SCHEMA} {__version__}"
_compact = jsontext.compact  # json.dumps(x, separators=(",", ":"))


def config_id(trees: list[str], values: list[str]) -> str:
    parts = [os.path.realpath(t) for t in trees] + ["--values"] + [os.path.realpath(v) for v in values]
    return xxhash.xxh3_64_hexdigest("\0".join(parts).encode())


def _body(path: str | None) -> bytes | None:
    """The body of a state file whose header matches (this version, the body's digest)."""
    if not path:
        return None
    try:
        with open(path, "rb") as fh:  # header and body read apart: an 11 MB body is not copied
            header = fh.readline().rstrip(b"\n")
            body = fh.read()
        name, _, digest = header.decode("ascii").rpartition(" ")
    except (OSError, UnicodeDecodeError):
        return None
    if name != _HEADER or digest != xxhash.xxh3_128_hexdigest(body):
        return None
    return body


def _read(path: str | None) -> Any:
    """The document of a state file, or None when it is missing, from another version, or damaged."""
    body = _body(path)
    return None if body is None else _decode(body)


def _decode(body: bytes) -> Any:
    try:
        cut = body.find(b"\n")
        doc = json.loads(body if cut < 0 else body[:cut])
        if isinstance(doc, dict) and "_lines" in doc:  # see `_write`
            key, count = doc.pop("_lines")
            lines = str(memoryview(body)[cut + 1:], "utf-8").split("\n") if count and cut >= 0 else []
            if len(lines) != count:
                return None
            doc[key] = lines
        return doc
    except (OSError, ValueError, TypeError, UnicodeDecodeError):
        return None


def _apply(result: dict[str, Any], delta: Any) -> dict[str, Any] | None:
    """`result` with the changes of `delta` (`PlanState.put_delta`), or None when the delta is
    not for this result or not well-formed (then the result holds as it is)."""
    if not isinstance(delta, dict) or delta.get("base") != result.get("token"):
        return None
    try:
        whole, patch, explain = delta["whole"], delta["patch"], delta["explain"]
        if not (isinstance(whole, dict) and isinstance(patch, dict) and isinstance(explain, dict)
                and all(isinstance(t, str) for t in explain.values())):
            return None
        out = {**result, **whole, "signature": delta["signature"]}
        for name, changes in patch.items():
            seq = out[name]
            if not isinstance(seq, list) or not isinstance(changes, dict):
                return None
            seq = out[name] = list(seq)
            for index, value in changes.items():
                i = int(index)
                if not 0 <= i < len(seq):
                    return None
                seq[i] = value
    except (KeyError, TypeError, ValueError):
        return None
    return out


def _write(path: str, doc: Any, lines: str | None = None) -> None:
    """Atomically replace `path`. The body is encoded a part at a time (see `_parts`) and hashed
    as it goes; the fixed-width header holding its digest is filled in last.

    `lines`: a key of `doc` whose value, a sized iterable of one-line strings (JSON texts,
    produced as they are written when it is lazy), is stored after the document, a line each,
    and read back with a split instead of a JSON decode (for 10,000 rendered specs that is most
    of reading the file)."""
    tail: Collection[str] = ()
    if lines is not None:
        tail = doc[lines]
        doc = {**doc, "_lines": [lines, len(tail)]}
        del doc[lines]
    _write_parts(path, itertools.chain(_parts(doc, 2), _tail(tail)))


def _write_parts(path: str, parts: Iterable[str]) -> None:
    """Atomically replace `path` with a body of these parts (see `_write`)."""
    writer = _Writer(path)
    try:
        for part in parts:
            writer.write(part)
    except BaseException:
        writer.abort()
        raise
    writer.commit()


class _Writer:
    """A state file written as it is produced: a placeholder header, the body hashed as it goes
    (buffered here and written with os.write: a forked render worker inherits this object and
    never writes it), then the header with the body's digest, and an atomic rename."""

    def __init__(self, path: str) -> None:
        import tempfile

        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self._fd, self._tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".state-")
        self._hash = xxhash.xxh3_128()
        self._buf: list[bytes] = [f"{_HEADER} {'0' * 32}\n".encode("ascii")]
        self._size = 0

    def write(self, text: str) -> None:
        raw = text.encode()
        self._hash.update(raw)
        self._buf.append(raw)
        self._size += len(raw)
        if self._size > 1 << 20:
            self._flush()

    def _flush(self) -> None:
        data = b"".join(self._buf)
        self._buf, self._size = [], 0
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def commit(self) -> None:
        try:
            self._flush()
            header = f"{_HEADER} {self._hash.hexdigest()}\n".encode("ascii")
            os.pwrite(self._fd, header, 0)
            os.close(self._fd)
            self._fd = -1
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def _tail(lines: Iterable[str]) -> Iterator[str]:
    """`"\n" + line` for every line, joined a thousand at a time (one write, not one each)."""
    it = iter(lines)
    while chunk := list(itertools.islice(it, 1024)):
        text = "\n".join(chunk)
        if text.count("\n") != len(chunk) - 1:
            raise ValueError("a state line holds a newline")  # never: JSON text escapes them
        yield "\n" + text


def _parts(doc: Any, depth: int) -> Iterator[str]:
    """`json.dumps(doc, separators=(",", ":"))` in pieces: maps and lists down to `depth`
    levels are taken apart (lists by slices), every other value is encoded whole (in C). A
    state file is tens of MB for a large tree; encoding it in one piece would hold all of that
    as text, twice, at once."""
    if depth == 0 or not isinstance(doc, (dict, list)) or not doc:
        yield _compact(doc)
        return
    if isinstance(doc, list):  # long lists (order, keys, specs of every package) in slices
        for i in range(0, len(doc), 512):
            yield ("[" if i == 0 else ",") + _compact(doc[i:i + 512])[1:-1]
        yield "]"
        return
    sep = "{"
    for key, value in doc.items():
        yield sep + jsontext.dumps(key if isinstance(key, str) else str(key)) + ":"
        yield from _parts(value, depth - 1)
        sep = ","
    yield "}"


class PlanState:
    """Implements `orchestrator.spec.load.LoadCache`, plus context-file digests and the last
    whole plan."""

    def __init__(self, cache_dir: str | None, config: str) -> None:
        base = os.path.join(cache_dir, "plan", config) if cache_dir else None
        self.dirs_path = f"{base}.dirs" if base else None
        self.result_path = f"{base}.result" if base else None
        self.explain_path = f"{base}.explain" if base else None
        self.delta_path = f"{base}.delta" if base else None
        self._delta: dict[str, Any] | None = None  # the delta applied to `result`, if any
        self._delta_out: str | None = None  # the next delta (its JSON), to be written by `save`
        self._base_size = 0  # bytes of the stored whole plan
        self._explain: Mapping[str, str] | None = None
        self._dirs: dict[str, tuple[str, str]] | None = None  # read on first use
        self._dirs_out: _Writer | None = None  # the next dirs file, written as entries come
        self._kept: set[str] = set()
        self._files: dict[str, Any] | None = None
        self._result: dict[str, Any] | None = None
        self._result_read = False
        self.started_ns = time.time_ns()  # before anything is read: the racy bound of this run
        self.dirty = False
        self.result_dirty = False
        self._used_files: set[str] = set()
        # why the state could not be written (disk full, no permission), once it happened: the
        # plan itself goes on (the state only makes the next one faster), the caller warns
        self.write_error: str | None = None

    @property
    def dirs(self) -> dict[str, tuple[str, str]]:
        """The last run's folder entries: path -> (head, entry) texts (see `_read_dirs`)."""
        if self._dirs is None:
            self._dirs, files = _read_dirs(self.dirs_path)
            if self._files is None:
                self._files = files
        return self._dirs

    @property
    def files(self) -> dict[str, Any]:
        if self._files is None:
            _ = self.dirs
        assert self._files is not None
        return self._files

    @property
    def result(self) -> dict[str, Any] | None:
        """The last whole plan, with the changes of its delta, if any."""
        if not self._result_read:
            self._result_read = True
            body = _body(self.result_path)
            doc = _decode(body) if body is not None else None
            self._result = doc if isinstance(doc, dict) else None
            if self._result is not None:
                self._base_size = len(body or b"")
                delta = _read(self.delta_path)
                patched = _apply(self._result, delta)
                if patched is not None:
                    self._result, self._delta = patched, delta
        return self._result

    def settled(self, mtime_ns: int) -> bool:
        """True when a file with this mtime cannot change unseen (it is not racy in this run)."""
        return mtime_ns < self.started_ns - RACY_NS

    # -- LoadCache -------------------------------------------------------------------------
    def has_dir(self, path: str) -> bool:
        """Whether the last run stored an entry for this folder (worth working out its `sig`)."""
        return path in self.dirs

    def get_dir(self, path: str, sig: list[Any]) -> dict[str, Any] | None:
        """A folder's stored entry when its files' stat data (`sig`) are unchanged; kept for
        the next run (streamed into the new state file at once)."""
        hit = self.dirs.get(path)
        if hit is None or hit[0] != _dir_head(path, sig):
            return None
        try:
            entry = json.loads(hit[1])
        except ValueError:
            return None
        if not isinstance(entry, dict):
            return None
        self._keep(path, hit[0], hit[1])
        return entry

    def done_dirs(self) -> None:
        """Every folder has been looked up: let go of the last run's entries (the hits are in
        the next file already). When everything changed they are tens of MB, all stale."""
        self._dirs = None  # read again if anything asks (the files' records stay)

    @staticmethod
    def dir_head(path: str, sig: list[Any]) -> str:
        """How a folder and its signature are stored (pure: a render worker may work it out)."""
        return _dir_head(path, sig)

    def put_dir(self, path: str, sig: list[Any], entry: str, head: str | None = None) -> None:
        """Remember a rendered folder (its entry as JSON text: stored, and read back, as a
        string), unless one of its files is racy (`sig[-1]`: [name, *stat]). Written to the
        new state file at once, never held: a large tree's entries are tens of MB. `head`:
        `dir_head(path, sig)`, when already worked out."""
        self.dirty = True
        if all(self.settled(st[2]) for st in sig[-1] if len(st) > 2):
            self._keep(path, head or _dir_head(path, sig), entry)

    def _keep(self, path: str, head: str, entry: str) -> None:
        if not self.dirs_path or path in self._kept or self.write_error:
            return
        try:
            if self._dirs_out is None:
                self._dirs_out = _Writer(self.dirs_path)
            self._dirs_out.write(f"D{head}\t{entry}\n")
        except OSError as exc:
            self._cannot_write(exc)
        self._kept.add(path)

    def _cannot_write(self, exc: OSError) -> None:
        """Stop writing state for this run; the files already there stay as they were."""
        where = os.path.dirname(self.dirs_path or "")
        self.write_error = self.write_error or (
            f"cannot write the plan state in {where}: {exc.strerror or exc} (the next plan starts cold)")
        self.close()

    # -- context file digests ----------------------------------------------------------------
    def file_digest(self, path: str, st: Stat) -> str:
        """`x:xxh3-128` (or `-:`, by the executable bit) of a file (a symlink: `l:target`),
        served from stat data when it was recorded for a non-racy file."""
        self._used_files.add(path)
        digest = self._recorded(path, st)
        if digest is None:
            digest = hash_file(path, st)
            self.put_file(path, st, digest)
        return digest

    def peek_digest(self, path: str, st: Stat) -> str:
        """`file_digest` that records nothing: for a render worker, whose records would be lost
        (the parent records what the worker sends back, with `put_file`)."""
        return self._recorded(path, st) or hash_file(path, st)

    def _recorded(self, path: str, st: Stat) -> str | None:
        hit = self.files.get(path)
        if isinstance(hit, list) and len(hit) == 5 and hit[:4] == list(st) and isinstance(hit[4], str):
            return hit[4]
        return None

    def put_file(self, path: str, st: Stat, digest: str) -> None:
        """Remember a file's digest (worked out here or by a render worker) unless it is racy."""
        self._used_files.add(path)
        if self.settled(st[1]):
            self.files[path] = [*st, digest]
        else:
            self.files.pop(path, None)
        self.dirty = True

    # -- whole-plan result (the no-change fast path, and the base of an incremental plan) ------
    def get_result(self, signature: str) -> dict[str, Any] | None:
        result = self.result
        if result is not None and result.get("signature") == signature:
            return result
        return None

    def put_result(self, signature: str | None, result: dict[str, Any], explain: Mapping[str, str]) -> None:
        """`signature`: None when some file was racy (the result is then never used as is, only as
        the base of an incremental plan, which re-reads racy folders). `explain`: per package, its
        explanation as JSON (kept apart: rarely needed, large); tied to the result by a token."""
        token = os.urandom(12).hex()
        self._result, self._result_read = {"signature": signature, "token": token, **result}, True
        self._explain = explain
        self.result_dirty = True

    def put_delta(self, signature: str | None, whole: dict[str, Any], patch: dict[str, dict[int, Any]],
                  explain: Mapping[str, str]) -> bool:
        """Store changes to the stored result (`self.result`) as a delta instead of a whole new
        result: `whole`, values that replace the stored ones; `patch`, per list of the result,
        new values by position; `explain`, changed explanations. They add up with the delta
        already applied. False, and nothing stored, when there is no stored result or the delta
        would grow past an eighth of it (then a whole result should be stored instead)."""
        base = self.result
        if base is None or not self.delta_path:
            return False
        old = self._delta or {}
        merged = {name: {**old.get("patch", {}).get(name, {}), **{str(i): v for i, v in changes.items()}}
                  for name, changes in patch.items()}
        delta = {"base": base["token"], "signature": signature, "whole": whole,
                 "patch": {**old.get("patch", {}), **merged},
                 "explain": {**old.get("explain", {}), **explain}}
        text = _compact(delta)  # measured, and written as it is
        if len(text) > max(DELTA_MIN, self._base_size // 8):
            return False
        self._delta_out = text
        return True

    def get_explanations(self, token: Any) -> dict[str, str] | None:
        """The explanations stored with the result of this token, if intact (with those of its
        delta)."""
        if not isinstance(token, str):
            return None
        doc = _read(self.explain_path)
        if not isinstance(doc, dict) or doc.get("token") != token:
            return None
        ids, texts = doc.get("ids"), doc.get("texts")
        if not isinstance(ids, list) or not isinstance(texts, list) or len(ids) != len(texts):
            return None
        out = dict(zip(map(str, ids), texts))
        if self._delta is not None and self._delta["base"] == token:
            out.update(self._delta["explain"])
        return out

    def save_dirs(self) -> None:
        """Finish the folders' and files' records and let go of them (tens of MB for a large
        tree, not needed by the rest of a plan; read again if anything asks). Unchanged (no
        folder rendered, no file hashed): the last file stays."""
        out, self._dirs_out, self._kept = self._dirs_out, None, set()
        if self.dirs_path and self.dirty and not self.write_error:
            files = {k: v for k, v in self.files.items() if k in self._used_files}
            try:
                out = out or _Writer(self.dirs_path)
                out.write("F" + _compact(files))
                out.commit()
            except OSError as exc:
                self._cannot_write(exc)
            self.dirty = False
            self._dirs, self._files = None, None
        elif out is not None:
            out.abort()

    def close(self) -> None:
        """Drop a state file left half-written by a plan that failed."""
        if self._dirs_out is not None:
            self._dirs_out.abort()
            self._dirs_out = None

    def save(self) -> None:
        """Atomic rewrites; entries not used by this run are dropped so the state never grows."""
        self.save_dirs()
        if self.result_path and self.explain_path and self.result_dirty and self._result is not None:
            assert self._explain is not None
            ids = list(self._explain)
            try:
                if not self.write_error:
                    _write(self.explain_path, {"token": self._result["token"], "ids": ids,
                                               "texts": _Lazy(ids, self._explain)}, lines="texts")
                    _write(self.result_path, self._result, lines="specs")
                    if self.delta_path:
                        try:
                            os.unlink(self.delta_path)  # (it names the old token: ignored anyway)
                        except FileNotFoundError:
                            pass
            except OSError as exc:
                self._cannot_write(exc)
            self.result_dirty = False
        elif self.delta_path and self._delta_out is not None and not self.write_error:
            try:
                _write_parts(self.delta_path, [self._delta_out])
            except OSError as exc:
                self._cannot_write(exc)
        self._delta_out = None


def _dir_head(path: str, sig: list[Any]) -> str:
    return _compact([path, sig])


def _read_dirs(path: str | None) -> tuple[dict[str, tuple[str, str]], dict[str, Any]]:
    """A dirs file: a line per folder, `D` + head (JSON [path, stat signature]) + tab + entry
    (JSON text, never decoded here), then one `F` line: the files' records. ({}, {}) when
    missing or damaged."""
    body = _body(path)
    if body is None:
        return {}, {}
    try:
        *lines, last = body.decode().split("\n")
        if not last.startswith("F"):
            return {}, {}
        files = json.loads(last[1:])
        dirs: dict[str, tuple[str, str]] = {}
        for line in lines:
            head, tab, entry = line.partition("\t")
            if not head.startswith("D") or not tab:
                return {}, {}
            dirs[str(json.loads(head[1:])[0])] = (head[1:], entry)
    except (ValueError, TypeError, IndexError, UnicodeDecodeError):
        return {}, {}
    return (dirs, files) if isinstance(files, dict) else ({}, {})


class _Lazy(Collection[str]):
    """The values of `mapping` for `keys`, produced one at a time (never all held at once)."""

    def __init__(self, keys: list[str], mapping: Mapping[str, str]) -> None:
        self._keys, self._mapping = keys, mapping

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return (self._mapping[k] for k in self._keys)

    def __contains__(self, item: object) -> bool:
        return any(item == v for v in self)


def hash_file(path: str, st: Stat) -> str:
    mode = st[3]
    if (mode & 0o170000) == 0o120000:
        return "l:" + os.readlink(path)
    h = xxhash.xxh3_128()
    # through the descriptor: `open()`'s file object costs two fstat, an ioctl and an lseek per
    # file, more than reading one of a build context's usual small files
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)
    # only the executable bit: checkouts and copies disagree on group/other bits, builds don't
    return f"{'x' if mode & 0o111 else '-'}:{h.hexdigest()}"
