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
    sig = load_mod.signature(prep, state.settled, str(KEY_SCHEMA), "\0".join(targets or ()), os.getcwd())
    stored = _decode_result(state.get_result(sig)) if sig else None
    if sig and stored is not None and all(resolved_image(ref, tree) == digest
                                          for ref, tree, digest in stored.images):
        once: list[Planned] = []

        def full() -> Planned:
            if not once:
                once.append(_compute(prep, state, targets, store, resolved_image)[0])
            return once[0]

        def explanations() -> Mapping[str, str]:
            texts = state.get_explanations(sig) if sig else None
            if texts is None or any(n not in texts for n in stored.order):  # damaged: recompute
                return {n: json.dumps(full().plan.items[i].explanation) for i, n in enumerate(stored.order)}
            return texts

        return _from_result(stored, store or EmptyStore(), full, _Deferred(explanations))
    planned, result = _compute(prep, state, targets, store, resolved_image)
    if sig:
        state.put_result(sig, result, {i.id: json.dumps(i.explanation) for i in planned.plan.items})
    state.save()
    return planned


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
        inp = KeyInputs(node, pkg.rendered, files, image_ref(pkg, resolve), tuple(dep_entries))
        inputs[node] = inp
        keys[node] = input_key(inp)
        specs[node] = json.dumps(pkg.spec.raw if pkg.spec else {})
    explanations = _Explanations(keys, inputs, graph.packages)
    plan = make_plan(order, deps, inputs, keys, specs, explanations, store or EmptyStore())
    planned = Planned(plan, graph.packages, inputs, keys, order, deps, kinds, contexts,
                      loaded.warnings, loaded.rendered)
    result = {
        "images": [[ref, tree, digest] for (ref, tree), digest in images.items()],
        "warnings": loaded.warnings,
        "order": order,
        "nodes": {n: [keys[n], deps[n], [",".join(kinds[(d, n)]) for d in deps[n]], specs[n]] for n in order},
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


@dataclass
class _Stored:
    """A stored whole plan, checked for shape (a damaged one is never half-used)."""

    images: list[tuple[str, str, str | None]]
    warnings: list[str]
    order: list[str]
    keys: dict[str, str]
    deps: dict[str, list[str]]
    kinds: dict[tuple[str, str], tuple[str, ...]]
    specs: dict[str, str]


def _decode_result(result: dict[str, Any] | None) -> _Stored | None:
    if result is None:
        return None
    try:
        nodes: dict[str, list[Any]] = result["nodes"]
        order = [str(n) for n in result["order"]]
        deps = {n: [str(d) for d in nodes[n][1]] for n in order}
        stored = _Stored(
            images=[(str(ref), str(tree), None if d is None else str(d)) for ref, tree, d in result["images"]],
            warnings=[str(w) for w in result["warnings"]], order=order,
            keys={n: str(nodes[n][0]) for n in order}, deps=deps,
            kinds={(d, n): tuple(str(k).split(",")) for n in order for d, k in zip(deps[n], nodes[n][2],
                                                                                 strict=True)},
            specs={n: str(nodes[n][3]) for n in order},
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    return stored if all(d in stored.keys for n in order for d in deps[n]) else None


def _from_result(stored: _Stored, store: StoreView, full: Callable[[], Planned],
                 texts: Mapping[str, str]) -> Planned:
    """The no-change fast path: the stored plan inputs, planned against the store as it is now.
    `texts`: each package's explanation (a superset of its key inputs) as JSON, read on demand."""
    explanations = LazyJSON(texts)
    inputs = LazyJSON(texts, KeyInputs.from_json)
    plan = make_plan(stored.order, stored.deps, inputs, stored.keys, stored.specs, explanations, store)
    return Planned(plan, _Deferred(lambda: full().packages), inputs, stored.keys, stored.order,
                   stored.deps, stored.kinds, _Deferred(lambda: full().contexts), stored.warnings, 0)


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
