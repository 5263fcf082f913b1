"""Trees shaped like luet's own test fixtures, which orch had not seen: each test is a small
tree of our own reproducing one feature luet accepts."""
from __future__ import annotations

import json
from pathlib import Path

from plan_helpers import orch, pkg_files, write


def test_tree_root_named_templates_is_a_package_tree(tmp_path: Path) -> None:
    """A tree whose root folder is called `templates` holds packages (luet's loader finds them);
    only `templates/` folders below the root hold shared templates."""
    files = pkg_files("templates/pkg", "b", category="test",
                      build='image: "{{ template "img" .Values }}"\n', extra_def="tag: bar\n")
    files.update(pkg_files("templates", "top", category="test", build='image: "{{.Values.name}}:1"\n'))
    files["templates/templates/img.yaml"] = '{{ define "img" }}{{ .name }}:{{ .tag }}{{ end }}'
    write(tmp_path, files)
    for attempt in ("cold", "warm"):
        res = orch("plan", "-t", str(tmp_path / "templates"), "--json", "--cache-dir", str(tmp_path / "cache"))
        assert res.code == 0, (attempt, res.stderr)
        images = {p["id"]: p["spec"]["image"] for p in json.loads(res.stdout)["packages"]}
        assert images == {"test/top@1.0": "top:1", "test/b@1.0": "b:bar"}, attempt


def test_package_fields_in_build_yaml_are_no_unknown_keys(tmp_path: Path) -> None:
    """luet reads build.yaml as a package too (keeping its requires/conflicts/provides): package
    fields there are known to it and ignored, not typos; a real typo still warns."""
    build = ('image: alpine\nname: x\ncategory: c\nversion: "9"\nlabels: {a: b}\ndescription: d\n'
             'license: MIT\nuri: [u]\nhidden: false\nannotations: {k: v}\nenvironment: [A=1]\n')
    write(tmp_path, pkg_files("p", "a", build=build))
    res = orch("plan", "-t", str(tmp_path), "--json", "--cache-dir", str(tmp_path / "cache"))
    assert res.code == 0, res.stderr
    warnings = res.stderr.splitlines()
    assert len(warnings) == 1 and "'environment'" in warnings[0], warnings
    assert [p["id"] for p in json.loads(res.stdout)["packages"]] == ["c/a@1.0"]
