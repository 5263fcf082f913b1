"""KEYS: each package's cache key, a Merkle hash (xxh3-128) of everything that can change
what its build does. Pure: IO (file digests, image digests) is done by the caller.

    own = H(schema, id, canonical rendered spec, context files (path, mode, digest),
            base image (reference + resolved digest when known))
    key = H(schema, own, dependencies' (id, kinds, key))

Nothing location- or target-dependent enters: paths are relative to the package folder,
the dependency set is the package's own, never the chain of whichever target asked.
The two levels let a plan re-key the dependents of a changed package from their stored own
digests alone (an edit near the root of a 10,000-package tree re-keys thousands of them).
Every part is length-prefixed, so no two different inputs frame to the same bytes.

Early cutoff: `output_key` is the same hash with the dependencies' *output* digests
instead of their keys. Two builds whose dependencies produced byte-identical artefacts
share an output key, so a dependent whose input key changed only because a dependency
was rebuilt to the same bytes is found in the store under its output key (BitBake's
hash equivalence, kept locally).
"""
from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import xxhash

KEY_SCHEMA = 2


def _frame(head: str, parts: Iterable[str]) -> str:
    return xxhash.xxh3_128_hexdigest("\x1e".join(f"{len(p)}:{p}" for p in (head, *parts)).encode())


def own_digest(id: str, spec: str, files: Iterable[tuple[str, str]], image: str) -> str:
    """The package's own inputs, without its dependencies."""
    return _frame(f"orch-key {KEY_SCHEMA} own", (id, spec, image, *(f"{p}\0{d}" for p, d in sorted(files))))


def chain_key(domain: str, own: str, deps: Iterable[tuple[str, str, str]]) -> str:
    """`own` joined with the dependencies' (kinds, id, key or output) entries, in id order."""
    return _frame(f"orch-key {KEY_SCHEMA} {domain}", (own, *(f"{d}\0{k}\0{v}" for k, d, v in sorted(deps, key=_BY_DEP))))


_BY_DEP = operator.itemgetter(1, 0, 2)


@dataclass(frozen=True, slots=True)
class KeyInputs:
    """Everything that went into one key (what `orch plan --explain` shows)."""

    id: str
    spec: str  # canonical JSON of the rendered build.yaml
    files: tuple[tuple[str, str], ...]  # (path relative to the package folder, "mode:digest")
    image: str  # base image reference as written, "@digest" appended once resolved
    deps: tuple[tuple[str, str, str], ...]  # (kinds, dependency id, its key or output digest)
    own: str = field(default="", compare=False)  # own_digest of the above; worked out when not given

    def __post_init__(self) -> None:
        if not self.own:
            object.__setattr__(self, "own", own_digest(self.id, self.spec, self.files, self.image))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "spec": self.spec, "files": dict(self.files), "image": self.image,
                "deps": {dep: {"kinds": kinds, "key": key} for kinds, dep, key in self.deps}}


def input_key(inputs: KeyInputs) -> str:
    """The package's key (deps entries hold dependency keys)."""
    return chain_key("input", inputs.own, inputs.deps)


def edge_output(kinds: str, output: dict[str, str]) -> str:
    """What a dependent consumes of a dependency: its package image (plain `requires`, `copy`)
    or its artefact (`requires_final_images` and their runtime closure)."""
    return ",".join(output.get("image", "") if kind in ("requires", "copy") else output.get("artifact", "")
                    for kind in kinds.split(","))


def output_key(inputs: KeyInputs, dep_outputs: dict[str, dict[str, str]]) -> str:
    """The early-cutoff key: same own inputs, dependencies' outputs instead of their keys."""
    return chain_key("output", inputs.own,
                     ((kinds, dep, edge_output(kinds, dep_outputs[dep])) for kinds, dep, _ in inputs.deps))


def short(key: str | None) -> str:
    return key[:12] if key else "-"
