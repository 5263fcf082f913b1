"""Fixtures for end-to-end `orch build` tests: the busybox base archive (tests/integration's
fixture), one baseline build of the generated tree shared by the module, and cache dirs whose
private buildah stores are torn down (umount --all, rm --all, unmount leftovers, delete)."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import buildtree as bt  # noqa: E402


def _integration_conftest() -> object:
    """tests/integration/conftest.py under its own name (it is not a package this dir can import)."""
    path = HERE.parent / "integration" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_orch_integration_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_integration = _integration_conftest()
base_archive = _integration.base_archive  # type: ignore[attr-defined]
buildah_usable: Callable[[], str | None] = _integration.buildah_usable  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Baseline:
    """The generated tree built once from scratch, and that first run."""

    tree: Path
    cache: Path
    run: bt.Run
    shim: Path
    calls: Path  # the shim's log of that run
    tmp: Path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, base_archive: str) -> Iterator[Baseline]:
    tmp = tmp_path_factory.mktemp("baseline")
    tree = bt.write_tree(tmp / "tree", base_archive)
    cache = tmp / "cache"
    shim, calls = bt.shim_dir(tmp)
    try:
        run = bt.orch_build(tree, cache, shim=shim)
        yield Baseline(tree, cache, run, shim, calls, tmp)
    finally:
        bt.teardown(cache)


@pytest.fixture()
def caches(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """`new(name, source=None, storage=False)`: an empty cache dir, or a copy of `source`'s store
    and plan state (+ its buildah storage when `storage`); all torn down after the test."""
    made: list[Path] = []

    def new(name: str, source: Path | None = None, storage: bool = False) -> Path:
        dest = tmp_path / name
        made.append(dest)
        if source is None:
            dest.mkdir(parents=True)
            return dest
        return bt.copy_cache(source, dest, storage=storage)

    yield new
    for cache in made:
        bt.teardown(cache)


@pytest.fixture()
def tree_copy(tmp_path: Path, baseline: Baseline) -> Path:
    """The baseline's tree at another path (keys do not depend on where a tree lives)."""
    dest = tmp_path / "tree"
    shutil.copytree(baseline.tree, dest)
    return dest
