"""The public surface, and the rule that `cache/` stands alone."""
from __future__ import annotations

import ast
from pathlib import Path

import cache

ROOT = Path(cache.__file__).parent


def test_all_is_importable_and_complete() -> None:
    for name in cache.__all__:
        assert hasattr(cache, name), name
    assert {"Store", "Manifest", "Digest", "parse_digest", "StoreError", "MissingBlob",
            "GcReport", "VerifyReport"} <= set(cache.__all__)


def test_cache_imports_nothing_from_orchestrator() -> None:
    for py in ROOT.glob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "orchestrator" for n in names), py
            assert "pickle" not in names, py


def test_modules_stay_small() -> None:
    for py in ROOT.glob("*.py"):
        assert len(py.read_text().splitlines()) <= 400, py
