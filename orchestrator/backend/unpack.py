"""Safe, layered extraction of artefacts into a directory (reliability.md §2.4 checklist).

Why not `tarfile.extractall`: Python 3.11.7's filters predate the 2025 bypass fixes, and
squash-unpacking several artefacts into one rootfs is exactly the two-step symlink attack.
So `tarfile` is only the parser; every write is fd-relative beneath the root: parents are
resolved inside the root (symlinks followed *within* it, absolute targets re-anchored at the
root, climbing above it refused), the final component is never followed, hardlinks must name a
regular file already inside, devices need `allow_devices`, sizes are bounded, and OCI
whiteouts (`.wh.x`, `.wh..wh..opq`) delete only what earlier archives put there.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import zstandard

from orchestrator.errors import OrchError, Reason

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WH = ".wh."
OPAQUE = ".wh..wh..opq"
_MAX_HOPS = 40
_MAX_META = 1 << 20  # PAX / GNU long-name header payloads


@dataclass(frozen=True)
class Limits:
    """Caps against archive bombs: total file bytes, member count, path length."""

    max_bytes: int = 64 << 30
    max_entries: int = 4_000_000
    max_path: int = 4096


class _Hostile(Exception):
    pass


class _BoundedInfo(tarfile.TarInfo):
    """Refuses oversized PAX/long-name headers *before* tarfile reads their payload into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        meta = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                tarfile.GNUTYPE_LONGLINK)
        if self.type in meta and self.size > _MAX_META:
            raise _Hostile(f"extended header of {self.size} bytes")
        member: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return member


@contextlib.contextmanager
def open_archive(path: str) -> Iterator[tarfile.TarFile]:
    """A streaming reader for `.tar` or `.tar.zst` (detected by magic number)."""
    with open(path, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        stream: IO[bytes] = raw
        if magic == ZSTD_MAGIC:
            stream = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedInfo) as tf:
            yield tf


def unpack_artifact(
    archive: str,
    dest: str,
    *,
    allow_devices: bool = False,
    strip_setuid: bool = False,
    same_owner: bool | None = None,
    limits: Limits = Limits(),
) -> list[str]:
    """Apply `archive` as a layer onto the existing directory `dest`; returns member names.

    Raises OrchError(HOSTILE_ARCHIVE) naming the archive and member on anything unsafe.
    """
    owner = os.geteuid() == 0 if same_owner is None else same_owner
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    layer = _Layer(root_fd, allow_devices, strip_setuid, owner, limits)
    names: list[str] = []
    member = "(first header)"
    try:
        with open_archive(archive) as tf:
            while True:
                info = tf.next()
                if info is None:
                    break
                member = info.name
                layer.apply(tf, info)
                names.append(info.name)
                member = f"(header after {info.name})"
    except _Hostile as exc:
        raise OrchError(f"{archive}: refusing member {member!r}: {exc}", reason=Reason.HOSTILE_ARCHIVE,
                        file=archive) from None
    except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
        raise OrchError(f"{archive}: corrupt archive near {member!r}: {exc}", reason=Reason.HOSTILE_ARCHIVE,
                        file=archive) from None
    finally:
        os.close(root_fd)
    return names


class _Layer:
    """One archive being applied: remembers what it created so whiteouts spare it."""

    def __init__(self, root_fd: int, devices: bool, strip: bool, owner: bool, limits: Limits) -> None:
        self.root_fd, self.devices, self.strip, self.owner, self.limits = root_fd, devices, strip, owner, limits
        self.created: set[tuple[str, ...]] = set()
        self.budget = limits.max_bytes
        self.count = 0

    # -- path handling ---------------------------------------------------------------
    def _parts(self, name: str) -> list[str]:
        if "\x00" in name or len(name) > self.limits.max_path:
            raise _Hostile("bad or over-long name")
        if name.startswith("/"):
            raise _Hostile("absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise _Hostile("'..' in path")
        return parts

    def _resolve_dir(self, parts: list[str], create: bool) -> list[str]:
        """Real components of directory `parts` inside the root (in-root symlinks followed)."""
        todo, hops = list(parts), 0
        real: list[str] = []
        while todo:
            comp = todo.pop(0)
            if comp in ("", "."):
                continue
            if comp == "..":
                if not real:
                    raise _Hostile("symlink escapes the root")
                real.pop()
                continue
            with self._dir(real) as fd:
                try:
                    st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        raise _Hostile(f"{'/'.join(real + [comp])} does not exist") from None
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    real.append(comp)
                    self.created.add(tuple(real))
                    continue
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > _MAX_HOPS:
                        raise _Hostile("too many symlinks")
                    target = os.readlink(comp, dir_fd=fd)
                    if target.startswith("/"):
                        real = []
                    todo = target.split("/") + todo
                elif stat.S_ISDIR(st.st_mode):
                    real.append(comp)
                else:
                    raise _Hostile(f"{'/'.join(real + [comp])} is not a directory")
        return real

    @contextlib.contextmanager
    def _dir(self, real: list[str]) -> Iterator[int]:
        """fd of a resolved directory, opened component by component without following links."""
        fd = os.dup(self.root_fd)
        try:
            for comp in real:
                nxt = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = nxt
            yield fd
        finally:
            os.close(fd)

    # -- members ---------------------------------------------------------------------
    def apply(self, tf: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self.count += 1
        if self.count > self.limits.max_entries:
            raise _Hostile("too many members")
        parts = self._parts(info.name)
        if not parts:
            if info.isdir():
                return  # the archive's `./` entry: never touch the root itself
            raise _Hostile("member resolves to the root")
        base = parts[-1]
        if base.startswith(WH) or (info.ischr() and info.devmajor == 0 and info.devminor == 0):
            return self._whiteout(parts, info)
        if info.isreg() and info.size > self.budget:
            raise _Hostile(f"declared size {info.size} exceeds the remaining limit {self.budget}")
        parent = self._resolve_dir(parts[:-1], create=True)
        key = tuple(parent + [base])
        with self._dir(parent) as pfd:
            if info.isdir():
                self._mkdir(pfd, base, info)
            else:
                self._remove(pfd, base)
                if info.isreg():
                    self._file(tf, pfd, base, info)
                elif info.issym():
                    os.symlink(info.linkname, base, dir_fd=pfd)
                    self._meta_path(pfd, base, info)
                elif info.islnk():
                    self._hardlink(pfd, base, info)
                elif info.ischr() or info.isblk() or info.isfifo():
                    self._special(pfd, base, info)
                else:
                    raise _Hostile(f"unsupported member type {info.type!r}")
        self.created.add(key)

    def _whiteout(self, parts: list[str], info: tarfile.TarInfo) -> None:
        base = parts[-1]
        if not (info.isreg() or info.ischr()) or info.size:
            raise _Hostile("whiteout must be an empty regular file")
        try:
            parent = self._resolve_dir(parts[:-1], create=False)
        except _Hostile:
            return  # nothing below a missing parent to hide
        with self._dir(parent) as pfd:
            if base == OPAQUE:
                for child in os.listdir(pfd):
                    if tuple(parent + [child]) not in self.created:
                        self._remove(pfd, child)
                return
            target = base.removeprefix(WH)
            if target in ("", ".", "..") or target.startswith(WH):
                raise _Hostile("malformed whiteout")
            if tuple(parent + [target]) not in self.created:
                self._remove(pfd, target)

    def _remove(self, pfd: int, name: str) -> None:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    def _mode(self, info: tarfile.TarInfo) -> int:
        return info.mode & (0o777 if self.strip else 0o7777)

    def _mkdir(self, pfd: int, name: str, info: tarfile.TarInfo) -> None:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self._remove(pfd, name)
                os.mkdir(name, 0o700, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(name, 0o700, dir_fd=pfd)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            self._meta_fd(fd, info)
        finally:
            os.close(fd)

    def _file(self, tf: tarfile.TarFile, pfd: int, name: str, info: tarfile.TarInfo) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=pfd)
        try:
            src = tf.extractfile(info)
            remaining = info.size
            while src is not None and remaining > 0:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    raise _Hostile("truncated member data")
                os.write(fd, chunk)
                remaining -= len(chunk)
            self.budget -= info.size
            for key, value in info.pax_headers.items():
                if key == "SCHILY.xattr.security.capability" and self.owner:
                    os.setxattr(fd, "security.capability", value.encode("utf-8", "surrogateescape"))
            self._meta_fd(fd, info)
        finally:
            os.close(fd)

    def _hardlink(self, pfd: int, name: str, info: tarfile.TarInfo) -> None:
        if info.linkname.startswith("/"):
            raise _Hostile("hardlink to an absolute path")
        parts = self._parts(info.linkname)
        if not parts:
            raise _Hostile("hardlink to the root")
        parent = self._resolve_dir(parts[:-1], create=False)
        with self._dir(parent) as tfd:
            try:
                st = os.stat(parts[-1], dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise _Hostile(f"hardlink target {info.linkname!r} not in the archive") from None
            if not stat.S_ISREG(st.st_mode):
                raise _Hostile(f"hardlink target {info.linkname!r} is not a regular file")
            os.link(parts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _special(self, pfd: int, name: str, info: tarfile.TarInfo) -> None:
        if not self.devices:
            raise _Hostile("device or fifo member (not allowed)")
        kind = stat.S_IFIFO if info.isfifo() else (stat.S_IFCHR if info.ischr() else stat.S_IFBLK)
        os.mknod(name, kind | 0o600, os.makedev(info.devmajor, info.devminor), dir_fd=pfd)
        self._meta_path(pfd, name, info)

    def _meta_fd(self, fd: int, info: tarfile.TarInfo) -> None:
        if self.owner:
            os.fchown(fd, info.uid, info.gid)
        os.fchmod(fd, self._mode(info))
        if not info.isdir():
            os.utime(fd, (info.mtime, info.mtime))

    def _meta_path(self, pfd: int, name: str, info: tarfile.TarInfo) -> None:
        """Owner/mode/mtime of a symlink or device by name, never following a symlink."""
        if self.owner:
            os.chown(name, info.uid, info.gid, dir_fd=pfd, follow_symlinks=False)
        if not info.issym():
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                os.chmod(f"/proc/self/fd/{fd}", self._mode(info))
            finally:
                os.close(fd)
        os.utime(name, (info.mtime, info.mtime), dir_fd=pfd, follow_symlinks=False)
