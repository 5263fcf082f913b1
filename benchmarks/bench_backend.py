"""orch's buildah backend against the same buildah commands typed into a shell script.

    python benchmarks/bench_backend.py [--packages 5] [--rounds 3] [--driver overlay|vfs]

Each round builds N small packages (context copy, env, one prelude, two steps, like luet's
builder + package stages) twice, alternating: once through `builder.build` (which also walks
both root filesystems, computes the delta and writes the deterministic .tar.zst) and once as
a bash script issuing the identical buildah command sequence (from, config, copy, run,
commit, from ×2, run, commit, mount, rm) with no artefact, package by package, alternating.
Overhead = orch / shell − 1 (goal ≤ 5 %): the median of the paired ratios, best/best of the
round totals, and orch's own Python time (everything outside buildah processes).
Needs root and buildah; uses a private store in a temp dir.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.backend.argv import global_args
from orchestrator.backend.buildah import Buildah
from orchestrator.backend.builder import build
from orchestrator.model import BuildJob, PackageRef

PRELUDE = "mkdir -p /opt/src && cp -r /luetbuild/src/. /opt/src/"
STEPS = ("mkdir -p /usr/share/pkg && cp /opt/src/* /usr/share/pkg/ && echo $PACKAGE_NAME > /usr/share/pkg/name",
         "for i in 1 2 3 4 5 6 7 8; do echo $i > /usr/share/pkg/f$i; done && rm /opt/src/a")


class TimedBuildah(Buildah):
    """Counts the wall time spent inside buildah processes (the rest of a build is Python)."""

    spent = 0.0

    def run(self, args, **kw):  # type: ignore[no-untyped-def, override]
        t0 = time.perf_counter()
        try:
            return super().run(args, **kw)
        finally:
            TimedBuildah.spent += time.perf_counter() - t0


def make_context(base: Path, i: int) -> Path:
    ctx = base / f"pkg{i}"
    (ctx / "src").mkdir(parents=True)
    for name in "abcdefgh":
        (ctx / "src" / name).write_text(f"{name} of package {i}\n" * 50)
    (ctx / "build.yaml").write_text("steps: []\n")
    return ctx


def shell_script(bh: Buildah, image: str, ctx: Path, name: str, tag: str, ignore: Path) -> str:
    g = " ".join(shlex.quote(a) for a in global_args(bh.root, bh.runroot, bh.storage_driver))
    q = shlex.quote
    b, p, r = f"sh-{tag}-b", f"sh-{tag}-p", f"sh-{tag}-r"
    run = f"buildah {g} run --isolation {bh.isolation} --"
    return "\n".join([
        "set -e",
        f"buildah {g} from --quiet --name {b} --pull=never {image} >/dev/null",
        (f"buildah {g} config --env PACKAGE_NAME={name} --env PACKAGE_VERSION=1.0 --env PACKAGE_CATEGORY=bench"
         f" --workingdir /luetbuild {b}"),
        (f"buildah {g} copy --quiet --contextdir {q(str(ctx))} --ignorefile {q(str(ignore))} {b} {q(str(ctx))}"
         " /luetbuild"),
        f"{run} {b} sh -c {q(PRELUDE)}",
        f"id=$(buildah {g} commit --quiet --timestamp 0 --identity-label=false --rm {b} localhost/sh-builder:{tag})",
        f"buildah {g} from --quiet --name {p} --pull=never $id >/dev/null",
        f"buildah {g} from --quiet --name {r} --pull=never $id >/dev/null",
        *(f"{run} {p} sh -c {q(s)}" for s in STEPS),
        f"buildah {g} commit --quiet --timestamp 0 --identity-label=false {p} localhost/sh-pkg:{tag} >/dev/null",
        f"buildah {g} mount {p} {r} >/dev/null",
        f"buildah {g} rm {p} {r} >/dev/null",
    ]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--driver", choices=("overlay", "vfs"), default=None)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_backend: needs root (buildah mount)")
    tmp = Path(tempfile.mkdtemp(prefix="orch-bench-backend-"))
    bh = TimedBuildah(str(tmp / "root"), str(tmp / "runroot"), storage_driver=args.driver, run_id="bench")
    try:
        subprocess.run([str(REPO / "scripts/make-base-image"), str(tmp / "base.tar")], check=True,
                       capture_output=True)
        image = bh.resolve_image(f"oci-archive:{tmp / 'base.tar'}")
        contexts = [make_context(tmp / "ctx", i) for i in range(args.packages)]
        ignore = tmp / "empty.ignore"
        ignore.write_text("")
        orch_times, shell_times, python_parts, ratios = [], [], [], []
        for rnd in range(args.rounds):
            o_total = s_total = py_total = 0.0
            for i, ctx in enumerate(contexts):  # paired, alternating: drift from other load cancels out
                TimedBuildah.spent = 0.0
                job = BuildJob(ref=PackageRef("bench", f"p{i}", "1.0"), key=f"r{rnd}-p{i}", context_dir=str(ctx),
                               image=image, prelude=(PRELUDE,), steps=STEPS)
                t0 = time.perf_counter()
                build(job, bh, str(tmp / f"out-{rnd}-{i}"), str(tmp / f"log-{rnd}-{i}"))
                o = time.perf_counter() - t0
                script = tmp / f"r{rnd}-p{i}.sh"
                script.write_text(shell_script(bh, image, ctx, f"p{i}", f"r{rnd}-p{i}", ignore))
                t0 = time.perf_counter()
                subprocess.run(["bash", str(script)], check=True, stdout=subprocess.DEVNULL)
                sh = time.perf_counter() - t0
                o_total, s_total, py_total = o_total + o, s_total + sh, py_total + o - TimedBuildah.spent
                ratios.append(o / sh)
            orch_times.append(o_total)
            shell_times.append(s_total)
            python_parts.append(py_total)
        report(args.packages, bh.storage_driver, orch_times, shell_times, python_parts, ratios)
    finally:
        bh.teardown()
        shutil.rmtree(tmp, ignore_errors=True)


def report(n: int, driver: str, orch: list[float], shell: list[float], py: list[float], ratios: list[float]) -> None:
    print(f"buildah backend, {n} packages per round, {len(orch)} rounds, storage driver {driver}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<38}{'best s':>9}{'median s':>10}{'per pkg s':>11}")
    rows = [("orch builder.build (incl. artefacts)", orch), ("same buildah commands, bash script", shell),
            ("  of which orch Python (not buildah)", py)]
    for label, vals in rows:
        med = sorted(vals)[len(vals) // 2]
        print(f"{label:<38}{min(vals):>9.2f}{med:>10.2f}{min(vals) / n:>11.3f}")
    paired = sorted(ratios)[len(ratios) // 2] - 1
    print(f"overhead, median of {len(ratios)} paired builds: {paired * 100:+.1f} %   "
          f"best/best: {(min(orch) / min(shell) - 1) * 100:+.1f} %   "
          f"orch's own Python: {min(py) / min(shell) * 100:.1f} %   goal <= 5 %")

if __name__ == "__main__":
    main()
