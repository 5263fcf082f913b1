"""`BuildahBackend`: what `orchestrator.execute` needs (its `Backend` protocol), over one store.

Why a separate object: it owns the run's lifetime — the private store under
`<cache_dir>/buildah/{root,runroot}` (or the system store), the one-time removal of containers
left by killed runs, scratch directories for outputs, and stopping children on close.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading

from orchestrator.backend import builder
from orchestrator.backend.argv import safe_token
from orchestrator.backend.buildah import Buildah, pid_alive, unmount_below
from orchestrator.model import BuildJob, BuildOutput


class BuildahBackend:
    def __init__(
        self,
        cache_dir: str,
        *,
        isolation: str = "chroot",
        runtime: str | None = None,
        system_storage: bool = False,
        storage_driver: str | None = None,
        run_id: str | None = None,
    ) -> None:
        base, root, runroot = _store_dirs(cache_dir)
        private = not system_storage
        self.bh = Buildah(root if private else None, runroot if private else None, isolation, runtime,
                          storage_driver, run_id=run_id)
        out_root = os.path.join(base, "out")
        _remove_dead_outdirs(out_root)
        self.outdir = os.path.join(out_root, f"{os.getpid()}-{self.bh.run_id}")
        os.makedirs(self.outdir, exist_ok=True)
        self._started = False
        self._lock = threading.Lock()

    def _start(self) -> None:
        """First buildah use: clear containers of killed runs (not at construction: planning needs no buildah)."""
        with self._lock:
            if not self._started:
                self._started = True
                self.bh.cleanup_stale()

    def build(self, job: BuildJob, log_path: str, cancel: threading.Event | None = None) -> BuildOutput:
        """Outputs are written below this backend's scratch dir; the caller moves them to the store."""
        if not job.virtual:
            self._start()
        workdir = tempfile.mkdtemp(prefix=f"{safe_token(job.ref.id, 80)}-", dir=self.outdir)
        return builder.build(job, self.bh, workdir, log_path, cancel)

    def resolve_image(self, ref: str) -> str:
        self._start()
        return self.bh.resolve_image(ref)

    def image_exists(self, name: str) -> bool:
        return self.bh.image_exists(name)

    def save_image(self, name: str, archive: str) -> None:
        self.bh.save_image(name, archive)

    def load_image(self, archive: str, name: str) -> None:
        self.bh.load_image(archive, name)

    def close(self) -> None:
        """Stop any buildah still running (interrupted run) and drop this run's scratch outputs."""
        self.bh.terminate_all()
        shutil.rmtree(self.outdir, ignore_errors=True)


def _store_dirs(cache_dir: str) -> tuple[str, str, str]:
    """The private store's folder under a cache dir, and its buildah root and runroot."""
    base = os.path.join(cache_dir, "buildah")
    return base, os.path.join(base, "root"), os.path.join(base, "runroot")


def remove_private_store(cache_dir: str) -> None:
    """Delete the private buildah store of a cache dir (tests, benchmarks): umount all, rm all,
    detach leftover mounts, delete."""
    base, root, runroot = _store_dirs(cache_dir)
    if os.path.isdir(root):
        Buildah(root, runroot).teardown()
    if os.path.exists(base):
        unmount_below(base)
        shutil.rmtree(base, ignore_errors=True)


def _remove_dead_outdirs(out_root: str) -> None:
    """Scratch dirs are named `<pid>-<run>`: those of processes that are gone are leftovers."""
    if not os.path.isdir(out_root):
        return
    for name in os.listdir(out_root):
        pid = name.split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(os.path.join(out_root, name), ignore_errors=True)

