"""PLANNING: trees + values → `Planned` (packages, graph, keys, plan), from the fastest
source that is still right: the stored result when nothing changed, the incremental path
when a few folders changed (`orchestrator.incremental`), else load → graph → keys → plan.
"""
from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import xxhash

from orchestrator.errors import GraphError, Reason, UsageError
from orchestrator.keys import KEY_SCHEMA, KeyInputs, input_key, own_digest
from orchestrator.model import DepRef, Package
from orchestrator.plan import EmptyStore, Plan, StoreView, explanation, make_plan, own_text
from orchestrator.planstate import PlanState, config_id
from orchestrator.spec import load as load_mod
from orchestrator.spec.discover import PackageDir
from orchestrator.spec.walk import Walk

if TYPE_CHECKING:
    from orchestrator.spec.prerender import Prerender


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
    try:
        planned = _plan_with(state, trees, values, targets, store, resolved_image)
    finally:
        state.close()  # a failed plan leaves no half-written state file behind
    if state.write_error:
        planned.warnings = [*planned.warnings, state.write_error]
    return planned


def _plan_with(state: PlanState, trees: list[str], values: list[str], targets: list[str] | None,
               store: StoreView | None, resolved_image: Callable[[str, str], str | None]) -> Planned:
    last = state.result
    prerender = None
    if last is not None and not targets:  # a stored plan to build on: maybe only a few folders to render
        from orchestrator.spec.prerender import Prerender

        if Prerender.possible():
            prerender = Prerender()  # the re-stat's helper becomes its child, if there is one
    try:
        last_walk = Walk.from_json(last.get("walk"), last.get("walk_patch")) if last is not None else None
        prep = load_mod.prepare(trees, values, last_walk, prerender)
        # the working directory too: stored warnings name files relative to it
        meta = [prep.values_digest, prep.templates_digest, str(KEY_SCHEMA), "\0".join(targets or ()), os.getcwd()]
        sig = load_mod.signature(prep, state.settled, *meta)
        if prerender is not None:
            if last is not None and last.get("meta") == meta and (sig is None or sig != last.get("signature")):
                prerender.start()  # an incremental plan: the child renders (forked now if need be)
                prerender.setup(prep)
            else:
                prerender.close()
                prerender = None
        return _plan_from(state, prep, sig, meta, targets, store, resolved_image, prerender)
    finally:
        if prerender is not None:
            prerender.close()


def _plan_from(state: PlanState, prep: load_mod.Prepared, sig: str | None, meta: list[str],
               targets: list[str] | None, store: StoreView | None,
               resolved_image: Callable[[str, str], str | None], prerender: Prerender | None) -> Planned:
    """The plan, from the stored one where it still holds, else computed."""
    from orchestrator.incremental import _decode_result, _from_result, _incremental

    stored = _decode_result(state.result) if state.result is not None else None
    if stored is not None and not all(resolved_image(ref, tree) == digest for ref, tree, digest in stored.images):
        stored = None
    if sig and stored is not None and stored.signature == sig:
        once: list[tuple[Planned, dict[str, Any], Mapping[str, str]]] = []

        def computed() -> tuple[Planned, dict[str, Any], Mapping[str, str]]:
            if not once:
                once.append(_compute(prep, state, targets, store, resolved_image))
            return once[0]

        def explanations() -> Mapping[str, str]:
            texts = state.get_explanations(stored.token)
            if texts is None or any(n not in texts for n in stored.order):  # damaged: recompute
                return computed()[2]
            return texts

        return _from_result(stored, store or EmptyStore(), lambda: computed()[0], _Deferred(explanations))
    if stored is not None and not targets and stored.meta == meta:
        inc = _incremental(prep, state, stored, store or EmptyStore(), resolved_image, prerender)
        if inc is not None:
            planned, update = inc
            if update is not None:  # else the stored plan is as good a base for the next run
                walk_patch = prep.walk_patch()
                if walk_patch is None or not state.put_delta(
                        sig, {**update.whole, "walk_patch": walk_patch}, update.patch, update.texts):
                    result = update.result()
                    result["walk"] = load_mod.walk_to_store(prep, state.settled)
                    state.put_result(sig, result, update.all_texts)
                state.save()
            return planned
    if prerender is not None:
        prerender.close()  # before the render workers fork
    planned, result, own_texts = _compute(prep, state, targets, store, resolved_image)
    result["meta"] = meta
    result["walk"] = load_mod.walk_to_store(prep, state.settled)
    state.put_result(sig, result, own_texts)
    state.save()
    return planned


def _shape(pkg: Package) -> str:
    """What of a package decides the graph's edges around it (identity, provides, runtime and
    build dependencies): equal shapes of every changed package ⇒ the stored edges still hold."""
    spec = pkg.spec
    parts = (pkg.id, _refs(pkg.provides), _refs(pkg.runtime_requires),
             None if spec is None else (_refs(spec.requires), spec.requires_final_images,
                                        _refs(c.package for c in spec.copy)))
    return xxhash.xxh3_64_hexdigest(repr(parts).encode())


def _refs(refs: Iterable[DepRef | None]) -> tuple[tuple[str, str, str] | None, ...]:
    """Plain tuples (their repr is C code; a dataclass's is not)."""
    return tuple(None if r is None else (r.category, r.name, r.version) for r in refs)


def _context_files(pdir: PackageDir) -> tuple[tuple[str, str], ...]:
    """Digests of a folder's build context, by the stat data its scan found."""
    from orchestrator.planstate import hash_file

    stats = dict(pdir.ctx_stats)
    return tuple((rel, hash_file(os.path.join(pdir.path, rel), stats[rel])) for rel in pdir.context)


def _compute(prep: load_mod.Prepared, state: PlanState, targets: list[str] | None,
             store: StoreView | None, resolved_image: Callable[[str, str], str | None],
             ) -> tuple[Planned, dict[str, Any], Mapping[str, str]]:
    """The full path: packages from the load cache or rendered, graph, keys, plan."""
    images: dict[tuple[str, str], str | None] = {}

    def resolve(ref: str, tree: str) -> str | None:
        if (ref, tree) not in images:
            images[(ref, tree)] = resolved_image(ref, tree)
        return images[(ref, tree)]

    early = _Early(prep, state, resolve, keyed=not targets)
    # networkx (~0.2 s, ~17 MB of modules) is imported while the render workers start on their
    # share of the folders (when nothing is rendered: by build_graph's import, just below)
    loaded = load_mod.load(prep.scan.trees, [], cache=state, prepared=prep,
                           meanwhile=lambda: load_mod.import_quietly("orchestrator.graph"),
                           each=early.add)
    early.digests = loaded.digests
    from orchestrator.graph import build_graph

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
    for node in order:
        pkg = graph.packages[node]
        pdir = by_dir[(pkg.tree, pkg.directory)]
        contexts[node] = pdir
        pre = early.own.get(node)
        if pre is not None and pre[0] is pkg:  # (not a package replaced by its provider)
            _, files, image, own_key = pre
        else:
            files, image = early.context(pkg, pdir), image_ref(pkg, resolve)
            own_key = ""
        dep_kinds = graph.deps_kinds(node)
        deps[node] = [dep for dep, _ in dep_kinds]
        dep_entries = []
        for dep, kind in dep_kinds:
            kinds[(dep, node)] = kind
            dep_entries.append((",".join(kind), dep, keys[dep]))
        inp = KeyInputs(node, pkg.rendered, files, image, tuple(dep_entries), own_key)
        inputs[node] = inp
        keys[node] = input_key(inp)
        specs[node] = pkg.spec.raw_json if pkg.spec else "{}"
    state.save_dirs()  # every folder and context file has been looked at
    packages = graph.packages
    del graph  # networkx's dicts (~10 MB for 10,000 packages) go before the plan and result come
    explanations = _Explanations(keys, inputs, packages)
    plan = make_plan(order, deps, inputs, keys, specs, explanations, store or EmptyStore())
    own_texts = _OwnTexts(inputs, packages)
    planned = Planned(plan, packages, inputs, keys, order, deps, kinds, contexts,
                      loaded.warnings, loaded.rendered)
    own = {p.id: p for p in loaded.packages}
    special = sorted(n for n, p in packages.items() if p.provides or p is not own.get(n))
    folders = [[pdir.path, *early.sigs[pdir.path], ids, warnings] for pdir, ids, warnings in loaded.folders]
    result = {
        "warnings": loaded.warnings,
        "images": [[ref, tree, digest] for (ref, tree), digest in images.items()],
        "order": order,
        "keys": [keys[n] for n in order],
        "owns": [inputs[n].own for n in order],
        "deps": [deps[n] for n in order],
        "kinds": [[",".join(kinds[(d, n)]) for d in deps[n]] for n in order],
        "specs": [specs[n] for n in order],
        "shapes": [early.shapes[n] for n in order],
        "special": special,
        "folders": folders,
    }
    return planned, result, own_texts


class _Early:
    """Per-folder and per-package work done as each folder's packages come in (`load`'s
    `each`): while this process renders its share, its children render more, so this work
    takes about half the time it would after the load. Folder signatures, shapes and, unless
    only some targets are keyed, each package's context digests, base image and own digest."""

    def __init__(self, prep: load_mod.Prepared, state: PlanState, resolve: Callable[[str, str], str | None],
                 keyed: bool) -> None:
        self.state, self.resolve, self.keyed = state, resolve, keyed
        self.racy = load_mod.racy_check(prep, state.settled)
        self.stats = prep.scan.stats
        self.digests: dict[str, str] = {}  # the render workers' digests (`Loaded.digests`)
        self.sigs: dict[str, tuple[str | None, str | None]] = {}
        self.shapes: dict[str, str] = {}
        self.own: dict[str, tuple[Package, tuple[tuple[str, str], ...], str, str]] = {}

    def add(self, pdir: PackageDir, packages: list[Package], digests: dict[str, str]) -> None:
        self.digests = digests
        self.sigs[pdir.path] = load_mod.folder_sigs(pdir, self.racy)
        for pkg in packages:
            self.shapes[pkg.id] = _shape(pkg)
            if self.keyed:
                files, image = self.context(pkg, pdir), image_ref(pkg, self.resolve)
                self.own[pkg.id] = (pkg, files, image, own_digest(pkg.id, pkg.rendered, files, image))

    def context(self, pkg: Package, pdir: PackageDir) -> tuple[tuple[str, str], ...]:
        """Digests of a package's build context (none without a build spec)."""
        if pkg.spec is None:
            return ()
        stats, fresh, state = self.stats, self.digests, self.state
        return tuple((rel, fresh.get(p) or state.file_digest(p, stats[p]))
                     for rel in pdir.context for p in (os.path.join(pdir.path, rel),))


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


class _OwnTexts(Mapping[str, str]):
    """Each package's own explanation text (`plan.own_text`), encoded when the state is written
    (never all held)."""

    def __init__(self, inputs: dict[str, KeyInputs], packages: Mapping[str, Package]) -> None:
        self._inputs, self._packages = inputs, packages

    def __getitem__(self, node: str) -> str:
        pkg = self._packages[node]
        return own_text(self._inputs[node], pkg.directory, pkg.values_json)

    def __iter__(self) -> Iterator[str]:
        return iter(self._inputs)

    def __len__(self) -> int:
        return len(self._inputs)


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
