"""Walk trees: which folders define packages, which files are shared templates, and the
stat data of every file (the warm planner compares it instead of reading files).

Like luet's `filepath.Walk`, folders are visited in lexical order. A folder holding
`definition.yaml` or `collection.yaml` is a package folder; any folder named `templates`
below a tree's root holds shared templates. A package's build context is its folder minus
spec files, nested package folders, template folders and what `.orchignore` lists.

A walk that takes a while is shared with a second process (`scansplit`, which builds on this
module), with the same result as one walk, in the same order.
"""
from __future__ import annotations

import contextlib
import fnmatch
import operator
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from orchestrator.errors import Reason, SpecError

SPEC_FILES = ("definition.yaml", "collection.yaml")
BUILD_FILES = ("build.yaml", "build.yaml.j2")
FINALIZE_FILE = "finalize.yaml"
IGNORE_FILE = ".orchignore"
NOT_CONTEXT = frozenset((*SPEC_FILES, *BUILD_FILES, FINALIZE_FILE, IGNORE_FILE))
SKIP_DIRS = frozenset((".git", ".hg", ".svn", "__pycache__"))
TEMPLATE_EXTS = (".yaml", ".yml", ".j2")
TEMPLATES_SUFFIX = f"{os.sep}templates"

# (size, mtime_ns, inode, mode): what the warm planner compares
Stat = tuple[int, int, int, int]
# (mtime_ns, inode, mode) of a folder: its mtime changes whenever an entry is added, removed or
# renamed in it, so unchanged folders + unchanged known files = an unchanged tree (`restat`)
DirStat = tuple[int, int, int]


@dataclass(slots=True)
class PackageDir:
    tree: str  # absolute tree root
    rel: str  # folder relative to the tree root, "" for the root itself
    spec_files: list[str]  # definition.yaml / collection.yaml present
    build_file: str | None
    finalize: bool
    ignore: list[str] = field(default_factory=list)  # .orchignore patterns
    context: list[str] = field(default_factory=list)  # files relative to the package folder
    excluded: list[str] = field(default_factory=list)  # nested package/template folders, relative
    ignored: list[str] = field(default_factory=list)  # files left out by .orchignore, relative
    path: str = field(init=False, default="")  # absolute package folder
    # stat data, in walk order, of the files at the folder's root that are not context (specs,
    # build file, .orchignore) and of the rest (context and ignored files): what `load.folder_sigs`
    # compares to tell a re-render from a re-hash
    spec_stats: list[tuple[str, Stat]] = field(init=False, default_factory=list, repr=False, compare=False)
    ctx_stats: list[tuple[str, Stat]] = field(init=False, default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.path = f"{self.tree}{os.sep}{self.rel}" if self.rel else self.tree

    def display(self, name: str) -> str:
        return f"{self.rel}/{name}" if self.rel else name


@dataclass
class TreeScan:
    trees: list[str]
    packages: list[PackageDir]
    templates: list[str]  # absolute paths, walk order
    stats: dict[str, Stat]  # absolute path -> stat of every regular file/symlink seen
    dirs: dict[str, DirStat] = field(default_factory=dict)  # every folder walked, walk order


def roots(trees: list[str]) -> list[str]:
    """The trees as absolute, symlink-free folders (an error names a missing one)."""
    out = []
    for tree in trees:
        root = os.path.realpath(tree)
        if not os.path.isdir(root):
            raise SpecError(f"tree '{tree}' does not exist or is not a folder",
                            reason=Reason.MISSING_FILE, hint="check the -t/--tree path")
        out.append(root)
    return out


def scan(trees: list[str],
         alongside: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext) -> TreeScan:
    """Walk the trees. `alongside`: work of the caller's that runs (a thread, say) while this
    process walks; entered once any helper process has been forked (a fork copies no thread)."""
    from orchestrator.spec import scansplit

    roots_ = roots(trees)
    return scansplit.scan(roots_, alongside)


def top(root: str) -> tuple[DirStat, list[os.DirEntry[str]], bool]:
    """A tree root's stat data, its entries in walk order, and whether it is a package folder
    itself (then its whole tree is one walk: every folder below belongs to it)."""
    dst, entries = _listing(root)
    names = {e.name for e in entries}
    return dst, entries, any(n in names for n in SPEC_FILES)


def _listing(folder: str) -> tuple[DirStat, list[os.DirEntry[str]]]:
    """A folder's stat data and its entries in walk order (lexical)."""
    try:
        dst = os.lstat(folder)
        with os.scandir(folder) as it:
            return (dst.st_mtime_ns, dst.st_ino, dst.st_mode), sorted(it, key=_by_name)
    except OSError as exc:
        raise SpecError(f"cannot read folder: {exc.strerror}", reason=Reason.MISSING_FILE,
                        file=folder) from None


def walk_tree(root: str, out: TreeScan) -> None:
    """One tree, in this process."""
    _walk(root, root, out, None)


def walk_folder(root: str, folder: str, out: TreeScan) -> None:
    """A top-level folder of a tree that is no package folder itself (its own walk's share)."""
    _walk(root, folder, out, None)


def classify(entry: os.DirEntry[str]) -> str | Stat | None:
    """An entry as the walk takes it: "folder" (walked into; from the listing, no stat call), a
    file's stat data, or None (skipped: a version-control folder, or gone)."""
    try:
        if entry.is_dir(follow_symlinks=False):
            return "folder" if entry.name not in SKIP_DIRS else None
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    if st.st_mode & 0o170000 == 0o040000:  # raced: became a folder between listing and stat
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)


_by_name = operator.attrgetter("name")


def scan_folder(root: str, folder: str) -> PackageDir:
    """The package folder `folder` (absolute, under the tree `root`) exactly as `scan` finds it."""
    out = TreeScan([root], [], [], {})
    _walk(root, folder, out, None)
    if not out.packages or out.packages[0].path != folder:
        raise SpecError("not a package folder any more", reason=Reason.MISSING_FILE, file=folder)
    return out.packages[0]


def _walk(root: str, folder: str, out: TreeScan, owner: PackageDir | None) -> None:
    """Depth-first, lexical. `owner` is the innermost package folder containing `folder`.
    Hot on every plan (a warm one is mostly this walk): per entry, only what is needed."""
    out.dirs[folder], entries = _listing(folder)
    names = [e.name for e in entries]
    # a tree's own root is never a shared-templates folder, whatever its name (luet's fixture
    # tree `templates/` is a package tree: its definition.yaml and build.yaml are no templates)
    is_templates = folder.endswith(TEMPLATES_SUFFIX) and folder != root
    has_spec = SPEC_FILES[0] in names or SPEC_FILES[1] in names
    here = owner
    if is_templates or has_spec:
        if owner is not None:
            owner.excluded.append(_below(folder, owner.path))
        if is_templates:
            here = None
        else:
            here = PackageDir(root, _below(folder, root) if folder != root else "",
                              [n for n in SPEC_FILES if n in names],
                              next((b for b in BUILD_FILES if b in names), None), FINALIZE_FILE in names,
                              ignore=_ignore_patterns(folder) if IGNORE_FILE in names else [])
            out.packages.append(here)
    stats = out.stats
    if here is None:
        for entry in entries:
            sd = classify(entry)
            if isinstance(sd, tuple):
                stats[entry.path] = sd
                if is_templates and entry.name.lower().endswith(TEMPLATE_EXTS):
                    out.templates.append(entry.path)
            elif sd is not None:
                _walk(root, entry.path, out, None)
        return
    # relative names by slicing (os.path.relpath costs more than the stat call)
    cut = len(here.path) + 1
    at_package_root = folder == here.path
    spec_stats, ctx_stats, context = here.spec_stats, here.ctx_stats, here.context
    ignore = here.ignore
    for entry in entries:
        sd = classify(entry)
        if not isinstance(sd, tuple):
            if sd is not None:
                _walk(root, entry.path, out, here)
            continue
        path = entry.path
        stats[path] = sd
        if at_package_root and entry.name in NOT_CONTEXT:
            spec_stats.append((entry.name, sd))
            continue
        relfile = path[cut:] if os.sep == "/" else path[cut:].replace(os.sep, "/")
        ctx_stats.append((relfile, sd))
        (here.ignored if ignore and _ignored(relfile, ignore) else context).append(relfile)


def _below(path: str, parent: str) -> str:
    """`path` relative to `parent`, which contains it (both absolute, normalised)."""
    return path[len(parent) + 1:].replace(os.sep, "/")


def _ignore_patterns(folder: str) -> list[str]:
    """`.orchignore`: one glob a line, matched against the relative path or any of its parts."""
    try:
        with open(os.path.join(folder, IGNORE_FILE), encoding="utf-8") as fh:
            return [ln.strip().rstrip("/") for ln in fh if ln.strip() and not ln.startswith("#")]
    except OSError:
        return []


def _ignored(relfile: str, patterns: list[str]) -> bool:
    if not patterns:
        return False
    parts = relfile.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(prefix, pat) or fnmatch.fnmatchcase(parts[i], pat)
               for pat in patterns for i, prefix in enumerate(prefixes))
