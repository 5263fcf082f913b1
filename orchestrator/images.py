"""Base images: `image:` as written → a reference buildah can use, and a digest for the key.

Archives and OCI layouts are identified without buildah, from their own manifest digest
(`oci-archive:`, `oci:`) or their bytes (`docker-archive:`), cached by stat data; a
relative path is relative to the tree root, so a tree that moves keeps its keys. Registry
and `containers-storage:` names need buildah: they are resolved once (pulled) and the
digest is remembered in the store, refreshed only when asked (`orch build --pull`).
"""
from __future__ import annotations

import json
import os
import tarfile
from typing import Callable, Protocol

import xxhash

from orchestrator.errors import EnvironmentProblem, Reason

PATH_TRANSPORTS = ("oci-archive:", "oci:", "docker-archive:")


class DigestCache(Protocol):
    def get(self, name: str) -> str | None: ...
    def put(self, name: str, digest: str) -> None: ...


def locate(ref: str, tree: str) -> str:
    """Make a path-based reference absolute (relative paths are relative to the tree root)."""
    for transport in PATH_TRANSPORTS:
        if ref.startswith(transport):
            rest = ref[len(transport):]
            path, sep, tag = rest.partition(":") if transport != "oci:" else (rest, "", "")
            if not os.path.isabs(path):
                path = os.path.normpath(os.path.join(tree, path))
            return f"{transport}{path}{sep}{tag}"
    return ref


def _archive_digest(path: str) -> str:
    """The manifest digest recorded in an OCI archive/layout's index.json, else the bytes' hash."""
    index = None
    if os.path.isdir(path):
        try:
            with open(os.path.join(path, "index.json"), encoding="utf-8") as fh:
                index = json.load(fh)
        except (OSError, ValueError):
            index = None
    else:
        try:
            with tarfile.open(path) as tar:
                member = tar.extractfile("index.json")
                index = json.load(member) if member else None
        except (OSError, KeyError, ValueError, tarfile.TarError):
            index = None
    try:
        digest: str = index["manifests"][0]["digest"]  # type: ignore[index]
        return digest
    except (TypeError, KeyError, IndexError):
        h = xxhash.xxh3_128()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return "xxh3-128:" + h.hexdigest()


def local_digest(located: str, cache: DigestCache | None) -> str | None:
    """Digest of a path-based image without buildah; None for registry/storage names."""
    transport = next((t for t in PATH_TRANSPORTS if located.startswith(t)), None)
    if transport is None:
        return None
    path = located[len(transport):]
    if transport != "oci:":
        path = path.split(":", 1)[0]
    try:
        st = os.stat(path)
    except OSError:
        raise EnvironmentProblem(f"base image {located} does not exist", reason=Reason.MISSING_FILE,
                                 hint="create it (the sample tree's: scripts/make-base-image)") from None
    name = f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    if cache is not None and (hit := cache.get(name)):
        return hit
    digest = _archive_digest(path)
    if cache is not None:
        cache.put(name, digest)
    return digest


def resolver(cache: DigestCache | None, pull: Callable[[str], str] | None = None,
             refresh: bool = False, strict: bool = False) -> Callable[[str, str], str | None]:
    """(ref, tree) → digest. Registry names: remembered digest, or `pull` (buildah) when given.
    Not `strict` (planning): a missing archive leaves the digest unknown instead of failing."""
    memo: dict[str, str | None] = {}

    def resolve(ref: str, tree: str) -> str | None:
        located = locate(ref, tree)
        if located in memo:
            return memo[located]
        try:
            digest = local_digest(located, cache)
        except EnvironmentProblem:
            if strict:
                raise
            memo[located] = None
            return None
        if digest is None:
            digest = None if refresh or cache is None else cache.get(located)
            if digest is None and pull is not None:
                digest = pull(located)
                if cache is not None:
                    cache.put(located, digest)
        memo[located] = digest
        return digest

    return resolve
