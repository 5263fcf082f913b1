"""The pure buildah command-line builders, env evaluation, and the run() chokepoint (fake binary)."""
from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from orchestrator.backend import argv as A
from orchestrator.backend.buildah import Buildah, BuildahFailed, default_storage_driver
from orchestrator.backend.dockerenv import (
    EnvSyntaxError,
    evaluate,
    for_buildah,
    parse_line,
)
from orchestrator.errors import (
    BuildError,
    EnvironmentProblem,
    ExitCode,
    Interrupted,
    Reason,
)


def test_global_args_private_and_system_store() -> None:
    assert A.global_args("/r", "/rr", "vfs") == ["--root", "/r", "--runroot", "/rr", "--storage-driver", "vfs"]
    assert A.global_args(None, None, "overlay") == ["--storage-driver", "overlay"]
    assert A.global_args(None, None, None) == []
    with pytest.raises(ValueError):
        A.global_args("/r", None, "vfs")
    with pytest.raises(ValueError):
        A.global_args("/r", "/rr", "btrfs")


def test_from_argv() -> None:
    assert A.from_argv("localhost/base:1", "orch-x") == [
        "from", "--quiet", "--name", "orch-x", "--pull=never", "localhost/base:1"]
    assert A.from_argv("oci-archive:/a.tar", "c", pull="missing")[-2:] == ["--pull=missing", "oci-archive:/a.tar"]
    with pytest.raises(ValueError):
        A.from_argv("img", "c", pull="sometimes")


def test_run_argv_chroot_and_runc() -> None:
    assert A.run_argv("c", "make install") == ["run", "--isolation", "chroot", "--", "c", "sh", "-c", "make install"]
    argv = A.run_argv("c", "true", isolation="oci", runtime="runc", env=["A=1"], workdir="/luetbuild")
    assert argv == ["run", "--isolation", "oci", "--runtime", "runc", "--env", "A=1", "--workingdir", "/luetbuild",
                    "--", "c", "sh", "-c", "true"]
    with pytest.raises(ValueError):
        A.run_argv("c", "true", isolation="vm")
    with pytest.raises(ValueError):
        A.run_argv("c", "true", env=["NOEQUALS"])


def test_copy_config_commit_argv() -> None:
    assert A.copy_argv("c", ["/ctx"], "/luetbuild", contextdir="/ctx", ignorefile="/ign") == [
        "copy", "--quiet", "--contextdir", "/ctx", "--ignorefile", "/ign", "c", "/ctx", "/luetbuild"]
    assert A.copy_argv("c", ["/usr/bin/x"], "/opt/", from_image="localhost/p:1")[:4] == [
        "copy", "--quiet", "--from", "localhost/p:1"]
    with pytest.raises(ValueError):
        A.copy_argv("c", [], "/x")
    assert A.config_argv("c", env=["A=1", "B=2"], workingdir="/luetbuild", labels={"z": "1", "a": "2"}) == [
        "config", "--env", "A=1", "--env", "B=2", "--workingdir", "/luetbuild", "--label", "a=2", "--label", "z=1",
        "c"]
    assert A.commit_argv("c", "localhost/orch-pkg:k") == [
        "commit", "--quiet", "--timestamp", "0", "--identity-label=false", "c", "localhost/orch-pkg:k"]
    assert "--rm" in A.commit_argv("c", "i", rm=True)


def test_small_commands() -> None:
    assert A.mount_argv("a", "b") == ["mount", "a", "b"]
    assert A.umount_argv(all_=True) == ["umount", "--all"]
    assert A.rm_argv("a") == ["rm", "a"] and A.rm_argv(all_=True) == ["rm", "--all"]
    assert A.rmi_argv("i", force=True) == ["rmi", "--force", "i"]
    assert A.pull_argv("oci-archive:/x.tar") == ["pull", "--quiet", "--policy", "missing", "oci-archive:/x.tar"]
    assert A.push_argv("img", "oci-archive:/o.tar") == ["push", "--quiet", "img", "oci-archive:/o.tar"]
    with pytest.raises(ValueError):
        A.push_argv("img", "/o.tar")
    assert A.inspect_image_id_argv("img") == ["inspect", "--type", "image", "--format", "{{.FromImageID}}", "img"]
    assert A.containers_argv() == ["containers", "--json", "--notruncate"]
    assert A.images_argv() == ["images", "--json", "--no-trunc"]
    assert A.is_transport_ref("oci:/d") and A.is_transport_ref("docker-archive:/a") and not A.is_transport_ref("busybox")


def test_container_names_carry_run_and_pid() -> None:
    name = A.container_name("run-1", "cat/pkg@1.0+2", 4242, "pkg")
    assert name == "orch-run_1-p4242-cat_pkg_1.0_2-pkg"
    assert A.parse_owner(name) == ("run_1", 4242)
    assert A.parse_owner("someone-elses") is None
    assert A.parse_owner("orch-x-pnotapid-y") is None


def test_context_ignore_lines_escape_patterns() -> None:
    assert A.context_ignore_lines(["sub/pkg", "/a*b/", "x[1]", "!neg", "#c"]) == [
        "\\!neg", "\\#c", "a\\*b", "sub/pkg", "x\\[1\\]"]
    for bad in ["", "/", " lead", "a\nb"]:
        with pytest.raises(ValueError):
            A.context_ignore_lines([bad])


# ---------------------------------------------------------------- Dockerfile ENV semantics
def test_env_quotes_and_expansion_like_dockerfile() -> None:
    base = {"PATH": "/bin"}
    assert evaluate(['LDFLAGS="-s -w"', "PATH=$PATH:/usr/local/go/bin", "A=${PATH}x"], base) == [
        ("LDFLAGS", "-s -w"), ("PATH", "/bin:/usr/local/go/bin"), ("A", "/bin:/usr/local/go/binx")]
    assert parse_line("A=1 B='$no' C=\\$lit", {}) == [("A", "1"), ("B", "$no"), ("C", "$lit")]
    assert parse_line("LEGACY two words $X", {"X": "x"}) == [("LEGACY", "two words x")]
    assert parse_line("U=${UNSET:-dflt} V=${UNSET:+alt} W=$UNSET.", {}) == [("U", "dflt"), ("V", ""), ("W", ".")]
    assert parse_line("E=${SET:+alt}", {"SET": "1"}) == [("E", "alt")]
    assert parse_line("P=50$ Q=a$-b", {}) == [("P", "50$"), ("Q", "a$-b")]
    for bad in ['A="open', "A='open", "A=${", "1A=x", "A=${B:?x}", ""]:
        with pytest.raises(EnvSyntaxError):
            parse_line(bad, {})


def test_for_buildah_doubles_dollars() -> None:
    assert for_buildah("A", "x$y$") == "A=x$$y$$"


# ---------------------------------------------------------------- the chokepoint, with a fake buildah
def _fake(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-buildah"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_missing_binary_is_environment_problem(tmp_path: Path) -> None:
    bh = Buildah(str(tmp_path / "r"), str(tmp_path / "rr"), storage_driver="vfs", binary=str(tmp_path / "nope"))
    with pytest.raises(EnvironmentProblem) as err:
        bh.run(["version"])
    assert err.value.reason is Reason.BUILDAH_UNAVAILABLE and err.value.exit_code == ExitCode.ENVIRONMENT


def test_failure_names_command_exit_code_tail_and_log(tmp_path: Path) -> None:
    fake = _fake(tmp_path, 'echo "$@"\necho "first line" >&2\necho "Error: the real reason" >&2\nexit 7\n')
    bh = Buildah(str(tmp_path / "r"), str(tmp_path / "rr"), storage_driver="vfs", binary=fake)
    log = tmp_path / "pkg.log"
    with pytest.raises(BuildahFailed) as err:
        bh.run(["commit", "c", "img"], log_path=str(log))
    exc = err.value
    assert isinstance(exc, BuildError) and exc.reason is Reason.BUILDAH_FAILED
    assert exc.returncode == 7 and exc.subcommand == "commit"
    assert "buildah commit failed with exit code 7: Error: the real reason" in str(exc)
    assert str(log) in str(exc) and "\n" not in str(exc)
    text = log.read_text()
    assert "$ " + fake in text and "--root" in text and "first line" in text
    # global options come first, then the subcommand
    assert f"--root {tmp_path / 'r'} --runroot {tmp_path / 'rr'} --storage-driver vfs commit c img" in text


def test_capture_and_no_log(tmp_path: Path) -> None:
    fake = _fake(tmp_path, 'echo out-"$#"\necho err >&2\n')
    bh = Buildah(None, None, storage_driver="overlay", binary=fake)
    assert bh.run(["images"], capture=True) == "out-3"  # --storage-driver overlay images


def test_cancel_stops_the_process_group(tmp_path: Path) -> None:
    fake = _fake(tmp_path, "sleep 30 &\nwait\n")
    bh = Buildah(str(tmp_path / "r"), str(tmp_path / "rr"), storage_driver="vfs", binary=fake)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Interrupted):
        bh.run(["run", "c"], cancel=cancel, log_path=str(tmp_path / "l"))
    assert time.monotonic() - t0 < 5
    with pytest.raises(Interrupted):  # already cancelled: nothing is started
        bh.run(["run", "c"], cancel=cancel)


def test_cleanup_stale_removes_only_dead_owners(tmp_path: Path) -> None:
    dead = _dead_pid()
    listing = [
        {"containername": f"orch-old-p{dead}-a-build"},
        {"containername": f"orch-live-p{os.getpid()}-b-pkg"},
        {"containername": "someone-else"},
    ]
    record = tmp_path / "calls"
    fake = _fake(tmp_path, f"""echo "$@" >> {record}
case "$*" in *containers*) echo '{json.dumps(listing)}' ;; esac
""")
    bh = Buildah(str(tmp_path / "r"), str(tmp_path / "rr"), storage_driver="vfs", binary=fake)
    assert bh.cleanup_stale() == [f"orch-old-p{dead}-a-build"]
    assert record.read_text().splitlines()[-1].endswith(f"rm orch-old-p{dead}-a-build")


def test_run_id_and_container_name(tmp_path: Path) -> None:
    bh = Buildah(None, None, storage_driver="vfs", run_id="a-b c")
    assert bh.run_id == "a_b_c"
    assert bh.container_name("cat/p@1", "ref") == f"orch-a_b_c-p{os.getpid()}-cat_p_1-ref"
    with pytest.raises(ValueError):
        bh.teardown()  # never on the system store


def test_storage_driver_choice(tmp_path: Path) -> None:
    assert default_storage_driver(str(tmp_path / "new")) in ("overlay", "vfs")
    (tmp_path / "old" / "vfs-images").mkdir(parents=True)
    assert default_storage_driver(str(tmp_path / "old")) == "vfs"  # an existing store keeps its driver
    system = Buildah(None, None)
    assert system.storage_driver == "" and system.root is None  # storage.conf decides


def _dead_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as fh:
        return int(fh.read()) + 1  # above pid_max: can never be alive
