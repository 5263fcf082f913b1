"""The façade (BuildStream's Stream): one function per verb, wiring
load → graph → keys → plan (→ schedule/execute → store). The CLI calls exactly one of these.
"""
from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, cast

import xxhash

from orchestrator.errors import UsageError, GraphError, Reason
from orchestrator.keys import KEY_SCHEMA, KeyInputs, input_key
from orchestrator.model import Package
from orchestrator.plan import EmptyStore, LazyJSON, Plan, StoreView, explanation, make_plan
from orchestrator.planstate import PlanState, config_id
from orchestrator.spec import load as load_mod
from orchestrator.spec.discover import PackageDir

if TYPE_CHECKING:
    from orchestrator.scheduler import Reporter
    from orchestrator.storeview import StoreAdapter


@dataclass
class Planned:
    """A plan plus what the later stages need (packages, graph, key inputs).

    From the no-change fast path, `packages` and `contexts` are loaded on first use, and
    `inputs` decoded per package on first use."""

    plan: Plan
    packages: Mapping[str, Package]
    inputs: Mapping[str, KeyInputs]
    keys: dict[str, str]
    order: list[str]
    deps: dict[str, list[str]]
    kinds: dict[tuple[str, str], tuple[str, ...]]
    contexts: Mapping[str, PackageDir]
    warnings: list[str] = field(default_factory=list)
    rendered: int = 0


class _Deferred(Mapping[str, Any]):
    """A mapping computed by `load` the first time anything looks into it."""

    def __init__(self, load: Callable[[], Mapping[str, Any]]) -> None:
        self._load = load
        self._data: Mapping[str, Any] | None = None

    def _get(self) -> Mapping[str, Any]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def image_ref(pkg: Package, resolved: Callable[[str, str], str | None]) -> str:
    """The base image as it enters the key: as written, plus its digest once resolved."""
    if pkg.spec is None or not pkg.spec.image:
        return ""
    digest = resolved(pkg.spec.image, pkg.tree)
    return f"{pkg.spec.image}@{digest}" if digest else pkg.spec.image


def compute(
    trees: list[str],
    values: list[str],
    cache_dir: str | None,
    *,
    targets: list[str] | None = None,
    store: StoreView | None = None,
    resolved_image: Callable[[str, str], str | None] = lambda ref, tree: None,
) -> Planned:
    """Load, resolve, key and plan. `store` answers "is this key cached?".

    When no file changed since the last plan of this configuration (same stat data, values,
    templates and base image digests), the stored result is used as is: nothing is read,
    rendered or parsed again.
    """
    if not trees:
        raise UsageError("no tree given", hint="pass -t/--tree DIR")
    # Planning builds many long-lived objects and almost no cycles: the cyclic collector's
    # repeated passes over them cost a fifth of a cold plan. Paused, then restored.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan(trees, values, cache_dir, targets, store, resolved_image)
    finally:
        if collecting:
            gc.enable()


def _plan(trees: list[str], values: list[str], cache_dir: str | None, targets: list[str] | None,
          store: StoreView | None, resolved_image: Callable[[str, str], str | None]) -> Planned:
    state = PlanState(cache_dir, config_id(trees, values))
    prep = load_mod.prepare(trees, values)
    # the working directory too: stored warnings name files relative to it
    meta = [prep.values_digest, prep.templates_digest, str(KEY_SCHEMA), "\0".join(targets or ()), os.getcwd()]
    sig = load_mod.signature(prep, state.settled, *meta)
    stored = _decode_result(state.result) if state.result is not None else None
    if stored is not None and not all(resolved_image(ref, tree) == digest for ref, tree, digest in stored.images):
        stored = None
    if sig and stored is not None and stored.signature == sig:
        once: list[Planned] = []

        def full() -> Planned:
            if not once:
                once.append(_compute(prep, state, targets, store, resolved_image)[0])
            return once[0]

        def explanations() -> Mapping[str, str]:
            texts = state.get_explanations(stored.token)
            if texts is None or any(n not in texts for n in stored.order):  # damaged: recompute
                return {n: json.dumps(full().plan.items[i].explanation) for i, n in enumerate(stored.order)}
            return texts

        return _from_result(stored, store or EmptyStore(), full, _Deferred(explanations))
    if stored is not None and not targets and stored.meta == meta:
        inc = _incremental(prep, state, stored, store or EmptyStore(), resolved_image)
        if inc is not None:
            planned, result, texts = inc
            state.put_result(sig, result, texts)
            state.save()
            return planned
    planned, result = _compute(prep, state, targets, store, resolved_image)
    result["meta"] = meta
    state.put_result(sig, result, {i.id: json.dumps(i.explanation) for i in planned.plan.items})
    state.save()
    return planned


def _shape(pkg: Package) -> str:
    """What of a package decides the graph's edges around it (identity, provides, runtime and
    build dependencies): equal shapes of every changed package ⇒ the stored edges still hold."""
    spec = pkg.spec
    parts = (pkg.id, pkg.provides, pkg.runtime_requires,
             None if spec is None else (spec.requires, spec.requires_final_images,
                                        tuple(c.package for c in spec.copy)))
    return xxhash.xxh3_64_hexdigest(repr(parts).encode())


def _context_files(pdir: PackageDir, stats: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    from orchestrator.planstate import hash_file

    out = []
    for rel in pdir.context:
        path = os.path.join(pdir.path, rel)
        out.append((rel, hash_file(path, stats[path])))
    return tuple(out)


def _compute(prep: load_mod.Prepared, state: PlanState, targets: list[str] | None,
             store: StoreView | None, resolved_image: Callable[[str, str], str | None],
             ) -> tuple[Planned, dict[str, Any]]:
    """The full path: packages from the load cache or rendered, graph, keys, plan."""
    loaded = load_mod.load(prep.scan.trees, [], cache=state, prepared=prep)
    from orchestrator.graph import build_graph

    images: dict[tuple[str, str], str | None] = {}

    def resolve(ref: str, tree: str) -> str | None:
        if (ref, tree) not in images:
            images[(ref, tree)] = resolved_image(ref, tree)
        return images[(ref, tree)]

    graph = build_graph(loaded.packages)
    by_dir = {(p.tree, p.rel): p for p in loaded.scan.packages}
    order = graph.order()
    if targets:
        wanted = graph.closure(select(targets, graph.packages))
        order = [n for n in order if n in wanted]
    inputs: dict[str, KeyInputs] = {}
    keys: dict[str, str] = {}
    deps: dict[str, list[str]] = {}
    kinds: dict[tuple[str, str], tuple[str, ...]] = {}
    contexts: dict[str, PackageDir] = {}
    specs: dict[str, str] = {}
    stats = loaded.scan.stats
    for node in order:
        pkg = graph.packages[node]
        pdir = by_dir[(pkg.tree, pkg.directory)]
        contexts[node] = pdir
        files: tuple[tuple[str, str], ...] = ()
        if pkg.spec is not None:
            files = tuple(
                (rel, state.file_digest(p, stats[p]))
                for rel in pdir.context
                for p in (os.path.join(pdir.path, rel),)
            )
        deps[node] = graph.deps(node)
        dep_entries = []
        for dep in deps[node]:
            kinds[(dep, node)] = graph.kinds(dep, node)
            dep_entries.append((",".join(kinds[(dep, node)]), dep, keys[dep]))
        inp = KeyInputs(node, pkg.rendered, files, image_ref(pkg, resolve), tuple(dep_entries))
        inputs[node] = inp
        keys[node] = input_key(inp)
        specs[node] = json.dumps(pkg.spec.raw if pkg.spec else {})
    explanations = _Explanations(keys, inputs, graph.packages)
    plan = make_plan(order, deps, inputs, keys, specs, explanations, store or EmptyStore())
    planned = Planned(plan, graph.packages, inputs, keys, order, deps, kinds, contexts,
                      loaded.warnings, loaded.rendered)
    own = {p.id: p for p in loaded.packages}
    special = sorted(n for n, p in graph.packages.items() if p.provides or p is not own.get(n))
    folders = []
    racy = load_mod.racy_check(prep, state.settled)
    for pdir, ids, warnings in loaded.folders:
        spec_sig, ctx_sig = load_mod.folder_sigs(pdir, racy)
        folders.append([pdir.path, spec_sig, ctx_sig, ids, warnings])
    result = {
        "warnings": loaded.warnings,
        "images": [[ref, tree, digest] for (ref, tree), digest in images.items()],
        "order": order,
        "keys": [keys[n] for n in order],
        "deps": [deps[n] for n in order],
        "kinds": [[",".join(kinds[(d, n)]) for d in deps[n]] for n in order],
        "specs": [specs[n] for n in order],
        "shapes": [_shape(own[n]) for n in order],
        "special": special,
        "folders": folders,
    }
    return planned, result


class _Explanations(Mapping[str, dict[str, Any]]):
    """Each package's explanation, built when asked for (most plans never look)."""

    def __init__(self, keys: dict[str, str], inputs: dict[str, KeyInputs], packages: Mapping[str, Package]) -> None:
        self._keys, self._inputs, self._packages = keys, inputs, packages

    def __getitem__(self, node: str) -> dict[str, Any]:
        pkg = self._packages[node]
        return explanation(self._keys[node], self._inputs[node], pkg.directory, pkg.values_used)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class _Kinds(Mapping[tuple[str, str], tuple[str, ...]]):
    """Edge kinds of a stored plan, decoded per dependent when first asked for."""

    def __init__(self, deps: dict[str, list[str]], kinds: dict[str, list[str]]) -> None:
        self._deps, self._kinds = deps, kinds
        self._done: dict[tuple[str, str], tuple[str, ...]] | None = None

    def _all(self) -> dict[tuple[str, str], tuple[str, ...]]:
        if self._done is None:
            self._done = {(d, n): tuple(k.split(",")) for n, ds in self._deps.items()
                          for d, k in zip(ds, self._kinds[n])}
        return self._done

    def __getitem__(self, edge: tuple[str, str]) -> tuple[str, ...]:
        return self._all()[edge]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __eq__(self, other: object) -> bool:
        return dict(self._all()) == (dict(other) if isinstance(other, Mapping) else other)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class _Stored:
    """A stored whole plan, checked for shape (a damaged one is never half-used)."""

    signature: str | None
    token: str
    meta: list[str]
    images: list[tuple[str, str, str | None]]
    order: list[str]
    keys: dict[str, str]
    deps: dict[str, list[str]]
    kinds: dict[str, list[str]]  # per dependent, per dependency (as in deps): "kind,kind"
    specs: dict[str, str]
    shapes: dict[str, str]
    special: set[str]
    warnings: list[str]
    folders_raw: Any  # decoded and checked by `folders()`: only the incremental path needs them

    def folders(self) -> list[tuple[str, str | None, str | None, list[str], list[str]]] | None:
        try:
            return [(str(p), None if a is None else str(a), None if b is None else str(b), _strs(ids), _strs(w))
                    for p, a, b, ids, w in self.folders_raw]
        except (TypeError, ValueError):
            return None


def _strs(value: Any) -> list[str]:
    if not isinstance(value, list) or (value and set(map(type, value)) != {str}):
        raise TypeError("not a list of strings")
    return value


def _decode_result(result: dict[str, Any] | None) -> _Stored | None:
    if result is None:
        return None
    try:
        order = _strs(result["order"])
        n = len(order)
        lists = [result[k] for k in ("keys", "deps", "kinds", "specs", "shapes")]
        if any(not isinstance(v, list) or len(v) != n for v in lists):
            return None
        deps = dict(zip(order, map(_strs, result["deps"]), strict=True))
        kinds = dict(zip(order, map(_strs, result["kinds"]), strict=True))
        sig = result["signature"]
        stored = _Stored(
            signature=sig if isinstance(sig, str) else None, token=str(result["token"]),
            meta=_strs(result["meta"]),
            images=[(str(ref), str(tree), None if d is None else str(d)) for ref, tree, d in result["images"]],
            order=order, keys=dict(zip(order, _strs(result["keys"]), strict=True)), deps=deps, kinds=kinds,
            specs=dict(zip(order, _strs(result["specs"]), strict=True)),
            shapes=dict(zip(order, _strs(result["shapes"]), strict=True)),
            special=set(_strs(result["special"])), warnings=_strs(result["warnings"]),
            folders_raw=result["folders"],
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    if len(stored.keys) != n or any(len(deps[x]) != len(kinds[x]) for x in order):
        return None
    known = stored.keys.keys()
    if not all(known >= set(ds) for ds in deps.values()):
        return None
    return stored


def _from_result(stored: _Stored, store: StoreView, full: Callable[[], Planned],
                 texts: Mapping[str, str]) -> Planned:
    """The no-change fast path: the stored plan inputs, planned against the store as it is now.
    `texts`: each package's explanation (a superset of its key inputs) as JSON, read on demand."""
    explanations = LazyJSON(texts)
    inputs = LazyJSON(texts, KeyInputs.from_json)
    plan = make_plan(stored.order, stored.deps, inputs, stored.keys, stored.specs, explanations, store)
    return Planned(plan, _Deferred(lambda: full().packages), inputs, stored.keys, stored.order,
                   stored.deps, cast(dict, _Kinds(stored.deps, stored.kinds)),
                   _Deferred(lambda: full().contexts), stored.warnings, 0)


_MAX_INCREMENTAL = 0.25  # beyond this share of changed folders, the full path is as cheap


def _incremental(prep: load_mod.Prepared, state: PlanState, stored: _Stored, store: StoreView,
                 resolved_image: Callable[[str, str], str | None],
                 ) -> tuple[Planned, dict[str, Any], dict[str, str]] | None:
    """Some folders changed, the tree's shape did not: re-render only the changed folders; when
    no changed package's identity, provides or dependencies changed, keep the stored edges and
    order, and recompute the keys of the changed packages and of their dependents (Merkle: the
    rest keep theirs). None when this does not apply (the full path runs instead)."""
    scan = prep.scan
    folders = stored.folders()
    if folders is None or [f[0] for f in folders] != [p.path for p in scan.packages]:
        return None  # folders added or removed (or a damaged record)
    racy, stats = load_mod.racy_check(prep, state.settled), scan.stats
    rerender: list[tuple[int, PackageDir]] = []
    rehash: list[tuple[int, PackageDir]] = []
    sigs: list[tuple[str | None, str | None]] = []
    for i, (pdir, folder) in enumerate(zip(scan.packages, folders)):
        spec_sig, ctx_sig = load_mod.folder_sigs(pdir, racy)
        sigs.append((spec_sig, ctx_sig))
        if spec_sig is None or spec_sig != folder[1]:
            rerender.append((i, pdir))
        elif ctx_sig is None or ctx_sig != folder[2]:
            rehash.append((i, pdir))
    if len(rerender) + len(rehash) > _MAX_INCREMENTAL * max(len(scan.packages), 1):
        return None
    texts = state.get_explanations(stored.token)
    if texts is None or any(n not in texts for n in stored.order):
        return None
    # own inputs of the changed packages: (spec, files, image, directory, values, spec JSON)
    own: dict[str, tuple[str, tuple[tuple[str, str], ...], str, str, dict[str, Any], str]] = {}
    warnings = [f[4] for f in folders]
    images = {(ref, tree): digest for ref, tree, digest in stored.images}

    def resolve(ref: str, tree: str) -> str | None:
        if (ref, tree) not in images:
            images[(ref, tree)] = resolved_image(ref, tree)
        return images[(ref, tree)]

    rendered = load_mod.render_folders(prep, [p for _, p in rerender])
    for (i, pdir), (_, pkgs, warns) in zip(rerender, rendered):
        if [p.id for p in pkgs] != folders[i][3]:
            return None
        for pkg in pkgs:
            if pkg.id in stored.special or pkg.provides or _shape(pkg) != stored.shapes.get(pkg.id):
                return None
            files = _context_files(pdir, stats) if pkg.spec is not None else ()
            own[pkg.id] = (pkg.rendered, files, image_ref(pkg, resolve), pkg.directory, pkg.values_used,
                           json.dumps(pkg.spec.raw if pkg.spec else {}))
        warnings[i] = warns
    for i, pdir in rehash:
        for node in folders[i][3]:
            if node in stored.special:
                return None
            doc = json.loads(texts[node])
            files = _context_files(pdir, stats) if doc["spec"] else ()
            own[node] = (doc["spec"], files, doc["image"], doc["dir"], doc["values"], stored.specs[node])
    keys = dict(stored.keys)
    specs = dict(stored.specs)
    texts = dict(texts)
    moved: set[str] = set()
    deps, kinds = stored.deps, stored.kinds
    for node in stored.order:
        mine = own.get(node)
        if mine is None and not (moved and moved.intersection(deps[node])):
            continue
        dep_entries = tuple((k, d, keys[d]) for d, k in zip(deps[node], kinds[node]))
        if mine is not None:
            spec, files, image, directory, values, spec_json = mine
            specs[node] = spec_json
        else:
            doc = json.loads(texts[node])
            spec, image, directory, values = doc["spec"], doc["image"], doc["dir"], doc["values"]
            files = tuple(sorted((str(k), str(v)) for k, v in doc["files"].items()))
        inp = KeyInputs(node, spec, files, image, dep_entries)
        key = input_key(inp)
        if key != keys[node]:
            moved.add(node)
        keys[node] = key
        texts[node] = json.dumps(explanation(key, inp, directory, values))
    once: list[Planned] = []

    def full() -> Planned:
        if not once:
            once.append(_compute(prep, state, None, store, resolved_image)[0])
        return once[0]

    explanations = LazyJSON(texts)
    inputs = LazyJSON(texts, KeyInputs.from_json)
    order = stored.order
    plan = make_plan(order, deps, inputs, keys, specs, explanations, store)
    all_warnings = [w for ws in warnings for w in ws]
    planned = Planned(plan, _Deferred(lambda: full().packages), inputs, keys, order, deps,
                      cast(dict, _Kinds(deps, kinds)), _Deferred(lambda: full().contexts),
                      all_warnings, len(rerender))
    result = {
        "warnings": all_warnings,
        "meta": stored.meta,
        "images": [[ref, tree, digest] for (ref, tree), digest in images.items()],
        "order": order,
        "keys": [keys[n] for n in order],
        "deps": [deps[n] for n in order],
        "kinds": [kinds[n] for n in order],
        "specs": [specs[n] for n in order],
        "shapes": [stored.shapes[n] for n in order],
        "special": sorted(stored.special),
        "folders": [[f[0], s[0], s[1], f[3], w] for f, s, w in zip(folders, sigs, warnings)],
    }
    return planned, result, texts


def select(targets: list[str], packages: Mapping[str, Package]) -> list[str]:
    """`cat/name`, `cat/name@version` or `name` → package ids (highest version for a family)."""
    from orchestrator import versions

    out = []
    for target in targets:
        if target in packages:
            out.append(target)
            continue
        family, _, ver = target.partition("@")
        matches = [p for p in packages.values()
                   if p.ref.family == family or (p.ref.name == family and "/" not in family)]
        if ver:
            matches = [p for p in matches if versions.compare(p.ref.version, ver, tie_break=False) == 0]
        if not matches:
            raise GraphError(f"no package matches '{target}'", reason=Reason.UNKNOWN_DEPENDENCY,
                             hint="see `orch plan` for the package ids")
        out.append(max(matches, key=lambda p: versions.sort_key(p.ref.version)).id)
    return out


def plan_keys(trees: list[str], values: list[str], cache_dir: str) -> set[str]:
    """Every key the current plan needs (what `orch cache gc --keep-plan` keeps)."""
    planned = compute(trees, values, cache_dir)
    return set(planned.keys.values())


def open_store(cache_dir: str | None) -> "StoreAdapter | None":
    """The store's view for planning; None when there is no cache directory yet."""
    if not cache_dir or not os.path.isdir(os.path.join(cache_dir, "store")):
        return None
    from orchestrator.storeview import StoreAdapter

    return StoreAdapter.open(cache_dir)


def plan(trees: list[str], values: list[str], cache_dir: str | None,
         *, targets: list[str] | None = None) -> Planned:
    """`orch plan`: compute against the store in `cache_dir`."""
    from orchestrator import images

    store = open_store(cache_dir)
    resolved = images.resolver(store.image_digests() if store is not None else None)
    try:
        return compute(trees, values, cache_dir, targets=targets, store=store, resolved_image=resolved)
    finally:
        if store is not None:
            store.close()


def explain(planned: Planned, target: str) -> dict[str, Any]:
    node = select([target], planned.packages)[0]
    if node not in planned.inputs:
        raise UsageError(f"{target} is not part of this plan")
    item = next(i for i in planned.plan.items if i.id == node)
    pkg = planned.packages[node]
    return {"id": node, "key": item.key, "action": item.action, "reasons": list(item.reasons),
            "definition": pkg.source_file, "directory": pkg.directory,
            "key_schema": __import__("orchestrator.keys", fromlist=["KEY_SCHEMA"]).KEY_SCHEMA,
            **{k: v for k, v in item.explanation.items() if k not in ("key", "id", "dir")}}


def format_explain(doc: dict[str, Any]) -> str:
    import json

    lines = [f"{doc['id']}  key {doc['key']}  ({doc['action']})",
             f"  defined in   {doc['definition']}",
             f"  key schema   {doc['key_schema']}",
             f"  base image   {doc['image'] or '(none)'}",
             "  rendered spec (canonical JSON, comments and formatting do not count):"]
    spec = json.loads(doc["spec"]) if doc["spec"] else None
    lines += ["    " + ln for ln in json.dumps(spec, indent=2, sort_keys=True).splitlines()]
    lines.append(f"  context files ({len(doc['files'])}):")
    lines += [f"    {digest}  {path}" for path, digest in sorted(doc["files"].items())]
    lines.append(f"  dependencies ({len(doc['deps'])}):")
    lines += [f"    {d['key'][:12]}  {dep}  ({d['kinds']})" for dep, d in sorted(doc["deps"].items())]
    lines.append(f"  values used ({len(doc['values'])}, shown for reasons; their effect is in the spec):")
    lines += [f"    {k}: {json.dumps(v, default=str)[:100]}" for k, v in sorted(doc["values"].items())]
    if doc["reasons"]:
        lines.append("  why: " + "; ".join(doc["reasons"]))
    return "\n".join(lines)


def graph_dot(trees: list[str], values: list[str], cache_dir: str | None,
              *, targets: list[str] | None = None) -> str:
    planned = plan(trees, values, cache_dir, targets=targets)
    out = ["digraph orch {", '  rankdir="BT";', '  node [shape=box, fontname="sans-serif"];']
    style = {"requires": "solid", "final": "bold", "runtime": "dotted", "copy": "dashed"}
    for item in planned.plan.items:
        color = "palegreen" if item.action == "cached" else "lightsalmon"
        out.append(f'  "{item.id}" [style=filled, fillcolor={color}];')
    for node in planned.order:
        for dep in planned.deps[node]:
            kinds = planned.kinds[(dep, node)]
            out.append(f'  "{node}" -> "{dep}" [style={style[kinds[0]]}, label="{",".join(kinds)}"];')
    out.append("}")
    return "\n".join(out) + "\n"


def write_svg(dot: str, path: str) -> None:
    from orchestrator import graphviz

    graphviz.to_svg(dot, path)


@dataclass
class BuildReport:
    results: dict[str, Any]  # node -> scheduler.NodeResult, in build order
    keys: dict[str, str]
    logs: dict[str, str]  # node -> its build log (built or failed now, or built before: cached)
    artifacts: dict[str, str]
    warnings: list[str]
    failures: list[str]
    cancelled: bool = False

    def counts(self) -> dict[str, int]:
        out = {"built": 0, "cached": 0, "failed": 0, "skipped": 0, "cancelled": 0}
        for result in self.results.values():
            out[result.outcome.value] += 1
        return out

    @property
    def exit_code(self) -> int:
        if self.cancelled:
            return 130
        return 1 if self.failures else 0

    def to_json(self) -> dict[str, Any]:
        """`orch build --json`: one entry per package, in build order (cancelled counts as skipped)."""
        return {"packages": [
            {"id": node, "key": self.keys[node],
             "outcome": "skipped" if r.outcome.value == "cancelled" else r.outcome.value,
             "artifact": self.artifacts.get(node), "log": self.logs.get(node),
             "seconds": round(r.seconds, 3)}
            for node, r in self.results.items()]}


class _Offset:
    """A reporter seen by the scheduler, for a run whose first `done` packages were settled
    before it started (cached upfront): progress counts include them."""

    def __init__(self, inner: "Reporter", done: int) -> None:
        self.inner = inner
        self.done = done

    def started(self, node: str) -> None:
        self.inner.started(node)

    def finished(self, result: Any) -> None:
        self.inner.finished(result)

    def progress(self, done: int, total: int, running: Any, cached: int) -> None:
        self.inner.progress(done + self.done, total + self.done, running, cached + self.done)


def build(trees: list[str], values: list[str], cache_dir: str, *, targets: list[str] | None = None,
          jobs: int = 1, keep_going: bool = False, isolation: str = "chroot",
          runtime: str | None = None, system_storage: bool = False, pull: bool = False,
          reporter: Any = None) -> BuildReport:
    """`orch build`: plan, then run the scheduler over the plan with real buildah builds.

    Packages the plan found in the store are settled upfront; only the rest go through the
    scheduler (a fully cached build starts no worker and no buildah process)."""
    import threading
    import traceback

    from orchestrator import images, scheduler
    from orchestrator.backend.adapter import BuildahBackend
    from orchestrator.execute import Executor
    from orchestrator.storeview import StoreAdapter

    os.makedirs(cache_dir, exist_ok=True)
    reporter = reporter if reporter is not None else scheduler.Reporter()
    store = StoreAdapter.open(cache_dir, create=True)
    cancel = threading.Event()
    try:
        backend = BuildahBackend(cache_dir, isolation=isolation, runtime=runtime,
                                 system_storage=system_storage)
        try:
            resolve = images.resolver(store.image_digests(), pull=backend.resolve_image, refresh=pull,
                                      strict=True)
            planned = compute(trees, values, cache_dir, targets=targets, store=store, resolved_image=resolve)
            gc.freeze()  # the plan lives as long as the run: no collector pass over it again
            work_root = os.path.join(cache_dir, "work")
            os.makedirs(work_root, exist_ok=True)
            executor = Executor(planned, store, backend, work_root, os.path.join(cache_dir, "logs"),
                                cancel)
            if hasattr(reporter, "expect"):
                reporter.expect({i.id for i in planned.plan.items if i.action == "build"})
            with scheduler.install_signal_handlers(cancel), store.pin(list(planned.keys.values())):
                settled = executor.cached_upfront()
                for result in settled.values():
                    reporter.finished(result)
                rest = {n: [d for d in planned.deps[n] if d not in settled]
                        for n in planned.order if n not in settled}
                ran = scheduler.run(rest, executor.work, jobs=jobs, keep_going=keep_going,
                                    reporter=cast("Reporter", _Offset(reporter, len(settled))),
                                    cancel=cancel) if rest else {}
        finally:
            backend.close()
    finally:
        store.close()
    results = {n: settled[n] if n in settled else ran[n] for n in planned.order}
    failures = []
    for node, result in results.items():
        if result.outcome.value != "failed":
            continue
        log = executor.logs.get(node)
        text = str(result.error)
        if result.internal:  # a bug in orch, not a failed build: show where
            text = "internal error: " + "".join(traceback.format_exception(result.error)).rstrip()
        where = f" (log: {log})" if log and log not in text else ""
        failures.append(f"{node} failed: {text}{where}")
    logs = dict(executor.logs)
    for node, result in results.items():
        if node not in logs and result.outcome.value == "cached":
            path = executor.log_file(node)
            if os.path.exists(path):
                logs[node] = path
    artifacts = {n: r.artifact for n, r in executor.records.items()}
    return BuildReport(results, planned.keys, logs, artifacts, planned.warnings, failures,
                       cancelled=cancel.is_set())
