"""Helpers for the store tests: real worker processes, the CLI, bit-rot."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("store_worker.py")


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_worker(*args: str | Path, **kw: object) -> subprocess.Popen[str]:
    """A separate Python process running one `store_worker.py` command."""
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], env=worker_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]


def run_orch(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`orch cache …` through cachecmd alone (the top-level CLI belongs to the lead)."""
    code = ("import argparse, sys\n"
            "from orchestrator import cachecmd\n"
            "p = argparse.ArgumentParser(prog='orch'); sub = p.add_subparsers(dest='command')\n"
            "cachecmd.register(sub)\n"
            "a = p.parse_args(sys.argv[1:])\n"
            "sys.exit(cachecmd.run(a))\n")
    full = worker_env()
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", code, "cache", *map(str, args)], env=full,
                          capture_output=True, text=True, timeout=120)


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Bit-rot: invert one byte in place (the blob is read-only, as a real disk would not care)."""
    os.chmod(path, 0o644)
    size = path.stat().st_size
    off = size // 2 if offset is None else offset
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))
    os.chmod(path, 0o444)
