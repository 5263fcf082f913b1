"""Plain data shared by every stage: frozen dataclasses, no IO, no third-party imports."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

_T = TypeVar("_T", bound=type)


def _pickled_by_fields(cls: _T) -> _T:
    """Pickle as `cls(*init fields)`: a render worker sends back every package it loads, and
    this is ~30% cheaper both ways than the slots dataclass default (state list + setattr)."""
    names = tuple(f.name for f in dataclasses.fields(cls) if f.init)

    def __reduce__(self: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, tuple([getattr(self, n) for n in names])

    cls.__reduce__ = __reduce__  # type: ignore[method-assign, assignment]
    return cls


@_pickled_by_fields
@dataclass(frozen=True, order=True, slots=True)
class PackageRef:
    """A concrete package identity: `category/name@version`."""

    category: str
    name: str
    version: str
    id: str = field(init=False, compare=False, repr=False)  # asked for everywhere: made once

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", f"{self.category}/{self.name}@{self.version}")

    @property
    def family(self) -> str:
        return f"{self.category}/{self.name}"

    def __str__(self) -> str:
        return self.id


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class DepRef:
    """A dependency as written: name, category and a version *selector* (`>=1.0`, `<2`, `1.2`, …)."""

    category: str
    name: str
    version: str = ">=0"

    @property
    def family(self) -> str:
        return f"{self.category}/{self.name}"

    def __str__(self) -> str:
        return f"{self.family}{'' if self.version in ('', '>=0') else ' ' + self.version}"


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class CopySpec:
    """`copy:` entry: from another package's image (`package`) or any image (`image`)."""

    source: str
    destination: str
    package: DepRef | None = None
    image: str = ""


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class SubPackage:
    ref: DepRef
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class BuildBody:
    """What a build runs and takes from its result: only a build needs it, never a plan."""

    prelude: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    unpack: bool = False
    package_dir: str = ""
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


def body_of_plan(plan: dict[str, Any]) -> BuildBody:
    """The body a spec's plan fields (`BuildSpec.raw_json`, decoded) hold as they are."""
    return BuildBody(tuple(plan["prelude"] or ()), tuple(plan["steps"] or ()), tuple(plan["env"] or ()),
                     plan["unpack"], plan["package_dir"], tuple(plan["includes"] or ()),
                     tuple(plan["excludes"] or ()))


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class BuildSpec:
    """The rendered `build.yaml` (luet's compile spec), fields as luet names them."""

    image: str = ""
    requires: tuple[DepRef, ...] = ()
    requires_final_images: bool = False
    conflicts: tuple[DepRef, ...] = ()
    provides: tuple[DepRef, ...] = ()
    copy: tuple[CopySpec, ...] = ()
    retrieve: tuple[str, ...] = ()
    subpackages: tuple[SubPackage, ...] = ()
    # The rendered field values exactly as written (None where absent), for `plan --json` parity
    # with luet; JSON text (as one string it costs far less memory), passed through, and where
    # the body is decoded from when a build asks for it
    raw_json: str = "{}"
    # None: the body is what `raw_json` holds (the usual case; see `body`); else the body, where
    # validating it converted a value (a number among the steps, say)
    stored_body: BuildBody | None = None

    @property
    def body(self) -> BuildBody:
        """Decoded when asked for: a plan of 10,000 packages never holds their steps (~9 MB)."""
        if self.stored_body is not None:
            return self.stored_body
        return body_of_plan(json.loads(self.raw_json))

    @property
    def is_virtual(self) -> bool:
        """Nothing to run and nothing to take: an empty artefact (luet: no image source, no steps)."""
        if self.image or self.requires or self.copy:
            return False
        body = self.body
        return not body.steps and not body.unpack


@dataclass(frozen=True, slots=True)
class Package:
    """One package of a tree: runtime definition + rendered build spec + where it lives."""

    ref: PackageRef
    # runtime keys (requires, provides, labels, …) as loaded, JSON-encoded (see `definition`)
    definition_json: str
    spec: BuildSpec | None  # None: no build.yaml (runtime-only package)
    tree: str  # absolute tree root this package was found in
    directory: str  # package folder relative to the tree root ('.'-free, '/'-separated)
    source_file: str  # definition.yaml or collection.yaml path relative to the tree root
    provides: tuple[DepRef, ...] = ()
    conflicts: tuple[DepRef, ...] = ()
    runtime_requires: tuple[DepRef, ...] = ()
    hidden: bool = False
    finalize: dict[str, Any] | None = None
    # Everything that went into rendering, for the key: canonical rendered spec text and the
    # values the templates can use (JSON). Data only passed through is kept as JSON text: a
    # 10,000-package plan holds every package at once, and a dict costs ~5x its text.
    rendered: str = ""
    values_json: str = field(default="{}", compare=False, hash=False)

    @property
    def id(self) -> str:
        return self.ref.id

    @property
    def definition(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.definition_json)
        return doc

    @property
    def values_used(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.values_json)
        return doc

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle as one flat tuple of plain data (references as tuples of strings): render
        workers send every package back, and this halves what pickling one costs them."""
        spec = self.spec
        flat_spec = None if spec is None else (
            spec.image, _flat(spec.requires), spec.requires_final_images, _flat(spec.conflicts),
            _flat(spec.provides), spec.copy, spec.retrieve, spec.subpackages, spec.raw_json, spec.stored_body)
        ref = self.ref
        return _unflatten_package, ((
            ref.category, ref.name, ref.version, self.definition_json, flat_spec, self.tree, self.directory,
            self.source_file, _flat(self.provides), _flat(self.conflicts), _flat(self.runtime_requires),
            self.hidden, self.finalize, self.rendered, self.values_json),)


def _flat(refs: tuple[DepRef, ...]) -> tuple[tuple[str, str, str], ...]:
    return tuple([(r.category, r.name, r.version) for r in refs]) if refs else ()


def _deps(flat: tuple[tuple[str, str, str], ...]) -> tuple[DepRef, ...]:
    return tuple([DepRef(*r) for r in flat]) if flat else ()  # most are empty: no list, no tuple


def _unflatten_package(f: tuple[Any, ...]) -> Package:
    s = f[4]
    spec = None if s is None else BuildSpec(s[0], _deps(s[1]), s[2], _deps(s[3]), _deps(s[4]), *s[5:])
    return Package(PackageRef(f[0], f[1], f[2]), f[3], spec, f[5], f[6], f[7], _deps(f[8]), _deps(f[9]),
                   _deps(f[10]), *f[11:])


# ---------------------------------------------------------------- build inputs/outputs
@dataclass(frozen=True, slots=True)
class CopyJob:
    """A resolved `copy:` entry: `image` is a reference buildah can read (a local image name/ID)."""

    image: str
    source: str
    destination: str


@dataclass(frozen=True, slots=True)
class SubPackageJob:
    ref: PackageRef
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BuildJob:
    """Everything the backend needs to build one package; every dependency already resolved.

    Exactly one base source is set: `image` (a base image or, for plain `requires`, the
    dependency's package image, as a reference buildah can use), or `final_artifacts`
    (`requires_final_images`: artefact tarballs unpacked in order into a fresh base).
    A virtual package has neither and no steps: the backend returns an empty artefact.
    """

    ref: PackageRef
    key: str
    context_dir: str  # absolute package folder: copied to /luetbuild
    context_exclude: tuple[str, ...] = ()  # paths relative to context_dir left out (nested packages, ignored)
    image: str = ""
    final_artifacts: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    prelude: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    unpack: bool = False
    package_dir: str = ""
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    copy: tuple[CopyJob, ...] = ()
    subpackages: tuple[SubPackageJob, ...] = ()
    virtual: bool = False


@dataclass(frozen=True, slots=True)
class BuildOutput:
    """What one build produced. Paths are temporary files the caller moves into the store."""

    artifact: str  # deterministic .tar.zst
    image_id: str  # committed package image (local storage), "" for virtual packages
    image_name: str  # tag of the package image in the private storage
    files: tuple[str, ...] = ()
    subpackages: tuple[tuple[PackageRef, str], ...] = ()  # (ref, artifact path)
