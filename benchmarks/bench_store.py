"""Store benchmarks with same-run baselines: ingest and read of one big artefact against `cp`,
verify throughput against `cat`, and GC of 100,000 blobs.

    python benchmarks/bench_store.py                 # 1 GiB artefact, 100,000 blobs
    python benchmarks/bench_store.py --size 64M --blobs 5000   # quick

Every row runs orch and its baseline alternately, `--repeat` times. The verdict uses the best
run of each side (what the code can do when other work on the machine lets it); the ratio of
medians is printed beside it. Dirty pages are flushed (`sync`) before each timed step so one
step's writeback is not billed to the next. Ingest is durable (fsync file + directory): its like-for-like baseline is `cp` followed by
`fsync`; plain `cp` (nothing on disk yet when it returns) is shown beside it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cache import Manifest, Store  # noqa: E402

MiB = 1 << 20


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": MiB, "G": 1 << 30}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    return int(float(t[:-1]) * units[t[-1]]) if t[-1] in units else int(t)


def timed(fn: Callable[[], object]) -> float:
    os.sync()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def fsync_path(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def cp(a: Path, b: Path) -> None:
    subprocess.run(["cp", str(a), str(b)], check=True)


def cp_fsync(a: Path, b: Path) -> None:
    cp(a, b)
    fsync_path(b)


Row = tuple[str, float, str, float, float, float | None]  # name, orch, baseline name, base, median ratio, goal


def bench_big(work: Path, size: int, repeat: int) -> list[Row]:
    src = work / "artefact.bin"
    with open(src, "wb") as f:  # incompressible, written in chunks
        for _ in range(size // (64 * MiB)):
            f.write(os.urandom(64 * MiB))
        f.write(os.urandom(size % (64 * MiB)))
    runs: dict[str, list[float]] = {k: [] for k in
                                    ("put", "cp+fsync", "put-nofsync", "cp", "get", "cp-blob", "verify", "cat")}
    digest = ""
    for r in range(repeat):
        for durable, key in ((True, "put"), (False, "put-nofsync")):
            root = work / f"store-{r}-{key}"
            s = Store(root, durable=durable)
            runs[key].append(timed(lambda: s.put_file(src)))
            digest = s.put_file(src)
            s.close()
            shutil.rmtree(root)
        dst = work / "copy.bin"
        runs["cp+fsync"].append(timed(lambda: cp_fsync(src, dst)))
        dst.unlink()
        runs["cp"].append(timed(lambda: cp(src, dst)))
        dst.unlink()
    s = Store(work / "store")
    digest = s.put_file(src)
    blob = s.blob_path(digest)
    for r in range(repeat):
        out = work / "out.bin"
        runs["get"].append(timed(lambda: s.get_file(digest, out)))
        assert out.stat().st_size == size
        out.unlink()
        runs["cp-blob"].append(timed(lambda: cp(blob, out)))
        out.unlink()
        runs["verify"].append(timed(lambda: s.verify()))
        runs["cat"].append(timed(lambda: subprocess.run(f"cat '{blob}' > /dev/null", shell=True, check=True)))
    s.close()
    best = {k: min(v) for k, v in runs.items()}
    med = {k: statistics.median(v) for k, v in runs.items()}
    mb = size / MiB

    def row(name: str, ours: str, base_name: str, base: str, goal: float | None) -> Row:
        return (name, mb / best[ours], base_name, mb / best[base], med[base] / med[ours], goal)

    return [
        row("ingest (durable) vs cp+fsync", "put", "cp+fsync", "cp+fsync", 0.8),
        row("ingest (durable) vs cp", "put", "cp", "cp", None),
        row("ingest (durable=False) vs cp", "put-nofsync", "cp", "cp", 0.8),
        row("read (get, re-hashed) vs cp", "get", "cp", "cp-blob", 0.8),
        row("verify (re-hash all) vs cat", "verify", "cat", "cat", None),
    ]


def bench_gc(work: Path, n: int) -> tuple[float, float, float, str]:
    """(total s, locked s, baseline s, note): GC evicting ~90 % of n blobs vs plain unlinks."""
    root = work / "gcstore"
    s = Store(root, durable=False)  # setup speed; GC itself does the same work either way
    t0 = time.perf_counter()
    for i in range(n):
        data = i.to_bytes(8, "little") * (1 + i % 64)
        d = s.put_bytes(data)
        if i % 10 == 0:
            s.ac_put(f"key-{i}", Manifest(artifact=d, artifact_size=len(data)))
    setup = time.perf_counter() - t0
    total = s.stats()["bytes"]
    os.sync()  # blobs on disk, as a durable store's are
    report = s.gc_max_size(total // 10)  # evict ~90 %
    s.close()
    plain = work / "plain"  # baseline: unlinking as many plain files, nothing else
    for i in range(report.removed_blobs):
        shard = plain / f"{i % 256:02x}"
        shard.mkdir(parents=True, exist_ok=True)
        (shard / str(i)).write_bytes(b"x" * (8 * (1 + i % 64)))
    files = [p for shard in plain.iterdir() for p in shard.iterdir()]
    os.sync()
    t0 = time.perf_counter()
    for p in files:
        p.unlink()
    base = time.perf_counter() - t0
    note = (f"{n} blobs, {n // 10} entries ({setup:.0f}s to fill); evicted {report.removed_blobs} "
            f"blobs + {report.removed_entries} entries")
    return report.seconds, report.locked_seconds, base, note


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--size", default="1G", help="artefact size (default 1G)")
    ap.add_argument("--blobs", type=int, default=100_000, help="blobs for the GC run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="scratch directory (default: under $TMPDIR)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="orch-bench-", dir=a.dir))
    try:
        size = parse_size(a.size)
        rows = bench_big(work, size, a.repeat)
        print(f"store benchmark: {size / MiB:.0f} MiB artefact, best of {a.repeat} (median ratio "
              f"beside), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, in {work}")
        print(f"{'operation':34} {'orch MB/s':>10} {'baseline':>10} {'base MB/s':>10} {'ratio':>6} "
              f"{'median':>6} {'goal':>6}  result")
        for name, orch, base_name, base, median_ratio, goal in rows:
            ratio = orch / base
            verdict = "-" if goal is None else ("PASS" if ratio >= goal else "FAIL")
            g = "-" if goal is None else f"{goal:.1f}x"
            print(f"{name:34} {orch:10.0f} {base_name:>10} {base:10.0f} {ratio:5.2f}x {median_ratio:5.2f}x "
                  f"{g:>6}  {verdict}")
        secs, locked, base, note = bench_gc(work, a.blobs)
        print(f"{'gc --max-size, total (s)':34} {secs:10.2f} {'unlink (s)':>10} {base:10.2f} "
              f"{secs / base:5.2f}x {'':>6} {'-':>6}  -")
        print(f"{'gc --max-size, writers blocked (s)':34} {locked:10.2f} {'-':>10} {'-':>10} {'-':>6} "
              f"{'':>6} {'<=10s':>6}  {'PASS' if locked <= 10 else 'FAIL'}")
        print(f"  ({note})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
