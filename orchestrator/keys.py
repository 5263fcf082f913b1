"""KEYS: each package's cache key, a Merkle hash (xxh3-128) of everything that can change
what its build does. Pure: IO (file digests, image digests) is done by the caller.

    key = H(schema, id, canonical rendered spec, context files (path, mode, digest),
            base image (reference + resolved digest when known), dependencies' keys by kind)

Nothing location- or target-dependent enters: paths are relative to the package folder,
the dependency set is the package's own, never the chain of whichever target asked.

Early cutoff: `output_key` is the same hash with the dependencies' *output* digests
instead of their keys. Two builds whose dependencies produced byte-identical artefacts
share an output key, so a dependent whose input key changed only because a dependency
was rebuilt to the same bytes is found in the store under its output key (BitBake's
hash equivalence, kept locally).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import xxhash

KEY_SCHEMA = 1


@dataclass(frozen=True)
class KeyInputs:
    """Everything that went into one key (what `orch plan --explain` shows)."""

    id: str
    spec: str  # canonical JSON of the rendered build.yaml
    files: tuple[tuple[str, str], ...]  # (path relative to the package folder, "mode:digest")
    image: str  # base image reference as written, "@digest" appended once resolved
    deps: tuple[tuple[str, str, str], ...]  # (kinds, dependency id, its key or output digest)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "spec": self.spec, "files": dict(self.files), "image": self.image,
                "deps": {dep: {"kinds": kinds, "key": key} for kinds, dep, key in self.deps}}

    @staticmethod
    def from_json(doc: dict[str, Any]) -> "KeyInputs":
        return KeyInputs(
            id=str(doc["id"]), spec=str(doc["spec"]),
            files=tuple(sorted((str(k), str(v)) for k, v in doc["files"].items())),
            image=str(doc["image"]),
            deps=tuple((str(v["kinds"]), str(k), str(v["key"])) for k, v in sorted(doc["deps"].items())),
        )


def _digest(domain: str, inputs: KeyInputs) -> str:
    # canonical order, whatever order the caller (or a JSON round trip) produced
    files = sorted(inputs.files)
    deps = sorted(inputs.deps, key=lambda d: (d[1], d[0], d[2]))
    payload = json.dumps(
        [KEY_SCHEMA, domain, inputs.id, inputs.spec, files, inputs.image, deps],
        separators=(",", ":"), ensure_ascii=False,
    )
    return xxhash.xxh3_128_hexdigest(payload.encode())


def input_key(inputs: KeyInputs) -> str:
    """The package's key (deps entries hold dependency keys)."""
    return _digest("input", inputs)


def edge_output(kinds: str, output: dict[str, str]) -> str:
    """What a dependent consumes of a dependency: its package image (plain `requires`, `copy`)
    or its artefact (`requires_final_images` and their runtime closure)."""
    return ",".join(output.get("image", "") if kind in ("requires", "copy") else output.get("artifact", "")
                    for kind in kinds.split(","))


def output_key(inputs: KeyInputs, dep_outputs: dict[str, dict[str, str]]) -> str:
    """The early-cutoff key: same own inputs, dependencies' outputs instead of their keys."""
    deps = tuple((kinds, dep, edge_output(kinds, dep_outputs[dep])) for kinds, dep, _ in inputs.deps)
    return _digest("output", KeyInputs(inputs.id, inputs.spec, inputs.files, inputs.image, deps))


def short(key: str | None) -> str:
    return key[:12] if key else "-"
