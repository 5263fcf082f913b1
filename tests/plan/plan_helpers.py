"""Shared helpers for the planning tests: the real CLI in a subprocess, small trees on disk,
and the two real corpora (skipped when `shared/corpus` is not there)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path | None:
    """`<repo>/../shared/corpus`, else `/work/shared/corpus`, else None."""
    for candidate in (REPO.parent / "shared" / "corpus", Path("/work/shared/corpus")):
        if (candidate / "luet-golden").is_dir():
            return candidate
    return None


CORPUS = corpus_dir()
COS_VALUES = sorted(p.name for p in (CORPUS / "cos-toolkit" / "values").glob("*.yaml")) if CORPUS else []
needs_corpus = pytest.mark.skipif(CORPUS is None, reason="shared/corpus not present")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    maxrss_mb: float
    cpu: float = 0.0  # user + system seconds of the child (steady on a busy machine, unlike wall time)

    def json(self) -> Any:
        assert self.code == 0, f"orch failed ({self.code}): {self.stderr}"
        return json.loads(self.stdout)


def orch(*args: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None,
         timeout: float = 120, env: dict[str, str] | None = None) -> Run:
    """Run `python -m orchestrator ARGS` as a child; report its wall time and its own peak RSS."""
    inherited = os.environ.get("PYTHONPATH")
    path = str(REPO) + (os.pathsep + inherited if inherited else "")
    child_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    child_env.pop("ORCH_CACHE_DIR", None)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", *map(str, args)], cwd=cwd,
                                env=child_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise subprocess.TimeoutExpired(proc.args, timeout)
            time.sleep(0.002)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(proc.returncode, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"), seconds, usage.ru_maxrss / 1024,
                   usage.ru_utime + usage.ru_stime)


def plan(tree: str | os.PathLike[str], *values: str | os.PathLike[str], cache: str | os.PathLike[str],
         cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """`orch plan -t TREE [--values ...] --json --cache-dir CACHE` → the parsed JSON."""
    args: list[str | os.PathLike[str]] = ["plan", "-t", tree, "--json", "--cache-dir", cache]
    if values:
        args += ["--values", *values]
    doc: dict[str, Any] = orch(*args, cwd=cwd).json()
    return doc


def keys_of(doc: dict[str, Any]) -> dict[str, str]:
    return {p["id"]: p["key"] for p in doc["packages"]}


def write(root: Path, files: dict[str, str]) -> Path:
    """Write `{relative path: text}` under root (texts are dedented)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def pkg_files(folder: str, name: str, category: str = "c", version: str = "1.0", build: str | None = None,
              extra_def: str = "") -> dict[str, str]:
    """definition.yaml (+ build.yaml) of one package under `folder`."""
    files = {f"{folder}/definition.yaml":
             f'name: {name}\ncategory: {category}\nversion: "{version}"\n{extra_def}'}
    if build is not None:
        files[f"{folder}/build.yaml"] = build
    return files


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy (times and modes kept), then make it writable: the shared corpus is read-only."""
    shutil.copytree(src, dst, symlinks=True)
    for dirpath, dirs, files in os.walk(dst):
        for name in [*dirs, *files]:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o200)
    os.chmod(dst, os.stat(dst).st_mode | 0o200)
    return dst


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Ids whose key differs between two plans (both plans must hold the same packages)."""
    kb, ka = keys_of(before), keys_of(after)
    assert set(kb) == set(ka), f"package sets differ: {set(kb) ^ set(ka)}"
    return {pid for pid in kb if kb[pid] != ka[pid]}


def dependents(doc: dict[str, Any], pid: str) -> set[str]:
    """Everything that depends on `pid`, transitively, by the plan's build_deps."""
    users: dict[str, set[str]] = {}
    for item in doc["packages"]:
        for dep in item["build_deps"]:
            users.setdefault(dep, set()).add(item["id"])
    out: set[str] = set()
    stack = [pid]
    while stack:
        for user in users.get(stack.pop(), ()):
            if user not in out:
                out.add(user)
                stack.append(user)
    return out


def item(doc: dict[str, Any], pid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in doc["packages"] if i["id"] == pid)
    return found


def age(root: Path, seconds: float = 3600, *, folders: bool = False) -> None:
    """Backdate every file under root, so the warm planner may trust its stat data (not racy);
    with `folders`, the folders too (then it may keep its walk of the tree: a checkout made
    earlier)."""
    when = time.time() - seconds
    for dirpath, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(dirpath, name), (when, when))
        if folders:
            os.utime(dirpath, (when, when))
