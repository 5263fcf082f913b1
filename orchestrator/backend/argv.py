"""Pure builders of buildah command lines (no IO), so every flag is unit-tested without buildah.

Each function returns the arguments *after* `buildah <global options>`; `global_args` builds those.
Flags match buildah 1.28 (Debian 12): `from` has no `--label` and `containers --filter` has no
`label=` filter, which is why ownership is carried by the container name (`container_name`).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

# `from` pull policies buildah accepts (`--pull=<policy>`), and `pull --policy` ones.
PULL_POLICIES = ("always", "missing", "never", "true", "false")
ISOLATIONS = ("chroot", "oci", "rootless")
STORAGE_DRIVERS = ("overlay", "vfs")
# Transports buildah reads images from; anything else is a registry or local name.
TRANSPORTS = ("oci-archive:", "oci:", "docker-archive:", "dir:", "containers-storage:", "docker://", "docker-daemon:")

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_OWNED = re.compile(r"^orch-(?P<run>[A-Za-z0-9_.]+)-p(?P<pid>[0-9]+)-(?P<rest>.+)$")


def safe_token(text: str, limit: int = 120) -> str:
    """A fragment usable in container names and image tags (`[A-Za-z0-9_.-]`, no leading dot/dash)."""
    token = _NAME_UNSAFE.sub("_", text).lstrip(".-") or "_"
    return token[:limit]


def container_name(run_id: str, pkg: str, pid: int, role: str = "") -> str:
    """`orch-<run>-p<pid>-<pkg>[-<role>]`: the run and the owning pid, readable back by `parse_owner`."""
    run = safe_token(run_id).replace("-", "_")
    name = f"orch-{run}-p{pid}-{safe_token(pkg)}"
    return f"{name}-{safe_token(role)}" if role else name


def parse_owner(name: str) -> tuple[str, int] | None:
    """(run id, pid) of a container orch created, or None for anyone else's container."""
    m = _OWNED.match(name)
    return (m.group("run"), int(m.group("pid"))) if m else None


def global_args(root: str | None, runroot: str | None, storage_driver: str | None) -> list[str]:
    """`--root R --runroot RR --storage-driver D`; root None means the system store (no flags)."""
    args: list[str] = []
    if root is not None:
        if runroot is None:
            raise ValueError("a private store needs both root and runroot")
        args += ["--root", root, "--runroot", runroot]
    if storage_driver:
        if storage_driver not in STORAGE_DRIVERS:
            raise ValueError(f"unknown storage driver {storage_driver!r}")
        args += ["--storage-driver", storage_driver]
    return args


def from_argv(image: str, name: str, *, pull: str = "never") -> list[str]:
    if pull not in PULL_POLICIES:
        raise ValueError(f"unknown pull policy {pull!r}")
    return ["from", "--quiet", "--name", name, f"--pull={pull}", image]


def run_argv(
    container: str,
    command: str,
    *,
    isolation: str = "chroot",
    runtime: str | None = None,
    env: Sequence[str] = (),
    workdir: str | None = None,
) -> list[str]:
    """`run` of one shell command line, like a Dockerfile `RUN` (`sh -c`)."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"unknown isolation {isolation!r}")
    args = ["run", "--isolation", isolation]
    if runtime:
        args += ["--runtime", runtime]
    for item in env:
        args += ["--env", _checked_env(item)]
    if workdir:
        args += ["--workingdir", workdir]
    return [*args, "--", container, "sh", "-c", command]


def copy_argv(
    container: str,
    sources: Sequence[str],
    destination: str,
    *,
    from_image: str | None = None,
    contextdir: str | None = None,
    ignorefile: str | None = None,
) -> list[str]:
    """`copy` from the host (optionally with an ignore file) or, with `from_image`, from an image."""
    if not sources:
        raise ValueError("copy needs at least one source")
    args = ["copy", "--quiet"]
    if from_image:
        args += ["--from", from_image]
    if contextdir:
        args += ["--contextdir", contextdir]
    if ignorefile:
        args += ["--ignorefile", ignorefile]
    return [*args, container, *sources, destination]


def config_argv(
    container: str,
    *,
    env: Sequence[str] = (),
    workingdir: str | None = None,
    labels: Mapping[str, str] | None = None,
    cmd: str | None = None,
) -> list[str]:
    args = ["config"]
    for item in env:
        args += ["--env", _checked_env(item)]
    if workingdir:
        args += ["--workingdir", workingdir]
    for key, value in sorted((labels or {}).items()):
        args += ["--label", f"{key}={value}"]
    if cmd is not None:
        args += ["--cmd", cmd]
    return [*args, container]


def commit_argv(container: str, image: str, *, rm: bool = False, timestamp: int = 0,
                omit_history: bool = False) -> list[str]:
    """`commit` reproducibly: fixed timestamp and no `io.buildah.version` label (IDs survive upgrades).
    `omit_history`: no history (it names the parent image, whose tag is a key: identical content
    committed from another key would otherwise get another image ID, defeating early cutoff)."""
    args = ["commit", "--quiet", "--timestamp", str(timestamp), "--identity-label=false"]
    if omit_history:
        args.append("--omit-history")
    if rm:
        args.append("--rm")
    return [*args, container, image]


def mount_argv(*containers: str) -> list[str]:
    return ["mount", *containers]


def umount_argv(*containers: str, all_: bool = False) -> list[str]:
    return ["umount", "--all"] if all_ else ["umount", *containers]


def rm_argv(*containers: str, all_: bool = False) -> list[str]:
    return ["rm", "--all"] if all_ else ["rm", *containers]


def rmi_argv(*images: str, force: bool = False) -> list[str]:
    return ["rmi", *(["--force"] if force else []), *images]


def tag_argv(image: str, *names: str) -> list[str]:
    return ["tag", image, *names]


def pull_argv(ref: str, *, policy: str = "missing") -> list[str]:
    if policy not in ("always", "missing", "never"):
        raise ValueError(f"unknown pull policy {policy!r}")
    return ["pull", "--quiet", "--policy", policy, ref]


def push_argv(image: str, destination: str) -> list[str]:
    """`push IMG oci-archive:PATH` (or any transport)."""
    if not destination.startswith(TRANSPORTS):
        raise ValueError(f"push destination needs a transport: {destination!r}")
    return ["push", "--quiet", image, destination]


def inspect_image_id_argv(image: str) -> list[str]:
    return ["inspect", "--type", "image", "--format", "{{.FromImageID}}", image]


def images_argv() -> list[str]:
    return ["images", "--json", "--no-trunc"]


def containers_argv() -> list[str]:
    return ["containers", "--json", "--notruncate"]


def context_ignore_lines(excludes: Iterable[str]) -> list[str]:
    """`.containerignore` lines that leave out exactly these context-relative paths (and below)."""
    lines = []
    for path in excludes:
        clean = path.strip("/")
        if not clean or clean != path.strip("/").strip() or "\n" in clean or "\r" in clean:
            raise ValueError(f"context exclude cannot be written as an ignore pattern: {path!r}")
        lines.append(re.sub(r"([\\*?\[\]!#])", r"\\\1", clean))
    return sorted(set(lines))


def is_transport_ref(ref: str) -> bool:
    return ref.startswith(TRANSPORTS)


def _checked_env(item: str) -> str:
    name, sep, _ = item.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"environment entry must be NAME=value: {item!r}")
    return item
