"""Digests name their algorithm (`xxh3-128:<hex>`), so a store can change algorithm later.

xxh3-128 is the default because it hashes at memory speed; it is *not* collision resistant
against an adversary, so `sha256` is available for stores shared across trust boundaries.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Callable, Protocol

import xxhash

from cache.errors import BadDigest

CHUNK = 512 << 10  # fits the CPU cache between read, hash and write: measured fastest here


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


# name -> (constructor, hex length). Adding an algorithm is one line here.
ALGORITHMS: dict[str, tuple[Callable[[], Hasher], int]] = {
    "xxh3-128": (xxhash.xxh3_128, 32),
    "sha256": (hashlib.sha256, 64),
}
DEFAULT_ALGORITHM = "xxh3-128"
_SHAPE = re.compile(r"([a-z0-9][a-z0-9-]{0,15}):([0-9a-f]{16,128})")


@dataclass(frozen=True, order=True)
class Digest:
    """A parsed, validated digest; `str(d)` is the canonical `algorithm:hex` form."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(text: str) -> Digest:
    """Parse `algorithm:hex` strictly (known algorithm, exact length, lowercase) or raise BadDigest."""
    m = _SHAPE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise BadDigest(f"not a digest: {text!r} (expected e.g. 'xxh3-128:<32 hex>')")
    algorithm, hexpart = m.group(1), m.group(2)
    spec = ALGORITHMS.get(algorithm)
    if spec is None:
        raise BadDigest(f"unknown digest algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
    if len(hexpart) != spec[1]:
        raise BadDigest(f"{algorithm} digest must have {spec[1]} hex digits: {text!r}")
    return Digest(algorithm, hexpart)


def is_digest(text: object) -> bool:
    try:
        parse_digest(text)  # type: ignore[arg-type]
    except BadDigest:
        return False
    return True


def new_hasher(algorithm: str) -> Hasher:
    try:
        return ALGORITHMS[algorithm][0]()
    except KeyError:
        raise BadDigest(f"unknown digest algorithm {algorithm!r}") from None


def digest_bytes(data: bytes, algorithm: str = DEFAULT_ALGORITHM) -> Digest:
    h = new_hasher(algorithm)
    h.update(data)
    return Digest(algorithm, h.hexdigest())


def hash_fd(fd: int, algorithm: str, offset: int = 0) -> tuple[Digest, int]:
    """Hash a file descriptor from `offset` to EOF with positional reads; returns (digest, size)."""
    h = new_hasher(algorithm)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    while True:
        n = os.preadv(fd, [buf], offset + size)
        if n == 0:
            break
        h.update(view[:n])
        size += n
    return Digest(algorithm, h.hexdigest()), size
