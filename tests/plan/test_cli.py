"""`orch plan` (table, --json, --explain) and `orch graph` through the real command line."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from plan_helpers import CORPUS, Run, needs_corpus, orch, pkg_files, write

BASE = "image: alpine:3.18\nsteps:\n- echo base {{ .Values.flag }}\n"
LIB = "requires:\n- {name: base, category: c, version: '>=0'}\nsteps:\n- echo lib\n"
IMG = "requires_final_images: true\nrequires:\n- {name: lib, category: c, version: '>=0'}\nunpack: true\n"
TYPO = "image: golang\nenvironment:\n- GOPATH=/go\nsteps:\n- go build\n"
SPEC_FIELDS = {"image", "requires", "requires_final_images", "prelude", "steps", "env", "unpack",
               "package_dir", "includes", "excludes", "copy"}
ID = re.compile(r"^[^/@\s]*/[^/@\s]+@\S+$")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = pkg_files("packages/base", "base", build=BASE)
    files.update(pkg_files("packages/lib", "lib", build=LIB))
    files.update(pkg_files("packages/img", "img", build=IMG))
    files.update(pkg_files("packages/other", "other", version="2.0", build="image: alpine\n"))
    files["packages/lib/patch.diff"] = "--- a\n+++ b\n"
    files["values.yaml"] = "flag: on-purpose\n"
    write(tmp_path, files)
    return tmp_path


def run(root: Path, *args: str) -> Run:
    return orch(*args, "-t", "packages", "--values", "values.yaml", "--cache-dir", str(root / "cache"),
                cwd=root)


def test_table(root: Path) -> None:
    res = run(root, "plan")
    assert res.code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert re.match(r"^PACKAGE\s+ACTION\s+KEY\s+WHY$", lines[0]), lines[0]
    rows = lines[1:-1]
    assert [r.split()[0] for r in rows] == ["c/base@1.0", "c/lib@1.0", "c/img@1.0", "c/other@2.0"]
    for row in rows:
        pid, action, key = row.split()[:3]
        assert action == "build"
        assert re.fullmatch(r"[0-9a-f]{12}", key), row
        assert "not built before" in row
    assert "depends on c/base@1.0 which will be rebuilt" in rows[1]
    assert lines[-1] == "4 packages: 4 to build, 0 cached"
    # the columns line up
    assert len({ln.index(ln.split()[1]) for ln in lines[:-1]}) == 1


def test_targets_limit_to_closure(root: Path) -> None:
    res = run(root, "plan", "--json", "c/lib")
    assert [p["id"] for p in json.loads(res.stdout)["packages"]] == ["c/base@1.0", "c/lib@1.0"]
    res = run(root, "plan", "--json", "other")
    assert [p["id"] for p in json.loads(res.stdout)["packages"]] == ["c/other@2.0"]


def test_json_schema(root: Path) -> None:
    res = run(root, "plan", "--json")
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) == {"packages"}
    seen: set[str] = set()
    for item in doc["packages"]:
        assert set(item) == {"id", "key", "action", "reasons", "build_deps", "spec"}
        assert ID.match(item["id"]), item["id"]
        assert re.fullmatch(r"[0-9a-f]{32}", item["key"]), item["key"]
        assert item["action"] in ("build", "cached")
        assert all(isinstance(r, str) and r for r in item["reasons"])
        assert set(item["build_deps"]) <= seen, "build order: dependencies first"
        assert set(item["spec"]) == SPEC_FIELDS
        seen.add(item["id"])
    base = doc["packages"][0]["spec"]
    assert base == {"image": "alpine:3.18", "requires": None, "requires_final_images": False, "prelude": None,
                    "steps": ["echo base on-purpose"], "env": None, "unpack": False, "package_dir": "",
                    "includes": None, "excludes": None, "copy": None}
    img = next(i for i in doc["packages"] if i["id"] == "c/img@1.0")
    assert img["spec"]["requires"] == [{"name": "lib", "category": "c", "version": ">=0"}]
    assert img["spec"]["requires_final_images"] is True and img["spec"]["unpack"] is True
    assert img["build_deps"] == ["c/lib@1.0"]


def test_explain(root: Path) -> None:
    res = run(root, "plan", "--explain", "c/lib")
    assert res.code == 0, res.stderr
    out = res.stdout
    assert out.startswith("c/lib@1.0  key ")
    assert "defined in" in out and "lib/definition.yaml" in out
    assert "patch.diff" in out  # context files
    assert "c/base@1.0" in out and "(requires)" in out  # dependencies with their kinds
    assert '"echo lib"' in out  # the rendered spec
    res = run(root, "plan", "--explain", "c/base@1.0", "--json")
    doc = json.loads(res.stdout)
    assert doc["id"] == "c/base@1.0" and doc["action"] == "build"
    assert doc["values"] == {"flag": "on-purpose"}
    assert json.loads(doc["spec"])["steps"] == ["echo base on-purpose"]
    plan = json.loads(run(root, "plan", "--json").stdout)
    assert doc["key"] == plan["packages"][0]["key"]
    assert run(root, "plan", "--explain", "c/nothing").code == 2


def test_graph_dot(root: Path) -> None:
    res = run(root, "graph")
    assert res.code == 0, res.stderr
    dot = res.stdout
    assert dot.startswith("digraph")
    assert dot.rstrip().endswith("}")
    for pid in ("c/base@1.0", "c/lib@1.0", "c/img@1.0", "c/other@2.0"):
        assert f'"{pid}"' in dot
    assert re.search(r'"c/lib@1.0" -> "c/base@1.0" \[[^]]*label="requires"', dot), dot
    assert re.search(r'"c/img@1.0" -> "c/lib@1.0" \[[^]]*label="final"', dot), dot
    out = root / "g.dot"
    res = run(root, "graph", "-o", str(out))
    assert res.code == 0 and out.read_text() == dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_graph_svg(root: Path) -> None:
    out = root / "g.svg"
    res = run(root, "graph", "-o", str(out))
    assert res.code == 0, res.stderr
    svg = out.read_text()
    assert "<svg" in svg and "c/lib@1.0" in svg


def test_unknown_key_warning(root: Path) -> None:
    write(root, pkg_files("packages/typo", "typo", build=TYPO))
    for attempt in ("cold", "warm"):
        res = run(root, "plan", "--json")
        assert res.code == 0, res.stderr
        lines = res.stderr.splitlines()
        assert len(lines) == 1, (attempt, lines)
        line = lines[0]
        assert line.startswith("orch: warning: "), line
        assert "typo/build.yaml" in line and "'environment'" in line and "'env'" in line, line
    spec = next(p for p in json.loads(res.stdout)["packages"] if p["id"] == "c/typo@1.0")["spec"]
    assert spec["env"] is None  # ignored, as luet does


@needs_corpus
def test_unknown_key_warning_real_tree(tmp_path: Path) -> None:
    assert CORPUS is not None
    tree = CORPUS / "mocaccino-extra"
    res = orch("plan", "-t", str(tree / "packages"), "--values", str(tree / "values" / "amd64.yaml"),
               "--json", "--cache-dir", str(tmp_path))
    assert res.code == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "environment" in ln]
    assert len(warnings) == 1, res.stderr
    assert "container-diff/build.yaml" in warnings[0] and "'env'" in warnings[0]


def test_exit_codes(root: Path) -> None:
    assert run(root, "plan").code == 0
    assert orch("--version").code == 0
    assert orch("plan", "-t").code == 2
    assert orch().code == 2


def test_warning_names_file_relative_to_cwd_even_when_warm(root: Path) -> None:
    """A warm plan from another working directory names files relative to that directory."""
    write(root, pkg_files("packages/typo", "typo", build=TYPO))
    first = run(root, "plan", "--json")
    assert "packages/typo/build.yaml" in first.stderr
    sub = root / "packages"
    res = orch("plan", "-t", ".", "--values", "../values.yaml", "--json", "--cache-dir",
               str(root / "cache"), cwd=sub)
    assert res.code == 0, res.stderr
    line = next(ln for ln in res.stderr.splitlines() if "environment" in ln)
    assert line.startswith("orch: warning: typo/build.yaml:"), line


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_output_to_a_full_disk_is_an_environment_error(root: Path, fmt: list[str]) -> None:
    """A plan whose output cannot be written (disk full) says so in one line, exit 3: not a
    traceback, and never a silent success with the output cut short."""
    import os
    import subprocess
    import sys

    from plan_helpers import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "orchestrator", "plan", *fmt, "-t", "packages",
                               "--values", "values.yaml", "--cache-dir", str(root / "cache")],
                              cwd=root, env=env, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_profiled_plan_still_writes_its_profile(root: Path) -> None:
    """`orch plan` leaves without tearing the interpreter down, except under a profiler or a
    coverage tracer, which write their data at exit."""
    import os
    import subprocess
    import sys

    from plan_helpers import REPO

    out = root / "plan.prof"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "orchestrator", "plan",
                           "-t", "packages", "--values", "values.yaml", "--cache-dir", str(root / "cache")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0 and "c/base@1.0" in proc.stdout


def test_orch_exits_without_a_collector_pass_but_main_turns_it_back_on(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`orch plan` keeps the cyclic collector off to its exit: turned back on, the first
    allocation would walk every object the plan made. A caller of `main` goes on, with it on."""
    import gc
    import os
    import sys

    from orchestrator import cli

    class Exited(Exception):
        pass

    parent, real_exit, codes = os.getpid(), os._exit, []

    def fake_exit(code: int) -> None:
        if os.getpid() != parent:  # a forked helper of the plan's
            real_exit(code)
        codes.append(code)
        raise Exited

    args = ["plan", "--json", "-t", "packages", "--values", "values.yaml", "--cache-dir", str(root / "cache")]
    monkeypatch.chdir(root)
    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["orch", *args])
    monkeypatch.setattr(cli, "_ONE_SHOT", False)
    assert gc.isenabled()
    try:
        with pytest.raises((Exited, SystemExit)):  # SystemExit: under a tracer (coverage)
            cli.run()
        assert not gc.isenabled()
        assert codes in ([0], [])
    finally:
        gc.enable()
    monkeypatch.setattr(cli, "_ONE_SHOT", False)
    assert cli.main(args) == 0
    assert gc.isenabled()
