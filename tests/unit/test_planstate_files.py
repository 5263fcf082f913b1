"""The plan state's file format: written in parts, read back whole; a damaged file is ignored."""
from __future__ import annotations

import array
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import planstate
from orchestrator.spec.walk import Walk

DOCS: list[Any] = [
    {}, [], "text", None, 7, {"a": {"b": [1, 2, {"c": "x"}], "e": {}}, "d": [[], [1]]},
    [1, [2, [3, [4]]]], {"x": {"y": {"z": {"w": 1}}}}, list(range(2000)),
    {"k": [str(i) for i in range(1500)], "ü": "ß\n\"quoted\""},
]


@pytest.mark.parametrize("doc", DOCS)
def test_parts_encode_exactly_as_json_dumps(doc: Any) -> None:
    assert "".join(planstate._parts(doc, 2)) == json.dumps(doc, separators=(",", ":"))


@pytest.mark.parametrize("lines", [[], [""], ["{}"], ['{"a": "x\\ny"}', "", "[1]"],
                                   [json.dumps({"i": i}) for i in range(1200)]])
def test_lines_round_trip(tmp_path: Path, lines: list[str]) -> None:
    doc = {"token": "t", "n": 3, "specs": lines}
    planstate._write(str(tmp_path / "s"), doc, lines="specs")
    assert planstate._read(str(tmp_path / "s")) == doc


def test_a_line_with_a_newline_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        planstate._write(str(tmp_path / "s"), {"specs": ["ok", "two\nlines"]}, lines="specs")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "count"])
def test_damaged_files_read_as_nothing(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "s"
    planstate._write(str(path), {"specs": ["a", "b", "c"], "x": 1}, lines="specs")
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[:-2]
    elif damage == "flip":
        raw[-1] ^= 0x01
    else:  # a consistent digest, but fewer lines than announced
        header, _, body = bytes(raw).partition(b"\n")
        body = body.rsplit(b"\n", 1)[0]
        import xxhash
        raw = bytearray(header.rsplit(b" ", 1)[0] + b" " + xxhash.xxh3_128_hexdigest(body).encode()
                        + b"\n" + body)
    path.write_bytes(bytes(raw))
    assert planstate._read(str(path)) is None


@pytest.mark.parametrize("field,value", [("dstats", "!!!"), ("fstats", "AAAA"), ("files", 7),
                                         ("dirs", None), ("trees", 3)])
def test_a_damaged_walk_is_none(field: str, value: Any) -> None:
    walk = Walk(["/t"], ["/t"], array.array("q", (1, 2, 3)), ["/t/a"], array.array("q", (4, 5, 6, 7)), [])
    doc = walk.to_json()
    assert Walk.from_json(doc) == walk
    doc[field] = value
    assert Walk.from_json(doc) is None


@pytest.mark.parametrize("patch", [[[1, 0, 0, 0, 0]], [[-1, 0, 0, 0, 0]], [["0", 0, 0, 0, 0]], [[0, 1.5, 0, 0, 0]],
                                   [[0, 1]], 7])
def test_a_damaged_walk_patch_is_none(patch: Any) -> None:
    walk = Walk(["/t"], ["/t"], array.array("q", (1, 2, 3)), ["/t/a"], array.array("q", (4, 5, 6, 7)), [])
    assert Walk.from_json(walk.to_json(), patch) is None


def test_a_walk_patch_holds_every_change_since_the_stored_walk() -> None:
    files = [f"/t/{i}" for i in range(300)]
    stored = Walk(["/t"], ["/t"], array.array("q", (1, 2, 3)), files, array.array("q", range(1200)), [])
    first = array.array("q", stored.fstats)
    first[4 * 7 + 1] = -1  # file 7's mtime
    assert stored.changed_at(first) == [7] and stored.changed_at(stored.fstats) == []
    read = Walk.from_json(stored.to_json(), stored.patch_after([7], first))
    assert read is not None and read.fstats == first and read.patched == {7: (28, -1, 30, 31)}
    second = array.array("q", first)
    second[4 * 299:] = array.array("q", (9, 9, 9, 9))
    assert read.changed_at(second) == [299]
    again = Walk.from_json(stored.to_json(), read.patch_after([299], second))
    assert again is not None and again.fstats == second and sorted(again.patched) == [7, 299]


def test_dirs_stream_and_read_back(tmp_path: Path) -> None:
    """Folder entries go to the next dirs file as they come (hits carried over, racy ones not),
    the files' records last; a damaged or half-written file reads as nothing."""
    old = 1_000_000_000  # an mtime long settled
    sig = ["s", [["definition.yaml", 1, old, 3, 4]]]
    state = planstate.PlanState(str(tmp_path), "cfg")
    state.put_dir("/t/a", sig, '{"items": [], "warnings": ["tab\\there"]}')
    state.put_dir("/t/racy", ["s", [["definition.yaml", 1, state.started_ns, 3, 4]]], "{}")
    state.put_file("/t/a/f", (1, old, 3, 4), "-:d")
    state.save_dirs()
    again = planstate.PlanState(str(tmp_path), "cfg")
    assert again.get_dir("/t/a", sig) == {"items": [], "warnings": ["tab\there"]}
    assert again.get_dir("/t/a", ["other"]) is None and again.get_dir("/t/racy", sig) is None
    assert again.files == {"/t/a/f": [1, old, 3, 4, "-:d"]}
    again.done_dirs()  # the entries go; the files' records (and any new ones) stay
    again.put_file("/t/a/g", (2, old, 5, 6), "x:e")
    assert again.get_dir("/t/a", sig) is not None  # read again when asked
    assert sorted(again.files) == ["/t/a/f", "/t/a/g"]
    again.dirty = False
    again.save_dirs()  # nothing rendered or hashed: the file stays as it is
    path = Path(again.dirs_path or "")
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])
    assert planstate.PlanState(str(tmp_path), "cfg").get_dir("/t/a", sig) is None
    failed = planstate.PlanState(str(tmp_path), "cfg2")
    failed.put_dir("/t/a", sig, "{}")
    failed.close()  # a plan that failed: no temporary file is left
    assert sorted(p.name for p in (tmp_path / "plan").iterdir()) == ["cfg.dirs"]
