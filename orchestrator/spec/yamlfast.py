"""A fast path for the YAML that specs are mostly made of, exact or not at all.

Most spec files, and nearly every rendered build spec, are block mappings and sequences of
one-line scalars: `key: value`, `- item`, `- {name: x, category: y}`, `deps: []`. For those,
PyYAML's C loader still builds a Python node object per scalar and calls back into Python to
resolve and construct each one, which is most of a plan's YAML time. `load` parses that subset
line by line and returns exactly what `yamlload` would (same types, same key order, YAML 1.1
implicit types through PyYAML's own resolver patterns and constructors) — or None the moment
a line is anything else: a block scalar (`|`, `>`), an anchor, alias or tag, a quoted string
with an escape, a comment after a value, a multi-line scalar, a tab, a non-ASCII character,
a document marker, an odd indentation. Then the caller parses the text with libyaml, which
also reports any error; this module never raises on bad input.

The result is plain JSON data by construction (string keys; strings, numbers, booleans, nulls,
lists, maps): a scalar that would construct anything else (a timestamp) also returns None.
"""
from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

try:
    from yaml import CSafeLoader as _Base
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Base  # type: ignore[assignment]

__all__ = ["STR", "load", "resolve"]

STR = _STR = "tag:yaml.org,2002:str"
# a plain scalar's implicit tag depends only on its text, through the patterns registered for
# its first character (PyYAML's own rule; `yamlload`'s libyaml hooks use `resolve` too)
_BY_FIRST: dict[str, tuple[tuple[str, Any], ...]] = {
    first: tuple(pairs) for first, pairs in _Base.yaml_implicit_resolvers.items()}
_CONSTRUCT = {tag: _Base.yaml_constructors[tag] for tag in (
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")}
_CONSTRUCTOR = yaml.constructor.SafeConstructor()  # scalar constructors only read node.value
# A character this path does not handle anywhere in a document: anything but printable ASCII
# and line feeds (tabs, other control characters; non-ASCII is refused before this is searched).
_ODD = re.compile(r"[^\n\x20-\x7e]")
# Content lines (blank and comment-only lines are skipped): indentation, text without trailing spaces
_LINE = re.compile(r"^( *)([^ \n#](?:[^\n]*[^ \n])?)", re.M)
_MARKER = re.compile(r"^(?:---|\.\.\.)", re.M)  # document start or end (`---` may open the text)
# `key:` then a space or the end: a plain key not starting with an indicator and without a colon
# (trailing spaces included: stripped by the caller; a lazy key before ` *:` would be quadratic
# in a long run of spaces)
_KEY = re.compile(r"([^-?:,\[\]{}#&*!|>'\"%@` ][^:]*):(?: +|$)")
# First characters that make a scalar something other than a one-line plain scalar, in block
# context (flow collections, quotes and `-` are handled by the caller)
_INDICATOR = frozenset("?:,[]{}#&*!|>'\"%@`")
# First characters of a plain scalar that is a string whatever follows (no implicit type starts
# with them, and they are no indicator)
_STR_FIRST = frozenset(chr(c) for c in range(0x21, 0x7f)) - _INDICATOR - set(_BY_FIRST) - {"-"}
_FLOW_STOP = re.compile(r"[\[\]{}\"'#?]")
MAX_DEPTH = 100  # deeper documents go to libyaml (which bounds them)
MAX_KEY = 1000  # YAML limits an implicit key to 1024 characters; longer ones go to libyaml
_CACHE_MAX = 4096
_SCALARS: dict[str, Any] = {}  # plain scalar text -> its value, for those that are not strings
_KEYS: dict[str, bool] = {}  # plain key text -> whether it is a string key this path takes


class _Skip(Exception):
    """Not in the subset: the caller parses the text with libyaml."""


def load(text: str) -> tuple[Any] | None:
    """(document,) when `text` is in the subset, else None."""
    if not text.isascii() or _ODD.search(text):
        return None
    if text.startswith("---\n"):
        text = text[4:]
    if _MARKER.search(text):
        return None
    lines = _LINE.findall(text)
    if not lines:
        return None
    indents = [len(pad) for pad, _ in lines]
    contents = [content for _, content in lines]
    try:
        doc, end = _node(indents, contents, 0, 0)
    except _Skip:
        return None
    return (doc,) if end == len(contents) else None


def _node(indents: list[int], contents: list[str], i: int, depth: int) -> tuple[Any, int]:
    """The block collection starting at line i."""
    if depth > MAX_DEPTH:
        raise _Skip
    content = contents[i]
    if content[0] == "-" and (len(content) == 1 or content[1] == " "):
        return _seq(indents, contents, i, indents[i], depth)
    return _map(indents, contents, i, indents[i], depth)


def _map(indents: list[int], contents: list[str], i: int, ind: int, depth: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    n = len(contents)
    while i < n and indents[i] == ind:
        content = contents[i]
        m = _KEY.match(content)
        if m is None:
            raise _Skip
        if m.end(1) > MAX_KEY:
            raise _Skip  # libyaml refuses an implicit key this long
        key = m.group(1).rstrip(" ")
        ok = _KEYS.get(key)
        if ok is None:
            ok = _string_key(key)
        if not ok:
            raise _Skip
        i += 1
        end = m.end()
        if end < len(content):
            rest = content[end:]
            if rest[0] in _STR_FIRST:
                if ": " in rest or " #" in rest or rest[-1] == ":":
                    raise _Skip
                out[key] = rest
            else:
                out[key] = _scalar(rest)
            if i < n and indents[i] > ind:
                raise _Skip  # a continuation line of a multi-line scalar
        elif i < n and indents[i] > ind:
            out[key], i = _node(indents, contents, i, depth + 1)
        elif i < n and indents[i] == ind and contents[i][0] == "-" and (
                len(contents[i]) == 1 or contents[i][1] == " "):
            out[key], i = _seq(indents, contents, i, ind, depth + 1)  # `key:` then `- x` at its indent
        else:
            out[key] = None
    return out, i


def _seq(indents: list[int], contents: list[str], i: int, ind: int, depth: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    n = len(contents)
    while i < n and indents[i] == ind:
        content = contents[i]
        if content[0] != "-":
            break  # a key of the mapping this sequence is the value of
        if len(content) < 3 or content[1] != " ":
            raise _Skip  # `-` then the item on the next lines; `-x` where an item should be
        rest = content[2:].lstrip(" ")
        first = rest[0]
        if first in _STR_FIRST and ": " not in rest and rest[-1] != ":":
            if " #" in rest:
                raise _Skip
            out.append(rest)
        elif first in "[{'\"":  # a flow collection or a quoted scalar, never a key here
            out.append(_scalar(rest))
        elif first == "-" and (len(rest) == 1 or rest[1] == " "):
            raise _Skip  # `- - x`
        elif _KEY.match(rest):  # `- key: value`: a mapping at the column of `key`
            sub = ind + len(content) - len(rest)
            indents[i], contents[i] = sub, rest
            item, i = _map(indents, contents, i, sub, depth + 1)
            out.append(item)
            continue
        else:
            out.append(_plain(rest))
        i += 1
        if i < n and indents[i] > ind:
            raise _Skip
    return out, i


def _string_key(key: str) -> bool:
    ok = " #" not in key and resolve(key) is _STR
    if len(_KEYS) < _CACHE_MAX:
        _KEYS[key] = ok
    return ok


def resolve(text: str) -> str:
    """The implicit tag of a plain scalar: the first registered pattern that matches, else str."""
    for tag, regexp in _BY_FIRST.get(text[:1], ()):
        if regexp.match(text):
            return str(tag)
    return _STR


def _scalar(text: str) -> Any:
    """A one-line value: plain or simply quoted scalar, or a flat flow collection."""
    first = text[0]
    if first == '"':
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != '"' or '"' in inner or "\\" in inner:
            raise _Skip
        return inner
    if first == "'":
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != "'" or "'" in inner.replace("''", ""):
            raise _Skip
        return inner.replace("''", "'")
    if first == "[" or first == "{":
        return _flow(text)
    return _plain(text)


def _plain(text: str) -> Any:
    first = text[0]
    if first in _INDICATOR or (first == "-" and (len(text) == 1 or text[1] == " ")):
        raise _Skip
    if ": " in text or text[-1] == ":" or " #" in text:
        raise _Skip
    tag = resolve(text)
    if tag is _STR:
        return text
    try:
        return _SCALARS[text]
    except KeyError:
        pass
    constructor = _CONSTRUCT.get(tag)
    if constructor is None:
        raise _Skip  # a timestamp, a merge or value key
    value = constructor(_CONSTRUCTOR, ScalarNode(tag, text))
    if len(_SCALARS) < _CACHE_MAX:
        _SCALARS[text] = value
    return value


def _flow(text: str) -> Any:
    """`[]`, `{}`, `[a, b]`, `{k: v, k2: v2}` of plain scalars (nothing nested, nothing quoted)."""
    close = "]" if text[0] == "[" else "}"
    if text[-1] != close or (close == "}" and len(text) > MAX_KEY):
        raise _Skip
    inner = text[1:-1]
    if not inner.strip(" "):
        return [] if close == "]" else {}
    if _FLOW_STOP.search(inner):
        raise _Skip
    parts = [p.strip(" ") for p in inner.split(",")]
    if not parts[-1]:
        parts.pop()  # a trailing comma
    if "" in parts or ":" in inner.replace(": ", ""):
        raise _Skip  # an empty entry; `:` not before a space ends plain scalars in flow context
    if close == "]":
        return [_plain(p) for p in parts]
    out: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition(": ")
        key, value = key.rstrip(" "), value.lstrip(" ")
        if not sep or not key or not value or key[0] in _INDICATOR or key[0] == "-" or not _string_key(key):
            raise _Skip
        out[key] = _plain(value)
    return out
