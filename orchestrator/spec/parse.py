"""Turn parsed YAML into model objects: definitions (identity) and rendered build specs.

Validation lives here: types are checked, unknown build keys are reported with a
suggestion (luet silently ignores `environment:`; orch warns), and the luet-shaped
JSON form of the rendered spec is kept for `orch plan --json`.
"""
from __future__ import annotations

from typing import Any

from orchestrator import jsontext
from orchestrator.errors import Reason, SpecError
from orchestrator.model import BuildBody, BuildSpec, CopySpec, DepRef, PackageRef, SubPackage

BUILD_KEYS = frozenset({
    "image", "requires", "requires_final_images", "conflicts", "provides", "prelude", "steps",
    "env", "unpack", "package_dir", "includes", "excludes", "copy", "retrieve", "subpackages",
})
# Accepted but meaningless to orch: luet-internal fields, `join` (removed from luet in 2021), and
# the package fields luet also reads build.yaml for (it keeps only requires/conflicts/provides).
IGNORED_BUILD_KEYS = frozenset({
    "seed", "package", "build_options", "outputpath", "join",
    "id", "name", "version", "category", "use_flags", "state", "hidden", "annotations", "path",
    "description", "uri", "license", "buildtimestamp", "labels", "treedir", "dockerfile",
})
LIST_FIELDS = ("prelude", "steps", "env", "includes", "excludes", "retrieve")
# Fields of `orch plan --json`'s "spec" and their luet zero values (Go: "" / false / null).
PLAN_FIELDS: dict[str, Any] = {
    "image": "", "requires": None, "requires_final_images": False, "prelude": None,
    "steps": None, "env": None, "unpack": False, "package_dir": "", "includes": None,
    "excludes": None, "copy": None,
}


def _fail(msg: str, path: str, hint: str | None = None) -> SpecError:
    return SpecError(msg, reason=Reason.INVALID_SPEC, file=path, hint=hint)


def scalar_text(value: Any, field: str, path: str) -> str:
    """A string field; YAML numbers that would lose digits (1.10 → 1.1) are refused."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, float):
        raise _fail(f"'{field}' must be a string, got {value!r}", path, f"quote it: {field}: \"{value}\"")
    if isinstance(value, int):
        return str(value)
    raise _fail(f"'{field}' must be a string, got {type(value).__name__}", path)


def package_ref(doc: Any, path: str) -> PackageRef:
    if not isinstance(doc, dict):
        raise _fail("a package definition must be a mapping", path)
    name = scalar_text(doc.get("name"), "name", path)
    if not name:
        raise _fail("package has no 'name'", path)
    version = scalar_text(doc.get("version"), "version", path)
    if not version:
        raise _fail(f"package '{name}' has no 'version'", path)
    return PackageRef(scalar_text(doc.get("category"), "category", path), name, version)


def dep_refs(value: Any, field: str, path: str) -> tuple[DepRef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(f"'{field}' must be a list of packages", path)
    out = []
    for item in value:
        if not isinstance(item, dict) or not item.get("name"):
            raise _fail(f"'{field}' entries need at least a 'name', got {item!r}", path)
        name, category, version = item.get("name"), item.get("category", ""), item.get("version", "")
        if type(name) is str and type(category) is str and type(version) is str:  # nothing to convert
            out.append(DepRef(category, name, version or ">=0"))
            continue
        out.append(DepRef(
            scalar_text(item.get("category"), "category", path),
            scalar_text(item.get("name"), "name", path),
            scalar_text(item.get("version"), "version", path) or ">=0",
        ))
    return tuple(out)


def _strings(value: Any, field: str, path: str, converted: list[str] | None = None) -> tuple[str, ...]:
    """A list of strings; numbers become their text. `converted`: gets `field` when a value
    had to be converted (the result is then not the value as written)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(f"'{field}' must be a list", path)
    if set(map(type, value)) <= _STR_ONLY:  # the usual case: nothing to check or convert
        return tuple(value)
    if converted is not None:
        converted.append(field)
    return tuple(scalar_text(v, field, path) if not isinstance(v, (int, float)) or isinstance(v, bool)
                 else str(v) for v in value)


_STR_ONLY = frozenset((str,))


def _bool(value: Any, field: str, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _fail(f"'{field}' must be true or false, got {value!r}", path)
    return value


def build_spec(doc: Any, path: str, warnings: list[str]) -> BuildSpec:
    """Validate a rendered build.yaml document; unknown keys become warnings naming the file."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _fail("build spec must be a mapping of keys", path)
    # in key order, not the file's: a cached document's keys are sorted (`load._entry_text`)
    for key in sorted((k for k in doc if k not in BUILD_KEYS), key=str):
        if key == "join":
            warnings.append(f"{path}: 'join' is obsolete and ignored (use 'requires_final_images: true')")
        elif key not in IGNORED_BUILD_KEYS:
            hint = f" (did you mean '{_suggest(str(key))}'?)" if _suggest(str(key)) else ""
            warnings.append(f"{path}: unknown key '{key}' ignored{hint}")
    copies = []
    for item in doc.get("copy") or ():
        if not isinstance(item, dict):
            raise _fail(f"'copy' entries must be mappings, got {item!r}", path)
        pkg = dep_refs([item["package"]], "copy.package", path)[0] if item.get("package") else None
        image = scalar_text(item.get("image"), "copy.image", path)
        if pkg is None and not image:
            raise _fail("a 'copy' entry needs 'package' or 'image'", path)
        copies.append(CopySpec(
            source=scalar_text(item.get("source"), "copy.source", path),
            destination=scalar_text(item.get("destination"), "copy.destination", path),
            package=pkg, image=image,
        ))
    subs = []
    for item in doc.get("subpackages") or ():
        ref = dep_refs([item], "subpackages", path)[0]
        src = item if isinstance(item, dict) else {}
        subs.append(SubPackage(ref, _strings(src.get("includes"), "includes", path),
                               _strings(src.get("excludes"), "excludes", path)))
    # fields checked in the order they always were: the first bad one is the one reported
    package_dir = scalar_text(doc.get("package_dir"), "package_dir", path)
    image = scalar_text(doc.get("image"), "image", path)
    requires = dep_refs(doc.get("requires"), "requires", path)
    requires_final_images = _bool(doc.get("requires_final_images"), "requires_final_images", path)
    conflicts = dep_refs(doc.get("conflicts"), "conflicts", path)
    provides = dep_refs(doc.get("provides"), "provides", path)
    converted: list[str] = []  # body fields not as written (a number among the steps, say)
    prelude = _strings(doc.get("prelude"), "prelude", path, converted)
    steps = _strings(doc.get("steps"), "steps", path, converted)
    env = _strings(doc.get("env"), "env", path, converted)
    unpack = _bool(doc.get("unpack"), "unpack", path)
    includes = _strings(doc.get("includes"), "includes", path, converted)
    excludes = _strings(doc.get("excludes"), "excludes", path, converted)
    # the body is kept only where checking it converted a value: else the plan fields hold it
    # as written, and `BuildSpec.body` decodes it from them when a build asks
    written = not converted and isinstance(doc.get("package_dir"), (str, type(None)))
    spec = BuildSpec(
        image=image, requires=requires, requires_final_images=requires_final_images,
        conflicts=conflicts, provides=provides, copy=tuple(copies),
        retrieve=_strings(doc.get("retrieve"), "retrieve", path),
        subpackages=tuple(subs),
        raw_json=jsontext.dumps(plan_json(doc)),
        stored_body=None if written else BuildBody(prelude, steps, env, unpack, package_dir, includes, excludes),
    )
    if steps and not spec.image and not spec.requires:
        raise _fail("build spec has 'steps' but no 'image' or 'requires' to run them in", path,
                    "add an 'image:' or build-time 'requires:'")
    return spec


def _suggest(key: str) -> str | None:
    """`environment` → `env`, `step` → `steps`, `image_name` → `image`, `requirse` → `requires`."""
    lowered = key.lower()
    for known in sorted(BUILD_KEYS, key=len, reverse=True):
        if lowered.startswith(known) or known.startswith(lowered):
            return known
    import difflib

    close = difflib.get_close_matches(lowered, sorted(BUILD_KEYS), n=1, cutoff=0.6)
    return close[0] if close else None


def plan_json(doc: dict[str, Any]) -> dict[str, Any]:
    """The rendered build fields as luet's compile spec shows them (Go zero values when absent)."""
    out: dict[str, Any] = {}
    for key, zero in PLAN_FIELDS.items():
        value = doc.get(key)
        if key == "requires" and value:
            value = [{"name": r.get("name"), "category": r.get("category", ""),
                      "version": r.get("version", "")} for r in value if isinstance(r, dict)]
        elif key == "copy" and value:
            value = [{"package": ({"name": c["package"].get("name"),
                                   "category": c["package"].get("category", ""),
                                   "version": c["package"].get("version", "")}
                                  if isinstance(c.get("package"), dict) else None),
                      "image": c.get("image") or "", "source": c.get("source") or "",
                      "destination": c.get("destination") or ""} for c in value if isinstance(c, dict)]
        out[key] = zero if value is None else value
    return out
