"""The buildah backend against REAL buildah (root, private store, busybox base image)."""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backend.adapter import BuildahBackend
from orchestrator.backend.artifact import read_members, unpack_artifact
from orchestrator.backend.buildah import Buildah
from orchestrator.backend.builder import build, package_image_name
from orchestrator.errors import BuildError, Interrupted, Reason
from orchestrator.model import BuildJob, BuildOutput, CopyJob, PackageRef, SubPackageJob

from .conftest import Store

pytestmark = pytest.mark.buildah

HELLO = BuildJob(
    ref=PackageRef("test", "hello", "1.0"),
    key="hello-k1",
    context_dir="",
    context_exclude=("nested",),
    env=('GREETING="hi there"', "XPATH=$PATH:/opt/bin"),
    prelude=("echo v1 > /etc/motd && echo old > /etc/gone && mkdir -p /opt/keep && echo k > /opt/keep/k",),
    steps=(
        "test ! -e /luetbuild/nested && test -f /luetbuild/build.yaml",
        'echo "$GREETING $PACKAGE_CATEGORY/$PACKAGE_NAME@$PACKAGE_VERSION" > /usr/bin/hello && chmod 755 /usr/bin/hello',
        "echo v2 > /etc/motd && rm /etc/gone && ln -s hello /usr/bin/hi",
        "cp data.txt /usr/share-data && echo $XPATH > /xpath && echo junk > /tmp/junk",
    ),
    subpackages=(SubPackageJob(PackageRef("test", "hello-hi", "1.0"), includes=("^/usr/bin/hi$",)),),
)


def members(path: str) -> dict[str, tuple[str, bytes | None]]:
    return {i.name: (i.linkname, data) for i, data in read_members(path)}


def job_for(store: Store, context: Path, base: BuildJob = HELLO, **changes: Any) -> BuildJob:
    return dataclasses.replace(base, **{"context_dir": str(context), "image": store.base_id, **changes})


def run_build(store: Store, job: BuildJob, tmp: Path, tag: str = "w") -> BuildOutput:
    return build(job, store.bh, str(tmp / tag), str(tmp / f"{tag}.log"))


@pytest.fixture(scope="module")
def hello(store: Store, tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildJob, BuildOutput, Path]:
    tmp = tmp_path_factory.mktemp("hello")
    ctx = tmp / "pkg"
    (ctx / "nested").mkdir(parents=True)
    (ctx / "build.yaml").write_text("steps: []\n")
    (ctx / "data.txt").write_text("context data\n")
    (ctx / "nested" / "definition.yaml").write_text("name: nested\n")
    job = job_for(store, ctx)
    return job, run_build(store, job, tmp), tmp


def test_delta_has_added_modified_and_whiteouts(store: Store, hello: tuple[BuildJob, BuildOutput, Path]) -> None:
    job, out, _ = hello
    got = members(out.artifact)
    assert got["usr/bin/hello"][1] == b"hi there test/hello@1.0\n"
    assert got["etc/motd"][1] == b"v2\n"  # modified by steps (luet 0.35 would drop it)
    assert "etc/.wh.gone" in got  # deleted by steps
    assert got["usr/bin/hi"][0] == "hello"
    assert got["usr/share-data"][1] == b"context data\n"
    assert got["xpath"][1] == b"/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin\n"
    assert "tmp/junk" in got  # kept, as luet does (exclude `^/tmp` to drop it)
    # builder content (prelude, context, base) is not in the delta; nor is runtime noise
    assert not any(n.startswith(("opt", "luetbuild", "bin/", "proc", "dev", "sys", "run")) for n in got)
    assert "etc/hosts" not in got and "etc/resolv.conf" not in got
    assert out.files == ("etc/motd", "tmp/junk", "usr/bin/hello", "usr/bin/hi", "usr/share-data", "xpath")
    assert out.image_name == package_image_name(job.key) and store.bh.image_exists(out.image_name)
    assert store.bh.image_id(out.image_name) == out.image_id
    (sub_ref, sub_path), = out.subpackages
    assert sub_ref.name == "hello-hi" and list(members(sub_path)) == ["usr", "usr/bin", "usr/bin/hi"]


def test_build_twice_is_byte_identical(store: Store, hello: tuple[BuildJob, BuildOutput, Path],
                                       tmp_path: Path) -> None:
    job, first, _ = hello
    (Path(job.context_dir) / "data.txt").touch()  # mtimes do not matter
    again = run_build(store, job, tmp_path)
    assert again.image_id == first.image_id
    assert Path(again.artifact).read_bytes() == Path(first.artifact).read_bytes()
    assert Path(again.subpackages[0][1]).read_bytes() == Path(first.subpackages[0][1]).read_bytes()
    assert not [c for c in store.bh.containers() if "hello" in c["containername"]]


def test_unpack_package_dir_includes_excludes(store: Store, context: Path, tmp_path: Path) -> None:
    steps = ("mkdir -p /out/usr/bin /out/etc && echo x > /out/usr/bin/x && echo c > /out/etc/c",)
    whole = run_build(store, job_for(store, context, key="unpack", steps=steps, unpack=True,
                                     includes=("^/bin/busybox$", "^/etc/", "^/out"), excludes=("^/etc/group$",
                                                                                           "/c$")), tmp_path, "u")
    got = members(whole.artifact)
    assert {"bin/busybox", "etc/passwd", "out/usr/bin/x"} <= set(got)
    assert "etc/group" not in got and "out/etc/c" not in got and "bin/sh" not in got
    sub = run_build(store, job_for(store, context, key="pkgdir", steps=steps, package_dir="/out",
                                   excludes=("^/etc",)), tmp_path, "p")
    assert list(members(sub.artifact)) == ["usr", "usr/bin", "usr/bin/x"]


def test_chain_copy_and_final_artifacts(store: Store, hello: tuple[BuildJob, BuildOutput, Path], context: Path,
                                        tmp_path: Path) -> None:
    _, parent, _ = hello
    # chain: built FROM the parent's package image; its files are in the base, not in the delta
    child = run_build(store, job_for(store, context, key="child", image=parent.image_name, prelude=(), env=(),
                                     subpackages=(), steps=("cat /usr/bin/hello > /child && test ! -e /etc/gone",)), tmp_path, "c")
    assert members(child.artifact) == {"child": ("", b"hi there test/hello@1.0\n")}
    # copy: COPY --from another image lands in the builder (so not in the delta) and is usable by steps
    cp = run_build(store, job_for(store, context, key="copy", prelude=(), env=(), subpackages=(),
                                  copy=(CopyJob(parent.image_name, "/usr/bin/hello", "/opt/bin/hello"),),
                                  steps=("cp /opt/bin/hello /copied",)), tmp_path, "cp")
    assert list(members(cp.artifact)) == ["copied"]
    # final artefacts: a base unpacked from the busybox image, then hello's delta (with its whiteout)
    base = run_build(store, job_for(store, context, key="bbfull", prelude=(), env=(), subpackages=(), steps=(),
                                    unpack=True), tmp_path, "b")
    final = run_build(store, job_for(store, context, key="final", image="", prelude=(), env=(), subpackages=(),
                                     final_artifacts=(base.artifact, parent.artifact),
                                     steps=("cat /usr/bin/hello /etc/motd > /final && test -L /usr/bin/hi",)),
                      tmp_path, "f")
    assert members(final.artifact)["final"][1] == b"hi there test/hello@1.0\nv2\n"
    # an image with artefacts on top (several plain `requires`: first one's image, others' artefacts)
    over = run_build(store, job_for(store, context, key="overlay", prelude=(), env=(), subpackages=(),
                                    final_artifacts=(parent.artifact,), steps=("cat /usr/bin/hello > /o",)),
                     tmp_path, "o")
    assert list(members(over.artifact)) == ["o"]  # the overlaid files are builder content
    root = tmp_path / "composed"
    root.mkdir()
    for art in (base.artifact, parent.artifact):
        unpack_artifact(art, str(root), allow_devices=True)
    assert (root / "bin/busybox").exists() and (root / "usr/bin/hello").exists()


def test_failing_step_names_command_exit_code_and_log(store: Store, context: Path, tmp_path: Path) -> None:
    job = job_for(store, context, key="fails", prelude=(), env=(), subpackages=(),
                  steps=("true", "echo the-real-problem >&2; exit 7", "echo never"))
    with pytest.raises(BuildError) as err:
        run_build(store, job, tmp_path)
    text = str(err.value)
    assert err.value.reason is Reason.BUILD_FAILED
    assert "step 2/3 failed with exit code 7" in text and "exit 7" in text
    assert "the-real-problem" in text and str(tmp_path / "w.log") in text
    assert "the-real-problem" in (tmp_path / "w.log").read_text()
    assert not [c for c in store.bh.containers() if "fails" in c["containername"]]


def test_missing_base_image_is_buildah_failure(store: Store, context: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError) as err:
        run_build(store, job_for(store, context, key="nobase", image="localhost/does-not-exist:1"), tmp_path)
    assert err.value.reason is Reason.BUILDAH_FAILED and "buildah from" in str(err.value)


def test_cancel_interrupts_a_running_step(store: Store, context: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    job = job_for(store, context, key="slow", prelude=(), env=(), subpackages=(), steps=("sleep 60",))
    with pytest.raises(Interrupted):
        build(job, store.bh, str(tmp_path / "w"), str(tmp_path / "w.log"), cancel)
    assert not [c for c in store.bh.containers() if "slow" in c["containername"]]


def test_cleanup_stale_removes_dead_owner(store: Store) -> None:
    with open("/proc/sys/kernel/pid_max") as fh:
        dead = int(fh.read()) + 1
    bh = store.bh
    name = f"orch-killed-p{dead}-pkg-build"
    live = bh.container_name("alive", "ref")
    bh.from_image(store.base_id, name)
    bh.from_image(store.base_id, live)
    bh.mount(name)
    try:
        assert name in bh.cleanup_stale()
        names = [c["containername"] for c in bh.containers()]
        assert name not in names and live in names
    finally:
        bh.rm(live, check=False)


def test_save_and_load_image_keep_the_id(store: Store, hello: tuple[BuildJob, BuildOutput, Path],
                                         tmp_path: Path) -> None:
    _, out, _ = hello
    archive = str(tmp_path / "img.oci.tar")
    store.bh.save_image(out.image_name, archive)
    other = Buildah(str(tmp_path / "r2"), str(tmp_path / "rr2"), storage_driver=store.bh.storage_driver)
    try:
        assert other.load_image(archive, "localhost/restored:1") == out.image_id
        assert other.image_exists("localhost/restored:1") and not other.image_exists("localhost/nope:1")
    finally:
        other.teardown()


def test_adapter_builds_from_an_archive_reference(store: Store, context: Path, tmp_path: Path) -> None:
    """`BuildahBackend` (execute's Backend): private store under the cache dir, transport refs resolved once."""
    backend = BuildahBackend(str(tmp_path / "cache"), storage_driver=store.bh.storage_driver, run_id="adapter")
    try:
        job = job_for(store, context, key="adapted", image=f"oci-archive:{store.base_archive}", prelude=(), env=(),
                      subpackages=(), steps=("echo ok > /ok",))
        out = backend.build(job, str(tmp_path / "a.log"), threading.Event())
        assert members(out.artifact) == {"ok": ("", b"ok\n")}
        assert backend.image_exists(out.image_name)
        assert backend.bh.root == str(tmp_path / "cache" / "buildah" / "root")
        backend.close()
        assert not Path(backend.outdir).exists()
    finally:
        backend.bh.teardown()
