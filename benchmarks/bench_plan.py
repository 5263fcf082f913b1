"""Planning speed against the floor, in one run, every case a fresh subprocess.

    python benchmarks/bench_plan.py [--packages 10000] [--repeat 3] [--identical] [--keep DIR] [--profile]

Floor: a Python process that reads and `yaml.load(..., CSafeLoader)`s every definition.yaml,
collection.yaml and build.yaml of the tree once (build.yaml texts are templates: a file
that is not valid YAML before rendering counts with the time it took to fail). Cases:

* cold: `orch plan --json` with an empty cache dir      goal <= 2.0 x floor
* warm: the same again, nothing changed                  goal <= 0.25 x floor
* edit: after a real change to one build.yaml            goal <= 0.3 x floor
* peak memory of every orch case (its render workers included)   goal <= 150 MB
* the real cOS tree (green-x86_64), cold and warm       goal < 1 s

Every orch sample is paired with a floor run made just before it and judged by its own ratio
(best of --repeat pairs; the median is shown too): the machine's speed drifts by tens of
percent within minutes, so ratios between runs made minutes apart would measure the drift.

The generated tree is backdated by an hour, as a checkout made earlier would be: files
modified within 2 s of the planner's state write are re-read by design ("racy" stat data).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import gen_tree  # noqa: E402

FLOOR = r"""
import os, sys, yaml
from yaml import CSafeLoader
names = {"definition.yaml", "collection.yaml", "build.yaml"}
ok = bad = 0
for dirpath, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(files):
        if name in names:
            with open(os.path.join(dirpath, name), encoding="utf-8") as fh:
                text = fh.read()
            try:
                yaml.load(text, Loader=CSafeLoader)
                ok += 1
            except yaml.YAMLError:
                bad += 1
print(ok, bad)
"""


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    code: int
    stderr: str
    cpu: float = 0.0  # user + system seconds of the child: steadier than wall time on a busy machine


def _tree_pss_kb(pid: int) -> int:
    """Proportional set size of a process and its descendants (shared pages split between them,
    as fork's copy-on-write pages are): what the process tree costs the machine."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo.extend(int(c) for c in fh.read().split())
            with open(f"/proc/{p}/smaps_rollup") as fh:
                total += next(int(ln.split()[1]) for ln in fh if ln.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run(argv: list[str], *, cwd: str | None = None) -> Sample:
    """One child process: wall time and peak memory, stdout to /dev/null. Peak memory is the
    larger of the largest single process's peak RSS (os.wait4: the child or any worker it
    forked) and the whole process tree's PSS, sampled every 10 ms (workers run at once)."""
    import threading

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ORCH_CACHE_DIR", None)
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=devnull, stderr=err,
                                stdin=subprocess.DEVNULL)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.01):
                peak[0] = max(peak[0], _tree_pss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return Sample(seconds, max(usage.ru_maxrss, peak[0]) / 1024, code,
                      err.read().decode(errors="replace"), usage.ru_utime + usage.ru_stime)


def orch_plan(tree: Path, values: Path, cache: Path, profile: str | None = None) -> Sample:
    prof = ["-m", "cProfile", "-o", profile] if profile else []
    sample = run([sys.executable, *prof, "-m", "orchestrator", "plan", "-t", str(tree), "--values",
                  str(values), "--json", "--cache-dir", str(cache)])
    if sample.code != 0:
        raise SystemExit(f"orch plan failed ({sample.code}):\n{sample.stderr}")
    return sample


def fresh(cache: Path) -> Path:
    """An empty cache dir (with --keep, the last run's would make a cold plan warm)."""
    shutil.rmtree(cache, ignore_errors=True)
    return cache


def backdate(root: Path, seconds: float = 3600) -> None:
    when = time.time() - seconds
    for dirpath, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(dirpath, name), (when, when))


def best(samples: list[Sample]) -> Sample:
    """The fastest run (least disturbed), with the largest peak RSS seen."""
    fastest = min(samples, key=lambda s: s.seconds)
    return Sample(fastest.seconds, max(s.rss_mb for s in samples), fastest.code, "",
                  min(s.cpu for s in samples))


def edit_one(tree: Path, index: int) -> Path:
    """A real change to one build.yaml: one more step."""
    builds = sorted(tree.glob("*/*/build.yaml"))
    path = builds[(index * 7919) % len(builds)]
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"- echo benchmark edit {index}\n")
    return path


def profile_report(path: str, top: int = 25) -> None:
    import pstats

    print(f"\n--- profile {path} (cumulative, top {top}) ---")
    pstats.Stats(path).sort_stats("cumulative").print_stats(top)
    print(f"--- profile {path} (own time, top {top}) ---")
    pstats.Stats(path).sort_stats("tottime").print_stats(top)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--identical", action="store_true", help="the same build.yaml text in every package")
    ap.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it")
    ap.add_argument("--profile", action="store_true", help="cProfile the cold, warm and edit cases")
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus"))
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="orch-bench-"))
    try:
        return bench(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def bench(work: Path, args: argparse.Namespace) -> int:
    root = work / "gen"
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    gen_tree.generate(str(root), args.packages, identical=args.identical)
    backdate(root)
    tree, values = root / "packages", root / "values.yaml"
    # An installed orch runs from bytecode (pip compiles it; a first run writes it). Measure that,
    # not the compilation of every module on each run, which PYTHONDONTWRITEBYTECODE would force.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "orchestrator"), str(REPO / "cache")],
                   check=True)
    print(f"generated {args.packages} packages in {time.perf_counter() - t0:.1f}s "
          f"({'identical' if args.identical else 'distinct'} build.yaml texts) under {root}")
    prof = (lambda name: str(work / f"{name}.prof")) if args.profile else (lambda name: None)

    def floor_run() -> Sample:
        return run([sys.executable, "-c", FLOOR, str(tree)])

    # Each sample is paired with a floor run just before it: the machine's speed drifts by tens
    # of percent within minutes, and a ratio is only fair between runs made under the same load.
    floors: list[Sample] = []
    rows: list[tuple[str, list[tuple[Sample, Sample]], float | None]] = []

    def paired(name: str, goal: float | None, sample: Callable[[int], Sample]) -> None:
        pairs = []
        for i in range(args.repeat):
            floors.append(floor_run())
            pairs.append((floors[-1], sample(i)))
        rows.append((name, pairs, goal))

    cache = work / "cold-cache-0"
    paired("cold plan", 2.0, lambda i: orch_plan(tree, values, fresh(work / f"cold-cache-{i}")))
    paired("warm no-op plan", 0.25, lambda i: orch_plan(tree, values, cache))

    def edit(i: int) -> Sample:
        edit_one(tree, i)
        return orch_plan(tree, values, cache)

    paired("plan after editing one build.yaml", 0.3, edit)
    if args.profile:
        orch_plan(tree, values, fresh(work / "prof-cache"), prof("cold"))
        orch_plan(tree, values, work / "prof-cache", prof("warm"))
        edit_one(tree, 99)
        orch_plan(tree, values, work / "prof-cache", prof("edit"))

    corpus = Path(args.corpus)
    if not (corpus / "cos-toolkit").is_dir():
        corpus = Path("/work/shared/corpus")
    cos_rows: list[tuple[str, Sample]] = []
    if (corpus / "cos-toolkit").is_dir():
        cos_tree = corpus / "cos-toolkit" / "packages"
        cos_values = corpus / "cos-toolkit" / "values" / "green-x86_64.yaml"
        cos_cold = best([orch_plan(cos_tree, cos_values, fresh(work / f"cos-cache-{i}"))
                         for i in range(args.repeat)])
        cos_warm = best([orch_plan(cos_tree, cos_values, work / "cos-cache-0") for _ in range(args.repeat)])
        cos_rows = [("cOS green-x86_64 cold", cos_cold), ("cOS green-x86_64 warm", cos_warm)]

    failed = 0
    floor = best(floors)
    print(f"\n{'case':<36} {'seconds':>8} {'floor s':>8} {'x floor':>8} {'median x':>9} {'goal':>8} {'result':>6}"
          f" {'peak MB':>8} {'cpu s':>7} {'cpu x':>6}")
    print(f"{'floor (read + YAML-parse)':<36} {floor.seconds:>8.3f} {floor.seconds:>8.3f} {1:>8.2f} {'':>9} {'-':>8}"
          f" {'-':>6} {floor.rss_mb:>8.0f} {floor.cpu:>7.2f} {1:>6.2f}")
    for name, pairs, goal in rows:
        ratios = sorted(s.seconds / f.seconds for f, s in pairs)
        f, sample = min(pairs, key=lambda p: p[1].seconds / p[0].seconds)
        ratio, peak = ratios[0], max(s.rss_mb for _, s in pairs)
        ok = goal is None or ratio <= goal
        mem_ok = peak <= 150
        failed += (not ok) + (not mem_ok)
        goal_text = "-" if goal is None else f"<={goal:g}x"
        verdict = "-" if goal is None else ("pass" if ok and mem_ok else "FAIL")
        print(f"{name:<36} {sample.seconds:>8.3f} {f.seconds:>8.3f} {ratio:>8.2f} {statistics.median(ratios):>9.2f}"
              f" {goal_text:>8} {verdict:>6} {peak:>8.0f} {sample.cpu:>7.2f} {sample.cpu / f.cpu:>6.2f}")
    for name, cos in cos_rows:
        ok = cos.seconds < 1.0 and cos.rss_mb <= 150
        failed += not ok
        print(f"{name:<36} {cos.seconds:>8.3f} {'':>8} {'':>8} {'':>9} {'<1s':>8} "
              f"{'pass' if ok else 'FAIL':>6} {cos.rss_mb:>8.0f} {cos.cpu:>7.2f} {'':>6}")
    print(f"(each sample paired with a floor run made just before it; x floor: the best of {args.repeat} pairs,"
          " median x: their median; peak MB: the largest seen, of one process or of the whole process tree"
          " with its render workers (PSS), goal <= 150 for every orch case; cpu: user+system seconds of the"
          " process and its workers, and its ratio to its floor's)")
    if args.profile:
        for name in ("cold", "warm", "edit"):
            profile_report(str(work / f"{name}.prof"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
