"""`orch cache …` subcommands: output, exit codes, default directory."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.cachecmd import parse_size
from orchestrator.paths import default_cache_dir
from storehelp import run_orch


def test_put_get_stats(tmp_path: Path) -> None:
    c = tmp_path / "c"
    f = tmp_path / "f"
    f.write_bytes(os.urandom(5000))
    r = run_orch("put", f, "--cache-dir", c)
    assert r.returncode == 0 and r.stdout.startswith("xxh3-128:")
    digest = r.stdout.strip()
    r = run_orch("get", digest, "-o", tmp_path / "g", "--cache-dir", c)
    assert r.returncode == 0 and (tmp_path / "g").read_bytes() == f.read_bytes()
    r = run_orch("stats", "--json", "--cache-dir", c)
    st = json.loads(r.stdout)
    assert (st["blobs"], st["bytes"], st["entries"]) == (1, 5000, 0)
    assert {"hits", "misses"} <= st.keys()
    r = run_orch("stats", "--cache-dir", c)
    assert "blobs: 1" in r.stdout and "bytes: 5000" in r.stdout


def test_exit_codes(tmp_path: Path) -> None:
    c = tmp_path / "c"
    miss = run_orch("get", "xxh3-128:" + "0" * 32, "-o", tmp_path / "x", "--cache-dir", c)
    assert miss.returncode == 1 and "not in the store" in miss.stderr
    assert len(miss.stderr.strip().splitlines()) == 1
    assert run_orch("get", "nonsense", "-o", tmp_path / "x", "--cache-dir", c).returncode == 2
    assert run_orch("put", tmp_path / "absent", "--cache-dir", c).returncode == 2
    assert run_orch("gc", "--max-size", "ten", "--cache-dir", c).returncode == 2
    assert run_orch("gc", "--cache-dir", c).returncode == 2  # needs --max-size or --keep-plan
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    r = run_orch("stats", "--cache-dir", blocker)
    assert r.returncode == 3 and "cannot use cache directory" in r.stderr


def test_default_cache_dir_env(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"data")
    r = run_orch("put", f, env={"ORCH_CACHE_DIR": str(tmp_path / "env-dir")})
    assert r.returncode == 0 and (tmp_path / "env-dir" / "store" / "v1").is_dir()
    assert default_cache_dir({"ORCH_CACHE_DIR": "/a"}) == Path("/a")
    assert default_cache_dir({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/orch")
    assert default_cache_dir({"ORCH_CACHE_DIR": "", "XDG_CACHE_HOME": "rel", "HOME": "/h"}) \
        == Path("/h/.cache/orch")


@pytest.mark.parametrize("text,value", [("123", 123), ("500K", 500 << 10), ("10M", 10 << 20),
                                        ("1.5G", 3 << 29), ("10MiB", 10 << 20), ("2gb", 2 << 30)])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["", "-1", "ten", "10X", "1e3"])
def test_parse_size_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)
