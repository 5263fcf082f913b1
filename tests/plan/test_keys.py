"""Key invariants through the real CLI: location-free, comment-blind, exactly as wide as a
change's effect (the package and its dependents, final images included), deterministic."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from plan_helpers import (CORPUS, changed, copy_tree, dependents, item, keys_of, needs_corpus, plan,
                          pkg_files, write)

# -------------------------------------------------------------------------- a small tree
#   base ← lib ← app ⇐ img (requires_final_images; app's runtime dep rt joins it)
#          lib ← cp (copy)           other, parent ⊃ parent/child (nested package)
BUILD_BASE = """\
image: "alpine:{{ .Values.base_tag }}"
steps:
- echo base
"""
BUILD_LIB = """\
# the library
requires:
- name: base
  category: c
  version: ">=0"
env:
{{ template "common_env" . }}
steps:
- echo lib {{ .Values.libflag }}
"""
BUILD_APP = """\
requires:
- {name: lib, category: c, version: ">=0"}
steps:
- echo app {{ .Values.name }}
"""
BUILD_IMG = """\
requires_final_images: true
requires:
- {name: app, category: c, version: ">=0"}
unpack: true
"""
BUILD_CP = """\
image: alpine
copy:
- package: {name: lib, category: c, version: ">=0"}
  source: /usr/lib/lib.so
  destination: /usr/lib/lib.so
steps:
- echo cp
"""
SIMPLE = """\
image: alpine
steps:
- echo {{ .Values.name }}
"""
TEMPLATE = """\
{{ define "common_env" }}
- SHARED={{ .Values.shared }}
{{ end }}
"""
VALUES = 'base_tag: "3.18"\nlibflag: "x"\nshared: "s"\n'


def small_tree(root: Path) -> Path:
    """The tree above under root/packages, values in root/values.yaml; returns the tree."""
    files = {"packages/templates/common.yaml": TEMPLATE, "values.yaml": VALUES}
    files.update(pkg_files("packages/base", "base", build=BUILD_BASE))
    files.update(pkg_files("packages/lib", "lib", build=BUILD_LIB))
    files.update(pkg_files("packages/app", "app", build=BUILD_APP,
                           extra_def="requires:\n- {name: rt, category: c, version: \">=0\"}\n"))
    files.update(pkg_files("packages/rt", "rt", build=SIMPLE))
    files.update(pkg_files("packages/img", "img", build=BUILD_IMG))
    files.update(pkg_files("packages/cp", "cp", build=BUILD_CP))
    files.update(pkg_files("packages/other", "other", build=SIMPLE))
    files.update(pkg_files("packages/parent", "parent", build=SIMPLE))
    files.update(pkg_files("packages/parent/child", "child", build=SIMPLE))
    files["packages/parent/data.txt"] = "parent data\n"
    files["packages/parent/child/data.txt"] = "child data\n"
    files["packages/app/patch.diff"] = "--- a\n+++ b\n"
    write(root, files)
    return root / "packages"


def ids(*names: str) -> set[str]:
    return {f"c/{n}@1.0" for n in names}


ALL = ids("base", "lib", "app", "rt", "img", "cp", "other", "parent", "child")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return small_tree(tmp_path / "src")


def test_small_tree_plans(tree: Path, tmp_path: Path) -> None:
    doc = plan(tree, tree.parent / "values.yaml", cache=tmp_path / "c")
    assert set(keys_of(doc)) == ALL
    assert len(set(keys_of(doc).values())) == len(ALL), "distinct packages share a key"
    assert item(doc, "c/lib@1.0")["spec"]["steps"] == ["echo lib x"]
    assert item(doc, "c/lib@1.0")["spec"]["env"] == ["SHARED=s"]
    assert item(doc, "c/img@1.0")["spec"]["requires_final_images"] is True
    # img composes app's artefact and its runtime dependency rt
    assert set(item(doc, "c/img@1.0")["build_deps"]) == ids("app", "rt")
    assert dependents(doc, "c/lib@1.0") == ids("app", "img", "cp")


def test_same_tree_twice_and_moved(tree: Path, tmp_path: Path) -> None:
    values = tree.parent / "values.yaml"
    first = plan(tree, values, cache=tmp_path / "c1")
    again = plan(tree, values, cache=tmp_path / "c2")
    assert keys_of(first) == keys_of(again)
    # copied elsewhere (deeper, other name), and the original removed: a move
    moved_root = tmp_path / "elsewhere" / "deeper" / "renamed"
    copy_tree(tree.parent, moved_root)
    shutil.rmtree(tree.parent)
    moved = plan(moved_root / "packages", moved_root / "values.yaml", cache=tmp_path / "c3")
    assert keys_of(moved) == keys_of(first)
    # and from another working directory, relative paths
    rel = plan("renamed/packages", "renamed/values.yaml", cache=tmp_path / "c4",
               cwd=moved_root.parent)
    assert keys_of(rel) == keys_of(first)


@pytest.mark.parametrize("edit", ["build", "definition", "values", "template"])
def test_comment_only_edit_changes_no_key(tree: Path, tmp_path: Path, edit: str) -> None:
    values = tree.parent / "values.yaml"
    cache = tmp_path / "c"
    before = plan(tree, values, cache=cache)
    target = {"build": tree / "lib" / "build.yaml", "definition": tree / "lib" / "definition.yaml",
              "values": values, "template": tree / "templates" / "common.yaml"}[edit]
    text = target.read_text()
    target.write_text("# a comment on top\n" + text.replace("\n", "   \n", 1) + "\n# trailing\n")
    after = plan(tree, values, cache=cache)
    assert changed(before, after) == set()


def test_value_change_hits_exactly_users_and_dependents(tree: Path, tmp_path: Path) -> None:
    values = tree.parent / "values.yaml"
    cache = tmp_path / "c"
    before = plan(tree, values, cache=cache)
    values.write_text(VALUES.replace('libflag: "x"', 'libflag: "y"'))
    after = plan(tree, values, cache=cache)
    want = ids("lib", "app", "img", "cp")  # lib, its plain, final-image and copy dependents
    assert changed(before, after) == want
    assert item(after, "c/lib@1.0")["spec"]["steps"] == ["echo lib y"]


def test_value_in_shared_template(tree: Path, tmp_path: Path) -> None:
    values = tree.parent / "values.yaml"
    cache = tmp_path / "c"
    before = plan(tree, values, cache=cache)
    values.write_text(VALUES.replace('shared: "s"', 'shared: "t"'))
    after = plan(tree, values, cache=cache)
    assert changed(before, after) == ids("lib", "app", "img", "cp")


def test_runtime_dep_of_final_image_member(tree: Path, tmp_path: Path) -> None:
    """rt is only a runtime requirement of app, but img unpacks it: img changes, app does not."""
    values = tree.parent / "values.yaml"
    cache = tmp_path / "c"
    before = plan(tree, values, cache=cache)
    (tree / "rt" / "build.yaml").write_text(SIMPLE.replace("echo", "echo changed"))
    after = plan(tree, values, cache=cache)
    assert changed(before, after) == ids("rt", "img")


def test_nested_package_file_changes_only_nested(tree: Path, tmp_path: Path) -> None:
    values = tree.parent / "values.yaml"
    cache = tmp_path / "c"
    before = plan(tree, values, cache=cache)
    (tree / "parent" / "child" / "data.txt").write_text("child data, edited\n")
    after = plan(tree, values, cache=cache)
    assert changed(before, after) == ids("child")
    (tree / "parent" / "child" / "new.txt").write_text("new\n")
    again = plan(tree, values, cache=cache)
    assert changed(after, again) == ids("child")
    (tree / "parent" / "data.txt").write_text("parent data, edited\n")
    last = plan(tree, values, cache=cache)
    assert changed(again, last) == ids("parent")


def test_context_file_changes_package_and_dependents(tree: Path, tmp_path: Path) -> None:
    values = tree.parent / "values.yaml"
    cache = tmp_path / "c"
    before = plan(tree, values, cache=cache)
    (tree / "app" / "patch.diff").write_text("--- a\n+++ b\n@@ -1 +1 @@\n")
    after = plan(tree, values, cache=cache)
    assert changed(before, after) == ids("app", "img")
    # the executable bit is part of a context file's identity
    (tree / "app" / "patch.diff").chmod(0o755)
    exe = plan(tree, values, cache=cache)
    assert changed(after, exe) == ids("app", "img")


def test_values_order_rightmost_wins_every_time(tree: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text('libflag: "from-a"\nnested: {k: a, only_a: 1}\n')
    b.write_text('libflag: "from-b"\n')
    values = tree.parent / "values.yaml"
    for run in range(3):  # luet flips the precedence between renders; orch must not
        ab = plan(tree, values, a, b, cache=tmp_path / "cab")
        ba = plan(tree, values, b, a, cache=tmp_path / "cba")
        assert item(ab, "c/lib@1.0")["spec"]["steps"] == ["echo lib from-b"], run
        assert item(ba, "c/lib@1.0")["spec"]["steps"] == ["echo lib from-a"], run
        assert changed(ab, ba) == ids("lib", "app", "img", "cp")
    cold = plan(tree, values, a, b, cache=tmp_path / "fresh")
    assert keys_of(cold) == keys_of(ab)


def test_deterministic_runs_and_cold_vs_warm(tree: Path, tmp_path: Path) -> None:
    values = tree.parent / "values.yaml"
    colds = [plan(tree, values, cache=tmp_path / f"cold{i}") for i in range(3)]
    assert keys_of(colds[0]) == keys_of(colds[1]) == keys_of(colds[2])
    assert [i["id"] for i in colds[0]["packages"]] == [i["id"] for i in colds[2]["packages"]]
    warm = [plan(tree, values, cache=tmp_path / "cold0") for _ in range(2)]
    assert warm[0] == colds[0] and warm[1] == colds[0], "a warm plan differs from the cold one"


def test_key_depends_on_own_inputs_not_on_dependents(tree: Path, tmp_path: Path) -> None:
    """Adding a new dependent of lib changes nothing that exists (keys are not target-shaped)."""
    values = tree.parent / "values.yaml"
    cache = tmp_path / "c"
    before = plan(tree, values, cache=cache)
    write(tree, pkg_files("newuser", "newuser", build=BUILD_APP))
    after = plan(tree, values, cache=cache)
    assert keys_of(after).keys() - keys_of(before).keys() == ids("newuser")
    assert all(keys_of(after)[k] == v for k, v in keys_of(before).items())


# ------------------------------------------------------------------- the real cOS tree
FLAVOUR = "green-x86_64.yaml"


@pytest.fixture(scope="module")
def cos_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert CORPUS is not None
    return copy_tree(CORPUS / "cos-toolkit", tmp_path_factory.mktemp("cos") / "cos-toolkit")


@pytest.fixture(scope="module")
def cos_reference(cos_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The plan of the untouched corpus (not the copy), cold."""
    assert CORPUS is not None
    return plan(CORPUS / "cos-toolkit" / "packages", CORPUS / "cos-toolkit" / "values" / FLAVOUR,
                cache=tmp_path_factory.mktemp("cos-cache"))


def cos_plan(root: Path, cache: Path, values: Path | None = None) -> dict[str, Any]:
    return plan(root / "packages", values or root / "values" / FLAVOUR, cache=cache)


@needs_corpus
def test_cos_copy_and_move(cos_copy: Path, cos_reference: dict[str, Any], tmp_path: Path) -> None:
    assert len(cos_reference["packages"]) == 75
    copied = cos_plan(cos_copy, tmp_path / "c1")
    assert keys_of(copied) == keys_of(cos_reference)
    moved = tmp_path / "moved" / "x"
    copy_tree(cos_copy, moved)
    assert keys_of(cos_plan(moved, tmp_path / "c2")) == keys_of(cos_reference)
    # determinism: three cold runs and a warm one
    runs = [cos_plan(moved, tmp_path / f"d{i}") for i in range(3)] + [cos_plan(moved, tmp_path / "d0")]
    assert all(r == runs[0] for r in runs)
    assert keys_of(runs[0]) == keys_of(cos_reference)


@needs_corpus
@pytest.mark.parametrize("rel", ["kernel/build.yaml", "kernel/definition.yaml", "toolchain/collection.yaml",
                                 "toolchain/build.yaml", "templates/golang.yaml"])
def test_cos_comment_edit(cos_copy: Path, cos_reference: dict[str, Any], tmp_path: Path, rel: str) -> None:
    root = copy_tree(cos_copy, tmp_path / "cos")
    cache = tmp_path / "c"
    assert keys_of(cos_plan(root, cache)) == keys_of(cos_reference)
    path = root / "packages" / rel
    path.write_text("# comment-only edit\n" + path.read_text() + "\n# more comments\n")
    assert changed(cos_reference, cos_plan(root, cache)) == set()


@needs_corpus
def test_cos_value_change_one_package_and_dependents(cos_copy: Path, cos_reference: dict[str, Any],
                                                     tmp_path: Path) -> None:
    """`kernel_package` is used by system/kernel only; its dependents include the final images."""
    values = tmp_path / "values.yaml"
    values.write_text((cos_copy / "values" / FLAVOUR).read_text()
                      .replace("kernel_package: kernel-default", "kernel_package: kernel-longterm"))
    after = cos_plan(cos_copy, tmp_path / "c", values)
    kernel = next(i["id"] for i in cos_reference["packages"] if i["id"].startswith("system/kernel@"))
    users = dependents(cos_reference, kernel)
    assert any(item(cos_reference, u)["spec"]["requires_final_images"] for u in users), \
        "the test needs a requires_final_images dependent of system/kernel"
    assert changed(cos_reference, after) == {kernel} | users
    assert any("kernel-longterm" in s for s in item(after, kernel)["spec"]["steps"] or [])


@needs_corpus
def test_cos_nested_package_file(cos_copy: Path, cos_reference: dict[str, Any], tmp_path: Path) -> None:
    """toolchain/yq sits inside the toolchain collection's folder: only yq (and its users) change."""
    root = copy_tree(cos_copy, tmp_path / "cos")
    (root / "packages" / "toolchain" / "yq" / "extra.txt").write_text("hello\n")
    after = cos_plan(root, tmp_path / "c")
    yq = next(i["id"] for i in cos_reference["packages"] if i["id"].startswith("toolchain/yq@"))
    assert changed(cos_reference, after) == {yq} | dependents(cos_reference, yq)
    assert not any(p.startswith("toolchain/luet@") for p in changed(cos_reference, after))


@needs_corpus
def test_cos_values_order(cos_copy: Path, tmp_path: Path) -> None:
    base = cos_copy / "values" / FLAVOUR
    over = tmp_path / "over.yaml"
    over.write_text("kernel_package: kernel-rt\n")
    for _ in range(2):
        ab = plan(cos_copy / "packages", base, over, cache=tmp_path / "c2")
        ba = plan(cos_copy / "packages", over, base, cache=tmp_path / "c3")
        kernel = next(i for i in ab["packages"] if i["id"].startswith("system/kernel@"))
        kernel_ba = next(i for i in ba["packages"] if i["id"].startswith("system/kernel@"))
        assert any("kernel-rt" in s for s in kernel["spec"]["steps"])
        assert any("kernel-default" in s for s in kernel_ba["spec"]["steps"])


def test_crlf_line_ends_do_not_count(tmp_path: Path) -> None:
    """A checkout with Windows line ends (a template with `{{-` trimming too) plans as the LF one."""
    build = 'image: alpine\nsteps:\n- echo {{ .Values.name }}\n{{- if true }}\n- echo two\n{{- end }}\n'
    for name in ("lf", "crlf"):
        files = pkg_files(f"{name}/packages/a", "a", build=build)
        for path, content in files.items():
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.replace("\n", "\r\n").encode() if name == "crlf" else content.encode())
    lf = plan(tmp_path / "lf" / "packages", cache=tmp_path / "c1")
    crlf = plan(tmp_path / "crlf" / "packages", cache=tmp_path / "c2")
    assert keys_of(lf) == keys_of(crlf)
    assert item(crlf, "c/a@1.0")["spec"]["steps"] == ["echo a", "echo two"]
