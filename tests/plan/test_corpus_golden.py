"""The real CLI on both real trees with every values file: exactly luet 0.35's packages, and
every rendered build field equal to luet's (`shared/corpus/luet-golden/<name>.json`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plan_helpers import CORPUS, COS_VALUES, needs_corpus, plan

pytestmark = needs_corpus

FIELDS = ("image", "requires", "requires_final_images", "prelude", "steps", "env", "unpack",
          "package_dir", "includes", "excludes", "copy")
# Where luet has null (a Go nil slice / zero value) orch may print the zero value of the type.
ZEROS: tuple[Any, ...] = (None, [], "", False)


def cases() -> list[tuple[str, str, str]]:
    """(tree folder, values file relative to the tree's root, golden file name)."""
    if CORPUS is None:
        return []
    out = [("cos-toolkit", f"values/{v}", f"cos-{v[:-len('.yaml')]}.json") for v in COS_VALUES]
    out += [("mocaccino-extra", "values/amd64.yaml", "mocaccino-extra-amd64.json"),
            ("mocaccino-extra", "values/arm/v7.yaml", "mocaccino-extra-arm-v7.json")]
    return out


def _ref(doc: dict[str, Any] | None) -> dict[str, str] | None:
    if doc is None:
        return None
    return {"name": doc.get("name", ""), "category": doc.get("category", ""), "version": doc.get("version", "")}


def golden_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """luet's compile spec reduced to orch's `plan --json` fields."""
    out = {f: spec.get(f) for f in FIELDS}
    requires = spec["package"].get("requires")
    out["requires"] = None if requires is None else [_ref(r) for r in requires]
    if spec.get("copy") is not None:
        out["copy"] = [{"package": _ref(c.get("package")), "image": c.get("image") or "",
                        "source": c.get("source") or "", "destination": c.get("destination") or ""}
                       for c in spec["copy"]]
    return out


def orch_fields(spec: dict[str, Any]) -> dict[str, Any]:
    out = {f: spec.get(f) for f in FIELDS}
    if out["requires"] is not None:
        out["requires"] = [_ref(r) for r in out["requires"]]
    if out["copy"] is not None:
        out["copy"] = [{"package": _ref(c.get("package")), "image": c.get("image") or "",
                        "source": c.get("source") or "", "destination": c.get("destination") or ""}
                       for c in out["copy"]]
    return out


def same(golden: Any, mine: Any) -> bool:
    if golden is None:
        return any(mine is z or (mine == z and type(mine) is type(z)) for z in ZEROS)
    return bool(golden == mine and type(golden) is type(mine))


def fingerprint(pid: str) -> str:
    """orch `cat/name@ver` → luet `cat/name-ver`."""
    family, _, version = pid.rpartition("@")
    return f"{family}-{version}"


@pytest.mark.parametrize("tree,values,golden_name", cases(), ids=[c[2][:-5] for c in cases()])
def test_plan_matches_luet(tree: str, values: str, golden_name: str, tmp_path: Path) -> None:
    import json

    assert CORPUS is not None
    golden = json.loads((CORPUS / "luet-golden" / golden_name).read_text())
    doc = plan(CORPUS / tree / "packages", CORPUS / tree / values, cache=tmp_path / "cache")
    items = doc["packages"]

    # identity: golden names are parsed by matching them against orch's ids
    by_fp: dict[str, dict[str, Any]] = {}
    for item in items:
        fp = fingerprint(item["id"])
        assert fp not in by_fp, f"two orch packages share the luet fingerprint {fp}"
        by_fp[fp] = item
    golden_by_fp = {g["package"]: g for g in golden}
    assert len(golden_by_fp) == len(golden)
    assert sorted(by_fp) == sorted(golden_by_fp), (
        f"missing {sorted(set(golden_by_fp) - set(by_fp))}, extra {sorted(set(by_fp) - set(golden_by_fp))}")
    assert len(items) == len(golden)

    # every rendered build field
    diffs = []
    for fp, g in sorted(golden_by_fp.items()):
        want, got = golden_fields(g["spec"]), orch_fields(by_fp[fp]["spec"])
        for field in FIELDS:
            if not same(want[field], got[field]):
                diffs.append(f"{fp} {field}: luet {want[field]!r} != orch {got[field]!r}")
    assert not diffs, f"{len(diffs)} field(s) differ:\n" + "\n".join(diffs[:30])

    # build order: every build dependency comes first
    position = {item["id"]: i for i, item in enumerate(items)}
    for item in items:
        assert item["action"] in ("build", "cached")
        for dep in item["build_deps"]:
            assert position[dep] < position[item["id"]], f"{dep} after its dependent {item['id']}"


def test_cases_cover_every_values_file() -> None:
    """10 runs: 8 cOS flavours and 2 mocaccino-extra arches, each with a golden file."""
    assert CORPUS is not None
    assert len(cases()) == 10
    for tree, values, golden_name in cases():
        assert (CORPUS / tree / values).is_file()
        assert (CORPUS / "luet-golden" / golden_name).is_file()


def test_null_rule_is_strict() -> None:
    """The comparison itself can fail: a non-null golden needs the same value and type."""
    assert same(None, []) and same(None, "") and same(None, False) and same(None, None)
    assert not same([], None) and not same("", None) and not same(False, None)
    assert not same(None, ["x"]) and not same(None, 0.0)
    assert not same(["a"], ["b"]) and not same(True, 1)
