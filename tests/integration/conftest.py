"""Real-buildah fixtures: a private store per session and the busybox base image.

Never the system store (/var/lib/containers): every test uses `Buildah(root=<tmp>/root, …)`,
and teardown follows ecosystem.md §1.6 (umount --all, rm --all, unmount leftovers, delete).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.backend.buildah import Buildah

REPO = Path(__file__).resolve().parents[2]
MAKE_BASE = REPO / "scripts" / "make-base-image"


def buildah_usable() -> str | None:
    """Why real-buildah tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (buildah mount, private stores)"
    if shutil.which("buildah") is None:
        return "buildah is not installed"
    if not os.path.exists(os.environ.get("BUSYBOX", "/bin/busybox")):
        return "busybox-static is not installed"
    return None


@dataclass(frozen=True)
class Store:
    bh: Buildah
    base_archive: str  # OCI archive made by scripts/make-base-image
    base_id: str  # its image ID in the private store
    tmp: Path


@pytest.fixture(scope="session")
def base_archive(tmp_path_factory: pytest.TempPathFactory) -> str:
    why = buildah_usable()
    if why:
        pytest.skip(why)
    out = tmp_path_factory.mktemp("base") / "busybox.oci.tar"
    subprocess.run([str(MAKE_BASE), str(out)], check=True, capture_output=True)
    return str(out)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory, base_archive: str) -> Iterator[Store]:
    tmp = tmp_path_factory.mktemp("buildah")
    bh = Buildah(str(tmp / "root"), str(tmp / "runroot"), run_id="itest")
    try:
        base_id = bh.resolve_image(f"oci-archive:{base_archive}")
        yield Store(bh, base_archive, base_id, tmp)
    finally:
        bh.teardown()
        assert not (tmp / "root").exists()


@pytest.fixture()
def context(tmp_path: Path) -> Path:
    """A package folder: build.yaml, a data file, and a nested package that must be left out."""
    ctx = tmp_path / "pkg"
    (ctx / "nested").mkdir(parents=True)
    (ctx / "build.yaml").write_text("steps: []\n")
    (ctx / "data.txt").write_text("context data\n")
    (ctx / "nested" / "definition.yaml").write_text("name: nested\n")
    return ctx
