"""`orch build` end to end: the real CLI as a subprocess, real buildah (private stores), a
generated 15-package tree on a busybox base (see buildtree.PACKAGES).

One baseline build is shared by the module; tests that change the tree work on a copy of the
tree and of the cache (store + plan state; images are then restored from the store's image
archives, or the buildah storage is copied too where a test says so).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import buildtree as bt
from buildtree import IDS
from cache import Store
from conftest import Baseline

pytestmark = pytest.mark.buildah

PACKAGE_FIELDS = {"id", "key", "outcome", "artifact", "log", "seconds"}


def calls_of(log: Path) -> list[str]:
    return [ln for ln in log.read_text().splitlines() if ln.strip()]


def reset(log: Path) -> None:
    log.write_text("")


# ------------------------------------------------------------------ first and second build
def test_first_build_builds_everything(baseline: Baseline) -> None:
    run = baseline.run
    assert run.code == 0, run
    assert sorted(run.packages) == IDS
    assert run.with_outcome("built") == set(IDS), run
    for p in run.doc["packages"]:
        assert set(p) == PACKAGE_FIELDS
        assert len(p["key"]) == 32 and p["artifact"].startswith("xxh3-128:")
        assert isinstance(p["seconds"], float) and p["seconds"] >= 0
        log = Path(p["log"])
        assert log.is_file() and baseline.cache in log.parents, p  # per-package logs under the cache dir
    assert "orch: 15 built in" in run.stderr.splitlines()[-1]  # the summary line
    assert any(" run " in c for c in calls_of(baseline.calls))  # the shim sees buildah
    assert bt.containers(baseline.cache) == []  # no working container left


def test_second_build_is_all_cached_and_runs_no_buildah(baseline: Baseline, tmp_path: Path) -> None:
    shim, calls = bt.shim_dir(tmp_path)
    run = bt.orch_build(baseline.tree, baseline.cache, shim=shim)
    assert run.code == 0, run
    assert run.with_outcome("cached") == set(IDS), run
    assert calls_of(calls) == []
    assert "orch: 15 cached in" in run.stderr.splitlines()[-1]
    first = baseline.run.packages
    for pid, p in run.packages.items():  # same keys, same artefacts
        assert (p["key"], p["artifact"]) == (first[pid]["key"], first[pid]["artifact"])
        assert p["log"] == first[pid]["log"]  # the log of the build that made it


def test_artefact_contents(baseline: Baseline, tmp_path: Path) -> None:
    pkgs, cache = baseline.run.packages, baseline.cache

    def members(pid: str) -> set[str]:
        return set(bt.artefact_members(cache, pkgs[pid]["artifact"], tmp_path))

    def content(pid: str, name: str) -> bytes:
        return bt.artefact_file(cache, pkgs[pid]["artifact"], tmp_path, name)

    base = members("distro/base@1.0")  # unpack: the whole rootfs minus /luetbuild
    assert {"bin/busybox", "etc/passwd", "etc/base-marker"} <= base
    assert not any(m.startswith("luetbuild") for m in base)
    # a delta on a package image: the modified base file is kept, whole
    assert members("lib/liba@1.0") == {"etc", "etc/passwd", "usr", "usr/lib", "usr/lib/a", "usr/lib/a/liba.txt"}
    passwd = content("lib/liba@1.0", "etc/passwd").decode()
    assert passwd.startswith("root:") and passwd.endswith("liba:x:2000:2000::/:/bin/sh\n")
    # a deleted base file is a whiteout
    assert members("lib/libb@1.0") == {"etc", "etc/.wh.base-marker", "usr", "usr/lib", "usr/lib/b.txt"}
    # two plain requires: libc's artefact was overlaid on libb's image (which has liba's)
    assert content("app/both@1.0", "usr/share/both.txt") == b"A\nB\nC\n"
    assert members("app/both@1.0") == {"usr", "usr/share", "usr/share/both.txt"}
    # package_dir: only /opt/tool, re-rooted
    assert members("tools/compiler@1.0") == {"bin", "bin/tool", "share", "share/data"}
    # copy from another package's image
    assert "etc/withcopy" in members("app/withcopy@1.0")
    assert "usr/bin/tool" not in members("app/withcopy@1.0")  # copied in the builder: not a change
    # includes
    assert members("app/docs@1.0") == {"usr", "usr/share", "usr/share/doc", "usr/share/doc/docs",
                                       "usr/share/doc/docs/README"}
    assert members("meta/virtual@1.0") == set()
    # a collection: one build.yaml, two packages
    assert "boot/kernel-a" in members("system/kernel-a@1.0")
    assert content("system/kernel-b@1.0", "boot/kernel-b") == b"kernel-b\n"
    # final images: composed from artefacts, whole rootfs, excludes applied
    final = members("final/image@1.0")
    assert {"bin/busybox", "boot/kernel-a", "usr/lib/c.txt", "etc/release"} <= final
    assert not {m for m in final if m.startswith(("usr/share/doc", "luetbuild", "tmp/"))}, final
    assert "etc/base-marker" in final and "boot/kernel-b" not in final
    mini = members("final/mini@1.0")
    assert {"boot/kernel-b", "etc/release"} <= mini and "usr/lib/c.txt" not in mini
    assert content("final/mini@1.0", "etc/release") == b"mini\n"


# ------------------------------------------------------------------ incremental builds
def test_identical_output_stops_at_the_changed_package(
        baseline: Baseline, tree_copy: Path, caches: Callable[..., Path], tmp_path: Path) -> None:
    """Early cutoff: a spec change whose artefact and image are identical rebuilds that package only."""
    cache = caches("c", baseline.cache, storage=True)  # the buildah storage copied too
    bt.edit(tree_copy, "lib/liba", "- echo \"liba:x", "- \":\"  # a no-op step\n- echo \"liba:x")
    shim, calls = bt.shim_dir(tmp_path)
    run = bt.orch_build(tree_copy, cache, shim=shim)
    assert run.code == 0, run
    assert run.with_outcome("built") == {"lib/liba@1.0"}, run
    assert run.with_outcome("cached") == set(IDS) - {"lib/liba@1.0"}
    before, after = baseline.run.packages, run.packages
    assert after["lib/liba@1.0"]["key"] != before["lib/liba@1.0"]["key"]
    assert after["lib/liba@1.0"]["artifact"] == before["lib/liba@1.0"]["artifact"]
    # dependents have new input keys, found through their early-cutoff keys
    for pid in ("lib/libb@1.0", "app/both@1.0"):
        assert after[pid]["key"] != before[pid]["key"]
        assert after[pid]["artifact"] == before[pid]["artifact"]
    assert not any(f"orch-pkg:{after['lib/libb@1.0']['key']}" in c for c in calls_of(calls))
    # ... and registered under those keys: the next build needs no lookup by output
    again = bt.orch_build(tree_copy, cache)
    assert again.with_outcome("cached") == set(IDS), again


def test_changed_output_rebuilds_exactly_what_is_built_on_it(
        baseline: Baseline, tree_copy: Path, caches: Callable[..., Path], tmp_path: Path) -> None:
    cache = caches("c", baseline.cache)  # store + plan only: images come back from the store
    bt.edit(tree_copy, "lib/libc", "echo C >", "echo C2 >")
    run = bt.orch_build(tree_copy, cache)
    assert run.code == 0, run
    rebuilt = {"lib/libc@1.0", "app/both@1.0", "app/leaf@1.0", "final/image@1.0"}
    assert run.with_outcome("built") == rebuilt, run
    assert run.with_outcome("cached") == set(IDS) - rebuilt
    before, after = baseline.run.packages, run.packages
    for pid in set(IDS) - rebuilt:  # e.g. final/mini, a final image of unchanged inputs
        assert (after[pid]["key"], after[pid]["artifact"]) == (before[pid]["key"], before[pid]["artifact"])
    both = bt.artefact_file(cache, after["app/both@1.0"]["artifact"], tmp_path, "usr/share/both.txt")
    assert both == b"A\nB\nC2\n"
    final = bt.artefact_file(cache, after["final/image@1.0"]["artifact"], tmp_path, "usr/lib/c.txt")
    assert final == b"C2\n"


def test_keep_going_after_a_failed_step(
        baseline: Baseline, tree_copy: Path, caches: Callable[..., Path]) -> None:
    cache = caches("c", baseline.cache)
    bt.edit(tree_copy, "lib/libc", "echo C > /usr/lib/c.txt", "echo C > /usr/lib/c.txt && echo boom >&2 && exit 3")
    bt.edit(tree_copy, "app/indep", "echo indep", "echo indep2")  # builds after the failure
    run = bt.orch_build(tree_copy, cache, "--keep-going")
    assert run.code == 1, run
    assert run.with_outcome("failed") == {"lib/libc@1.0"}
    assert run.with_outcome("skipped") == {"app/both@1.0", "app/leaf@1.0", "final/image@1.0"}
    assert run.with_outcome("built") == {"app/indep@1.0"}
    assert run.with_outcome("cached") == set(IDS) - {"lib/libc@1.0", "app/both@1.0", "app/leaf@1.0",
                                                     "final/image@1.0", "app/indep@1.0"}
    failed = run.packages["lib/libc@1.0"]
    log = failed["log"]
    assert failed["artifact"] is None and Path(log).is_file()
    assert "boom" in Path(log).read_text()
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("orch: error:")]
    assert len(errors) == 1 and "lib/libc@1.0" in errors[0] and log in errors[0], run.stderr
    assert "exit code 3" in errors[0] and errors[0].count(log) == 1
    assert "1 built" in run.stderr.splitlines()[-1] and "1 failed, 3 skipped" in run.stderr.splitlines()[-1]
    with Store(cache) as store:
        assert store.ac_get(failed["key"]) is None  # a failed build records nothing
    assert bt.containers(cache) == []
    # fixed (other text, same output): the failed package builds; what it blocked is found by
    # early cutoff, as its output is what the baseline's was
    bt.edit(tree_copy, "lib/libc", " && echo boom >&2 && exit 3", " && true")
    again = bt.orch_build(tree_copy, cache)
    assert again.code == 0, again
    assert again.with_outcome("built") == {"lib/libc@1.0"}, again
    assert again.with_outcome("cached") == set(IDS) - {"lib/libc@1.0"}


def test_without_keep_going_nothing_new_starts_after_a_failure(
        baseline: Baseline, tree_copy: Path, caches: Callable[..., Path]) -> None:
    cache = caches("c", baseline.cache)
    bt.edit(tree_copy, "distro/base", "echo base >", "exit 7; echo base >")
    run = bt.orch_build(tree_copy, cache)
    assert run.code == 1, run
    assert run.with_outcome("failed") == {"distro/base@1.0"}
    assert set(run.outcomes().values()) <= {"failed", "skipped", "cached"}
    assert "distro/base@1.0" in run.stderr and run.packages["distro/base@1.0"]["log"] in run.stderr


def test_relocated_cache_restores_images_from_the_store(
        baseline: Baseline, tree_copy: Path, caches: Callable[..., Path], tmp_path: Path) -> None:
    """A cache dir carried elsewhere without its buildah storage (what CI restores): everything
    is cached without buildah, and a rebuild on top of a cached package image gets that image
    back from the store's image archive."""
    cache = caches("moved", baseline.cache)
    assert not (cache / "buildah").exists()
    shim, calls = bt.shim_dir(tmp_path)
    run = bt.orch_build(tree_copy, cache, shim=shim)
    assert run.code == 0 and run.with_outcome("cached") == set(IDS), run
    assert calls_of(calls) == []
    bt.edit(tree_copy, "lib/libb", "echo B >", "echo B2 >")
    run = bt.orch_build(tree_copy, cache, shim=shim)
    assert run.code == 0, run
    assert run.with_outcome("built") == {"lib/libb@1.0", "app/both@1.0"}, run
    pulls = [c for c in calls_of(calls) if " pull " in f" {c} " and "image.oci.tar" in c]
    assert pulls, calls_of(calls)  # liba's (and both's base) image came back from the store
    both = bt.artefact_file(cache, run.packages["app/both@1.0"]["artifact"], tmp_path, "usr/share/both.txt")
    assert both == b"A\nB2\nC\n"


# ------------------------------------------------------------------ interrupts and concurrency
SLOW = {
    f"slow/s{i}": {"build.yaml": f"image: {bt.BASE}\nsteps:\n- echo {i} > /s{i} && sleep 30\n"}
    for i in (1, 2)
}


def test_interrupt_leaves_no_container_and_no_entry(
        base_archive: str, tmp_path: Path, caches: Callable[..., Path]) -> None:
    tree = bt.write_tree(tmp_path / "slow", base_archive, SLOW)
    cache = caches("c")
    proc = subprocess.Popen(bt.orch_argv(tree, cache), cwd=bt.REPO, env=bt.env_with(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # both steps running
            logs = list((cache / "logs").glob("*/*.log")) if (cache / "logs").exists() else []
            if len(logs) == 2 and all("step 1/1" in p.read_text() for p in logs):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the two slow steps never started: {proc.communicate(timeout=60)}")
        time.sleep(1.0)  # let `buildah run` get going
        running = [c["containername"] for c in bt.containers(cache)]
        assert len([n for n in running if n.endswith("-pkg")]) == 2, running
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what ^C in a terminal does
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert elapsed < 15, elapsed
    run = bt.parse_run(proc.returncode, out, err, elapsed)
    assert set(run.outcomes().values()) == {"skipped"}, run
    assert bt.containers(cache) == []
    with Store(cache) as store:
        for p in run.doc["packages"]:
            assert store.ac_get(p["key"]) is None
    verify = bt.orch("cache", "verify", "--cache-dir", str(cache), check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not [p for p in (cache / "buildah" / "out").iterdir()]  # no scratch left behind


def test_two_processes_build_each_key_once(
        baseline: Baseline, tmp_path: Path, caches: Callable[..., Path]) -> None:
    tree = bt.write_tree(tmp_path / "tree", str(baseline.tree / "images" / "busybox.tar"))
    cache = caches("c")
    t0 = time.monotonic()
    procs = [subprocess.Popen(bt.orch_argv(tree, cache), cwd=bt.REPO, env=bt.env_with(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        runs.append(bt.parse_run(proc.returncode, out, err, time.monotonic() - t0))
    assert [r.code for r in runs] == [0, 0], runs
    built = [pid for r in runs for pid in r.with_outcome("built")]
    assert sorted(built) == IDS, [r.outcomes() for r in runs]  # each exactly once in total
    for r in runs:
        assert set(r.outcomes().values()) <= {"built", "cached"}
    keys = [{p["key"]: p["artifact"] for p in r.doc["packages"]} for r in runs]
    assert keys[0] == keys[1] == {p["key"]: p["artifact"] for p in baseline.run.doc["packages"]}
    assert bt.containers(cache) == []


def test_json_document_shape(baseline: Baseline) -> None:
    doc = json.loads(baseline.run.stdout)
    assert list(doc) == ["packages"]
    order = [p["id"] for p in doc["packages"]]
    assert order.index("distro/base@1.0") < order.index("lib/liba@1.0") < order.index("lib/libb@1.0")
    assert order.index("app/docs@1.0") < order.index("final/image@1.0")
