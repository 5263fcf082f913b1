"""A cache directory restored from CI is attacker input: nothing in it is ever unpickled or obeyed."""
from __future__ import annotations

import json
import os
import pickle
import re
import sqlite3
from pathlib import Path

from cache import Manifest, Store

PICKLE_MAGIC = re.compile(rb"^\x80[\x02-\x05]")


class _Canary:
    """Unpickling this creates a file: proof that pickle ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _populate(s: Store) -> None:
    for i in range(10):
        data = os.urandom(1000 + i)
        d = s.put_bytes(data)
        s.ac_put(f"k{i}", Manifest(artifact=d, artifact_size=len(data), metadata={"i": i}))
        s.kv_put("cutoff", f"k{i}", {"output": d})
    with s.pin(["xxh3-128:" + "0" * 32]):
        s.gc_max_size(1 << 30)
    s.verify()


def test_nothing_in_the_store_is_a_pickle(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with Store(root) as s:
        _populate(s)
    for p in root.rglob("*"):
        if p.is_file():
            assert not PICKLE_MAGIC.match(p.read_bytes()[:2]), p
    for db in root.rglob("*.db"):
        con = sqlite3.connect(db)
        rows = con.execute("SELECT key, raw, mode, filename, value FROM Cache").fetchall()
        assert len(rows) == 20
        for key, raw, mode, filename, value in rows:
            assert isinstance(key, str) and raw == 1 and mode == 1 and filename is None
            assert isinstance(value, str) and isinstance(json.loads(value), dict)
        for (v,) in con.execute("SELECT value FROM Settings"):
            assert not isinstance(v, bytes)
        con.close()


def test_pickled_rows_are_never_loaded(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    canary = tmp_path / "PWNED"
    with Store(root) as s:
        _populate(s)
        db = s.meta.db
    payload = pickle.dumps(_Canary(str(canary)))
    con = sqlite3.connect(db)
    # value pickled (mode 4), key pickled (raw 0), and a value "file" pointing outside
    con.execute("UPDATE Cache SET mode=4, value=? WHERE key='ac:k1'", (payload,))
    con.execute("UPDATE Cache SET mode=4, value=? WHERE key='kv:cutoff:k1'", (payload,))
    con.execute("INSERT INTO Cache (key, raw, store_time, mode, value) VALUES (?, 0, 0, 1, '{}')", (payload,))
    victim = tmp_path / "victim"
    victim.write_text("precious")
    con.execute("UPDATE Cache SET mode=2, filename=?, value=NULL WHERE key='ac:k2'", (str(victim),))
    con.commit()
    con.close()
    with Store(root) as s:
        assert s.ac_get("k1") is None and s.kv_get("cutoff", "k1") is None
        assert s.ac_get("k2") is None
        assert s.ac_get("k3") is not None
        report = s.verify(repair=True)
        assert len(report.malformed) == 4, report.lines()
        s.gc_keep({"k3"})
        s.ac_delete("k3")
        assert s.verify().clean
    assert not canary.exists()
    assert victim.read_text() == "precious"


def test_hostile_settings_and_triggers_are_dropped(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with Store(root) as s:
        _populate(s)
        db = s.meta.db
    con = sqlite3.connect(db)
    con.execute("INSERT OR REPLACE INTO Settings VALUES ('sqlite_journal_mode', 'off')")  # we override
    con.execute("INSERT OR REPLACE INTO Settings VALUES ('sqlite_foo', 'x; DROP TABLE Cache')")
    con.execute("INSERT OR REPLACE INTO Settings VALUES ('disk_evil', 1)")
    con.execute("INSERT OR REPLACE INTO Settings VALUES ('eviction_policy', 'least-recently-used')")
    con.execute("CREATE TRIGGER evil AFTER INSERT ON Cache BEGIN DELETE FROM Cache; END")
    con.execute("CREATE VIEW v AS SELECT 1")
    con.commit()
    con.close()
    with Store(root) as s:
        assert s.ac_get("k1") is not None
        d = s.put_bytes(b"new")
        s.ac_put("new", Manifest(artifact=d, artifact_size=3))
        assert s.ac_get("k2") is not None and s.ac_get("new") is not None
    con = sqlite3.connect(db)
    settings = dict(con.execute("SELECT key, value FROM Settings"))
    names = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type IN ('trigger','view')")}
    con.close()
    assert "sqlite_foo" not in settings and "disk_evil" not in settings
    assert settings["eviction_policy"] == "none" and settings["sqlite_journal_mode"] == "wal"
    assert "evil" not in names and "v" not in names


def test_garbage_pin_files_are_ignored(tmp_path: Path) -> None:
    with Store(tmp_path / "c") as s:
        (s.base / "pins" / "999-x.pin").write_bytes(b"\x80\x04garbage")
        d = s.put_bytes(b"abc")
        assert s.gc_max_size(0).removed_blobs == 1 and not s.contains(d)
        assert not (s.base / "pins" / "999-x.pin").exists()  # nobody held it: stale, removed
