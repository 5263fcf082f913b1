"""RESOLVE: packages → one global DAG of build dependencies.

Edges point from a dependency to its dependent (so a topological order is a build order)
and carry the kinds of the dependency: `requires` (plain chain), `final` (under
`requires_final_images`), `runtime` (runtime closure of a final-image dependency, whose
artefacts are composed too) and `copy`. Selectors resolve to the highest satisfying
version (`orchestrator.versions`); a `provides` entry substitutes its provider, as in luet.

The DAG is a networkx `DiGraph`. It is built only on the full planning path: a warm plan
of an unchanged tree reuses the stored result and never imports networkx (≈0.3 s).
"""
from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx

from orchestrator import versions
from orchestrator.errors import GraphError, Reason
from orchestrator.model import DepRef, Package

KINDS = ("requires", "final", "runtime", "copy")


@dataclass
class PackageGraph:
    packages: dict[str, Package]
    graph: nx.DiGraph  # edge dependency -> dependent, attribute "kinds"
    _order: list[str] | None = field(default=None, repr=False, compare=False)
    _deps: dict[str, list[tuple[str, tuple[str, ...]]]] | None = field(default=None, repr=False, compare=False)

    def deps_kinds(self, node: str) -> list[tuple[str, tuple[str, ...]]]:
        """Direct build dependencies, sorted by id, each with the kinds of its edge (worked out
        for every node at once: a networkx adjacency view per node costs more than the rest)."""
        if self._deps is None:
            self._deps = _deps_of(self.graph.nodes, self.graph.edges(data="kinds"))
        return list(self._deps[node])

    def order(self) -> list[str]:
        """Build order: dependencies first, ties by id (deterministic): networkx's
        lexicographical topological sort, as Kahn's algorithm over the graph's own adjacency
        (a heap of ready ids), at a fraction of its per-node cost. Worked out once (it is also
        `build_graph`'s cycle check); empty for a graph with a cycle, which `build_graph` refuses."""
        if self._order is None:
            pred, succ = self.graph.pred, self.graph.succ
            waiting = {node: len(pred[node]) for node in self.graph}
            ready = [node for node, n in waiting.items() if n == 0]
            heapq.heapify(ready)
            out: list[str] = []
            while ready:
                node = heapq.heappop(ready)
                out.append(node)
                for nxt in succ[node]:
                    waiting[nxt] -= 1
                    if waiting[nxt] == 0:
                        heapq.heappush(ready, nxt)
            self._order = out if len(out) == len(waiting) else []
        return list(self._order)

    def closure(self, targets: Iterable[str]) -> set[str]:
        """The targets and everything they depend on."""
        out: set[str] = set()
        for target in targets:
            if target not in out:
                out |= nx.ancestors(self.graph, target) | {target}
        return out

    def dependents(self, node: str) -> set[str]:
        """Everything that depends on `node`, transitively (without `node`)."""
        found: set[str] = nx.descendants(self.graph, node)
        return found


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
    graph = nx.DiGraph()
    graph.add_nodes_from(by_id)
    kinds_of = {edge: tuple(k for k in KINDS if k in kinds) for edge, kinds in edges.items()}
    graph.add_edges_from((src, dst, {"kinds": kinds}) for (src, dst), kinds in kinds_of.items())
    result = PackageGraph(by_id, graph, _deps=_deps_of(by_id, ((s, d, k) for (s, d), k in kinds_of.items())))
    if len(result.order()) != len(by_id):  # Kahn leaves the nodes of a cycle unordered
        nodes = _find_cycle(graph)
        first = by_id[nodes[0]]
        raise GraphError(f"dependency cycle (A → B: A requires B): {' → '.join(nodes)}",
                         reason=Reason.CIRCULAR_DEPENDENCY, file=first.source_file,
                         hint="break the cycle in one of these build specs")
    return result


def _deps_of(nodes: Iterable[str], edges: Iterable[tuple[str, str, tuple[str, ...]]],
             ) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Each node's dependencies with their edge kinds, sorted by id."""
    deps: dict[str, list[tuple[str, tuple[str, ...]]]] = {n: [] for n in nodes}
    for src, dst, kinds in edges:
        deps[dst].append((src, kinds))
    for entries in deps.values():
        entries.sort()
    return deps


def _replaced(pkg: Package, provider: Package) -> Package:
    return dataclasses.replace(pkg, spec=provider.spec, tree=provider.tree, directory=provider.directory,
                               rendered=provider.rendered, values_json=provider.values_json)


def _find_cycle(graph: nx.DiGraph) -> list[str]:
    """A cycle as [A, B, …, A] where each requires the next (deterministic: starts at the smallest id
    of the smallest strongly connected component that has a cycle)."""
    reverse = graph.reverse(copy=False)  # edges dependent -> dependency: "requires"
    comps = [sorted(c) for c in nx.strongly_connected_components(reverse) if len(c) > 1]
    start = min(comps)[0]
    cycle = nx.find_cycle(reverse, source=start)
    return [cycle[0][0], *(v for _, v in cycle)]


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
