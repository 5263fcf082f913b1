"""Bad input → exit 2, one line `orch: error: …` naming the file or package, no traceback,
fast and in bounded memory; nothing in YAML ever runs."""
from __future__ import annotations

from pathlib import Path

import pytest

from plan_helpers import Run, orch, pkg_files, write

GOOD = "image: alpine\nsteps:\n- echo ok\n"
MAX_SECONDS = 2.0  # CPU seconds of the child, start-up included
MAX_WALL = 6.0  # wall clock: generous, the machine may be shared; still catches a hang
MAX_RSS_MB = 200.0

# a "billion laughs": 9 levels of 9 aliases, about 387 million nodes once expanded
BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def base_tree(root: Path) -> Path:
    """A valid two-package tree under root/packages."""
    files = pkg_files("packages/ok", "ok", build=GOOD)
    files.update(pkg_files("packages/user", "user",
                           build="requires:\n- {name: ok, category: c, version: '>=0'}\nsteps:\n- echo u\n"))
    write(root, files)
    return root / "packages"


def run_plan(root: Path, *extra: str) -> Run:
    return orch("plan", "-t", "packages", "--cache-dir", str(root / "cache"), *extra, cwd=root)


def assert_one_error(run: Run, *names: str) -> str:
    """Exit 2, exactly one stderr line, `orch: error:` first, naming one of `names`; fast, small."""
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert run.code == 2, f"exit {run.code}, stderr: {run.stderr!r}"
    assert "Traceback" not in run.stderr, run.stderr
    assert len(lines) == 1, f"expected one line, got {lines!r}"
    line = lines[0]
    assert line.startswith("orch: error: "), line
    assert any(name in line for name in names), f"{line!r} names none of {names}"
    assert run.cpu < MAX_SECONDS, f"took {run.cpu:.2f}s of CPU"
    assert run.seconds < MAX_WALL, f"took {run.seconds:.2f}s"
    assert run.maxrss_mb < MAX_RSS_MB, f"peak RSS {run.maxrss_mb:.0f} MB"
    assert run.stdout == "", run.stdout
    return line


def test_good_tree_is_fine(tmp_path: Path) -> None:
    """The base tree plans: every failure below comes from the one thing each test breaks."""
    base_tree(tmp_path)
    run = run_plan(tmp_path)
    assert run.code == 0, run.stderr
    assert run.stderr == ""


@pytest.mark.parametrize("text", [
    'name: bad\ncategory: c\nversion: "1.0"\nlabels: {a: b\n',
    'name: bad\n  category: c\nversion: "1.0"\n',
    'name: bad\ncategory: c\nversion: "1.0"\n\tfoo: 1\n',
])
def test_broken_definition_yaml(tmp_path: Path, text: str) -> None:
    base_tree(tmp_path)
    write(tmp_path, {"packages/bad/definition.yaml": text, "packages/bad/build.yaml": GOOD})
    line = assert_one_error(run_plan(tmp_path), "bad/definition.yaml")
    assert "packages/bad/definition.yaml:" in line  # with the line number


def test_broken_build_yaml(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/bad", "bad", build="image: alpine\nsteps: [echo ok\n"))
    assert_one_error(run_plan(tmp_path), "bad/build.yaml")


def test_broken_collection(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, {"packages/col/collection.yaml": "packages:\n- name: x\n  version: '1'\n - name: y\n",
                     "packages/col/build.yaml": GOOD})
    assert_one_error(run_plan(tmp_path), "col/collection.yaml")


def test_broken_values_file(tmp_path: Path) -> None:
    base_tree(tmp_path)
    (tmp_path / "v.yaml").write_text("a: [1, 2\n")
    assert_one_error(run_plan(tmp_path, "--values", "v.yaml"), "v.yaml")


def test_missing_values_file(tmp_path: Path) -> None:
    base_tree(tmp_path)
    assert_one_error(run_plan(tmp_path, "--values", "nope.yaml"), "nope.yaml")


def test_cycle(tmp_path: Path) -> None:
    base_tree(tmp_path)
    req = "requires:\n- {{name: {0}, category: c, version: '>=0'}}\nsteps:\n- echo\n"
    files = pkg_files("packages/x", "x", build=req.format("y"))
    files.update(pkg_files("packages/y", "y", build=req.format("z")))
    files.update(pkg_files("packages/z", "z", build=req.format("x")))
    write(tmp_path, files)
    line = assert_one_error(run_plan(tmp_path), "c/x@1.0", "c/y@1.0", "c/z@1.0")
    assert "cycle" in line
    assert all(p in line for p in ("c/x", "c/y", "c/z")), line


def test_self_dependency(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/x", "x",
                              build="requires:\n- {name: x, category: c, version: '>=0'}\nsteps: [echo]\n"))
    assert_one_error(run_plan(tmp_path), "c/x@1.0")


def test_missing_dependency(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/x", "x",
                              build="requires:\n- {name: ghost, category: c, version: '>=0'}\nsteps: [echo]\n"))
    line = assert_one_error(run_plan(tmp_path), "c/x@1.0")
    assert "c/ghost" in line


def test_unsatisfiable_version(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/x", "x",
                              build="requires:\n- {name: ok, category: c, version: '>=2'}\nsteps: [echo]\n"))
    assert_one_error(run_plan(tmp_path), "c/x@1.0")


def test_missing_copy_source_package(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/x", "x", build=(
        "image: alpine\ncopy:\n- package: {name: ghost, category: c}\n  source: /a\n  destination: /b\n")))
    assert_one_error(run_plan(tmp_path), "c/x@1.0")


def test_template_syntax_error(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/bad", "bad", build="image: alpine\nsteps:\n- echo {{ if .Values.x }\n"))
    assert_one_error(run_plan(tmp_path), "bad/build.yaml")


def test_template_error_in_shared_template(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, {"packages/templates/t.yaml": '{{ define "x" }}{{ end }\n'})
    assert_one_error(run_plan(tmp_path), "templates/t.yaml")


def test_undefined_value(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/bad", "bad", build="image: alpine\nsteps:\n- echo {{ .Values.nope }}\n"))
    line = assert_one_error(run_plan(tmp_path), "bad/build.yaml")
    assert "nope" in line


def test_undefined_nested_value(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/bad", "bad",
                              build="image: alpine\nsteps:\n- echo {{ .Values.missing.deeper }}\n"))
    assert_one_error(run_plan(tmp_path), "bad/build.yaml")


def test_template_infinite_recursion(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, {"packages/templates/t.yaml": '{{ define "loop" }}{{ template "loop" . }}{{ end }}\n'})
    write(tmp_path, pkg_files("packages/bad", "bad", build='{{ template "loop" . }}\nimage: alpine\n'))
    assert_one_error(run_plan(tmp_path), "bad/build.yaml", "templates/t.yaml")


@pytest.mark.parametrize("where", ["definition", "values", "build", "collection"])
def test_alias_bomb(tmp_path: Path, where: str) -> None:
    base_tree(tmp_path)
    extra: list[str] = []
    if where == "definition":
        write(tmp_path, {"packages/bad/definition.yaml": 'name: bad\ncategory: c\nversion: "1"\n' + BOMB,
                         "packages/bad/build.yaml": GOOD})
        names = ("bad/definition.yaml",)
    elif where == "collection":
        indented = "".join("    " + ln + "\n" for ln in BOMB.splitlines())
        write(tmp_path, {"packages/bad/collection.yaml":
                         f"packages:\n  - name: bad\n    category: c\n    version: '1'\n{indented}",
                         "packages/bad/build.yaml": GOOD})
        names = ("bad/collection.yaml",)
    elif where == "values":
        (tmp_path / "v.yaml").write_text(BOMB)
        extra = ["--values", "v.yaml"]
        names = ("v.yaml",)
    else:
        write(tmp_path, pkg_files("packages/bad", "bad", build=GOOD + BOMB))
        names = ("bad/build.yaml",)
    assert_one_error(run_plan(tmp_path, *extra), *names)


def test_alias_bomb_below_the_node_limit_stays_small(tmp_path: Path) -> None:
    """A document that expands to a lot, but not past the limit, must still fit in memory."""
    base_tree(tmp_path)
    # 6 levels of 9: 9**6 = 531441 leaves (under the 1M node bound), through a template value
    bomb = "\n".join(BOMB.splitlines()[:6]) + "\n"
    write(tmp_path, {"packages/big/definition.yaml": 'name: big\ncategory: c\nversion: "1"\n' + bomb,
                     "packages/big/build.yaml": GOOD})
    run = run_plan(tmp_path)
    assert run.maxrss_mb < MAX_RSS_MB, f"peak RSS {run.maxrss_mb:.0f} MB"
    assert "Traceback" not in run.stderr
    assert run.code in (0, 2), run.stderr
    if run.code == 2:
        assert_one_error(run, "big/definition.yaml")


@pytest.mark.parametrize("where", ["definition", "values", "build", "collection", "finalize"])
@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:os.system"])
def test_python_tag_never_runs(tmp_path: Path, where: str, tag: str) -> None:
    base_tree(tmp_path)
    proof = tmp_path / "pwned"
    payload = f'{tag} ["touch {proof}"]'
    extra: list[str] = []
    if where == "definition":
        write(tmp_path, {"packages/bad/definition.yaml": f'name: bad\ncategory: c\nversion: "1"\nx: {payload}\n',
                         "packages/bad/build.yaml": GOOD})
        names = ("bad/definition.yaml",)
    elif where == "collection":
        write(tmp_path, {"packages/bad/collection.yaml":
                         f"packages:\n- name: bad\n  category: c\n  version: '1'\n  x: {payload}\n",
                         "packages/bad/build.yaml": GOOD})
        names = ("bad/collection.yaml",)
    elif where == "values":
        (tmp_path / "v.yaml").write_text(f"x: {payload}\n")
        extra = ["--values", "v.yaml"]
        names = ("v.yaml",)
    elif where == "finalize":
        write(tmp_path, pkg_files("packages/bad", "bad", build=GOOD))
        write(tmp_path, {"packages/bad/finalize.yaml": f"install:\n- {payload}\n"})
        names = ("bad/finalize.yaml",)
    else:
        write(tmp_path, pkg_files("packages/bad", "bad", build=f"{GOOD}x: {payload}\n"))
        names = ("bad/build.yaml",)
    run = run_plan(tmp_path, *extra)
    assert not proof.exists(), "code from YAML ran"
    line = assert_one_error(run, *names)
    assert "python" in line


def test_tree_does_not_exist(tmp_path: Path) -> None:
    run = orch("plan", "-t", str(tmp_path / "nowhere"), "--cache-dir", str(tmp_path / "c"))
    assert_one_error(run, "nowhere")


def test_tree_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    run = orch("plan", "-t", str(tmp_path / "afile"), "--cache-dir", str(tmp_path / "c"))
    assert_one_error(run, "afile")


def test_float_version(tmp_path: Path) -> None:
    """`version: 1.10` is the float 1.1 in YAML: refused, with a hint, instead of a wrong id."""
    base_tree(tmp_path)
    write(tmp_path, {"packages/bad/definition.yaml": "name: bad\ncategory: c\nversion: 1.10\n",
                     "packages/bad/build.yaml": GOOD})
    line = assert_one_error(run_plan(tmp_path), "bad/definition.yaml")
    assert "version" in line


def test_duplicate_package(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/again", "ok", build=GOOD))
    assert_one_error(run_plan(tmp_path), "c/ok@1.0")


def test_steps_without_image(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/bad", "bad", build="steps:\n- echo\n"))
    assert_one_error(run_plan(tmp_path), "bad/build.yaml")


def test_bad_field_type(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/bad", "bad", build="image: alpine\nsteps: echo not-a-list\n"))
    assert_one_error(run_plan(tmp_path), "bad/build.yaml")


def test_not_utf8(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/bad", "bad", build=GOOD))
    (tmp_path / "packages/bad/definition.yaml").write_bytes(b"name: \xff\xfe\ncategory: c\nversion: '1'\n")
    assert_one_error(run_plan(tmp_path), "bad/definition.yaml")


@pytest.mark.parametrize("char", ["x", "é"])  # bytes, not characters, count
def test_oversized_spec(tmp_path: Path, char: str) -> None:
    base_tree(tmp_path)
    write(tmp_path, pkg_files("packages/big", "big", build=GOOD))
    with open(tmp_path / "packages/big/build.yaml", "a", encoding="utf-8") as fh:
        fh.write("# " + char * (4_200_000 if char == "é" else 8_400_000) + "\n")
    line = assert_one_error(run_plan(tmp_path), "big/build.yaml")
    assert "byte limit" in line


def test_unknown_target(tmp_path: Path) -> None:
    base_tree(tmp_path)
    assert_one_error(run_plan(tmp_path, "c/ghost"), "c/ghost")


def test_usage_error_exit_2(tmp_path: Path) -> None:
    run = orch("plan", "--no-such-flag")
    assert run.code == 2
    assert "Traceback" not in run.stderr


def test_error_after_warm_cache(tmp_path: Path) -> None:
    """A warm state must not hide a new error (nor keep reporting a fixed one)."""
    base_tree(tmp_path)
    assert run_plan(tmp_path).code == 0
    bad = tmp_path / "packages/ok/build.yaml"
    bad.write_text("image: alpine\nsteps: [oops\n")
    assert_one_error(run_plan(tmp_path), "ok/build.yaml")
    bad.write_text(GOOD)
    assert run_plan(tmp_path).code == 0
