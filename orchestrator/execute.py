"""EXECUTE: the scheduler's `work(node)` for real builds.

For one package: look its key up in the store; else look up its early-cutoff key (its
dependencies produced outputs an earlier build already saw); else take the key's lock
(another orch process may be building it: wait, then use its result), turn the plan into
a `BuildJob` (dependencies resolved to images and artefacts), run the backend and record
the outputs in the store. A failed build records nothing.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator import images, keys as keys_mod
from orchestrator.planning import Planned
from orchestrator.errors import BuildError, Interrupted, OrchError, Reason
from orchestrator.model import BuildJob, BuildOutput, CopyJob, Package, SubPackageJob
from orchestrator.plan import PlanItem
from orchestrator.scheduler import NodeResult, Outcome
from orchestrator.spec.discover import NOT_CONTEXT


@dataclass(frozen=True)
class Record:
    """A package's outputs as the store holds them."""

    key: str
    artifact: str  # digest of the .tar.zst artefact
    image: str  # package image ID ("" for virtual packages)
    image_name: str  # where that image lives in the builder's storage
    image_archive: str = ""  # digest of the image's oci-archive in the store ("" if none)

    @property
    def outputs(self) -> dict[str, str]:
        return {"artifact": self.artifact, "image": self.image}


class Store(Protocol):
    """What execution needs of the store (implemented by `orchestrator.storeview`)."""

    def record(self, key: str, fresh: bool = False) -> Record | None: ...
    def equivalent(self, okey: str) -> Record | None: ...
    def alias(self, key: str, record: Record, package_id: str, explanation: dict[str, Any]) -> None: ...
    def lock(self, key: str, cancel: threading.Event | None = None) -> Any: ...
    def fetch_artifact(self, record: Record, dest: str) -> bool: ...
    def fetch_image_archive(self, record: Record, dest: str) -> bool: ...
    def save(self, key: str, okey: str, package_id: str, output: BuildOutput,
             image_archive: str | None, explanation: dict[str, Any]) -> Record: ...


class Backend(Protocol):
    def build(self, job: BuildJob, log_path: str, cancel: threading.Event) -> BuildOutput: ...
    def image_exists(self, name: str) -> bool: ...
    def load_image(self, archive: str, name: str) -> None: ...
    def save_image(self, name: str, archive: str) -> None: ...


@dataclass
class Executor:
    planned: Planned
    store: Store
    backend: Backend
    workdir: str  # scratch space on the cache's filesystem
    logs_dir: str
    cancel: threading.Event = field(default_factory=threading.Event)
    records: dict[str, Record] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _items: dict[str, PlanItem] = field(default_factory=dict)
    _rank: dict[str, int] = field(default_factory=dict)

    def cached_upfront(self) -> dict[str, NodeResult]:
        """Packages the plan found under their own key: CACHED without a worker or a lock.

        The plan has just looked these keys up (the store view remembers the answers), so a
        fully cached build never goes through the scheduler's pool. Packages cached only
        through early cutoff still go through `work` (their key gets registered)."""
        out: dict[str, NodeResult] = {}
        for item in self.planned.plan.items:
            if item.action == "cached":
                record = self.store.record(item.key)
                if record is not None:
                    self.records[item.id] = record
                    out[item.id] = NodeResult(item.id, Outcome.CACHED, detail=record)
        return out

    def work(self, node: str) -> NodeResult:
        """The scheduler's work: CACHED (own key or early cutoff), else BUILT under the key's lock."""
        if self.cancel.is_set():
            raise Interrupted()
        key = self.planned.keys[node]
        record = self.store.record(key)
        if record is None:
            okey = self._output_key(node)
            record = self.store.equivalent(okey)
            if record is not None:
                self.store.alias(key, record, node, self._explanation(node))
        if record is not None:
            self._done(node, record)
            return NodeResult(node, Outcome.CACHED, detail=record)
        with self.store.lock(key, self.cancel):
            record = self.store.record(key, fresh=True)  # built by another process while we waited?
            if record is not None:
                self._done(node, record)
                return NodeResult(node, Outcome.CACHED, detail=record)
            if self.cancel.is_set():
                raise Interrupted()
            record = self._build(node, key)
        self._done(node, record)
        return NodeResult(node, Outcome.BUILT, detail=record)

    def _done(self, node: str, record: Record) -> None:
        with self._lock:
            self.records[node] = record

    def _output_key(self, node: str) -> str:
        deps = {d: self.records[d].outputs for d in self.planned.deps[node]}
        return keys_mod.output_key(self.planned.inputs[node], deps)

    def _item(self, node: str) -> PlanItem:
        with self._lock:
            if not self._items:
                self._items.update((i.id, i) for i in self.planned.plan.items)
        return self._items[node]

    def _explanation(self, node: str) -> dict[str, Any]:
        return self._item(node).explanation

    def log_file(self, node: str) -> str:
        """Where the build log of `node`'s current key lives (it may not exist)."""
        return os.path.join(self.logs_dir, safe_name(node), f"{self.planned.keys[node][:16]}.log")

    def log_path(self, node: str) -> str:
        """A fresh, empty build log for `node` (a rebuild of the same key starts it over)."""
        path = self.log_file(node)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8"):
            pass
        with self._lock:
            self.logs[node] = path
        return path

    def _build(self, node: str, key: str) -> Record:
        log = self.log_path(node)
        scratch = tempfile.mkdtemp(prefix=f"{safe_name(node)}-", dir=self.workdir)
        try:
            job = self.job(node, scratch)
            output = self.backend.build(job, log, self.cancel)
            archive = None
            if output.image_id:
                archive = os.path.join(scratch, "image.oci.tar")
                self.backend.save_image(output.image_name, archive)
            return self.store.save(key, self._output_key(node), node, output, archive,
                                   self._explanation(node))
        except OrchError as exc:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"# orch: {node} failed: {exc}\n")
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # ------------------------------------------------------------------ plan → BuildJob
    def job(self, node: str, scratch: str) -> BuildJob:
        pkg = self.planned.packages[node]
        spec = pkg.spec
        pdir = self.planned.contexts[node]
        common: dict[str, Any] = {"ref": pkg.ref, "key": self.planned.keys[node],
                                  "context_dir": pdir.path,
                                  "context_exclude": tuple(self._context_exclude(node))}
        if spec is None or spec.is_virtual:
            return BuildJob(virtual=True, **common)
        by_kind = self._deps_by_kind(node)
        image, overlays = "", []
        if spec.image:
            image = images.locate(spec.image, pkg.tree)
        elif by_kind["requires"] and not spec.requires_final_images:
            bases = [d for d in by_kind["requires"] if self.records[d].image_name]
            if not bases:
                raise _fail(f"{node}: no dependency with an image to build on")
            first, *rest = bases
            image = self.image_of(first)
            overlays = [self.artifact_of(d, scratch) for d in self._chain_overlay(first, rest)]
        if spec.requires_final_images:
            overlays = [self.artifact_of(d, scratch) for d in by_kind["final"]]
        copies = []
        for c in spec.copy:
            source = (self.image_of(self._resolve_copy(node, c.package.family)) if c.package
                      else images.locate(c.image, pkg.tree))
            copies.append(CopyJob(source, c.source, c.destination))
        body = spec.body
        return BuildJob(
            image=image, final_artifacts=tuple(overlays), env=body.env, prelude=body.prelude,
            steps=body.steps, unpack=body.unpack, package_dir=body.package_dir,
            includes=body.includes, excludes=body.excludes, copy=tuple(copies),
            subpackages=tuple(SubPackageJob(_sub_ref(pkg, s.ref), s.includes, s.excludes)
                              for s in spec.subpackages),
            **common,
        )

    def _deps_by_kind(self, node: str) -> dict[str, list[str]]:
        """Dependencies per kind, in build order (deps first, ties by id): the documented order."""
        rank = self._ranks()
        out: dict[str, list[str]] = {"requires": [], "final": [], "copy": []}
        for dep in sorted(self.planned.deps[node], key=lambda d: rank[d]):
            kinds = self.planned.kinds[(dep, node)]
            if "requires" in kinds:
                out["requires"].append(dep)
            if "final" in kinds or "runtime" in kinds:
                out["final"].append(dep)
            if "copy" in kinds:
                out["copy"].append(dep)
        return out

    def _chain_overlay(self, first: str, rest: list[str]) -> list[str]:
        """Several plain `requires`: the first one's package image is the base; the others'
        artefacts (and those of their own `requires` chains not already in it) go on top."""
        def chain(n: str) -> set[str]:
            seen, stack = set(), [n]
            while stack:
                cur = stack.pop()
                for dep in self.planned.deps[cur]:
                    if "requires" in self.planned.kinds[(dep, cur)] and dep not in seen:
                        seen.add(dep)
                        stack.append(dep)
            return seen

        have = chain(first) | {first}
        wanted: set[str] = set()
        for dep in rest:
            wanted |= (chain(dep) | {dep}) - have
        rank = self._ranks()
        return sorted(wanted, key=lambda n: rank[n])

    def _ranks(self) -> dict[str, int]:
        """Each package's position in build order (computed once)."""
        with self._lock:
            if not self._rank:
                self._rank.update((n, i) for i, n in enumerate(self.planned.order))
        return self._rank

    def _resolve_copy(self, node: str, family: str) -> str:
        for dep in self.planned.deps[node]:
            if self.planned.packages[dep].ref.family == family:
                return dep
        raise _fail(f"{node}: copy source {family} is not among its dependencies")

    def image_of(self, dep: str) -> str:
        """The dependency's package image in the builder's storage, restored from the store if gone."""
        record = self.records[dep]
        if not record.image_name:
            raise _fail(f"{dep} has no image")  # virtual packages have none
        if not self.backend.image_exists(record.image_name):
            with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
                archive = os.path.join(tmp, "image.oci.tar")
                if not self.store.fetch_image_archive(record, archive):
                    raise _fail(f"image of {dep} is neither in the builder's storage nor in the store")
                self.backend.load_image(archive, record.image_name)
        return record.image_name

    def artifact_of(self, dep: str, scratch: str) -> str:
        path = os.path.join(scratch, f"{safe_name(dep)}.tar.zst")
        if not self.store.fetch_artifact(self.records[dep], path):
            raise _fail(f"artefact of {dep} is missing from the store")
        return path

    def _context_exclude(self, node: str) -> list[str]:
        """What the folder holds that is not build context: spec files, nested packages, ignored."""
        pdir = self.planned.contexts[node]
        present = [n for n in sorted(NOT_CONTEXT) if os.path.lexists(os.path.join(pdir.path, n))]
        return [*pdir.excluded, *present, *pdir.ignored]


def _sub_ref(pkg: Package, ref: Any) -> Any:
    from orchestrator.model import PackageRef

    return PackageRef(ref.category or pkg.ref.category, ref.name,
                      ref.version if ref.version not in ("", ">=0") else pkg.ref.version)


def _fail(message: str) -> BuildError:
    return BuildError(message, reason=Reason.BUILD_FAILED,
                      hint="run `orch cache verify --repair`, then build again")


_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")


def safe_name(node: str) -> str:
    return _UNSAFE.sub("_", node.replace("/", "_"))
