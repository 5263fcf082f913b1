"""A build spec's body (prelude, steps, env, unpack, package_dir, includes, excludes) is what
its plan fields hold, decoded when a build asks for it; where validating it converted a value,
the spec keeps the converted body itself."""
from __future__ import annotations

import pickle

import pytest

from orchestrator.errors import SpecError
from orchestrator.model import BuildBody, Package, PackageRef
from orchestrator.spec.parse import build_spec

FULL = {"image": "alpine", "prelude": ["p"], "steps": ["a", "b"], "env": ["E=1"], "unpack": True,
        "package_dir": "/out", "includes": ["/i"], "excludes": ["/e"]}


def _package(spec: object) -> Package:
    return Package(PackageRef("c", "n", "1"), "{}", spec, "/t", "c/n", "c/n/definition.yaml")  # type: ignore[arg-type]


def test_a_plain_body_is_decoded_from_the_plan_fields() -> None:
    spec = build_spec(dict(FULL), "b.yaml", [])
    assert spec.stored_body is None
    assert spec.body == BuildBody(("p",), ("a", "b"), ("E=1",), True, "/out", ("/i",), ("/e",))
    back = pickle.loads(pickle.dumps(_package(spec))).spec
    assert back == spec and back.body == spec.body


def test_a_converted_body_is_kept() -> None:
    doc = {**FULL, "steps": [1, "b", 2.5], "package_dir": 5, "env": [3]}
    spec = build_spec(doc, "b.yaml", [])
    assert spec.stored_body is not None
    assert spec.body.steps == ("1", "b", "2.5") and spec.body.package_dir == "5" and spec.body.env == ("3",)
    assert '"steps": [1, "b", 2.5]' in spec.raw_json  # the plan shows them as written, as luet does
    back = pickle.loads(pickle.dumps(_package(spec))).spec
    assert back == spec and back.body == spec.body


def test_absent_fields_and_virtual_specs() -> None:
    assert build_spec({}, "b.yaml", []).body == BuildBody()
    assert build_spec({}, "b.yaml", []).is_virtual
    assert build_spec({"unpack": True}, "b.yaml", []).is_virtual is False
    assert build_spec({"image": "x"}, "b.yaml", []).is_virtual is False
    assert build_spec({"image": "x", "steps": ["a"]}, "b.yaml", []).body.steps == ("a",)


def test_specs_differing_only_in_their_body_differ() -> None:
    assert build_spec(dict(FULL), "b.yaml", []) != build_spec({**FULL, "steps": ["a"]}, "b.yaml", [])


def test_the_first_bad_field_is_reported_in_field_order() -> None:
    with pytest.raises(SpecError, match="'requires' must be a list"):
        build_spec({"requires": "x", "steps": "y"}, "b.yaml", [])
    with pytest.raises(SpecError, match="'steps' must be a list"):
        build_spec({"steps": "y", "retrieve": "z"}, "b.yaml", [])
