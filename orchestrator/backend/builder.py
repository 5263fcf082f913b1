"""Build one package with buildah as luet does, and turn the result into artefacts.

luet generates two Dockerfiles (luet.md §1.4): builder = FROM image + COPY . /luetbuild +
WORKDIR + ENV PACKAGE_* + COPY --from + ENV env + RUN prelude; package = FROM builder + RUN
steps. orch issues the same operations as single buildah commands (no Dockerfile, no build
cache: caching is orch's job), commits both with `--timestamp 0`, and compares the mounted
package rootfs with a fresh container of the builder image (see `fstree.delta`).
"""
from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass, field

from orchestrator.backend import fstree
from orchestrator.backend.argv import context_ignore_lines, is_transport_ref, safe_token
from orchestrator.backend.artifact import write_artifact, write_empty_artifact
from orchestrator.backend.buildah import Buildah, BuildahFailed
from orchestrator.backend.dockerenv import EnvSyntaxError, evaluate, for_buildah
from orchestrator.backend.unpack import unpack_artifact
from orchestrator.errors import BuildError, Reason, SpecError
from orchestrator.model import BuildJob, BuildOutput, PackageRef

WORKDIR = "/luetbuild"
PACKAGE_REPO = "localhost/orch-pkg"
BUILDER_REPO = "localhost/orch-builder"
# Lines buildah adds after a failed RUN; the user's own last line says more.
_BUILDAH_NOISE = re.compile(r"^(subprocess exited with status \d+|Error: exit status \d+|error running container.*"
                            r"|time=\".*level=error msg=\"error expanding variable.*)$")


def fingerprint(ref: PackageRef) -> str:
    """luet's artefact file stem `<name>-<category>-<version>`."""
    return f"{ref.name}-{ref.category}-{ref.version}".replace("/", "_")


def package_image_name(key: str) -> str:
    return f"{PACKAGE_REPO}:{safe_token(key, 128)}"


def builder_image_name(key: str) -> str:
    return f"{BUILDER_REPO}:{safe_token(key, 128)}"


def build(job: BuildJob, bh: Buildah, workdir: str, log_path: str,
          cancel: threading.Event | None = None) -> BuildOutput:
    """Run the job and write its artefact(s) under `workdir` (the caller moves them to the store)."""
    os.makedirs(workdir, exist_ok=True)
    if job.virtual:
        return _virtual(job, workdir)
    return _Build(job, bh, workdir, log_path, cancel).run()


def _virtual(job: BuildJob, workdir: str) -> BuildOutput:
    """No buildah at all: an empty artefact (and empty sub-packages), no image."""
    art = os.path.join(workdir, f"{fingerprint(job.ref)}.package.tar.zst")
    write_empty_artifact(art)
    subs = []
    for sub in job.subpackages:
        path = os.path.join(workdir, f"{fingerprint(sub.ref)}.package.tar.zst")
        write_empty_artifact(path)
        subs.append((sub.ref, path))
    return BuildOutput(artifact=art, image_id="", image_name="", files=(), subpackages=tuple(subs))


@dataclass
class _Build:
    job: BuildJob
    bh: Buildah
    workdir: str
    log: str
    cancel: threading.Event | None
    created: list[str] = field(default_factory=list)

    def run(self) -> BuildOutput:
        job, bh = self.job, self.bh
        self._note(f"orch: building {job.ref} (key {job.key})")
        try:
            work = self._builder_stage()
            if job.unpack or job.package_dir:
                pkg, ref = work, None  # whole filesystem wanted: no builder image to compare with
            else:
                builder_id = bh.commit(work, builder_image_name(job.key), rm=True, log_path=self.log,
                                       cancel=self.cancel)
                self.created.remove(work)
                pkg, ref = self._from(builder_id, "pkg"), self._from(builder_id, "ref")
            for i, cmd in enumerate(job.steps, 1):
                self._sh(pkg, cmd, f"step {i}/{len(job.steps)}")
            image_name = package_image_name(job.key)
            image_id = bh.commit(pkg, image_name, log_path=self.log, cancel=self.cancel)
            mounts = bh.mount(*([pkg, ref] if ref else [pkg]), log_path=self.log)
            return self._artifacts(mounts[pkg], mounts[ref] if ref else None, image_id, image_name)
        finally:
            self.bh.rm(*self.created, check=False, log_path=self.log)

    # ------------------------------------------------------------------ stages
    def _builder_stage(self) -> str:
        job, bh = self.job, self.bh
        if not job.image and not job.final_artifacts:
            raise BuildError(f"{job.ref}: nothing to build from (no image, requires or final artefacts)",
                             reason=Reason.BUILD_FAILED)
        # base: the image, or an empty rootfs; artefacts are then applied on top, in order
        work = self._from(self._image(job.image) if job.image else "scratch", "build")
        if job.final_artifacts:
            root = bh.mount(work, log_path=self.log)[work]
            for art in job.final_artifacts:
                self._note(f"orch: unpacking {art}")
                unpack_artifact(art, root, allow_devices=os.geteuid() == 0)
        bh.config(work, env=self._env(work), workingdir=WORKDIR, log_path=self.log)
        self._copy_context(work)
        for cp in job.copy:
            bh.copy(work, [cp.source], cp.destination, from_image=self._image(cp.image), log_path=self.log,
                    cancel=self.cancel)
        for i, cmd in enumerate(job.prelude, 1):
            self._sh(work, cmd, f"prelude {i}/{len(job.prelude)}")
        return work

    def _image(self, ref: str) -> str:
        """Archives and layouts are imported once per store and used by ID (no re-read per build)."""
        return self.bh.resolve_image(ref) if is_transport_ref(ref) else ref

    def _from(self, image: str, role: str) -> str:
        # the key fragment keeps two concurrent builds of one package (other values) apart
        name = self.bh.container_name(f"{fingerprint(self.job.ref)}-{safe_token(self.job.key)[:12]}", role)
        self.created.append(name)
        self.bh.from_image(image, name, log_path=self.log, cancel=self.cancel)
        return name

    def _env(self, container: str) -> list[str]:
        """PACKAGE_NAME/VERSION/CATEGORY, then `env:` evaluated like Dockerfile `ENV` lines."""
        ref = self.job.ref
        own = {"PACKAGE_NAME": ref.name, "PACKAGE_VERSION": ref.version, "PACKAGE_CATEGORY": ref.category}
        base = self.bh.container_env(container) if any("$" in e for e in self.job.env) else {}
        try:
            pairs = evaluate(self.job.env, {**base, **own})
        except EnvSyntaxError as exc:
            raise SpecError(f"{ref}: env: {exc}", reason=Reason.INVALID_SPEC) from None
        return [for_buildah(k, v) for k, v in [*own.items(), *pairs]]

    def _copy_context(self, container: str) -> None:
        """The package folder to /luetbuild, minus `context_exclude` (nested packages, ignored files)."""
        ctx = self.job.context_dir
        try:
            lines = context_ignore_lines(self.job.context_exclude)
        except ValueError:  # a name no ignore pattern can express: copy a filtered tree instead
            ctx = self._staged_context()
            lines = []
        ignore = os.path.join(self.workdir, "context.ignore")
        with open(ignore, "w", encoding="utf-8") as fh:
            fh.writelines(f"{line}\n" for line in lines)
        self.bh.copy(container, [ctx], WORKDIR, contextdir=ctx, ignorefile=ignore, log_path=self.log,
                     cancel=self.cancel)

    def _staged_context(self) -> str:
        src = self.job.context_dir
        skip = {os.path.normpath(os.path.join(src, p.strip("/"))) for p in self.job.context_exclude}
        dest = os.path.join(self.workdir, "context")
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True,
                        ignore=lambda d, names: [n for n in names if os.path.join(d, n) in skip])
        return dest

    def _sh(self, container: str, cmd: str, what: str) -> None:
        self._note(f"orch: {what}: {cmd}")
        try:
            self.bh.run_in(container, cmd, log_path=self.log, cancel=self.cancel)
        except BuildahFailed as exc:
            said = [ln for ln in exc.tail if not _BUILDAH_NOISE.match(ln) and not ln.startswith("$ ")]
            short = " ".join(cmd.split())
            short = short if len(short) <= 160 else short[:157] + "..."
            raise BuildError(
                f"{self.job.ref}: {what} failed with exit code {exc.returncode}: `{short}`",
                reason=Reason.BUILD_FAILED,
                hint=(f"last output: {said[-1]}; " if said else "") + f"log: {self.log}",
            ) from None

    def _note(self, text: str) -> None:
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(f"# {text}\n")

    # ------------------------------------------------------------------ artefacts
    def _artifacts(self, pkg_root: str, ref_root: str | None, image_id: str, image_name: str) -> BuildOutput:
        job = self.job
        deleted: list[str] = []
        src = fstree.real_subdir(pkg_root, job.package_dir) if job.package_dir else pkg_root
        nodes = fstree.scan(src)
        if ref_root is not None:
            paths, deleted = fstree.delta(fstree.scan(ref_root), nodes, ref_root, pkg_root)
        elif src == pkg_root:  # unpack (or package_dir "/"): the whole rootfs minus runtime noise
            paths = [p for p, n in nodes.items() if not fstree.is_noise(p, n, delta=False)]
        else:  # package_dir: that subtree, re-rooted; its own /dev etc. are content
            paths = list(nodes)
        sel = fstree.selector(job.includes, job.excludes)
        entries, whiteouts = _select(sel, paths, deleted, nodes)
        fstree.check_names(entries)
        art = os.path.join(self.workdir, f"{fingerprint(job.ref)}.package.tar.zst")
        files = write_artifact(art, src, entries, nodes, whiteouts)
        subs = []
        for sub in job.subpackages:
            sub_entries, sub_wh = _select(fstree.selector(sub.includes, sub.excludes), entries, whiteouts, nodes)
            path = os.path.join(self.workdir, f"{fingerprint(sub.ref)}.package.tar.zst")
            write_artifact(path, src, sub_entries, nodes, sub_wh)
            subs.append((sub.ref, path))
        self._note(f"orch: artefact {art}: {len(entries)} entries, {len(whiteouts)} whiteouts")
        return BuildOutput(artifact=art, image_id=image_id, image_name=image_name, files=files,
                           subpackages=tuple(subs))


def _select(sel: fstree.Selector, paths: list[str], deleted: list[str],
            nodes: dict[str, fstree.Node]) -> tuple[list[str], list[str]]:
    """Entries kept by the filter plus their parent directories (also those of kept whiteouts)."""
    kept, gone = sel.filter(paths), sel.filter(deleted)
    entries = [p for p in fstree.with_parents([*kept, *gone], nodes) if p in nodes]
    return entries, gone
