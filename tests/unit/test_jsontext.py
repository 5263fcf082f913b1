"""orchestrator.jsontext gives json.dumps's exact text, for every kind of plain data."""
from __future__ import annotations

import json
import random
from typing import Any

import pytest

from orchestrator import jsontext

SCALARS: list[Any] = [None, True, False, 0, -7, 2**70, 1.5, 1e300, -0.0, float("nan"), float("inf"),
                      "", "plain", "é ✓ \u2028 \x00 \" \\ \n", "😀"]


def _random_doc(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 4 else 3)
    if kind < 3:
        return rng.choice(SCALARS)
    if kind == 3:
        return [_random_doc(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = rng.sample(["b", "a", "z", "é", "10", "2", "key with space"], rng.randrange(5))
    return {k: _random_doc(rng, depth + 1) for k in keys}


@pytest.mark.parametrize("seed", range(200))
def test_same_text_as_json_dumps(seed: int) -> None:
    doc = _random_doc(random.Random(seed))
    assert jsontext.dumps(doc) == json.dumps(doc)
    assert jsontext.compact(doc) == json.dumps(doc, separators=(",", ":"))
    assert jsontext.canonical(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":"))
    assert jsontext.dumps_any(doc) == json.dumps(doc, default=str)


@pytest.mark.parametrize("value", SCALARS)
def test_scalars_at_the_top(value: Any) -> None:
    assert jsontext.dumps(value) == json.dumps(value)
    assert jsontext.canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_default_and_refusal() -> None:
    import datetime

    day = datetime.date(2024, 1, 2)
    assert jsontext.dumps_any({"d": day, "l": [day]}) == json.dumps({"d": day, "l": [day]}, default=str)
    with pytest.raises(TypeError, match="date is not JSON serializable"):
        jsontext.dumps({"d": day})
    with pytest.raises(TypeError):
        jsontext.canonical({1.5j})


def test_non_string_keys_as_json_converts_them() -> None:
    doc = {1: "a", 2.5: "b", False: "c", None: "d"}
    assert jsontext.dumps(doc) == json.dumps(doc)
    mixed = {"b": 1, "a": 2}
    assert jsontext.canonical(mixed) == '{"a":2,"b":1}'


def test_reusable_after_an_error() -> None:
    """An encoder that failed half-way (no circular-reference table to leave dirty) still works."""
    shared = ["x"]
    with pytest.raises(TypeError):
        jsontext.dumps([shared, object()])
    assert jsontext.dumps([shared, shared]) == '[["x"], ["x"]]'
