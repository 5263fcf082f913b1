"""The real luet corpora render exactly as luet 0.35 did (goldens in shared/corpus/luet-golden).

Values are built as luet does for one values file: the package definition (or collection stanza)
overlaid by the values file's top-level keys (the values file wins; no deep merge). All
`templates/**/*.yaml` files of the tree are shared, in walk order. Only the render module and
PyYAML are used here.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.spec.render import Renderer


def _corpus_root() -> Path:
    here = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    return here if here.is_dir() else Path("/work/shared/corpus")


CORPUS = _corpus_root()
pytestmark = pytest.mark.skipif(not (CORPUS / "luet-golden").is_dir(), reason="luet corpora not available")

COS_FLAVOURS = ["blue-arm64", "blue-x86_64", "green-arm64", "green-x86_64",
                "orange-arm64", "orange-x86_64", "teal-arm64", "teal-x86_64"]
JOBS = [("cos-toolkit", f"values/{f}.yaml", f"cos-{f}.json", 75) for f in COS_FLAVOURS] + [
    ("mocaccino-extra", "values/amd64.yaml", "mocaccino-extra-amd64.json", 52),
    ("mocaccino-extra", "values/arm/v7.yaml", "mocaccino-extra-arm-v7.json", 52),
]
FIELDS = ["image", "steps", "prelude", "env", "package_dir", "unpack", "includes", "excludes",
          "requires_final_images", "retrieve"]


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _templates(tree: Path) -> list[tuple[str, str]]:
    return [(str(p.relative_to(tree)), p.read_text()) for p in _walk(tree / "packages")
            if "templates" in p.relative_to(tree).parts[:-1] and p.suffix.lower() == ".yaml"]


def _stanzas(tree: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for p in _walk(tree / "packages"):
        if p.name == "definition.yaml":
            yield p.parent, yaml.safe_load(p.read_text()) or {}
        elif p.name == "collection.yaml":
            for stanza in (yaml.safe_load(p.read_text()) or {}).get("packages") or []:
                yield p.parent, stanza


def _values(stanza: dict[str, Any], values_file: dict[str, Any]) -> dict[str, Any]:
    merged = dict(stanza)
    merged.update(values_file)  # luet: the values file wins, top-level keys only
    return merged


def _norm(v: Any) -> Any:
    return None if v in (None, [], "", False, {}) else v


def _deps(items: Any) -> list[tuple[str, str, str]]:
    return sorted((d.get("category", ""), d.get("name", ""), d.get("version", "")) for d in items or [])


def _copies(items: Any) -> list[tuple[Any, ...]]:
    return [(tuple(_deps([c["package"]])[0]) if c.get("package") else None, c.get("image") or "",
             c.get("source", ""), c.get("destination", "")) for c in items or []]


def _differences(spec: dict[str, Any], golden: dict[str, Any]) -> list[str]:
    diffs = [f for f in FIELDS if _norm(spec.get(f)) != _norm(golden.get(f))]
    for f in ("requires", "conflicts"):
        if _deps(spec.get(f)) != _deps(golden["package"].get(f)):
            diffs.append(f)
    if _copies(spec.get("copy")) != _copies(golden.get("copy")):
        diffs.append("copy")
    return diffs


@pytest.mark.parametrize("corpus,values_path,golden_name,count", JOBS, ids=[j[2] for j in JOBS])
def test_corpus_renders_like_luet(corpus: str, values_path: str, golden_name: str, count: int) -> None:
    tree = CORPUS / corpus
    values_file = yaml.safe_load((tree / values_path).read_text()) or {}
    golden = {e["package"]: e for e in json.loads((CORPUS / "luet-golden" / golden_name).read_text())}
    assert len(golden) == count
    renderer = Renderer(_templates(tree))
    matched, quirks, seen = 0, 0, set()
    failures: list[str] = []
    for pdir, stanza in _stanzas(tree):
        ident = f"{stanza.get('category', '')}/{stanza['name']}-{stanza['version']}"
        seen.add(ident)
        build = pdir / "build.yaml"
        spec: dict[str, Any] = {}
        if build.exists():
            text = renderer.render(str(build.relative_to(tree)), build.read_text(), _values(stanza, values_file))
            assert "<no value>" not in text
            spec = yaml.safe_load(text) or {}
        entry = golden[ident]
        g = entry["spec"]["package"]
        if f"{g['category']}/{g['name']}-{g['version']}" != ident:
            quirks += 1  # luet's golden shows the provider's spec (provides substitution), not this package's
            continue
        assert entry["path"] == str(pdir.relative_to(tree))
        diffs = _differences(spec, entry["spec"])
        if diffs:
            failures.append(f"{ident}: {diffs}")
        else:
            matched += 1
    assert not failures, failures
    assert seen == set(golden)
    assert matched + quirks == count and quirks <= 1
