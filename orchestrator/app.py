"""The façade (BuildStream's Stream): one function per verb, wiring
load → graph → keys → plan (→ schedule/execute → store). The CLI calls exactly one of these.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from orchestrator.building import BuildReport, build
from orchestrator.errors import UsageError
from orchestrator.planning import Planned, compute, image_ref, select

if TYPE_CHECKING:
    from orchestrator.storeview import StoreAdapter

__all__ = ["BuildReport", "Planned", "build", "compute", "explain", "format_explain", "graph_dot",
           "image_ref", "open_store", "plan", "plan_keys", "select", "write_svg"]


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
