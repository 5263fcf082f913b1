"""A generated ~15-package luet tree for end-to-end `orch build` tests, and helpers to run the CLI.

Shapes covered (see `PACKAGES`): chains of plain `requires`, two plain `requires` (overlay of
the second's artefact on the first's image), `requires_final_images` + `unpack` + `excludes`,
`copy` from another package, `package_dir`, `includes`, a virtual package, a collection, a
modified base file (kept in the delta) and a deleted one (a whiteout).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

REPO = Path(__file__).resolve().parents[2]
BASE = '"oci-archive:images/busybox.tar"'  # relative: resolved against the tree root

# folder -> {file name: text}; every definition is `category/name@1.0` unless a collection.
PACKAGES: dict[str, dict[str, str]] = {
    "distro/base": {
        "build.yaml": f"""
            image: {BASE}
            unpack: true
            excludes:
            - ^/luetbuild
            steps:
            - echo base > /etc/base-marker
        """,
    },
    "lib/liba": {  # chain: base <- liba <- libb; modifies a base file
        "build.yaml": """
            requires:
            - {name: base, category: distro}
            steps:
            - mkdir -p /usr/lib/a && echo A > /usr/lib/a/liba.txt
            - echo "liba:x:2000:2000::/:/bin/sh" >> /etc/passwd
        """,
    },
    "lib/libb": {  # deletes a base file: a whiteout in its delta
        "build.yaml": """
            requires:
            - {name: liba, category: lib}
            steps:
            - echo B > /usr/lib/b.txt
            - rm /etc/base-marker
        """,
    },
    "lib/libc": {
        "build.yaml": """
            requires:
            - {name: base, category: distro}
            steps:
            - mkdir -p /usr/lib && echo C > /usr/lib/c.txt
        """,
    },
    "app/both": {  # two plain requires: libc's artefact over libb's image
        "build.yaml": """
            requires:
            - {name: libb, category: lib}
            - {name: libc, category: lib}
            steps:
            - mkdir -p /usr/share && cat /usr/lib/a/liba.txt /usr/lib/b.txt /usr/lib/c.txt > /usr/share/both.txt
        """,
    },
    "app/leaf": {
        "build.yaml": """
            requires:
            - {name: libc, category: lib}
            steps:
            - mkdir -p /usr/share && cat /usr/lib/c.txt > /usr/share/leaf.txt
        """,
    },
    "tools/compiler": {  # package_dir: only /opt/tool, re-rooted
        "build.yaml": f"""
            image: {BASE}
            package_dir: /opt/tool
            steps:
            - mkdir -p /opt/tool/bin /opt/tool/share && echo '#!/bin/sh' > /opt/tool/bin/tool && chmod 755 /opt/tool/bin/tool
            - echo data > /opt/tool/share/data && echo junk > /opt/junk
        """,
    },
    "app/withcopy": {  # copy: a file from another package's image
        "build.yaml": """
            requires:
            - {name: base, category: distro}
            copy:
            - package: {name: compiler, category: tools}
              source: /opt/tool/bin/tool
              destination: /usr/bin/tool
            steps:
            - test -x /usr/bin/tool && echo copied > /etc/withcopy
        """,
    },
    "app/docs": {  # includes: only the docs
        "build.yaml": f"""
            image: {BASE}
            includes:
            - ^/usr/share/doc
            steps:
            - mkdir -p /usr/share/doc/docs && echo manual > /usr/share/doc/docs/README && mkdir -p /usr/bin && echo bin > /usr/bin/docs-tool
        """,
        "notes.txt": "context file of app/docs\n",
    },
    "app/indep": {
        "build.yaml": f"""
            image: {BASE}
            steps:
            - echo indep > /etc/indep
        """,
    },
    "meta/virtual": {  # no image, no steps: an empty artefact
        "build.yaml": "# virtual\n",
        "definition.yaml": """
            name: virtual
            category: meta
            version: "1.0"
            requires:
            - {name: liba, category: lib}
        """,
    },
    "system/kernels": {  # a collection of two packages sharing one build.yaml
        "collection.yaml": """
            packages:
            - {name: kernel-a, category: system, version: "1.0"}
            - {name: kernel-b, category: system, version: "1.0"}
        """,
        "build.yaml": f"""
            image: {BASE}
            steps:
            - mkdir -p /boot && echo {{{{ .Values.name }}}} > /boot/{{{{ .Values.name }}}}
        """,
    },
    "final/image": {  # final images: artefacts composed, whole rootfs taken, some paths excluded
        "build.yaml": """
            requires_final_images: true
            requires:
            - {name: base, category: distro}
            - {name: libc, category: lib}
            - {name: kernel-a, category: system}
            - {name: docs, category: app}
            unpack: true
            excludes:
            - ^/luetbuild
            - ^/tmp/
            - ^/usr/share/doc
            steps:
            - echo final > /etc/release && echo scratch > /tmp/scratch
        """,
    },
    "final/mini": {
        "build.yaml": """
            requires_final_images: true
            requires:
            - {name: base, category: distro}
            - {name: kernel-b, category: system}
            unpack: true
            excludes:
            - ^/luetbuild
            - ^/tmp/
            steps:
            - echo mini > /etc/release
        """,
    },
}

IDS = sorted(
    [f"{folder}@1.0" for folder in PACKAGES if folder != "system/kernels"]
    + ["system/kernel-a@1.0", "system/kernel-b@1.0"]
)


def write_tree(root: Path, base_archive: str, packages: dict[str, dict[str, str]] | None = None) -> Path:
    """Write the tree under `root` (with the base image copied to `images/`); returns `root`."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(base_archive, root / "images" / "busybox.tar")
    for folder, files in (packages or PACKAGES).items():
        d = root / "packages" / folder
        d.mkdir(parents=True, exist_ok=True)
        cat, name = folder.split("/")
        if "definition.yaml" not in files and "collection.yaml" not in files:
            (d / "definition.yaml").write_text(f'name: {name}\ncategory: {cat}\nversion: "1.0"\n')
        for fname, text in files.items():
            (d / fname).write_text(textwrap.dedent(text).lstrip("\n"))
    (root / "values.yaml").write_text("flavour: test\n")
    return root


def edit(tree: Path, folder: str, old: str, new: str) -> None:
    """Replace text in a package's build.yaml (must be present)."""
    path = tree / "packages" / folder / "build.yaml"
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


def copy_cache(src: Path, dest: Path, *, storage: bool = False) -> Path:
    """A copy of a cache dir: `store/` and `plan/` (+ `buildah/` when `storage`: `cp -a`, as
    overlay storage holds whiteout devices; only while nothing of it is mounted)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("store", "plan", *(("buildah",) if storage else ())):
        if (src / name).exists():
            subprocess.run(["cp", "-a", str(src / name), str(dest / name)], check=True, timeout=120)
    return dest


# ------------------------------------------------------------------ running the CLI
SHIM = """#!/bin/sh
printf '%s\\n' "$*" >> "{log}"
exec {real} "$@"
"""


def shim_dir(where: Path) -> tuple[Path, Path]:
    """A directory holding a `buildah` wrapper that logs its argv; (dir, log file)."""
    bindir = where / "shim"
    bindir.mkdir(parents=True, exist_ok=True)
    log = where / "buildah-calls.log"
    log.touch()
    real = shutil.which("buildah") or "/usr/bin/buildah"
    (bindir / "buildah").write_text(SHIM.format(log=log, real=real))
    (bindir / "buildah").chmod(0o755)
    return bindir, log


def env_with(shim: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    if shim is not None:
        env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '')}"
    return env


def orch_argv(tree: Path, cache: Path, *extra: str, jobs: int = 2) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "build", "-t", str(tree), "--values",
            str(tree / "values.yaml"), "--cache-dir", str(cache), f"-j{jobs}", "--json", *extra]


@dataclass
class Run:
    """One finished `orch build --json`."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    doc: dict[str, Any] = field(default_factory=dict)

    @property
    def packages(self) -> dict[str, dict[str, Any]]:
        return {p["id"]: p for p in self.doc.get("packages", [])}

    def outcomes(self) -> dict[str, str]:
        return {i: p["outcome"] for i, p in self.packages.items()}

    def with_outcome(self, outcome: str) -> set[str]:
        return {i for i, o in self.outcomes().items() if o == outcome}

    def __str__(self) -> str:
        return f"exit {self.code} after {self.seconds:.1f}s\n--- stderr\n{self.stderr}\n--- stdout\n{self.stdout[:3000]}"


def parse_run(code: int, out: str, err: str, seconds: float) -> Run:
    run = Run(code, out, err, seconds)
    try:
        run.doc = json.loads(out) if out.strip() else {}
    except ValueError:
        run.doc = {}
    return run


def orch_build(tree: Path, cache: Path, *extra: str, jobs: int = 2, shim: Path | None = None,
               timeout: float = 300) -> Run:
    import time

    t0 = time.monotonic()
    proc = subprocess.run(orch_argv(tree, cache, *extra, jobs=jobs), cwd=REPO, env=env_with(shim),
                          capture_output=True, text=True, timeout=timeout)
    return parse_run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)


def orch(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, env=env_with(),
                          capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


# ------------------------------------------------------------------ artefacts
def artefact_members(cache: Path, digest: str, tmp: Path) -> dict[str, tarfile.TarInfo]:
    """Extract an artefact from the store with `orch cache get` and list its members by path."""
    out = tmp / f"{digest.replace(':', '_')}.tar.zst"
    if not out.exists():
        orch("cache", "get", digest, "-o", str(out), "--cache-dir", str(cache))
    data = zstandard.ZstdDecompressor().stream_reader(out.open("rb")).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.lstrip("./").rstrip("/"): m for m in tar.getmembers()}


def artefact_file(cache: Path, digest: str, tmp: Path, name: str) -> bytes:
    out = tmp / f"{digest.replace(':', '_')}.tar.zst"
    if not out.exists():
        orch("cache", "get", digest, "-o", str(out), "--cache-dir", str(cache))
    data = zstandard.ZstdDecompressor().stream_reader(out.open("rb")).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.name.lstrip("./") == name:
                f = tar.extractfile(m)
                assert f is not None
                return f.read()
    raise KeyError(name)


# ------------------------------------------------------------------ private buildah roots
def buildah_argv(cache: Path) -> list[str]:
    from orchestrator.backend.argv import global_args
    from orchestrator.backend.buildah import default_storage_driver

    root = str(cache / "buildah" / "root")
    return ["buildah", *global_args(root, str(cache / "buildah" / "runroot"), default_storage_driver(root))]


def containers(cache: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([*buildah_argv(cache), "containers", "--json"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout or "null") or []


def teardown(cache: Path) -> None:
    """Delete a cache dir's private buildah store: umount all, rm all, unmount leftovers, delete."""
    from orchestrator.backend.adapter import remove_private_store

    remove_private_store(str(cache))