"""Safe YAML 1.1 loading, bounded, as luet reads specs.

PyYAML's C SafeLoader gives YAML 1.1 (anchors, `<<` and `!!merge <<` merge keys,
`yes/no` booleans) and constructs only plain types: a `!!python/...` tag is an error,
never code. On top of that we bound what a hostile file can cost: its size, its depth,
and the size of the document *after* alias expansion (a "billion laughs" file is a few
hundred bytes that expand to gigabytes once anything walks it).
"""
from __future__ import annotations

from typing import Any

import yaml

from orchestrator.errors import Reason, SpecError

try:  # the C loader is mandated for speed; fall back only where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 1_000_000  # expanded nodes (aliases counted every time they are used)
MAX_DEPTH = 200


def load(text: str, path: str) -> Any:
    """Parse one YAML document; errors name `path` and the line."""
    if len(text) > MAX_BYTES:
        raise SpecError(
            f"file is {len(text)} bytes, over the {MAX_BYTES} byte limit for a spec",
            reason=Reason.INVALID_YAML,
            file=path,
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if "*" in text:  # aliases exist: bound their expansion before constructing
            _check_expansion(node, path)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what, hint = exc.problem or "invalid YAML", "fix the syntax"
        if "could not determine a constructor" in what:
            what = "tag " + what.rsplit(" ", 1)[-1].replace("tag:yaml.org,2002:", "!!") + " is not allowed"
            hint = "specs are plain YAML: remove the tag"
        raise SpecError(
            f"invalid YAML: {what}", reason=Reason.INVALID_YAML, file=path, line=line, hint=hint
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", reason=Reason.INVALID_YAML, file=path) from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, path: str) -> None:
    """Expanded size and depth of the node graph, memoised so the check itself is linear."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    # iterative post-order walk over the DAG of nodes (aliases share node objects)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            children = _children(node)
            size = 1 + sum(sizes[id(c)] for c in children)
            depth = 1 + max((depths[id(c)] for c in children), default=0)
            if size > MAX_NODES or depth > MAX_DEPTH:
                line = node.start_mark.line + 1
                raise SpecError(
                    "YAML document too large once aliases are expanded"
                    if size > MAX_NODES else "YAML document nested too deeply",
                    reason=Reason.INVALID_YAML, file=path, line=line,
                    hint="an alias bomb? remove the repeated aliases",
                )
            sizes[nid] = size
            depths[nid] = depth
            continue
        if nid in sizes:
            continue
        if nid in on_path:
            raise SpecError("recursive YAML alias", reason=Reason.INVALID_YAML, file=path,
                            line=node.start_mark.line + 1)
        on_path.add(nid)
        stack.append((node, True))
        for child in _children(node):
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []
