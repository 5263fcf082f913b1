"""Safe YAML 1.1 loading, bounded, as luet reads specs.

PyYAML's C SafeLoader gives YAML 1.1 (anchors, `<<` and `!!merge <<` merge keys,
`yes/no` booleans) and constructs only plain types: a `!!python/...` tag is an error,
never code. On top of that we bound what a hostile file can cost: its size, its depth,
and the size of the document *after* alias expansion (a "billion laughs" file is a few
hundred bytes that expand to gigabytes once anything walks it).

Most spec documents are in the subset `yamlfast` parses exactly, faster; the rest, and every
error, go through libyaml.
"""
from __future__ import annotations

import operator
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from orchestrator.errors import Reason, SpecError
from orchestrator.spec import yamlfast

try:  # the C loader is mandated for speed; fall back only where libyaml is missing
    from yaml import CSafeLoader as _Base
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Base  # type: ignore[assignment]

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 1_000_000  # expanded nodes (aliases counted every time they are used)
MAX_DEPTH = 200
# `*name` where a node can start (line start, after a space or a flow indicator); regexes
# such as `/usr/share/.*` do not match. False positives only cost the (linear) check.
_ALIAS = re.compile(r"(?:^|[\s\[{,:])\*[^\s,\]}]")
_STR, _SEQ, _MAP = yamlfast.STR, "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_MERGING = frozenset(("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"))


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """PyYAML's C loader with its per-node Python hooks made cheap (the C composer calls them for
    every node: most of a spec's parse time). Path resolvers are never registered, so the
    descend/ascend hooks have nothing to do; a plain scalar's implicit tag depends only on its
    text, through the regexes registered for its first character (PyYAML's own rule)."""

    descend_resolver = staticmethod(operator.is_)  # (parent, index) -> ignored
    ascend_resolver = staticmethod(tuple)  # () -> ignored

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            if implicit[0]:  # plain: the first registered pattern that matches, else a string
                tag = yamlfast.resolve(value)
                if tag in _MERGING:
                    self.orch_merges = True
                return tag
            return _STR
        return _SEQ if kind is SequenceNode else _MAP


assert not _Base.yaml_path_resolvers and None not in _Base.yaml_implicit_resolvers


_NATIVE = frozenset((str, int, float, bool, type(None)))  # scalars that JSON keeps as they are


def load(text: str, path: str) -> Any:
    """Parse one YAML document; errors name `path` and the line."""
    return load_plain(text, path)[0]


def load_plain(text: str, path: str) -> tuple[Any, bool]:
    """`load`, and whether the document is plain JSON data (string keys; strings, numbers,
    booleans, nulls, lists, maps): then a JSON round trip would give it back unchanged."""
    if len(text) > MAX_BYTES:
        raise SpecError(
            f"file is {len(text)} bytes, over the {MAX_BYTES} byte limit for a spec",
            reason=Reason.INVALID_YAML,
            file=path,
        )
    fast = yamlfast.load(text)
    if fast is not None:
        return fast[0], True
    return _load_libyaml(text, path)


def _load_libyaml(text: str, path: str) -> tuple[Any, bool]:
    """`load_plain` through PyYAML's C loader: any YAML, and every error with its line."""
    loader = _Loader(text)
    loader.orch_plain = True  # cleared by `_construct` at the first value JSON would change
    # `<<` or `=` keys (resolved by `resolve`) or an explicit tag: mappings need PyYAML's flattening
    loader.orch_merges = "!" in text
    try:
        node = loader.get_single_node()
        if node is None:
            return None, True
        if "*" in text and _ALIAS.search(text):  # aliases may exist: bound their expansion first
            _check_expansion(node, path)
        doc = _construct(loader, node, 0, {}, path)
        return doc, loader.orch_plain
    except RecursionError:
        raise SpecError("YAML document nested too deeply", reason=Reason.INVALID_YAML, file=path) from None
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


def _construct(loader: Any, node: yaml.Node, depth: int, memo: dict[int, Any], path: str) -> Any:
    """PyYAML's safe construction, fast for the plain tags (str, seq, map; merge keys included);
    every other tag goes through the loader's own constructors (and unknown ones are refused)."""
    if node.__class__ is ScalarNode:
        if node.tag == _STR:
            return node.value
        constructor = loader.yaml_constructors.get(node.tag)
        value = constructor(loader, node) if constructor is not None else loader.construct_object(node, True)
        if value.__class__ not in _NATIVE:
            loader.orch_plain = False
        return value
    if depth > MAX_DEPTH:
        raise SpecError("YAML document nested too deeply", reason=Reason.INVALID_YAML, file=path,
                        line=node.start_mark.line + 1)
    nid = id(node)
    if nid in memo:  # an alias: the same object, as PyYAML does
        return memo[nid]
    if node.__class__ is SequenceNode and node.tag == _SEQ:
        items: list[Any] = []
        memo[nid] = items
        for child in node.value:
            items.append(_construct(loader, child, depth + 1, memo, path))
        return items
    if node.__class__ is MappingNode and node.tag == _MAP:
        if loader.orch_merges:
            loader.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        memo[nid] = mapping
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, depth + 1, memo, path)
            if key.__class__ is not str:
                loader.orch_plain = False
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key",
                    key_node.start_mark) from None
            mapping[key] = _construct(loader, value_node, depth + 1, memo, path)
        return mapping
    loader.orch_plain = False  # another tag (!!set, !!omap, …): not plain JSON data
    return loader.construct_object(node, True)


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
