"""The façade (BuildStream's Stream): one function per verb, wiring
load → graph → keys → plan (→ schedule/execute → store). The CLI calls exactly one of these.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from orchestrator.errors import UsageError, GraphError, Reason
from orchestrator.keys import KeyInputs, input_key
from orchestrator.model import Package
from orchestrator.plan import EmptyStore, Plan, StoreView, explanation, make_plan
from orchestrator.planstate import PlanState, config_id
from orchestrator.spec import load as load_mod
from orchestrator.spec.discover import PackageDir


@dataclass
class Planned:
    """A plan plus what the later stages need (packages, graph, key inputs)."""

    plan: Plan
    packages: dict[str, Package]
    inputs: dict[str, KeyInputs]
    keys: dict[str, str]
    order: list[str]
    deps: dict[str, list[str]]
    kinds: dict[tuple[str, str], tuple[str, ...]]
    contexts: dict[str, PackageDir]
    warnings: list[str] = field(default_factory=list)
    rendered: int = 0


def image_ref(pkg: Package, resolved: Callable[[str], str | None]) -> str:
    """The base image as it enters the key: as written, plus its digest once resolved."""
    if pkg.spec is None or not pkg.spec.image:
        return ""
    digest = resolved(pkg.spec.image)
    return f"{pkg.spec.image}@{digest}" if digest else pkg.spec.image


def compute(
    trees: list[str],
    values: list[str],
    cache_dir: str | None,
    *,
    targets: list[str] | None = None,
    store: StoreView | None = None,
    resolved_image: Callable[[str], str | None] = lambda ref: None,
) -> Planned:
    """Load, resolve, key and plan. `store` answers "is this key cached?"."""
    if not trees:
        raise UsageError("no tree given", hint="pass -t/--tree DIR")
    state = PlanState(cache_dir, config_id(trees, values))
    loaded = load_mod.load(trees, values, cache=state)
    from orchestrator.graph import build_graph  # networkx only when needed

    packages = loaded.packages
    graph = build_graph(packages)
    by_dir = {(p.tree, p.rel): p for p in loaded.scan.packages}
    order = graph.order()
    if targets:
        wanted = graph.closure(select(targets, graph.packages))
        order = [n for n in order if n in wanted]
    inputs: dict[str, KeyInputs] = {}
    keys: dict[str, str] = {}
    explanations: dict[str, dict[str, Any]] = {}
    deps: dict[str, list[str]] = {}
    kinds: dict[tuple[str, str], tuple[str, ...]] = {}
    contexts: dict[str, PackageDir] = {}
    for node in order:
        pkg = graph.packages[node]
        pdir = by_dir[(pkg.tree, pkg.directory)]
        contexts[node] = pdir
        files: tuple[tuple[str, str], ...] = ()
        if pkg.spec is not None:
            files = tuple(
                (rel, state.file_digest(p, loaded.scan.stats[p]))
                for rel in pdir.context
                for p in (os.path.join(pdir.path, rel),)
            )
        deps[node] = graph.deps(node)
        dep_entries = []
        for dep in deps[node]:
            kinds[(dep, node)] = graph.kinds(dep, node)
            dep_entries.append((",".join(kinds[(dep, node)]), dep, keys[dep]))
        inp = KeyInputs(node, pkg.rendered, files, image_ref(pkg, resolved_image), tuple(dep_entries))
        inputs[node] = inp
        keys[node] = input_key(inp)
        explanations[node] = explanation(keys[node], inp, pkg.directory, pkg.values_used)
    specs = {n: (graph.packages[n].spec.raw if graph.packages[n].spec else {}) for n in order}
    plan = make_plan(order, inputs, keys, specs, explanations, store or EmptyStore())
    state.save()
    return Planned(plan, graph.packages, inputs, keys, order, deps, kinds, contexts,
                   loaded.warnings, loaded.rendered)


def select(targets: list[str], packages: dict[str, Package]) -> list[str]:
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


def open_store(cache_dir: str | None) -> StoreView | None:
    """The store's view for planning; None when there is no cache directory yet."""
    if not cache_dir or not os.path.isdir(os.path.join(cache_dir, "store")):
        return None
    from orchestrator.storeview import StoreAdapter

    return StoreAdapter.open(cache_dir)


def plan(trees: list[str], values: list[str], cache_dir: str | None,
         *, targets: list[str] | None = None) -> Planned:
    """`orch plan`: compute against the store in `cache_dir`."""
    store = open_store(cache_dir)
    resolved = store.image_digest if store is not None else (lambda ref: None)
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
