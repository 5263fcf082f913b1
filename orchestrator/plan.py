"""PLAN: for every package, cached or build, and *why* — first causes a person can act on.

Pure: the store is seen through `StoreView` (injected), so the same code plans against a
real store, a test dict, or nothing at all.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from orchestrator.keys import KeyInputs, output_key

_enc: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


class StoreView(Protocol):
    def expect(self, count: int) -> None:
        """A hint: about `count` keys are about to be asked for (a store may read them at once)."""

    def output_of(self, key: str) -> dict[str, str] | None:
        """Outputs ({"artifact", "image"} digests) of a valid store entry for this key, else None."""

    def output_of_equivalent(self, okey: str) -> dict[str, str] | None:
        """Outputs of a build with this early-cutoff (output) key, else None."""

    def last_build(self, package_id: str) -> dict[str, Any] | None:
        """The explanation recorded by the last build of this package, if any."""


class EmptyStore:
    """Nothing built yet (planning without a store)."""

    def expect(self, count: int) -> None:
        pass

    def output_of(self, key: str) -> dict[str, str] | None:
        return None

    def output_of_equivalent(self, okey: str) -> dict[str, str] | None:
        return None

    def last_build(self, package_id: str) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True)
class PlanItem:
    id: str
    key: str
    action: str  # "build" | "cached"
    reasons: tuple[str, ...]
    build_deps: tuple[str, ...]
    # The rendered fields (luet's names), kept JSON-encoded: decoding 10,000 of them costs
    # more than a whole warm plan may; `spec` decodes on demand.
    spec_json: str
    explanations: Mapping[str, dict[str, Any]] = field(compare=False, repr=False)
    output: dict[str, str] | None = None  # outputs when cached

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = json.loads(self.spec_json)
        return spec

    @property
    def explanation(self) -> dict[str, Any]:
        return self.explanations[self.id]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "action": self.action, "reasons": list(self.reasons),
                "build_deps": list(self.build_deps), "spec": self.spec}

    @classmethod
    def make(cls, id: str, key: str, action: str, reasons: tuple[str, ...], build_deps: tuple[str, ...],
             spec_json: str, explanations: Mapping[str, dict[str, Any]],
             output: dict[str, str] | None) -> PlanItem:
        """`PlanItem(...)` without a frozen dataclass's `__init__` (one `object.__setattr__` a
        field): half the cost, for the 10,000 items of every plan. Every field is given."""
        item = object.__new__(cls)
        item.__dict__.update(id=id, key=key, action=action, reasons=reasons, build_deps=build_deps,
                             spec_json=spec_json, explanations=explanations, output=output)
        return item

    def json_line(self) -> str:
        """`to_json()` encoded (as `json.dumps` would), without decoding and re-encoding the spec."""
        return (f'{{"id": {_enc(self.id)}, "key": {_enc(self.key)}, "action": {_enc(self.action)}, '
                f'"reasons": [{", ".join(map(_enc, self.reasons))}], '
                f'"build_deps": [{", ".join(map(_enc, self.build_deps))}], "spec": {self.spec_json}}}')


@dataclass(frozen=True)
class Plan:
    items: tuple[PlanItem, ...]

    def to_json(self) -> dict[str, Any]:
        return {"packages": [item.to_json() for item in self.items]}

    def write_json(self, out: TextIO) -> None:
        """`to_json()` as text, one package a line (fast: specs are never decoded)."""
        out.write('{"packages": [')
        sep = "\n"
        for item in self.items:  # a line at a time: the whole document is never one string
            out.write(sep)
            out.write(item.json_line())
            sep = ",\n"
        out.write("\n]}\n" if self.items else "]}\n")

    def counts(self) -> dict[str, int]:
        out = {"build": 0, "cached": 0}
        for item in self.items:
            out[item.action] += 1
        return out


def explanation(key: str, inputs: KeyInputs, directory: str, values: dict[str, Any]) -> dict[str, Any]:
    """What went into `key`, as recorded by a build and diffed by the next plan."""
    return {"key": key, "dir": directory, "values": values, **inputs.to_json()}


def own_text(inputs: KeyInputs, directory: str, values_json: str) -> str:
    """The part of a package's explanation that is its own (no key, no dependencies), as JSON:
    what a plan stores, so that re-keying a dependent never rewrites its explanation.
    `values_json`: the values its templates can use, already encoded. The canonical spec text
    goes in as the JSON it is (not escaped into a string): `own_doc` makes it text again."""
    spec = inputs.spec or '""'
    files = ", ".join(f"{_enc(path)}: {_enc(digest)}" for path, digest in dict(inputs.files).items())
    return (f'{{"dir": {_enc(directory)}, "values": {values_json}, "id": {_enc(inputs.id)}, '
            f'"spec": {spec}, "files": {{{files}}}, "image": {_enc(inputs.image)}}}')


def own_doc(text: str) -> dict[str, Any]:
    """An `own_text` decoded, with its spec as the canonical text it was (`json.dumps` with
    sorted keys and compact separators gives back the same text for the same data)."""
    doc: dict[str, Any] = json.loads(text)
    spec = doc["spec"]
    if not isinstance(spec, str):
        doc["spec"] = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return doc


class Explanations(Mapping[str, dict[str, Any]]):
    """Explanations composed from stored own texts (`own_text`) and the plan's keys and edges,
    decoded per package on first access. `inputs` gives the same as `KeyInputs`."""

    def __init__(self, texts: Mapping[str, str], keys: Mapping[str, str], deps: Mapping[str, list[str]],
                 kinds: Mapping[str, list[str]], owns: Mapping[str, str]) -> None:
        self._texts, self._keys, self._deps, self._kinds, self._owns = texts, keys, deps, kinds, owns
        self._done: dict[str, dict[str, Any]] = {}
        self.inputs = _Inputs(self)

    def __getitem__(self, node: str) -> dict[str, Any]:
        doc = self._done.get(node)
        if doc is None:
            keys = self._keys
            doc = own_doc(self._texts[node])
            doc["key"] = keys[node]
            doc["deps"] = {d: {"kinds": k, "key": keys[d]} for d, k in zip(self._deps[node], self._kinds[node])}
            self._done[node] = doc
        return doc

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class _Inputs(Mapping[str, KeyInputs]):
    def __init__(self, explanations: Explanations) -> None:
        self._ex = explanations

    def __getitem__(self, node: str) -> KeyInputs:
        doc = self._ex[node]
        files = tuple(sorted((str(k), str(v)) for k, v in doc["files"].items()))
        deps = tuple((v["kinds"], d, v["key"]) for d, v in sorted(doc["deps"].items()))
        return KeyInputs(node, str(doc["spec"]), files, str(doc["image"]), deps, self._ex._owns[node])

    def __iter__(self) -> Iterator[str]:
        return iter(self._ex)

    def __len__(self) -> int:
        return len(self._ex)


def make_plan(
    order: list[str],
    deps: Mapping[str, list[str]],
    inputs: Mapping[str, KeyInputs],
    keys: Mapping[str, str],
    specs: Mapping[str, str],
    explanations: Mapping[str, dict[str, Any]],
    store: StoreView,
) -> Plan:
    """`specs`: each package's rendered fields, JSON-encoded. Mappings may be lazy: inputs and
    explanations are only looked at for packages the store cannot serve."""
    outputs: dict[str, dict[str, str]] = {}
    actions: dict[str, str] = {}
    items = []
    store.expect(len(order))
    for node in order:
        key, node_deps = keys[node], tuple(deps[node])
        out = store.output_of(key)
        reasons: list[str] = []
        if out is None and node_deps and outputs and all(d in outputs for d in node_deps):
            out = store.output_of_equivalent(output_key(inputs[node], outputs))
            if out is not None:
                reasons.append("dependencies rebuilt to identical outputs: equivalent build in the store")
        if out is not None:
            outputs[node] = out
            actions[node] = "cached"
        else:
            actions[node] = "build"
            rebuilt = [d for d in node_deps if actions.get(d) == "build"]
            prev = store.last_build(node)
            reasons = why(prev, explanations[node] if prev is not None else {}, rebuilt)
        items.append(PlanItem.make(node, key, actions[node], tuple(reasons), node_deps, specs[node],
                                   explanations, out))
    return Plan(tuple(items))


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"'{text}'"


def why(prev: dict[str, Any] | None, cur: dict[str, Any], rebuilt: list[str]) -> list[str]:
    """First causes, most actionable first: values, spec, files, image, dependencies."""
    tail = [f"depends on {d} which will be rebuilt" for d in rebuilt]
    if prev is None:
        return ["not built before", *tail]
    if prev.get("key") == cur["key"]:
        return ["built before, but the store no longer has it (evicted or damaged)"]
    out: list[str] = []
    pv, cv = prev.get("values") or {}, cur.get("values") or {}
    spec_changed = prev.get("spec") != cur["spec"]
    if spec_changed:
        for name in sorted(set(pv) | set(cv)):
            if pv.get(name, None) != cv.get(name, None):
                out.append(f"values: `{name}` {_show(pv.get(name, '<unset>'))}→{_show(cv.get(name, '<unset>'))}")
        if not out:
            out.extend(_spec_diff(prev.get("spec", ""), cur["spec"]))
    base = f"{cur['dir']}/" if cur.get("dir") else ""
    pf, cf = prev.get("files") or {}, cur["files"]
    for path in sorted(set(pf) | set(cf)):
        if path not in pf:
            out.append(f"file {base}{path} added")
        elif path not in cf:
            out.append(f"file {base}{path} removed")
        elif pf[path] != cf[path]:
            out.append(f"file {base}{path} changed")
    if prev.get("image") != cur["image"]:
        out.append(f"base image {prev.get('image') or '<none>'} → {cur['image'] or '<none>'}")
    pd, cd = prev.get("deps") or {}, cur["deps"]
    for dep in sorted(set(pd) | set(cd)):
        if dep in rebuilt:
            continue
        if dep not in pd:
            out.append(f"new dependency {dep}")
        elif dep not in cd:
            out.append(f"no longer depends on {dep}")
        elif pd[dep] != cd[dep]:
            out.append(f"dependency {dep} changed")
    out.extend(tail)
    return out or ["orch's key schema changed"]


def _spec_diff(old: str, new: str) -> list[str]:
    try:
        a, b = json.loads(old) or {}, json.loads(new) or {}
    except ValueError:
        return ["build spec changed"]
    fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [f"build spec: `{k}` changed" for k in fields] or ["build spec changed"]
