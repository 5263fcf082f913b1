"""The template stack is imported in a thread while a tree is walked: joined before the walk's
caller goes on (nothing may fork with it running), silent when the import fails."""
from __future__ import annotations

import sys
import threading

import pytest

from orchestrator.spec import load


def test_the_thread_is_joined_and_a_failed_import_is_silent(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delitem(sys.modules, "orchestrator.spec.render", raising=False)
    seen: list[str] = []

    def failing(name: str) -> None:
        seen.append(name)
        raise ImportError("no jinja2 here")

    monkeypatch.setattr(load.importlib, "import_module", failing)
    raised: list[object] = []
    monkeypatch.setattr(threading, "excepthook", raised.append)  # what an uncaught error would reach
    with load._importing_renderer():
        pass  # the walk
    assert seen == ["orchestrator.spec.render"]
    assert threading.active_count() == 1 and not [t for t in threading.enumerate() if t.name == "orch-import"]
    assert raised == [] and capsys.readouterr().err == ""


def test_nothing_is_started_once_the_stack_is_loaded() -> None:
    import orchestrator.spec.render  # noqa: F401

    with load._importing_renderer():
        assert not [t for t in threading.enumerate() if t.name == "orch-import"]
