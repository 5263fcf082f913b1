"""Root filesystem listings, the package-over-builder delta, and luet's include/exclude selection.

Why a walk and not a layer blob: comparing two mounted trees works with any storage driver and
gives luet's view (paths of the flattened images). Unlike luet 0.35, files that `steps` *modify*
are kept and deletions become OCI whiteouts, so installing the artefact reproduces the change.
Never follows symlinks: the trees were written by untrusted build steps.
"""
from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.errors import BuildError, Reason, SpecError

# Container-runtime noise. `/proc`, `/sys`, `/dev` are mount points inside a container: what is
# below them is never package content. `buildah run` leaves these placeholders behind (empty
# files and dirs, ecosystem.md §1.8): dropped when still empty. `/tmp`, `/run` content and
# `/luetbuild` are kept, as luet keeps them (cOS excludes `^/luetbuild` and `^/tmp` explicitly).
VIRTUAL_DIRS = ("/proc", "/sys", "/dev")
PLACEHOLDER_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
PLACEHOLDER_DIRS = ("/proc", "/sys", "/dev", "/run")
WHITEOUT_PREFIX = ".wh."
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Node:
    """What an archive records about one path (from `lstat`), plus identity for hardlinks."""

    kind: str  # f regular, d dir, l symlink, c/b char/block device, p fifo, s socket
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    size: int
    mtime: int  # seconds
    mtime_ns: int
    target: str = ""  # symlink target
    rdev: int = 0
    ino: int = 0
    dev: int = 0
    nlink: int = 1


_KINDS = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFCHR: "c",
          stat.S_IFBLK: "b", stat.S_IFIFO: "p", stat.S_IFSOCK: "s"}


def node_of(st: os.stat_result, target: str = "") -> Node:
    return Node(_KINDS.get(stat.S_IFMT(st.st_mode), "?"), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                st.st_size if stat.S_ISREG(st.st_mode) else 0, int(st.st_mtime), st.st_mtime_ns, target,
                st.st_rdev, st.st_ino, st.st_dev, st.st_nlink)


def scan(root: str) -> dict[str, Node]:
    """Every path below `root` as `/abs/path` → Node (the root itself excluded), symlinks not followed."""
    out: dict[str, Node] = {}
    stack = [("", root)]
    while stack:
        rel, real = stack.pop()
        with os.scandir(real) as it:
            for entry in it:
                path = f"{rel}/{entry.name}"
                st = entry.stat(follow_symlinks=False)
                target = os.readlink(entry.path) if stat.S_ISLNK(st.st_mode) else ""
                out[path] = node_of(st, target)
                if stat.S_ISDIR(st.st_mode) and path not in VIRTUAL_DIRS:
                    stack.append((path, entry.path))
    return out


def real_subdir(root: str, subdir: str) -> str:
    """`root/subdir` for `package_dir`, refusing symlinked components (they could point at the host)."""
    path = root
    for part in [p for p in subdir.split("/") if p not in ("", ".")]:
        if part == "..":
            raise SpecError(f"package_dir must not contain '..': {subdir!r}", reason=Reason.INVALID_SPEC)
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise BuildError(f"package_dir {subdir!r} does not exist in the package image",
                             reason=Reason.BUILD_FAILED) from None
        if not stat.S_ISDIR(st.st_mode):
            raise BuildError(f"package_dir {subdir!r} is not a real directory in the package image",
                             reason=Reason.BUILD_FAILED)
    return path


def is_noise(path: str, node: Node, *, delta: bool) -> bool:
    """Container-runtime leftovers that never belong in an artefact (see module constants)."""
    if any(path.startswith(d + "/") for d in VIRTUAL_DIRS):
        return True
    if path in PLACEHOLDER_FILES and node.kind == "f" and node.size == 0:
        return True
    return delta and path in PLACEHOLDER_DIRS


def same_content(a: str, b: str) -> bool:
    """Byte comparison of two regular files, opened without following a final symlink."""
    fa = os.open(a, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fb = os.open(b, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while True:
                ca, cb = os.read(fa, _CHUNK), os.read(fb, _CHUNK)
                if ca != cb:
                    return False
                if not ca:
                    return True
        finally:
            os.close(fb)
    finally:
        os.close(fa)


def unchanged(path: str, old: Node, new: Node, old_root: str, new_root: str) -> bool:
    """Type, mode, owner, symlink target, device number, size and content all equal.

    Regular files with equal size and mtime are taken as equal without reading them (both trees
    come from images committed with `--timestamp 0`, so any rewrite shows in the mtime).
    """
    if (old.kind, old.mode, old.uid, old.gid, old.target, old.rdev) != (new.kind, new.mode, new.uid, new.gid,
                                                                        new.target, new.rdev):
        return False
    if old.kind != "f":
        return True
    if old.size != new.size:
        return False
    return old.mtime_ns == new.mtime_ns or same_content(old_root + path, new_root + path)


def delta(old: Mapping[str, Node], new: Mapping[str, Node], old_root: str, new_root: str) -> tuple[list[str], list[str]]:
    """(added or modified paths, deleted paths) of `new` over `old`; noise left out.

    A deleted directory is reported once (its whiteout hides everything below it); paths whose
    parent stopped being a directory are not reported (the replacement entry covers them).
    """
    changed = [p for p, n in new.items()
               if not is_noise(p, n, delta=True) and (p not in old or not unchanged(p, old[p], n, old_root, new_root))]
    deleted = []
    for path, node in old.items():
        if path in new or is_noise(path, node, delta=True):
            continue
        parent = path.rsplit("/", 1)[0]
        if parent == "" or (parent in new and new[parent].kind == "d"):
            deleted.append(path)
    return sort_paths(changed), sort_paths(deleted)


def compile_patterns(patterns: Iterable[str], field: str) -> list[re.Pattern[str]]:
    out = []
    for pattern in patterns:
        try:
            out.append(re.compile(pattern))
        except re.error as exc:
            raise SpecError(f"{field}: invalid regular expression {pattern!r}: {exc}",
                            reason=Reason.INVALID_SPEC) from None
    return out


def selector(includes: Sequence[str], excludes: Sequence[str]) -> Selector:
    return Selector(compile_patterns(includes, "includes"), compile_patterns(excludes, "excludes"))


@dataclass(frozen=True)
class Selector:
    """luet's filter: `re.search` on the absolute path; excludes win; with includes, only matches.

    Every entry is judged on its own path (directories too): `^/usr/bin/yq` keeps that file but
    not `/usr/bin`'s other children; parents of kept entries are added by `with_parents`.
    """

    includes: list[re.Pattern[str]]
    excludes: list[re.Pattern[str]]

    def keep(self, path: str) -> bool:
        if self.includes and not any(p.search(path) for p in self.includes):
            return False
        return not any(p.search(path) for p in self.excludes)

    def filter(self, paths: Iterable[str]) -> list[str]:
        return [p for p in paths if self.keep(p)]


def with_parents(paths: Iterable[str], nodes: Mapping[str, Node]) -> list[str]:
    """`paths` plus every ancestor directory, so an archive never relies on implicit `mkdir -p`."""
    out = set(paths)
    for path in list(out):
        parent = path.rsplit("/", 1)[0]
        while parent and parent not in out and parent in nodes and nodes[parent].kind == "d":
            out.add(parent)
            parent = parent.rsplit("/", 1)[0]
    return sort_paths(out)


def tree_key(path: str) -> list[bytes]:
    """Sort key for tree order (by path components): parents first, siblings by byte order."""
    return path.encode("utf-8", "surrogateescape").split(b"/")


def sort_paths(paths: Iterable[str]) -> list[str]:
    return sorted(paths, key=tree_key)


def check_names(paths: Iterable[str]) -> None:
    """Refuse files named like whiteouts: unpacking would delete instead of create them."""
    for path in paths:
        if path.rsplit("/", 1)[-1].startswith(WHITEOUT_PREFIX):
            raise BuildError(f"{path}: file names starting with {WHITEOUT_PREFIX!r} are reserved for whiteouts",
                             reason=Reason.BUILD_FAILED)
