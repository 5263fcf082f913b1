"""Bit-rot and tampering: detected by hash, never returned, quarantined, healed by the next build."""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

from cache import Manifest, Store
from storehelp import flip_byte, run_orch


def _fill(s: Store, n: int, rng: random.Random) -> dict[str, bytes]:
    out = {}
    for i in range(n):
        data = rng.randbytes(rng.randint(1, 200_000))
        d = s.put_bytes(data)
        s.ac_put(f"pkg-{i}", Manifest(artifact=d, artifact_size=len(data)))
        out[d] = data
    return out


def test_five_flipped_bytes(tmp_path: Path) -> None:
    rng = random.Random(5)
    root = tmp_path / "cache"
    with Store(root) as s:
        blobs = _fill(s, 20, rng)
        keys = {d: f"pkg-{i}" for i, d in enumerate(blobs)}
        victims = rng.sample(sorted(blobs), 5)
        for d in victims:
            p = s.blob_path(d)
            flip_byte(p, rng.randrange(p.stat().st_size))
    # verify names all 5 and exits non-zero (without --repair nothing moves)
    r = run_orch("verify", "--cache-dir", root)
    assert r.returncode == 1, r.stderr
    assert sorted(line.split()[-1] for line in r.stdout.splitlines() if line.startswith("corrupt blob")) \
        == sorted(victims)
    assert sum(line.startswith("dangling entry") for line in r.stdout.splitlines()) == 5
    with Store(root) as s:
        # no read returns wrong bytes
        for d, data in blobs.items():
            got = s.get_bytes(d)
            assert got == (None if d in victims else data)
            out = tmp_path / "out"
            out.unlink(missing_ok=True)
            assert s.get_file(d, out) == (d not in victims)
            assert not out.exists() or out.read_bytes() == data
        # the next build: misses for the damaged ones, rebuilds, puts: healed
        rebuilt = 0
        for d, data in blobs.items():
            m = s.ac_get(keys[d])
            if m is None or s.get_bytes(m.artifact) is None:
                rebuilt += 1
                new = s.put_bytes(data)
                s.ac_put(keys[d], Manifest(artifact=new, artifact_size=len(data)))
        assert rebuilt == 5
        assert s.stats()["quarantined"] == 5
    r = run_orch("verify", "--cache-dir", root)
    assert r.returncode == 0, r.stdout


def test_verify_repair_removes_damage(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with Store(root) as s:
        blobs = _fill(s, 6, random.Random(1))
        ds = sorted(blobs)
        flip_byte(s.blob_path(ds[0]))
        os.chmod(s.blob_path(ds[1]), 0o644)
        with open(s.blob_path(ds[1]), "r+b") as f:  # truncated
            f.truncate(1)
        os.chmod(s.blob_path(ds[2]), 0o644)
        os.unlink(s.blob_path(ds[2]))  # missing → dangling entry
        s.blob_path(ds[3]).parent.joinpath("not-a-digest").write_bytes(b"?")  # stray
    r = run_orch("verify", "--repair", "--cache-dir", root)
    assert r.returncode == 1 and "removed corrupt blob" in r.stdout, r.stdout
    r = run_orch("verify", "--cache-dir", root)
    assert r.returncode == 0, r.stdout
    with Store(root) as s:
        assert sorted(s.ac_keys()) == sorted(f"pkg-{i}" for i, d in enumerate(blobs) if d in ds[3:])
        for d in ds[3:]:
            assert s.get_bytes(d) == blobs[d]


def test_replaced_content_and_planted_symlink(tmp_path: Path) -> None:
    """A tampered cache: other bytes under a good name, or a symlink where a blob should be."""
    with Store(tmp_path / "c") as s:
        a = s.put_bytes(b"genuine a")
        b = s.put_bytes(b"genuine b")
        target = tmp_path / "elsewhere"
        target.write_bytes(b"genuine b")  # even the right bytes, via a symlink, are refused
        pa, pb = s.blob_path(a), s.blob_path(b)
        os.chmod(pa, 0o644)
        pa.write_bytes(b"evil!!!!!")  # same size
        os.chmod(pb, 0o644)
        os.unlink(pb)
        os.symlink(target, pb)
        assert s.get_bytes(a) is None and s.get_bytes(b) is None
        report = s.verify()
        assert not report.clean
        assert s.put_bytes(b"genuine a") == a and s.put_bytes(b"genuine b") == b  # heals
        assert s.get_bytes(a) == b"genuine a" and s.get_bytes(b) == b"genuine b"
        assert not pb.is_symlink() and target.read_bytes() == b"genuine b"
        assert s.verify().clean


def test_damaged_databases_are_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with Store(root) as s:
        blobs = _fill(s, 5, random.Random(2))
    base = root / "store" / "v1"
    for f in base.glob("index.sqlite*"):
        f.write_bytes(b"this is not a database" * 100)
    with Store(root) as s:  # accounting rebuilt from the blobs and the action cache
        assert s.stats()["blobs"] == 5 and s.stats()["bytes"] == sum(map(len, blobs.values()))
        assert s.verify().clean
    (base / "ac" / "cache.db").write_bytes(b"\0" * 5000)
    for f in base.glob("ac/cache.db-*"):
        f.unlink()
    with Store(root) as s:  # entries lost (misses), blobs intact
        assert s.ac_get("pkg-0") is None
        assert all(s.get_bytes(d) == data for d, data in blobs.items())
        assert s.verify().clean


def test_truncated_index_file(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with Store(root) as s:
        _fill(s, 50, random.Random(3))
    idx = root / "store" / "v1" / "index.sqlite"
    with open(idx, "r+b") as f:
        f.truncate(max(0, idx.stat().st_size - 1))
    with Store(root) as s:
        assert s.stats()["blobs"] == 50 and s.verify().clean


def test_quarantine_is_emptied_by_gc(tmp_path: Path) -> None:
    with Store(tmp_path / "c") as s:
        d = s.put_bytes(b"x" * 100)
        flip_byte(s.blob_path(d))
        assert s.get_bytes(d) is None
        assert s.stats()["quarantined"] == 1
        s.gc_max_size(1 << 30)
        assert s.stats()["quarantined"] == 0
    shutil.rmtree(tmp_path / "c")
