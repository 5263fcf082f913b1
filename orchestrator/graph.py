"""RESOLVE: packages → one global DAG of build dependencies.

Edges point from a dependency to its dependent (so a topological order is a build order)
and carry the kinds of the dependency: `requires` (plain chain), `final` (under
`requires_final_images`), `runtime` (runtime closure of a final-image dependency, whose
artefacts are composed too) and `copy`. Selectors resolve to the highest satisfying
version (`orchestrator.versions`); a `provides` entry substitutes its provider, as in luet.

Plain dicts, no graph library: importing networkx alone costs more than a warm plan may.
"""
from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator import versions
from orchestrator.errors import GraphError, Reason
from orchestrator.model import DepRef, Package

KINDS = ("requires", "final", "runtime", "copy")


@dataclass
class PackageGraph:
    packages: dict[str, Package]
    preds: dict[str, dict[str, tuple[str, ...]]]  # node -> {dependency: kinds}
    succs: dict[str, set[str]]  # node -> its direct dependents

    def deps(self, node: str) -> list[str]:
        """Direct build dependencies, sorted by id."""
        return sorted(self.preds[node])

    def kinds(self, dep: str, node: str) -> tuple[str, ...]:
        return self.preds[node][dep]

    def order(self) -> list[str]:
        """Build order: dependencies first, ties by id (deterministic)."""
        order = _kahn(self.preds, self.succs)
        assert len(order) == len(self.preds), "cycle (build_graph checks for cycles)"
        return order

    def closure(self, targets: Iterable[str]) -> set[str]:
        """The targets and everything they depend on."""
        return _reach(targets, self.preds)

    def dependents(self, node: str) -> set[str]:
        """Everything that depends on `node`, transitively (without `node`)."""
        return _reach([node], self.succs) - {node}


def _kahn(preds: dict[str, dict[str, tuple[str, ...]]], succs: dict[str, set[str]]) -> list[str]:
    """Lexicographically smallest topological order of the nodes not on or behind a cycle."""
    indegree = {node: len(p) for node, p in preds.items()}
    ready = [node for node, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for user in succs[node]:
            indegree[user] -= 1
            if indegree[user] == 0:
                heapq.heappush(ready, user)
    return order


def _reach(starts: Iterable[str], edges: dict[str, dict[str, tuple[str, ...]]] | dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(n for n in edges[node] if n not in seen)
    return seen


class Resolver:
    """Selector → concrete package, over one set of packages (the build DB)."""

    def __init__(self, packages: Iterable[Package]) -> None:
        self._selectors: dict[str, versions.Selector] = {}  # selector text -> parsed (few distinct)
        self.families: dict[str, dict[str, Package]] = {}
        self.providers: dict[str, list[tuple[versions.Selector, Package]]] = {}
        for pkg in packages:
            self.families.setdefault(pkg.ref.family, {})[pkg.ref.version] = pkg
            for prov in pkg.provides:
                self.providers.setdefault(prov.family, []).append((self._sel(prov, pkg), pkg))

    def _sel(self, dep: DepRef, owner: Package) -> versions.Selector:
        sel = self._selectors.get(dep.version)
        if sel is not None:
            return sel
        try:
            sel = self._selectors[dep.version] = versions.parse_selector(dep.version)
        except ValueError as exc:
            raise GraphError(f"{owner.id}: {exc}", reason=Reason.INVALID_SPEC,
                             file=owner.source_file) from None
        return sel

    def replacement(self, pkg: Package) -> Package | None:
        """Another package whose `provides` covers this one (luet substitutes it on lookup)."""
        for prov_sel, provider in self.providers.get(pkg.ref.family, ()):
            if provider.id != pkg.id and versions.matches(prov_sel, pkg.ref.version):
                return provider
        return None

    def resolve(self, dep: DepRef, owner: Package) -> Package:
        sel = self._sel(dep, owner)
        for prov_sel, provider in self.providers.get(dep.family, ()):
            if sel.is_any or prov_sel.is_any or any(versions.matches(sel, c.version)
                                                    for c in prov_sel.constraints):
                return provider
        candidates = self.families.get(dep.family)
        if not candidates:
            raise GraphError(f"{owner.id} requires {dep}, but no tree defines {dep.family}",
                             reason=Reason.UNKNOWN_DEPENDENCY, file=owner.source_file,
                             hint="add the package or fix the name/category")
        if sel.is_any and len(candidates) == 1:  # the common case: no ranking needed
            return next(iter(candidates.values()))
        chosen = versions.best(sel, candidates)
        if chosen is None:
            have = ", ".join(sorted(candidates, key=versions.sort_key))
            raise GraphError(f"{owner.id} requires {dep.family} {sel}, but only {have} exist",
                             reason=Reason.UNSATISFIABLE, file=owner.source_file,
                             hint="relax the selector or add that version")
        return candidates[chosen]


def build_graph(packages: list[Package]) -> PackageGraph:
    """One DAG for every package of every tree; errors show the offending chain."""
    resolver = Resolver(packages)
    # A package provided by another is replaced by it, as luet's lookups do: it is built from
    # the provider's spec and folder (cOS: utils/installer → system/cos-wrapper).
    packages = [_replaced(p, r) if (r := resolver.replacement(p)) is not None else p for p in packages]
    by_id = {p.id: p for p in packages}
    edges: dict[tuple[str, str], set[str]] = {}

    def add(dep: Package, pkg: Package, kind: str) -> None:
        if dep.id == pkg.id:
            raise GraphError(f"dependency cycle: {pkg.id} → {pkg.id}",
                             reason=Reason.CIRCULAR_DEPENDENCY, file=pkg.source_file)
        edges.setdefault((dep.id, pkg.id), set()).add(kind)

    for pkg in packages:
        spec = pkg.spec
        if spec is None:
            continue
        for ref in spec.requires:
            dep = resolver.resolve(ref, pkg)
            add(dep, pkg, "final" if spec.requires_final_images else "requires")
            if spec.requires_final_images:
                for rdep in _runtime_closure(dep, resolver):
                    if rdep.id != pkg.id:
                        add(rdep, pkg, "runtime")
        for copy in spec.copy:
            if copy.package is not None:
                add(resolver.resolve(copy.package, pkg), pkg, "copy")
    preds: dict[str, dict[str, tuple[str, ...]]] = {node: {} for node in by_id}
    succs: dict[str, set[str]] = {node: set() for node in by_id}
    for (src, dst), kinds in edges.items():
        preds[dst][src] = tuple(k for k in KINDS if k in kinds)
        succs[src].add(dst)
    if len(_kahn(preds, succs)) != len(preds):
        nodes = _find_cycle(preds, succs)
        first = by_id[nodes[0]]
        raise GraphError(f"dependency cycle (A → B: A requires B): {' → '.join(nodes)}",
                         reason=Reason.CIRCULAR_DEPENDENCY, file=first.source_file,
                         hint="break the cycle in one of these build specs")
    return PackageGraph(by_id, preds, succs)


def _replaced(pkg: Package, provider: Package) -> Package:
    return dataclasses.replace(pkg, spec=provider.spec, tree=provider.tree, directory=provider.directory,
                               rendered=provider.rendered, values_used=provider.values_used)


def _find_cycle(preds: dict[str, dict[str, tuple[str, ...]]], succs: dict[str, set[str]]) -> list[str]:
    """A cycle as [A, B, …, A] where each requires the next (deterministic: smallest ids)."""
    done = set(_kahn(preds, succs))
    left = {node: sorted(d for d in p if d not in done) for node, p in preds.items() if node not in done}
    # every node left has a dependency left: walk dependencies until one repeats
    path: list[str] = []
    where: dict[str, int] = {}
    node = min(left)
    while node not in where:
        where[node] = len(path)
        path.append(node)
        node = left[node][0]
    return [*path[where[node]:], node]


def _runtime_closure(root: Package, resolver: Resolver) -> list[Package]:
    """The runtime `requires` (definition.yaml) of `root`, transitively, without `root`."""
    seen: dict[str, Package] = {}
    stack = [root]
    while stack:
        pkg = stack.pop()
        for ref in pkg.runtime_requires:
            dep = resolver.resolve(ref, pkg)
            if dep.id not in seen and dep.id != root.id:
                seen[dep.id] = dep
                stack.append(dep)
    return sorted(seen.values(), key=lambda p: p.id)
