"""The layering rules, checked mechanically (Meson's one-subprocess-chokepoint rule, and
the arrows of the data flow): a violation fails here, not in review."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside a package
                package = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                names.add(f"{package}.{node.module}" if node.module else package)
            elif node.module:
                names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_only_the_buildah_module_runs_subprocesses() -> None:
    allowed = {ROOT / "orchestrator/backend/buildah.py", ROOT / "orchestrator/graphviz.py"}
    offenders = [str(p.relative_to(ROOT)) for p in _modules("orchestrator") + _modules("cache")
                 if p not in allowed and "subprocess" in _imports(p)]
    assert offenders == []


def test_store_imports_nothing_from_the_orchestrator() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _modules("cache")
                 if any(n == "orchestrator" or n.startswith("orchestrator.") for n in _imports(p))]
    assert offenders == []


def test_loading_knows_nothing_of_buildah_scheduling_or_the_store() -> None:
    banned = ("orchestrator.backend", "orchestrator.scheduler", "orchestrator.execute", "cache", "networkx")
    offenders = [(str(p.relative_to(ROOT)), n) for p in _modules("orchestrator/spec")
                 for n in _imports(p) if any(n == b or n.startswith(b + ".") for b in banned)]
    assert offenders == []


def test_scheduler_knows_nothing_of_yaml_templates_buildah_or_the_store() -> None:
    banned = ("orchestrator.spec", "orchestrator.backend", "cache", "yaml", "jinja2")
    names = _imports(ROOT / "orchestrator/scheduler.py")
    assert [n for n in names if any(n == b or n.startswith(b + ".") for b in banned)] == []


def test_nothing_unpickles() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _modules("orchestrator") + _modules("cache")
                 if {"pickle", "cPickle", "dill", "marshal"} & _imports(p)]
    assert offenders == []
