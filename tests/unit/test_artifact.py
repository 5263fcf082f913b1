"""Artefact writer, safe layered extractor, tree delta and filters — no buildah needed."""
from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import zstandard

from orchestrator.backend import fstree
from orchestrator.backend.artifact import (
    read_members,
    write_artifact,
    write_empty_artifact,
)
from orchestrator.backend.buildah import Buildah
from orchestrator.backend.builder import build
from orchestrator.backend.unpack import Limits, unpack_artifact
from orchestrator.errors import OrchError, Reason
from orchestrator.model import BuildJob, PackageRef, SubPackageJob

ROOT = os.geteuid() == 0


def _tree(base: Path) -> Path:
    (base / "usr/bin").mkdir(parents=True)
    (base / "usr/bin/tool").write_text("#!/bin/sh\necho tool\n")
    (base / "usr/bin/tool").chmod(0o755)
    (base / "usr/bin/alias").symlink_to("tool")
    (base / "etc").mkdir()
    (base / "etc/conf").write_text("a=1\n")
    os.link(base / "usr/bin/tool", base / "usr/bin/tool2")
    (base / "long" / ("d" * 120)).mkdir(parents=True)
    (base / "long" / ("d" * 120) / "é-名前").write_text("unicode\n")
    return base


def _write(root: Path, dest: Path, whiteouts: tuple[str, ...] = ()) -> tuple[str, ...]:
    nodes = fstree.scan(str(root))
    return write_artifact(str(dest), str(root), fstree.sort_paths(nodes), nodes, whiteouts)


# ---------------------------------------------------------------- determinism
def test_same_content_gives_identical_bytes(tmp_path: Path) -> None:
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    os.utime(b / "etc/conf", (1_700_000_000, 1_700_000_000))  # mtimes differ, content does not
    _write(a, tmp_path / "a.tar.zst", ("/gone",))
    files = _write(b, tmp_path / "b.tar.zst", ("/gone",))
    assert (tmp_path / "a.tar.zst").read_bytes() == (tmp_path / "b.tar.zst").read_bytes()
    assert files == ("etc/conf", f"long/{'d' * 120}/é-名前", "usr/bin/alias", "usr/bin/tool", "usr/bin/tool2")


def test_member_metadata_is_normalised(tmp_path: Path) -> None:
    _write(_tree(tmp_path / "t"), tmp_path / "t.tar.zst", ("/etc/old",))
    members = {info.name: (info, data) for info, data in read_members(str(tmp_path / "t.tar.zst"))}
    names = list(members)
    assert names == fstree.sort_paths(names)  # tree order
    assert names.index("etc") < names.index("etc/.wh.old") < names.index("etc/conf")
    for info, _ in members.values():
        assert info.mtime == 0 and info.uname == "" and info.gname == ""
        assert not {"atime", "ctime"} & set(info.pax_headers)
    tool, tool2 = members["usr/bin/tool"][0], members["usr/bin/tool2"][0]
    assert tool.isreg() and tool.mode == 0o755 and members["usr/bin/tool"][1] == b"#!/bin/sh\necho tool\n"
    assert tool2.islnk() and tool2.linkname == "usr/bin/tool"
    assert members["usr/bin/alias"][0].issym() and members["usr/bin/alias"][0].linkname == "tool"


def test_source_date_epoch_clamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "old").write_text("x")
    os.utime(root / "old", (100, 100))
    (root / "new").write_text("y")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000")
    _write(root, tmp_path / "o.tar.zst")
    got = {i.name: i.mtime for i, _ in read_members(str(tmp_path / "o.tar.zst"))}
    assert got == {"new": 1000, "old": 100}


def test_empty_artifact_is_stable_and_valid(tmp_path: Path) -> None:
    write_empty_artifact(str(tmp_path / "a"))
    write_empty_artifact(str(tmp_path / "b"))
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert list(read_members(str(tmp_path / "a"))) == []
    zstandard.ZstdDecompressor().decompressobj().decompress((tmp_path / "a").read_bytes())


def test_virtual_job_needs_no_buildah(tmp_path: Path) -> None:
    ref = PackageRef("virtual", "meta", "1.0")
    sub = SubPackageJob(PackageRef("virtual", "meta-sub", "1.0"))
    job = BuildJob(ref=ref, key="k", context_dir=str(tmp_path), virtual=True, subpackages=(sub,))
    bh = Buildah(None, None, storage_driver="vfs", binary=str(tmp_path / "no-buildah"))
    out = build(job, bh, str(tmp_path / "w"), str(tmp_path / "log"))
    assert out.image_id == "" and out.files == () and out.artifact.endswith("meta-virtual-1.0.package.tar.zst")
    assert list(read_members(out.artifact)) == [] and out.subpackages[0][0] == sub.ref


# ---------------------------------------------------------------- round trip and layers
def test_round_trip(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    _write(src, tmp_path / "a.tar.zst")
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_artifact(str(tmp_path / "a.tar.zst"), str(dest))
    assert (dest / "usr/bin/tool").read_text() == "#!/bin/sh\necho tool\n"
    assert os.readlink(dest / "usr/bin/alias") == "tool"
    assert (dest / "usr/bin/tool").stat().st_mode & 0o777 == 0o755
    assert os.path.samefile(dest / "usr/bin/tool", dest / "usr/bin/tool2")
    assert (dest / "long" / ("d" * 120) / "é-名前").read_text() == "unicode\n"


def _tar(dest: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], zst: bool = True) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    dest.write_bytes(zstandard.ZstdCompressor().compress(raw) if zst else raw)
    return str(dest)


def _m(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = b"", link: str = "",
       size: int | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
    if size is not None:
        info.size = size
    return info, (data if kind == tarfile.REGTYPE and size is None else None)


def test_whiteouts_apply_to_lower_layers_only(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    dest.mkdir()
    lower = _tar(tmp_path / "1.tar.zst", [_m("etc", tarfile.DIRTYPE), _m("etc/a", data=b"a"), _m("etc/b", data=b"b"),
                                          _m("opt", tarfile.DIRTYPE), _m("opt/x", data=b"x")])
    upper = _tar(tmp_path / "2.tar", [_m("etc/.wh.a"), _m("opt/new", data=b"n"), _m("opt/.wh..wh..opq"),
                                      _m("etc/b", data=b"B2")], zst=False)
    unpack_artifact(lower, str(dest))
    unpack_artifact(upper, str(dest))
    assert sorted(os.listdir(dest / "etc")) == ["b"] and (dest / "etc/b").read_text() == "B2"
    assert sorted(os.listdir(dest / "opt")) == ["new"]  # opaque: lower `x` hidden, same-layer `new` kept


def test_type_changes_replace(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    dest.mkdir()
    unpack_artifact(_tar(tmp_path / "1", [_m("d", tarfile.DIRTYPE), _m("d/f", data=b"f"), _m("f", data=b"x")]),
                    str(dest))
    unpack_artifact(_tar(tmp_path / "2", [_m("d", data=b"now a file"), _m("f", tarfile.DIRTYPE)]), str(dest))
    assert (dest / "d").read_text() == "now a file" and (dest / "f").is_dir()


def test_symlinked_parent_inside_root_is_followed(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    dest.mkdir()
    arch = _tar(tmp_path / "a", [_m("usr", tarfile.DIRTYPE), _m("usr/lib", tarfile.DIRTYPE),
                                 _m("lib", tarfile.SYMTYPE, link="/usr/lib"), _m("lib/mod", data=b"m")])
    unpack_artifact(arch, str(dest))
    assert (dest / "usr/lib/mod").read_text() == "m" and os.readlink(dest / "lib") == "/usr/lib"


# ---------------------------------------------------------------- hostile archives
HOSTILE = {
    "dotdot": ([_m("../x", data=b"x")], "'..'"),
    "absolute": ([_m("/abs", data=b"x")], "absolute"),
    "symlink-escape": ([_m("evil", tarfile.SYMTYPE, link="../../.."), _m("evil/x", data=b"x")], "escapes"),
    "symlink-escape-deep": ([_m("a", tarfile.DIRTYPE), _m("a/l", tarfile.SYMTYPE, link="../.."),
                             _m("a/l/x", data=b"x")], "escapes"),
    "hardlink-outside": ([_m("h", tarfile.LNKTYPE, link="../../etc/passwd")], "'..'"),
    "hardlink-absolute": ([_m("h", tarfile.LNKTYPE, link="/etc/passwd")], "absolute"),
    "hardlink-missing": ([_m("h", tarfile.LNKTYPE, link="nothere")], "not in the archive"),
    "hardlink-to-dir": ([_m("d", tarfile.DIRTYPE), _m("h", tarfile.LNKTYPE, link="d")], "not a regular file"),
    "huge-size": ([_m("bomb", size=1 << 50)], "exceeds"),
    "device": ([_m("dev/null", tarfile.CHRTYPE)], "device"),
    "root-symlink": ([_m(".", tarfile.SYMTYPE, link="/")], "root"),
    "bad-whiteout": ([_m(".wh..")], "malformed whiteout"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused(tmp_path: Path, case: str) -> None:
    members, why = HOSTILE[case]
    if case == "device":
        members[0][0].devmajor, members[0][0].devminor = 1, 3
    arch = _tar(tmp_path / f"{case}.tar.zst", members)
    dest = tmp_path / "root" / "inner"
    dest.mkdir(parents=True)
    with pytest.raises(OrchError) as err:
        unpack_artifact(arch, str(dest))
    assert err.value.reason is Reason.HOSTILE_ARCHIVE
    assert arch in str(err.value) and why in str(err.value)
    assert not (tmp_path / "x").exists() and not (tmp_path / "root" / "x").exists()


def test_byte_budget_counts_all_members(tmp_path: Path) -> None:
    arch = _tar(tmp_path / "a", [_m("a", data=b"x" * 600), _m("b", data=b"y" * 600)])
    (tmp_path / "d").mkdir()
    with pytest.raises(OrchError, match="'b'.*exceeds"):
        unpack_artifact(arch, str(tmp_path / "d"), limits=Limits(max_bytes=1000))


def test_oversized_pax_header_refused_before_reading(tmp_path: Path) -> None:
    info = tarfile.TarInfo("x")
    info.pax_headers = {"comment": "z" * (2 << 20)}
    arch = _tar(tmp_path / "a", [(info, b"")])
    (tmp_path / "d").mkdir()
    with pytest.raises(OrchError, match="extended header"):
        unpack_artifact(arch, str(tmp_path / "d"))


def test_corrupt_archive(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 100)
    (tmp_path / "d").mkdir()
    with pytest.raises(OrchError) as err:
        unpack_artifact(str(tmp_path / "bad"), str(tmp_path / "d"))
    assert err.value.reason is Reason.HOSTILE_ARCHIVE


@pytest.mark.skipif(not ROOT, reason="creating device nodes needs root")
def test_devices_when_allowed(tmp_path: Path) -> None:
    info, _ = _m("null", tarfile.CHRTYPE)
    info.devmajor, info.devminor = 1, 3
    (tmp_path / "d").mkdir()
    unpack_artifact(_tar(tmp_path / "a", [(info, None)]), str(tmp_path / "d"), allow_devices=True)
    assert os.major((tmp_path / "d/null").lstat().st_rdev) == 1


def test_setuid_kept_or_stripped(tmp_path: Path) -> None:
    info, data = _m("su", data=b"x")
    info.mode = 0o4755
    arch = _tar(tmp_path / "a", [(info, data)])
    for strip, want in ((False, 0o4755), (True, 0o755)):
        dest = tmp_path / f"d{strip}"
        dest.mkdir()
        unpack_artifact(arch, str(dest), strip_setuid=strip)
        assert (dest / "su").stat().st_mode & 0o7777 == want


# ---------------------------------------------------------------- delta and filters
def test_delta_added_modified_deleted(tmp_path: Path) -> None:
    old, new = _tree(tmp_path / "old"), _tree(tmp_path / "new")
    for t in (old, new):  # identical mtimes, as in two containers of one image
        for p in t.rglob("*"):
            os.utime(p, (0, 0), follow_symlinks=False)
    (new / "etc/conf").write_text("a=2\n")  # same size, new content
    os.utime(new / "etc/conf", (0, 0))  # same size and mtime: the documented shortcut trusts it
    (new / "usr/bin/alias").unlink()
    (new / "usr/bin/alias").symlink_to("tool2")
    (new / "etc/added").write_text("new")
    (new / "usr/bin/tool").chmod(0o700)
    (new / "dev").mkdir()
    (new / "dev/null").write_text("")
    (new / "etc/hosts").write_text("")
    shutil.rmtree(new / "long")
    o, n = fstree.scan(str(old)), fstree.scan(str(new))
    changed, deleted = fstree.delta(o, n, str(old), str(new))
    assert "/etc/added" in changed and "/usr/bin/alias" in changed and "/usr/bin/tool" in changed
    assert "/etc/conf" not in changed  # equal size and mtime: trusted unchanged (documented rule)
    assert not any(p.startswith("/dev") for p in changed) and "/etc/hosts" not in changed
    assert deleted == ["/long"]
    os.utime(new / "etc/conf", (5, 5))  # a rewrite shows in the mtime: content is compared
    changed, _ = fstree.delta(o, fstree.scan(str(new)), str(old), str(new))
    assert "/etc/conf" in changed


def test_selector_luet_semantics() -> None:
    sel = fstree.selector(["^/usr/bin/yq$", "^/etc"], ["/etc/secret"])
    paths = ["/usr", "/usr/bin", "/usr/bin/yq", "/usr/bin/other", "/etc", "/etc/a", "/etc/secret"]
    assert sel.filter(paths) == ["/usr/bin/yq", "/etc", "/etc/a"]
    assert fstree.selector([], ["^/luetbuild"]).filter(["/luetbuild/x", "/a"]) == ["/a"]
    with pytest.raises(OrchError) as err:
        fstree.selector(["("], [])
    assert err.value.reason is Reason.INVALID_SPEC


def test_with_parents_adds_real_ancestors() -> None:
    node = fstree.Node("d", 0o755, 0, 0, 0, 0, 0)
    nodes = {"/usr": node, "/usr/bin": node, "/usr/bin/yq": fstree.Node("f", 0o755, 0, 0, 1, 0, 0)}
    assert fstree.with_parents(["/usr/bin/yq"], nodes) == ["/usr", "/usr/bin", "/usr/bin/yq"]


def test_whiteout_named_files_are_refused() -> None:
    with pytest.raises(OrchError, match="reserved"):
        fstree.check_names(["/etc/.wh.trick"])
