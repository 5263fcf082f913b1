"""Deterministic `.tar.zst` artefacts: same content in, same bytes out (reliability.md §5).

Why byte-identical: the content store and remote caches address artefacts by digest, and a
rebuild that reproduces the bytes cuts off rebuilding downstream. So: tree-order sorted
members, numeric uid/gid with empty user/group names, mtimes clamped to SOURCE_DATE_EPOCH
(default 0), integer mtimes (no float PAX records), no atime/ctime, PAX format (long names),
hardlinks stored once, one zstd frame at a fixed level with no worker threads.
Extraction lives in `orchestrator.backend.unpack` (re-exported here as `unpack_artifact`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from typing import IO

import zstandard

from orchestrator.backend.fstree import WHITEOUT_PREFIX, Node, tree_key
from orchestrator.backend.unpack import Limits, open_archive, unpack_artifact

__all__ = [
    "ZSTD_LEVEL",
    "Limits",
    "list_members",
    "read_members",
    "source_date_epoch",
    "unpack_artifact",
    "write_artifact",
    "write_empty_artifact",
]

ZSTD_LEVEL = 3  # zstd's default, as cOS uses; changing it changes every artefact's bytes
# Extended attributes kept in artefacts (file capabilities, e.g. `ping`); everything else dropped.
KEPT_XATTRS = ("security.capability",)
_PAX_XATTR = "SCHILY.xattr."
_TAR_TYPES = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "c": tarfile.CHRTYPE,
              "b": tarfile.BLKTYPE, "p": tarfile.FIFOTYPE}


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH from the environment (reproducible-builds.org), 0 when unset or invalid."""
    try:
        return max(0, int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    except ValueError:
        return 0


def write_artifact(
    dest: str,
    root: str | None,
    paths: Sequence[str],
    nodes: Mapping[str, Node],
    whiteouts: Sequence[str] = (),
    *,
    epoch: int | None = None,
    level: int = ZSTD_LEVEL,
) -> tuple[str, ...]:
    """Archive `paths` (absolute, `/usr/bin/x`) read below `root`, plus whiteouts for `whiteouts`.

    Written to a temporary file and renamed, so `dest` is complete or absent. Returns the file
    list luet records (member names of everything but directories and whiteouts).
    """
    clamp = source_date_epoch() if epoch is None else epoch
    members: list[tuple[str, str | None]] = [(p, p) for p in paths if nodes[p].kind != "s"]
    for gone in whiteouts:
        parent, _, base = gone.rpartition("/")
        members.append((f"{parent}/{WHITEOUT_PREFIX}{base}", None))
    ordered = sorted(members, key=lambda m: tree_key(m[0]))
    tmp = f"{dest}.tmp.{os.getpid()}"
    files: list[str] = []
    links: dict[tuple[int, int], str] = {}
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=0)
    try:
        with open(tmp, "wb") as raw, cctx.stream_writer(raw, closefd=False) as zw, \
                tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            for name, path in ordered:
                arcname = name.lstrip("/")
                if path is None:
                    tf.addfile(_whiteout(arcname, clamp))
                    continue
                node = nodes[path]
                info = _info(arcname, node, clamp)
                if node.kind == "f" and node.nlink > 1:
                    first = links.setdefault((node.dev, node.ino), arcname)
                    if first != arcname:
                        info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
                if node.kind != "d":
                    files.append(arcname)
                if info.type == tarfile.REGTYPE and root is not None:
                    _add_xattrs(info, root + path)
                    with _open_nofollow(root + path) as fh:
                        tf.addfile(info, fh)
                else:
                    tf.addfile(info)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return tuple(sorted(files))


def write_empty_artifact(dest: str) -> tuple[str, ...]:
    """The artefact of a virtual package: a valid, empty, byte-stable archive."""
    return write_artifact(dest, None, [], {})


def _info(arcname: str, node: Node, clamp: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.type = _TAR_TYPES[node.kind]
    info.mode = node.mode
    info.uid, info.gid = node.uid, node.gid
    info.uname = info.gname = ""
    info.mtime = max(0, min(node.mtime, clamp))
    info.size = node.size if node.kind == "f" else 0
    if node.kind == "l":
        info.linkname = node.target
    if node.kind in ("c", "b"):
        info.devmajor, info.devminor = os.major(node.rdev), os.minor(node.rdev)
    return info


def _whiteout(arcname: str, clamp: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.type, info.mode, info.uname, info.gname, info.mtime = tarfile.REGTYPE, 0o644, "", "", max(0, clamp)
    return info


def _add_xattrs(info: tarfile.TarInfo, real: str) -> None:
    for key in KEPT_XATTRS:
        try:
            value = os.getxattr(real, key, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                continue
            raise
        info.pax_headers = {**info.pax_headers, _PAX_XATTR + key: value.decode("utf-8", "surrogateescape")}


@contextlib.contextmanager
def _open_nofollow(path: str) -> Iterator[IO[bytes]]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        yield fh


def read_members(path: str) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """(member, data of regular files) of an artefact, for inspection and tests (no extraction)."""
    with open_archive(path) as tf:
        for info in tf:
            fh = tf.extractfile(info) if info.isreg() else None
            yield info, (fh.read() if fh is not None else None)


def list_members(path: str) -> list[str]:
    return [info.name for info, _ in read_members(path)]
