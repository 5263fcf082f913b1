"""The stored plan result and the incremental path: after a few folders changed, re-render
only those, reuse the stored edges and keys of everything else, and recompute the keys of
the changed packages and their dependents (falling back to the full path when the graph's
shape may have changed).
"""
from __future__ import annotations

import itertools
import os
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, cast

from orchestrator import jsontext, planning
from orchestrator.keys import KeyInputs, chain_key
from orchestrator.plan import Explanations, StoreView, make_plan, own_doc, own_text
from orchestrator.planning import (
    Planned,
    _context_files,
    _Deferred,
    _Kinds,
    _shape,
    image_ref,
)
from orchestrator.errors import SpecError
from orchestrator.planstate import PlanState
from orchestrator.spec import discover, load as load_mod
from orchestrator.spec.discover import PackageDir

if TYPE_CHECKING:
    from orchestrator.spec.prerender import Prerender


@dataclass
class _Stored:
    """A stored whole plan, checked for shape (a damaged one is never half-used)."""

    signature: str | None
    token: str
    meta: list[str]
    images: list[tuple[str, str, str | None]]
    order: list[str]
    keys: dict[str, str]
    owns: dict[str, str]  # own digests (`keys.own_digest`)
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


def _str_lists(value: Any) -> list[list[str]]:
    """A list of lists of strings, checked with one pass over all of them (10,000 small lists)."""
    if not isinstance(value, list) or (value and set(map(type, value)) != {list}):
        raise TypeError("not a list of lists")
    if not set(map(type, itertools.chain.from_iterable(value))) <= {str}:
        raise TypeError("not a list of lists of strings")
    return value


def _decode_result(result: dict[str, Any] | None) -> _Stored | None:
    if result is None:
        return None
    try:
        order = _strs(result["order"])
        n = len(order)
        lists = [result[k] for k in ("keys", "owns", "deps", "kinds", "specs", "shapes")]
        if any(not isinstance(v, list) or len(v) != n for v in lists):
            return None
        deps = dict(zip(order, _str_lists(result["deps"]), strict=True))
        kinds = dict(zip(order, _str_lists(result["kinds"]), strict=True))
        sig = result["signature"]
        stored = _Stored(
            signature=sig if isinstance(sig, str) else None, token=str(result["token"]),
            meta=_strs(result["meta"]),
            images=[(str(ref), str(tree), None if d is None else str(d)) for ref, tree, d in result["images"]],
            order=order, keys=dict(zip(order, _strs(result["keys"]), strict=True)),
            owns=dict(zip(order, _strs(result["owns"]), strict=True)), deps=deps, kinds=kinds,
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
    `texts`: each package's own explanation (`plan.own_text`), read on demand."""
    explanations = Explanations(texts, stored.keys, stored.deps, stored.kinds, stored.owns)
    inputs = explanations.inputs
    plan = make_plan(stored.order, stored.deps, inputs, stored.keys, stored.specs, explanations, store)
    return Planned(plan, _Deferred(lambda: full().packages), inputs, stored.keys, stored.order,
                   stored.deps, cast(dict, _Kinds(stored.deps, stored.kinds)),
                   _Deferred(lambda: full().contexts), stored.warnings, 0)


_MAX_INCREMENTAL = 0.25  # beyond this share of changed folders, the full path is as cheap


def _changed_folders(prep: load_mod.Prepared, folders: list[tuple[str, str | None, str | None, list[str], list[str]]],
                     ) -> list[tuple[int, PackageDir]] | None:
    """The package folders to look at again, with their index in the stored plan; None when the
    set of folders changed. When the last walk still holds (`prep.changed` is known), these are
    the folders holding a changed file and those recorded as racy, found without walking the
    trees; otherwise every folder of a new scan."""
    if prep.changed is None:
        scan = prep.scan
        if [f[0] for f in folders] != [p.path for p in scan.packages]:
            return None
        return list(enumerate(scan.packages))
    index = {f[0]: i for i, f in enumerate(folders)}
    wanted = {i for i, f in enumerate(folders) if f[1] is None or f[2] is None}
    for path in prep.changed:
        folder = os.path.dirname(path)
        while folder not in index and folder not in prep.trees and len(folder) > 1:
            folder = os.path.dirname(folder)
        if folder in index:
            wanted.add(index[folder])
    out = []
    for i in sorted(wanted):
        path = folders[i][0]
        root = max((t for t in prep.trees if path == t or path.startswith(t + os.sep)), key=len, default=None)
        if root is None:
            return None
        try:
            out.append((i, discover.scan_folder(root, path)))
        except SpecError:
            return None
    return out


@dataclass(frozen=True)
class Update:
    """What an incremental plan changed of the stored plan, to store: as a delta
    (`PlanState.put_delta`), or as a whole result when the delta would grow too large."""

    whole: dict[str, Any]  # small values stored whole (images, warnings)
    patch: dict[str, dict[int, Any]]  # per list of the stored result: new values by position
    texts: dict[str, str]  # own explanation texts of the packages whose own inputs changed
    result: Callable[[], dict[str, Any]]  # the whole result (but the walk), assembled when asked
    all_texts: Mapping[str, str]  # every package's own text (the stored ones read when asked)


def _incremental(prep: load_mod.Prepared, state: PlanState, stored: _Stored, store: StoreView,
                 resolved_image: Callable[[str, str], str | None], prerender: Prerender | None = None,
                 ) -> tuple[Planned, Update | None] | None:
    """Some folders changed, the tree's shape did not: re-render only the changed folders; when
    no changed package's identity, provides or dependencies changed, keep the stored edges and
    order, and recompute the keys of the changed packages and of their dependents (Merkle: the
    rest keep theirs). None when this does not apply (the full path runs instead). The update is
    None when it holds nothing the next run can trust: when every changed folder is racy (the
    next run looks at those again whatever is stored)."""
    folders = stored.folders()
    if folders is None:
        return None
    racy = load_mod.racy_check(prep, state.settled)
    looked = _changed_folders(prep, folders)
    if looked is None:
        return None  # folders added or removed (or a damaged record)
    rerender: list[tuple[int, PackageDir]] = []
    rehash: list[tuple[int, PackageDir]] = []
    sigs: list[tuple[str | None, str | None]] = [(f[1], f[2]) for f in folders]
    for i, pdir in looked:
        spec_sig, ctx_sig = sigs[i] = load_mod.folder_sigs(pdir, racy)
        if spec_sig is None or spec_sig != folders[i][1]:
            rerender.append((i, pdir))
        elif ctx_sig is None or ctx_sig != folders[i][2]:
            rehash.append((i, pdir))
    if len(rerender) + len(rehash) > _MAX_INCREMENTAL * max(len(folders), 1):
        return None
    changed = rerender + rehash
    durable = not changed or any(sigs[i][0] is not None and sigs[i][1] is not None for i, _ in changed)
    # read only when needed: for a rehashed package, an explanation, or a whole result to store
    stored_texts = _Deferred(lambda: _stored_texts(prep, state, stored, store, resolved_image))
    # own inputs of the changed packages: (spec, files, image, directory, values JSON, spec JSON)
    own: dict[str, tuple[str, tuple[tuple[str, str], ...], str, str, str, str]] = {}
    warnings = [f[4] for f in folders]
    images = {(ref, tree): digest for ref, tree, digest in stored.images}

    def resolve(ref: str, tree: str) -> str | None:
        if (ref, tree) not in images:
            images[(ref, tree)] = resolved_image(ref, tree)
        return images[(ref, tree)]

    pdirs = [p for _, p in rerender]
    rendered = (prerender.render(pdirs) if prerender is not None and pdirs else None) \
        or load_mod.render_folders(prep, pdirs)
    for (i, pdir), (_, pkgs, warns) in zip(rerender, rendered):
        if [p.id for p in pkgs] != folders[i][3]:
            return None
        for pkg in pkgs:
            if pkg.id in stored.special or pkg.provides or _shape(pkg) != stored.shapes.get(pkg.id):
                return None
            files = _context_files(pdir) if pkg.spec is not None else ()
            own[pkg.id] = (pkg.rendered, files, image_ref(pkg, resolve), pkg.directory, pkg.values_json,
                           pkg.spec.raw_json if pkg.spec else "{}")
        warnings[i] = warns
    for i, pdir in rehash:
        for node in folders[i][3]:
            if node in stored.special:
                return None
            doc = own_doc(stored_texts[node])
            files = _context_files(pdir) if doc["spec"] else ()
            own[node] = (doc["spec"], files, doc["image"], doc["dir"], jsontext.dumps(doc["values"]), stored.specs[node])
    keys, owns = dict(stored.keys), dict(stored.owns)
    specs = dict(stored.specs)
    texts: dict[str, str] = {}  # own texts of the changed packages, over the stored ones
    moved: dict[str, int] = {}  # packages whose key changed: their position in the order
    deps, kinds = stored.deps, stored.kinds
    positions: dict[str, int] = {}
    for at, node in enumerate(stored.order):
        mine = own.get(node)
        if mine is None and not (moved and not moved.keys().isdisjoint(deps[node])):
            continue
        positions[node] = at
        dep_entries = tuple((k, d, keys[d]) for d, k in zip(deps[node], kinds[node]))
        if mine is not None:  # its own inputs changed (else only a dependency's key did)
            spec, files, image, directory, values, spec_json = mine
            inp = KeyInputs(node, spec, files, image, dep_entries)
            specs[node], owns[node] = spec_json, inp.own
            texts[node] = own_text(inp, directory, values)
        key = chain_key("input", owns[node], dep_entries)
        if key != keys[node]:
            moved[node] = at
        keys[node] = key
    once: list[Planned] = []

    def full() -> Planned:
        if not once:
            once.append(planning._compute(prep, state, None, store, resolved_image)[0])
        return once[0]

    all_texts = ChainMap(texts, stored_texts)  # type: ignore[arg-type]
    explanations = Explanations(all_texts, keys, deps, kinds, owns)
    inputs = explanations.inputs
    order = stored.order
    plan = make_plan(order, deps, inputs, keys, specs, explanations, store)
    all_warnings = [w for ws in warnings for w in ws]
    planned = Planned(plan, _Deferred(lambda: full().packages), inputs, keys, order, deps,
                      cast(dict, _Kinds(deps, kinds)), _Deferred(lambda: full().contexts),
                      all_warnings, len(rerender))
    if not durable:  # nothing to store (see the docstring)
        return planned, None
    image_rows = [[ref, tree, digest] for (ref, tree), digest in images.items()]

    def result() -> dict[str, Any]:
        return {
            "warnings": all_warnings,
            "meta": stored.meta,
            "images": image_rows,
            "order": order,
            "keys": [keys[n] for n in order],
            "owns": [owns[n] for n in order],
            "deps": [deps[n] for n in order],
            "kinds": [kinds[n] for n in order],
            "specs": [specs[n] for n in order],
            "shapes": [stored.shapes[n] for n in order],
            "special": sorted(stored.special),
            "folders": [[f[0], s[0], s[1], f[3], w] for f, s, w in zip(folders, sigs, warnings)],
        }

    patch: dict[str, dict[int, Any]] = {
        "keys": {at: keys[n] for n, at in moved.items()},
        "owns": {positions[n]: owns[n] for n in own},
        "specs": {positions[n]: specs[n] for n in own},
        "folders": {i: [folders[i][0], *sigs[i], folders[i][3], warnings[i]] for i, _ in looked},
    }
    return planned, Update({"images": image_rows, "warnings": all_warnings}, patch, texts, result, all_texts)


def _stored_texts(prep: load_mod.Prepared, state: PlanState, stored: _Stored, store: StoreView,
                  resolved_image: Callable[[str, str], str | None]) -> Mapping[str, str]:
    """The stored plan's own texts; recomputed (the full path) when the file is damaged."""
    texts = state.get_explanations(stored.token)
    if texts is None or any(n not in texts for n in stored.order):
        return planning._compute(prep, state, None, store, resolved_image)[2]
    return texts
