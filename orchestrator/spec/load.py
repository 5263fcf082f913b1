"""LOAD: trees + values files → packages (definition + rendered, validated build spec).

Knows YAML and templates; knows nothing of graphs, buildah or the store. A `LoadCache`
(injected; `orchestrator.planstate` persists one) lets an unchanged package folder skip
reading, rendering and parsing entirely: the warm planner's main saving.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import xxhash

from orchestrator import jsontext, progress
from orchestrator.errors import Reason, SpecError
from orchestrator.model import Package
from orchestrator.spec import discover, parse, restat, values as values_mod, workers
from orchestrator.spec import walk as walk_mod
from orchestrator.spec.walk import Walk

SCHEMA = "orch-load-2"
_enc: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # = json.dumps(str)
_dumps = jsontext.dumps  # json.dumps(x)
_dumps_any = jsontext.dumps_any  # json.dumps(x, default=str)
_dumps_canonical = jsontext.canonical  # json.dumps(x, sort_keys=True, separators=(",", ":"))
MAX_BYTES = 8 * 1024 * 1024  # = yamlload.MAX_BYTES (not imported: a warm plan needs no YAML)
# `.Values.x`, `Values["x"]` (Jinja2), `index .Values "x"`: which values a template can use
_VALUE_REF = re.compile(r"Values\.(\w+)|Values\[\s*[\"'](\w+)|index\s+\$?\.Values\s+\"(\w+)")


def value_refs(text: str) -> set[str]:
    return {a or b or c for a, b, c in _VALUE_REF.findall(text)}


class LoadCache(Protocol):
    def has_dir(self, path: str) -> bool: ...
    def get_dir(self, path: str, sig: list[Any]) -> dict[str, Any] | None: ...
    def dir_head(self, path: str, sig: list[Any]) -> str: ...
    def put_dir(self, path: str, sig: list[Any], entry: str, head: str | None = None) -> None: ...
    def done_dirs(self) -> None: ...
    def peek_digest(self, path: str, st: discover.Stat) -> str: ...
    def put_file(self, path: str, st: discover.Stat, digest: str) -> None: ...


@dataclass
class Loaded:
    packages: list[Package]
    scan: discover.TreeScan
    values: dict[str, Any]
    values_digest: str
    templates_digest: str
    warnings: list[str] = field(default_factory=list)
    rendered: int = 0  # package folders rendered (not served from the cache)
    # per package folder, in scan order: (folder, ids of its packages, its warnings)
    folders: list[tuple[discover.PackageDir, list[str], list[str]]] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)  # context file -> digest, from the workers


def display(path: str) -> str:
    """How a file is named in messages: relative to the working directory."""
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return path


def read_text(path: str) -> str:
    """A spec or template file's text (UTF-8, universal newlines; over MAX_BYTES: an error).
    Through the file descriptor: a text-mode file object costs more than reading a small file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            chunks = [os.read(fd, 1 << 16)]
            size = len(chunks[0])
            while chunks[-1] and size <= MAX_BYTES:
                chunks.append(os.read(fd, min(1 << 20, MAX_BYTES + 1 - size) or 1))
                size += len(chunks[-1])
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            raise SpecError(f"file is over the {MAX_BYTES} byte limit for a spec", reason=Reason.INVALID_YAML,
                            file=display(path), hint="split it, or move data out of the spec")
        text = b"".join(chunks).decode("utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", reason=Reason.MISSING_FILE,
                        file=display(path)) from None
    except UnicodeDecodeError:
        raise SpecError("not UTF-8 text", reason=Reason.INVALID_SPEC, file=display(path)) from None
    if "\r" in text:  # what text mode's universal newlines did
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


class Prepared:
    """What every plan reads before looking at any package folder: the stat data of every file
    (from a scan, or from re-statting the files of the last one when no folder changed), the
    values files and the shared templates. The scan itself (package folders, build contexts)
    is done on first use; values files are parsed only when something is rendered.

    Stat data comes as a scan's mapping (`stats`) or as a re-stat's flat numbers for the last
    walk's files (`files`, `numbers`); each form is worked out from the other when first asked
    for (a warm plan only hashes and compares the numbers)."""

    def __init__(self, trees: list[str], stats: dict[str, discover.Stat] | None, scan: discover.TreeScan | None,
                 known: Walk | None, values_raw: list[tuple[str, bytes]], values_digest: str,
                 templates: list[tuple[str, str]], templates_digest: str, numbers: walk_mod.Numbers | None = None,
                 ) -> None:
        # `known`: the last walk, when it still holds (then `scan` is None until asked for, and
        # `numbers` are the stat data of its files)
        self.trees, self._stats, self._scan, self._known = trees, stats, scan, known
        self._numbers = numbers
        self.values_raw, self.values_digest = values_raw, values_digest
        self.templates, self.templates_digest = templates, templates_digest  # (absolute path, text)
        self._values: dict[str, Any] | None = None
        self._changed_at: list[int] | None = None
        self._changed: set[str] | None = None

    @property
    def stats(self) -> dict[str, discover.Stat]:
        """Stat data per file, in walk order."""
        if self._stats is None:
            it = iter(self.numbers)
            self._stats = dict(zip(self.files, zip(it, it, it, it)))
        return self._stats

    @property
    def files(self) -> list[str]:
        return self._known.files if self._known is not None else list(self.stats)

    @property
    def numbers(self) -> walk_mod.Numbers:
        """Stat data of `files`, flat (size, mtime_ns, inode, mode each)."""
        if self._numbers is None:
            self._numbers = walk_mod.numbers(self.stats.values())
        return self._numbers

    @property
    def scan(self) -> discover.TreeScan:
        if self._scan is None:
            self._scan = discover.scan(self.trees)
        return self._scan

    @property
    def walk(self) -> Walk:
        """This run's walk (to store for the next run); worked out only when it is stored."""
        if self._known is not None:
            return self._known.restatted(self.numbers)
        return Walk.of_scan(self.scan)

    def walk_patch(self) -> list[list[int]] | None:
        """This run's walk as a patch of the stored one (`Walk.patch_after`); None when the
        trees were scanned (no stored walk held)."""
        if self._known is None or self.changed is None or self._changed_at is None:
            return None
        return self._known.patch_after(self._changed_at, self.numbers)

    @property
    def changed(self) -> set[str] | None:
        """Files whose stat data differ from the last walk's; None when the trees were scanned
        (not known). Only an incremental plan asks: the no-change path never pays for it."""
        if self._known is None:
            return None
        if self._changed is None:
            self._changed_at = self._known.changed_at(self.numbers)
            files = self._known.files
            self._changed = {files[i] for i in self._changed_at}
        return self._changed

    @property
    def values(self) -> dict[str, Any]:
        if self._values is None:
            self._values = values_mod.parse_values(self.values_raw)
        return self._values


def prepare(trees: list[str], values_files: list[str], known: Walk | None = None,
            spare: restat.Spare | None = None) -> Prepared:
    """Stat every file of the trees (re-statting `known`, the last walk, when no folder changed;
    else walking), read the values files and the shared templates. `spare`: see `restat`."""
    roots = discover.roots(trees)
    numbers = None
    if known is not None and known.trees == roots:
        numbers = restat.restat((known.dirs, known.dstats), known.files, spare)
    scan = stats = None
    if numbers is not None and known is not None:
        template_paths = known.templates
    else:
        # a scan almost always means something will be rendered: import meanwhile
        known, scan = None, discover.scan(roots, alongside=_importing_renderer)
        stats, template_paths = scan.stats, scan.templates
    raws, values_digest = values_mod.read_values(values_files)
    templates = [(p, read_text(p)) for p in template_paths]
    tdigest = xxhash.xxh3_128()
    for path, text in templates:
        tdigest.update(os.path.basename(path).encode() + b"\0" + text.encode() + b"\0")
    return Prepared(roots, stats, scan, known, raws, values_digest, templates, tdigest.hexdigest(), numbers)


@contextlib.contextmanager
def _importing_renderer() -> Iterator[None]:
    """Import the template stack (Jinja2, PyYAML, the Go dialect: ~0.1 s of CPU) in a thread
    while the body runs: a tree walk mostly waits on system calls, which release the GIL. The
    thread is joined before anything forks (render workers, `restat`), and only one is started."""
    if "orchestrator.spec.render" in sys.modules:
        yield
        return
    thread = threading.Thread(target=import_quietly, args=("orchestrator.spec.render",),
                              name="orch-import", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def import_quietly(name: str) -> None:
    """Import `name` ahead of need. A failure is left to the code that needs the module (it
    fails again, with a proper error), not reported here (nor printed by a thread)."""
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - see above (an interrupt still interrupts)
        pass


def walk_to_store(prep: Prepared, settled: Callable[[int], bool]) -> dict[str, Any] | None:
    """The walk, for the next run's `prepare`, unless a folder's mtime is too recent to trust."""
    walk = prep.walk
    if walk.dstats and not settled(max(walk.dstats[0::3])):
        return None
    return walk.to_json()


def signature(prep: Prepared, settled: Callable[[int], bool], *extra: str) -> str | None:
    """A digest of everything a plan reads (every file's path and stat data, values, templates),
    or None when a file's stat data cannot be trusted yet (modified too recently: racy)."""
    if racy_check(prep, settled) is not None:
        return None
    h = xxhash.xxh3_128()
    h.update("\0".join([SCHEMA, prep.values_digest, prep.templates_digest, *prep.trees, *extra]).encode())
    h.update("\0".join(prep.files).encode())
    h.update(prep.numbers.tobytes())
    return h.hexdigest()


def load(trees: list[str], values_files: list[str], cache: LoadCache | None = None,
         prepared: Prepared | None = None, meanwhile: Callable[[], None] | None = None,
         each: Callable[[discover.PackageDir, list[Package], dict[str, str]], None] | None = None) -> Loaded:
    """Packages of every folder: from `cache` where its files are unchanged, else rendered (in
    worker processes for many folders). `meanwhile`: work of the caller's (an import) that
    this process does while its workers render (see `workers.render_all`); with nothing to
    render, it is left to the caller. `each(folder, packages, digests)`: the caller's own work on
    each folder's packages, done as they come in (`digests`: `Loaded.digests` so far, which
    holds those of the folder's context files when it was rendered): while this process does it,
    its render children render more."""
    prep = prepared or prepare(trees, values_files)
    _ROOTS.clear()  # the working directory may have changed since the last load
    scan, values, values_digest, templates = prep.scan, prep.values, prep.values_digest, prep.templates
    loaded = Loaded([], scan, values, values_digest, prep.templates_digest)
    template_refs = set().union(*(value_refs(t) for _, t in templates))
    total = len(scan.packages)
    digests = (loaded.templates_digest, values_digest)
    # a folder's signature is worked out where it is needed: here for a stored folder, else by
    # the worker that renders it
    entries = [cache.get_dir(pdir.path, folder_sig(pdir, *digests))
               if cache is not None and cache.has_dir(pdir.path) else None for pdir in scan.packages]
    if cache is not None:
        cache.done_dirs()  # every folder was looked up: the old entries may go
    misses = [pdir for pdir, entry in zip(scan.packages, entries) if entry is None]
    fresh: Iterator[Fresh] = iter(())
    if misses:
        renderer = make_renderer(templates)
        digest = cache.peek_digest if cache is not None else None
        sig = (*digests, cache.dir_head) if cache is not None else None
        fresh = workers.render_all(misses, lambda pdir: _fresh(pdir, values, renderer, template_refs, digest, sig),
                                   meanwhile)
    try:
        _collect(loaded, entries, fresh, cache, template_refs, each)
    finally:
        if isinstance(fresh, Generator):
            fresh.close()  # stops the workers at once when a folder's packages are bad
    if loaded.rendered:
        progress.tick("loading package folders", total, total)
    return loaded


# a rendered folder: cache entry (JSON), packages, warnings, digests of its build context's
# files, and its signature and head for the cache (see `_fresh`)
Fresh = tuple[str, list[Package], list[str], list[tuple[str, str]], list[Any] | None, str | None]


def folder_sig(pdir: discover.PackageDir, templates_digest: str, values_digest: str) -> list[Any]:
    """What a folder's cache entry is valid for: the stat data of the files rendering reads,
    the shared templates and the values."""
    stats = dict(pdir.spec_stats)
    return [SCHEMA, templates_digest, values_digest, [[n, *stats.get(n, ())] for n in spec_names(pdir)]]


def _fresh(pdir: discover.PackageDir, values: dict[str, Any], renderer: Any, template_refs: set[str],
           digest: Callable[[str, discover.Stat], str] | None = None,
           sig: tuple[str, str, Callable[[str, list[Any]], str]] | None = None) -> Fresh:
    """Render one folder into its cache entry and its packages (in a worker process, maybe),
    and digest its build context's files with `digest` (reading them is parallel work too).
    With `sig` (the templates' and values' digests, the cache's `dir_head`), also the folder's
    signature and its head in the cache: work the parent would otherwise do while it waits.
    Packages are built from the entry as a later load from the cache sees it: its JSON round
    trip, which leaves plain YAML data (the usual case: `yamlload.load_plain`) unchanged."""
    entry, plain = _render_dir(pdir, values, renderer)
    if plain:
        pkgs, warnings = _folder_packages(pdir, entry, values, template_refs)
        text = _entry_text(entry, pkgs)
    else:
        text = _dumps_any(entry)
        pkgs, warnings = _folder_packages(pdir, json.loads(text), values, template_refs)
    files = []
    if digest is not None and pdir.build_file:
        stats = dict(pdir.ctx_stats)  # the folder's own record of its files' stat data
        for rel in pdir.context:
            path = os.path.join(pdir.path, rel)
            files.append((path, digest(path, stats[rel])))
    folder = head = None
    if sig is not None:
        folder = folder_sig(pdir, sig[0], sig[1])
        head = sig[2](pdir.path, folder)
    return text, pkgs, warnings, files, folder, head


def _entry_text(entry: dict[str, Any], pkgs: list[Package]) -> str:
    """`json.dumps(entry)` of a plain entry, from the JSON its packages already hold: the stanza
    as it is (`definition_json`) and the build document as its canonical text (keys sorted,
    which nothing that reads an entry depends on)."""
    items = [
        f'{{"source":{_enc(item["source"])},"stanza":{pkg.definition_json},'
        f'"doc":{pkg.rendered if item["build_file"] is not None else "null"},"refs":{_dumps(item["refs"])},'
        f'"build_file":{_dumps(item["build_file"])},"finalize":{_dumps(item["finalize"])}}}'
        for item, pkg in zip(entry["items"], pkgs)]
    return f'{{"items":[{",".join(items)}],"warnings":{_dumps(entry["warnings"])}}}'


def _collect(loaded: Loaded, entries: list[dict[str, Any] | None], fresh: Iterator[Fresh],
             cache: LoadCache | None, template_refs: set[str],
             each: Callable[[discover.PackageDir, list[Package], dict[str, str]], None] | None = None) -> None:
    """Packages of every folder, in scan order, from its cache entry or freshly rendered."""
    seen: dict[str, str] = {}
    total = len(entries)
    for done, (pdir, entry) in enumerate(zip(loaded.scan.packages, entries)):
        if done % 200 == 0 and loaded.rendered:
            progress.tick("loading package folders", done, total)
        if entry is None:
            text, pkgs, warnings, files, sig, head = next(fresh)
            loaded.rendered += 1
            if cache is not None:
                assert sig is not None  # `load` asks for it whenever there is a cache
                cache.put_dir(pdir.path, sig, text, head)
                stats = loaded.scan.stats
                for path, digest in files:
                    cache.put_file(path, stats[path], digest)
            loaded.digests.update(files)
        else:
            pkgs, warnings = _folder_packages(pdir, entry, loaded.values, template_refs)
        ids = []
        for pkg in pkgs:
            if pkg.id in seen:
                raise SpecError(f"package {pkg.id} is defined twice (also in {seen[pkg.id]})",
                                reason=Reason.DUPLICATE_PACKAGE, file=pkg.source_file,
                                hint="rename or remove one of them")
            seen[pkg.id] = pkg.source_file
            loaded.packages.append(pkg)
            ids.append(pkg.id)
        loaded.warnings.extend(warnings)
        loaded.folders.append((pdir, ids, warnings))
        if each is not None:
            each(pdir, pkgs, loaded.digests)


def spec_names(pdir: discover.PackageDir) -> list[str]:
    """The files of a package folder that rendering reads."""
    return [*pdir.spec_files, *([pdir.build_file] if pdir.build_file else []),
            *(["finalize.yaml"] if pdir.finalize else [])]


def make_renderer(templates: list[tuple[str, str]]) -> Any:
    from orchestrator.spec.render import Renderer  # jinja2 only when rendering

    return Renderer([(display(p), t) for p, t in templates])


def _folder_packages(pdir: discover.PackageDir, entry: dict[str, Any], values: dict[str, Any],
                     template_refs: set[str]) -> tuple[list[Package], list[str]]:
    warnings = list(entry["warnings"])
    return [_package(pdir, item, warnings, values, template_refs) for item in entry["items"]], warnings


def render_folders(prep: Prepared, pdirs: list[discover.PackageDir], renderer: Any = None,
                   ) -> list[tuple[discover.PackageDir, list[Package], list[str]]]:
    """Render and parse some package folders (no cache): the incremental planner's load.
    `renderer`: one already made for `prep` (see `prerender`)."""
    _ROOTS.clear()
    template_refs = set().union(*(value_refs(t) for _, t in prep.templates))
    if renderer is None and pdirs:
        renderer = make_renderer(prep.templates)
    out = []
    for pdir in pdirs:
        _, pkgs, warnings, *_ = _fresh(pdir, prep.values, renderer, template_refs)
        ids = [p.id for p in pkgs]
        if len(set(ids)) != len(ids):
            dup = next(p for i, p in enumerate(pkgs) if p.id in ids[:i])
            raise SpecError(f"package {dup.id} is defined twice (also in {dup.source_file})",
                            reason=Reason.DUPLICATE_PACKAGE, file=dup.source_file,
                            hint="rename or remove one of them")
        out.append((pdir, pkgs, warnings))
    return out


def folder_sigs(pdir: discover.PackageDir, settled: Callable[[int], bool] | None,
                ) -> tuple[str | None, str | None]:
    """Digests of a folder's spec files' stat data (what rendering reads) and of its build
    context (file list, stat data, ignore rules); None when a file's stat data is racy (not
    trustworthy). `settled`: None when no file of the scan is racy (nothing to check)."""
    spec, ctx = pdir.spec_stats, pdir.ctx_stats
    spec_sig: str | None = xxhash.xxh3_128_hexdigest(repr(spec).encode())
    ctx_sig: str | None = xxhash.xxh3_128_hexdigest(repr((ctx, pdir.ignore, pdir.excluded)).encode())
    if settled is not None:
        if not all(settled(st[1]) for _, st in spec):
            spec_sig = None
        if not all(settled(st[1]) for _, st in ctx):
            ctx_sig = None
    return spec_sig, ctx_sig


def racy_check(prep: Prepared, settled: Callable[[int], bool]) -> Callable[[int], bool] | None:
    """`settled` when some file of the scan is racy, else None (see `folder_sigs`)."""
    numbers = prep.numbers
    return settled if numbers and not settled(max(numbers[1::4])) else None


def _render_dir(pdir: discover.PackageDir, values: dict[str, Any], renderer: Any) -> tuple[dict[str, Any], bool]:
    """Read, parse and render one package folder into a cache entry, and whether all of it is
    plain JSON data; its JSON round trip (see `_fresh`) is what the cache holds and loading uses."""
    from orchestrator.spec import yamlload

    warnings: list[str] = []
    plain = True
    stanzas: list[tuple[str, dict[str, Any]]] = []
    for name in pdir.spec_files:
        path = os.path.join(pdir.path, name)
        doc, ok = yamlload.load_plain(read_text(path), _shown(pdir, pdir.display(name)))
        plain = plain and ok
        if name == "collection.yaml":
            if not isinstance(doc, dict) or not isinstance(doc.get("packages"), list):
                raise SpecError("a collection needs a 'packages:' list", reason=Reason.INVALID_SPEC,
                                file=display(path))
            stanzas.extend((pdir.display(name), s) for s in doc["packages"])
        else:
            stanzas.append((pdir.display(name), doc))
    build_text = build_path = None
    if pdir.build_file:
        build_path = os.path.join(pdir.path, pdir.build_file)
        build_text = read_text(build_path)
    finalize = None
    if pdir.finalize:
        fpath = os.path.join(pdir.path, "finalize.yaml")
        ftext = read_text(fpath)
        if "{{" in ftext:
            finalize = {"template": ftext}
        else:
            finalize, ok = yamlload.load_plain(ftext, _shown(pdir, pdir.display("finalize.yaml")))
            plain = plain and ok
    items = []
    shown = _shown(pdir, pdir.display(pdir.build_file)) if pdir.build_file else ""
    refs = sorted(value_refs(build_text or ""))
    for source, stanza in stanzas:
        parse.package_ref(stanza, _shown(pdir, source))  # identity errors surface before rendering
        doc = None
        if build_text is not None and build_path is not None:
            rendered = renderer.render(shown, build_text, values_mod.package_values(stanza, values))
            doc, ok = yamlload.load_plain(rendered, shown)
            plain = plain and ok
        # names stay relative to the tree: the entry is cached, the working directory may change
        items.append({"source": source, "stanza": stanza, "doc": doc,
                      "refs": refs,
                      "build_file": pdir.display(pdir.build_file) if pdir.build_file else None,
                      "finalize": finalize})
    return {"items": items, "warnings": warnings}, plain


def _shown(pdir: discover.PackageDir, rel: str) -> str:
    """A tree-relative file name as messages show it (relative to the working directory).
    The tree root's name is worked out once per run (os.path.relpath is slow)."""
    root = _ROOTS.get(pdir.tree)
    if root is None:
        inside = os.getcwd().startswith(pdir.tree + os.sep)  # then relpath climbs, not a prefix
        root = _ROOTS[pdir.tree] = "" if inside else display(pdir.tree)
    if not root:
        return display(os.path.join(pdir.tree, rel))
    return rel if root == "." else f"{root}/{rel}"


_ROOTS: dict[str, str] = {}  # tree root -> display(root), reset by every load()


def _package(pdir: discover.PackageDir, item: dict[str, Any], warnings: list[str],
             values: dict[str, Any], template_refs: set[str]) -> Package:
    stanza, source = item["stanza"], _shown(pdir, item["source"])
    own = values_mod.package_values(stanza, values)
    used = {k: own[k] for k in sorted(template_refs.union(item["refs"])) if k in own}
    ref = parse.package_ref(stanza, source)
    spec = None
    canonical = ""
    if item["build_file"] is not None:
        spec = parse.build_spec(item["doc"], _shown(pdir, item["build_file"]), warnings)
        canonical = _dumps_canonical(item["doc"])
    provides = parse.dep_refs(stanza.get("provides"), "provides", source)
    conflicts = parse.dep_refs(stanza.get("conflicts"), "conflicts", source)
    if spec is not None:
        provides = spec.provides or provides
        conflicts = spec.conflicts or conflicts
    return Package(
        ref=ref,
        definition_json=_dumps_any(stanza),
        spec=spec,
        tree=pdir.tree,
        directory=pdir.rel,
        source_file=source,
        provides=provides,
        conflicts=conflicts,
        runtime_requires=parse.dep_refs(stanza.get("requires"), "requires", source),
        hidden=bool(stanza.get("hidden")),
        finalize=item["finalize"],
        rendered=canonical,
        values_json=_dumps_any(used),
    )
