"""The cache directory is relocatable: no absolute path inside; copy it and it still works."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from cache import Manifest, Store
from storehelp import run_orch


def test_copy_elsewhere_and_use(tmp_path: Path) -> None:
    a = tmp_path / "first-place"
    blobs = {}
    with Store(a) as s:
        for i in range(5):
            data = os.urandom(10_000 + i)
            d = s.put_bytes(data)
            s.ac_put(f"k{i}", Manifest(artifact=d, artifact_size=len(data)))
            s.kv_put("cutoff", f"k{i}", d)
            blobs[d] = data
    for p in a.rglob("*"):  # nothing inside names where it lives
        if p.is_file():
            raw = p.read_bytes()
            assert str(a).encode() not in raw and str(tmp_path).encode() not in raw, p
    b = tmp_path / "elsewhere" / "restored"
    shutil.copytree(a, b)  # what a CI cache restore does
    shutil.rmtree(a)
    with Store(b) as s:
        assert all(s.get_bytes(d) == data for d, data in blobs.items())
        assert all(s.ac_get(f"k{i}", verify=True) is not None for i in range(5))
        assert s.kv_get("cutoff", "k0") is not None
        assert s.verify().clean and s.stats()["blobs"] == 5
        s.put_bytes(b"new after move")
    r = run_orch("verify", "--cache-dir", b)
    assert r.returncode == 0, r.stdout
