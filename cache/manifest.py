"""Action-cache values: what a build key produced. Parsed as untrusted JSON; bad shape → None."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from cache.digest import is_digest

VERSION = 1
_REF = re.compile(r"[a-z0-9][a-z0-9-]{0,15}:[0-9a-f]{16,128}")  # image/output: any algorithm
_FIELDS = {"v", "artifact", "artifact_size", "image", "output", "extra_blobs", "metadata", "created"}


@dataclass(frozen=True, order=True)
class BlobRef:
    """A blob named by an entry, with its size (so a hit can be checked with one stat)."""

    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """What a build key produced.

    `artifact` (+ `extra_blobs`) are store blobs and must exist for the entry to be a hit.
    `image` (e.g. a buildah image id) and `output` (the early-cutoff digest) are references,
    not required to be blobs. `metadata` is any JSON object. `last_used` comes from the index.
    """

    artifact: str
    artifact_size: int
    image: str = ""
    output: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    extra_blobs: tuple[BlobRef, ...] = ()
    created: float = 0.0
    last_used: float = 0.0

    def blobs(self) -> tuple[BlobRef, ...]:
        """Every store blob this entry names, artifact first."""
        return (BlobRef(self.artifact, self.artifact_size), *self.extra_blobs)

    def with_last_used(self, t: float) -> Manifest:
        return replace(self, last_used=t)

    def to_json(self) -> str:
        problem = check(self)
        if problem:
            raise ValueError(f"invalid manifest: {problem}")
        return json.dumps({
            "v": VERSION, "artifact": self.artifact, "artifact_size": self.artifact_size,
            "image": self.image, "output": self.output,
            "extra_blobs": [[b.digest, b.size] for b in self.extra_blobs],
            "metadata": self.metadata, "created": self.created,
        }, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _size_ok(v: object) -> bool:
    return type(v) is int and 0 <= v < 1 << 62


def check(m: Manifest) -> str:
    """Why `m` is not a valid manifest ('' when it is)."""
    if not is_digest(m.artifact) or not _size_ok(m.artifact_size):
        return "artifact must be a store digest with a size"
    for name in ("image", "output"):
        v = getattr(m, name)
        if not isinstance(v, str) or (v and not _REF.fullmatch(v)):
            return f"{name} must be empty or '<algorithm>:<hex>'"
    if not isinstance(m.metadata, dict) or not all(isinstance(k, str) for k in m.metadata):
        return "metadata must be a JSON object"
    for b in m.extra_blobs:
        if not isinstance(b, BlobRef) or not is_digest(b.digest) or not _size_ok(b.size):
            return "extra_blobs must be BlobRefs of store digests"
    if not isinstance(m.created, (int, float)) or not math.isfinite(m.created):
        return "created must be a number"
    return ""


def from_json(text: str) -> Manifest | None:
    """Parse an entry read from disk; anything unexpected is None (a miss), never an exception."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or set(raw) != _FIELDS or raw["v"] != VERSION:
            return None
        extra = raw["extra_blobs"]
        if not isinstance(extra, list) or not all(isinstance(x, list) and len(x) == 2 for x in extra):
            return None
        created = raw["created"]
        if type(created) not in (int, float):
            return None
        m = Manifest(
            artifact=raw["artifact"], artifact_size=raw["artifact_size"], image=raw["image"],
            output=raw["output"], metadata=raw["metadata"],
            extra_blobs=tuple(BlobRef(d, s) for d, s in extra), created=float(created),
        )
    except (ValueError, TypeError, RecursionError):
        return None
    return None if check(m) else m
