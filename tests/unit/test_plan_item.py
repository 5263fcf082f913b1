"""`PlanItem.make` (the fast constructor every plan uses) builds exactly what `PlanItem(...)`
builds, and stays in step with the dataclass's fields."""
from __future__ import annotations

import dataclasses

import pytest

from orchestrator.plan import PlanItem


def test_make_equals_the_dataclass_constructor() -> None:
    args = ("c/a@1.0", "k" * 32, "build", ("not built before",), ("c/b@1.0",), '{"image":"x"}',
            {"c/a@1.0": {"key": "k"}}, {"image": "sha256:1"})
    made, built = PlanItem.make(*args), PlanItem(*args)
    assert made == built and repr(made) == repr(built)
    assert vars(made) == vars(built)
    assert made.spec == {"image": "x"} and made.explanation == {"key": "k"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.action = "cached"  # type: ignore[misc]


def test_make_takes_every_field() -> None:
    """A field added to PlanItem must be added to `make` too (it would be missing otherwise)."""
    import inspect

    params = list(inspect.signature(PlanItem.make).parameters)
    assert params == [f.name for f in dataclasses.fields(PlanItem)]
