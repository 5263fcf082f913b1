"""Packages cross the render workers' pipe pickled as flat tuples (`Package.__reduce__`): every
field, the ones equality ignores included, must come back as it was."""
from __future__ import annotations

import dataclasses
import pickle

from orchestrator.model import BuildBody, BuildSpec, CopySpec, DepRef, Package, PackageRef, SubPackage


def _fields(obj: object) -> dict[str, object]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def test_every_field_survives_the_flat_pickle() -> None:
    body = BuildBody(prelude=("p",), steps=("s",), env=("E=1",), unpack=True, package_dir="/out",
                     includes=("/i",), excludes=("/e",))
    spec = BuildSpec(
        image="img", requires=(DepRef("c", "a", ">=1"),), requires_final_images=True, conflicts=(DepRef("c", "x"),),
        provides=(DepRef("c", "p", "1"),), copy=(CopySpec("/a", "/b", DepRef("c", "d")),),
        retrieve=("r",), subpackages=(SubPackage(DepRef("c", "sub"), ("/x",)),), raw_json='{"image":"img"}',
        stored_body=body)
    pkg = Package(PackageRef("cat", "name", "1.0"), '{"name":"name"}', spec, "/tree", "cat/name",
                  "cat/name/definition.yaml", provides=(DepRef("v", "w"),), conflicts=(DepRef("v", "z", "<2"),),
                  runtime_requires=(DepRef("r", "t"),), hidden=True, finalize={"install": ["x"]},
                  rendered='{"image":"img"}', values_json='{"a":1}')
    # a field added to either class must be added to `Package.__reduce__` too (and here)
    assert set(_fields(pkg)) == {"ref", "definition_json", "spec", "tree", "directory", "source_file", "provides",
                                 "conflicts", "runtime_requires", "hidden", "finalize", "rendered", "values_json"}
    assert len(_fields(spec)) == 10
    back = pickle.loads(pickle.dumps(pkg))
    assert _fields(back) == _fields(pkg) and _fields(back.spec) == _fields(spec)
    assert back.ref.id == "cat/name@1.0"
    bare = dataclasses.replace(pkg, spec=None)
    assert _fields(pickle.loads(pickle.dumps(bare))) == _fields(bare)
