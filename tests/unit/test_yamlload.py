"""`yamlload` gives exactly what PyYAML's safe loader gives (YAML 1.1 implicit types, merge
keys, tags), with its own fast resolver hooks, and flags what JSON would not keep."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.spec import yamlload

SCALARS = ["yes", "No", "ON", "off", "y", "n", "~", "null", "Null", "", "0x1F", "0o17", "017", "1_000",
           "1:20", "-1:20:30.5", ".inf", "-.Inf", ".NaN", "1e3", "1.5e-3", "+12", "-0", "0.", "2001-12-14",
           "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "'yes'", '"1"', "!!str 1", "!!int '7'",
           "pkg00091", "1.9.91", ">=0", "<=1", "=", "true", "False", "TRUE", "-", "- x", "&a 1", "!!float 3"]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@pytest.mark.parametrize("scalar", SCALARS)
def test_scalars_resolve_as_pyyaml_does(scalar: str) -> None:
    for text in (f"k: {scalar}\n", f"- {scalar}\n", f"{{k: [{scalar}]}}\n" if scalar and scalar[0] not in "-&!" else "a: 1"):
        try:
            want = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            with pytest.raises(Exception):
                yamlload.load(text, "x.yaml")
            continue
        assert same(yamlload.load(text, "x.yaml"), want), text


@pytest.mark.parametrize("text", ["=: 1\nb: 2\n", "a: {!!merge <<: {z: 1}}\n", "x: '<<'\ny: ['<<']\n",
                                  "a: &x {b: 1}\nc: {<<: *x, d: 2}\n", "- !!str =\n", "#!/bin/sh\na: 1\n"])
def test_merge_and_value_keys(text: str) -> None:
    assert same(yamlload.load(text, "x.yaml"), yaml.load(text, Loader=yaml.CSafeLoader))


def test_documents_load_as_pyyaml_does() -> None:
    text = ("base: &b {a: 1, b: [x, y]}\nother:\n  <<: *b\n  b: 2\nmerged: {!!merge <<: [*b], c: 3}\n"
            "list:\n- {name: n, version: '>=1.0'}\n- !!str yes\nblock: |\n  line one\n  line two\n"
            "folded: >-\n  a\n  b\n")
    assert same(yamlload.load(text, "x.yaml"), yaml.load(text, Loader=yaml.CSafeLoader))


def corpus_yaml_files() -> list[Path]:
    """Every YAML file of the shared corpus (the test skips without it)."""
    root = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    root = root if root.is_dir() else Path("/work/shared/corpus")  # as test_render_corpus finds it
    files = [p for p in sorted(root.rglob("*.yaml")) if p.is_file()] if root.is_dir() else []
    if not files:
        pytest.skip("no corpus")
    return files


def test_every_corpus_spec_loads_as_pyyaml_does() -> None:
    checked = 0
    for path in corpus_yaml_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            want = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            continue  # a template: not YAML before rendering
        assert same(yamlload.load(text, str(path)), want), path
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("text, plain", [
    ("a: 1", True), ("a: [1, 2.5, null, yes, b]", True), ("a: &x {b: 1}\nc: *x", True),
    ("1: a", False), ("a: 2020-01-01", False), ("a: !!set {x}", False), ("a: !!binary aGk=", False),
    ("? [a]\n: b", False),
])
def test_plain_flag(text: str, plain: bool) -> None:
    """`load_plain` says whether a JSON round trip keeps the document as it is."""
    try:
        doc, flag = yamlload.load_plain(text, "x.yaml")
    except Exception:
        assert not plain  # an unhashable key: refused, never plain
        return
    assert flag is plain
    if plain:
        import json
        assert json.loads(json.dumps(doc)) == doc
