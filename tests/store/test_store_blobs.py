"""Blobs: naming, layout, dedup, read-only files, verified reads, durable write order."""
from __future__ import annotations

import io
import os
import stat
import threading
from pathlib import Path

import pytest
import xxhash

from cache import BadDigest, Digest, Store, StoreError, digest_bytes, parse_digest


def test_digest_names_its_algorithm(store: Store) -> None:
    d = store.put_bytes(b"hello")
    assert d == "xxh3-128:" + xxhash.xxh3_128_hexdigest(b"hello")
    assert parse_digest(d) == Digest("xxh3-128", d.split(":")[1])
    assert str(digest_bytes(b"hello")) == d


@pytest.mark.parametrize("bad", ["", "xxh3-128", "xxh3-128:abc", "md5:" + "0" * 32,
                                 "xxh3-128:" + "A" * 32, "xxh3-128:" + "0" * 31 + "g",
                                 "sha256:" + "0" * 32, "xxh3-128:" + "0" * 32 + "\n"])
def test_parse_digest_is_strict(bad: str) -> None:
    with pytest.raises(BadDigest):
        parse_digest(bad)


def test_sharded_read_only_layout(store: Store) -> None:
    d = store.put_bytes(b"x" * 1000)
    hexpart = d.split(":")[1]
    p = store.blob_path(d)
    assert p == store.root / "store" / "v1" / "blobs" / "xxh3-128" / hexpart[:2] / hexpart
    assert stat.S_IMODE(p.stat().st_mode) == 0o444
    assert p.read_bytes() == b"x" * 1000


def test_identical_content_is_stored_once(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(os.urandom(100_000))
    a = store.put_file(src)
    b = store.put_bytes(src.read_bytes())
    c = store.put_stream(io.BytesIO(src.read_bytes()))
    assert a == b == c
    files = [f for f in store.blobs.walk()]
    assert len(files) == 1
    assert store.stats()["blobs"] == 1 and store.stats()["bytes"] == 100_000
    assert list(store.blobs.tmp.iterdir()) == []


def test_round_trip_sizes(store: Store, tmp_path: Path) -> None:
    for size in (0, 1, 4095, (8 << 20) + 3):
        data = os.urandom(size)
        src = tmp_path / f"in{size}"
        src.write_bytes(data)
        d = store.put_file(src)
        out = tmp_path / f"out{size}"
        assert store.get_file(d, out)
        assert out.read_bytes() == data
        assert store.get_bytes(d) == data
        f = store.open_blob(d)
        assert f is not None
        with f:
            assert f.read() == data


def test_put_from_a_pipe(store: Store) -> None:
    r, w = os.pipe()
    data = os.urandom(300_000)
    t = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    t.start()
    d = store.put_file(f"/proc/self/fd/{r}")
    t.join()
    os.close(r)
    assert store.get_bytes(d) == data


def test_miss_leaves_destination_alone(store: Store, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.write_bytes(b"keep me")
    assert not store.get_file("xxh3-128:" + "0" * 32, dest)
    assert dest.read_bytes() == b"keep me"
    assert store.open_blob("xxh3-128:" + "0" * 32) is None
    assert not store.contains("xxh3-128:" + "0" * 32)
    assert store.stats()["blob_misses"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["cache", "dest"]  # no temp left behind


def test_get_into_missing_directory_raises(store: Store, tmp_path: Path) -> None:
    d = store.put_bytes(b"abc")
    with pytest.raises(FileNotFoundError):
        store.get_file(d, tmp_path / "nope" / "out")


def test_sha256_store_and_mixed_reads(tmp_path: Path) -> None:
    with Store(tmp_path / "c") as x:
        old = x.put_bytes(b"old")
    with Store(tmp_path / "c", algorithm="sha256") as s:
        d = s.put_bytes(b"abc")
        assert d == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        assert s.get_bytes(d) == b"abc" and s.get_bytes(old) == b"old"  # both algorithms readable
        assert s.verify().clean
    with Store(tmp_path / "c") as again:
        assert again.algorithm == "xxh3-128"  # FORMAT keeps the store's default


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "c").close()
    fmt = tmp_path / "c" / "store" / "v1" / "FORMAT"
    fmt.write_text('{"format": "orch-store", "version": 1, "algorithm": "crc32"}')
    with pytest.raises(StoreError, match="unsupported store format"):
        Store(tmp_path / "c")
    fmt.write_text("garbage")  # unreadable: rewritten (the v1 directory says what it is)
    Store(tmp_path / "c").close()


def test_siblings_of_store_are_untouched(tmp_path: Path) -> None:
    for d in ("plan", "logs", "buildah"):
        (tmp_path / "c" / d).mkdir(parents=True)
        (tmp_path / "c" / d / "f").write_text(d)
    with Store(tmp_path / "c") as s:
        s.put_bytes(b"x")
        s.gc_keep(set())
        s.verify(repair=True)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["buildah", "logs", "plan", "store"]
    assert all((tmp_path / "c" / d / "f").read_text() == d for d in ("plan", "logs", "buildah"))


def test_durable_write_order(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync(temp) → register → rename → fsync(shard dir), as Bazel/containerd/Nix do."""
    events: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def rename(a: object, b: object) -> None:
        events.append("rename")
        real_rename(a, b)  # type: ignore[arg-type]

    real_add = store.index.add_blob
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(store.index, "add_blob", lambda *a: (events.append("register"), real_add(*a)))
    src = tmp_path / "f"
    src.write_bytes(os.urandom(50_000))
    store.put_file(src)
    assert events == ["fsync-file", "register", "rename", "fsync-dir"]
    assert not os.access(store.blob_path(store.put_file(src)), os.W_OK) or os.geteuid() == 0


@pytest.mark.parametrize("size", [0, 1, (4 << 20) + 7, (9 << 20) + 3])
def test_copy_and_check_matches_copy_and_hash(tmp_path: Path, size: int) -> None:
    """The threaded kernel-copy read path yields the same digest and bytes as the plain loop,
    across mapping-chunk boundaries."""
    from cache.blobs import copy_and_check, copy_and_hash
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    results = []
    for fn, name in ((copy_and_check, "a"), (copy_and_hash, "b")):
        s = os.open(src, os.O_RDONLY)
        d = os.open(tmp_path / name, os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            results.append(fn(s, d, "xxh3-128"))
        finally:
            os.close(s)
            os.close(d)
    assert results[0] == results[1]
    assert results[0][1] == size
    assert (tmp_path / "a").read_bytes() == data


def test_copy_and_check_falls_back_without_kernel_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from cache.blobs import copy_and_check

    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")
    monkeypatch.setattr(os, "copy_file_range", refuse)
    data = os.urandom(3 << 20)
    (tmp_path / "src").write_bytes(data)
    s = os.open(tmp_path / "src", os.O_RDONLY)
    d = os.open(tmp_path / "dst", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        digest, n = copy_and_check(s, d, "xxh3-128")
    finally:
        os.close(s)
        os.close(d)
    assert (str(digest), n) == (str(digest_bytes(data)), len(data))
    assert (tmp_path / "dst").read_bytes() == data


def test_get_of_a_large_damaged_blob_is_a_miss(store: Store, tmp_path: Path) -> None:
    data = os.urandom(6 << 20)
    d = store.put_bytes(data)
    p = store.blob_path(d)
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:
        f.seek(5 << 20)
        f.write(bytes([data[5 << 20] ^ 1]))
    out = tmp_path / "out"
    assert not store.get_file(d, out)
    assert not out.exists()
    assert not p.exists()  # quarantined
