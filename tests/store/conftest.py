"""Fixtures for the store tests."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from cache import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "cache")
    yield s
    s.close()
