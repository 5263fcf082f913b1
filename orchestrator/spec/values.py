"""Values: `--values` files merged with each package's own keys.

The rule (documented in the README, and deliberately not luet's): maps merge deeply,
everything else (scalars, lists) is replaced; `--values a b` applies a then b, so the
rightmost file wins, every time (luet flips the order between renders). Values files win
over the keys of a package's definition or collection stanza, as in luet.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import xxhash

from orchestrator.errors import Reason, SpecError


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `over` wins; nested maps merge key by key; inputs are not modified."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def load_values(paths: list[str]) -> tuple[dict[str, Any], str]:
    """Merge values files left to right; returns (values, digest of the files' bytes)."""
    raws, digest = read_values(paths)
    return parse_values(raws), digest


def read_values(paths: list[str]) -> tuple[list[tuple[str, bytes]], str]:
    """The values files' bytes and their digest (what a plan compares; parsing is for rendering)."""
    raws = []
    digest = xxhash.xxh3_128()
    for path in paths:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise SpecError(f"cannot read values file: {exc.strerror}", reason=Reason.MISSING_FILE,
                            file=path, hint="check the --values path") from None
        digest.update(os.path.basename(path).encode() + b"\0" + raw + b"\0")
        raws.append((path, raw))
    return raws, digest.hexdigest()


def parse_values(raws: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The values files, parsed and merged left to right."""
    from orchestrator.spec import yamlload

    merged: dict[str, Any] = {}
    for path, raw in raws:
        doc = yamlload.load(raw.decode("utf-8", errors="replace"), path)
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise SpecError("a values file must be a mapping of keys", reason=Reason.INVALID_SPEC,
                            file=path)
        merged = deep_merge(merged, doc)
    return merged


def package_values(own: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """What `.Values` is for one package: its definition/stanza keys, overridden by values files."""
    return deep_merge(own, values) if values else dict(own)
