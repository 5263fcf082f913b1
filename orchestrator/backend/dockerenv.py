"""Dockerfile `ENV` semantics for luet's `env:` entries, evaluated in Python.

luet writes each entry as a Dockerfile line `ENV <entry>`, so `LDFLAGS="-s -w"` means `-s -w`
(quotes removed) and `PATH=$PATH:/x` sees the image's PATH. `buildah config --env` does neither
(it keeps quotes and turns an unset `$X` into the text `X`), so orch evaluates the line here and
hands buildah literal values, with `$` written as `$$` (buildah's expansion maps `$$` to `$`).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvSyntaxError(ValueError):
    """An `env:` entry Docker would refuse (unterminated quote, bad name, bad `${}`)."""


def evaluate(entries: Iterable[str], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (name, value) pairs set by `ENV <entry>` lines in order; later lines see earlier ones."""
    current = dict(env)
    result: list[tuple[str, str]] = []
    for entry in entries:
        for name, value in parse_line(entry, current):
            current[name] = value
            result.append((name, value))
    return result


def parse_line(line: str, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """One `ENV` line: `K=V [K2=V2 …]` (shell words) or the legacy `K rest of line`."""
    text = line.strip()
    if not text:
        raise EnvSyntaxError("empty env entry")
    first = re.split(r"\s", text, maxsplit=1)[0]
    if "=" not in first:  # legacy form: `ENV NAME value with spaces`
        rest = text[len(first):].strip()
        _check_name(first, line)
        return [(first, "".join(_words(rest, env, split=False)))]
    pairs = []
    for word in _words(text, env, split=True):
        name, sep, value = word.partition("=")
        if not sep:
            raise EnvSyntaxError(f"{line!r}: {word!r} is not NAME=value")
        _check_name(name, line)
        pairs.append((name, value))
    return pairs


def for_buildah(name: str, value: str) -> str:
    """`NAME=value` for `buildah config --env`, protected from buildah's own `$` expansion."""
    return f"{name}={value.replace('$', '$$')}"


def _check_name(name: str, line: str) -> None:
    if not _NAME.fullmatch(name):
        raise EnvSyntaxError(f"{line!r}: invalid variable name {name!r}")


def _words(text: str, env: Mapping[str, str], *, split: bool) -> list[str]:
    """Shell-like words: quotes removed, `\\` escapes, `$X`/`${X}`/`${X:-w}`/`${X:+w}` expanded."""
    words: list[str] = []
    buf: list[str] = []
    started = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if split and ch.isspace():
            if started:
                words.append("".join(buf))
                buf, started = [], False
            i += 1
            continue
        started = True
        if ch == "\\":
            buf.append(text[i + 1] if i + 1 < n else "\\")
            i += 2
        elif ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise EnvSyntaxError(f"{text!r}: unterminated single quote")
            buf.append(text[i + 1:end])
            i = end + 1
        elif ch == '"':
            i = _double_quoted(text, i + 1, env, buf)
        elif ch == "$":
            i = _dollar(text, i, env, buf)
        else:
            buf.append(ch)
            i += 1
    if started:
        words.append("".join(buf))
    return words


def _double_quoted(text: str, i: int, env: Mapping[str, str], buf: list[str]) -> int:
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return i + 1
        if ch == "\\" and i + 1 < n and text[i + 1] in '"$\\':
            buf.append(text[i + 1])
            i += 2
        elif ch == "$":
            i = _dollar(text, i, env, buf)
        else:
            buf.append(ch)
            i += 1
    raise EnvSyntaxError(f"{text!r}: unterminated double quote")


def _dollar(text: str, i: int, env: Mapping[str, str], buf: list[str]) -> int:
    """Expand the `$…` at text[i]; a `$` not followed by a name stays literal (as in Docker)."""
    if text.startswith("${", i):
        end = text.find("}", i + 2)
        if end < 0:
            raise EnvSyntaxError(f"{text!r}: missing '}}'")
        body = text[i + 2:end]
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])(.*))?", body, re.DOTALL)
        if not m:
            raise EnvSyntaxError(f"{text!r}: bad substitution ${{{body}}}")
        name, op, word = m.group(1), m.group(2), m.group(3) or ""
        value = env.get(name)
        if op is None:
            buf.append(value or "")
        else:
            is_set = value is not None and (value != "" or not op.startswith(":"))
            word = "".join(_words(word, env, split=False)) if word else ""
            if op.endswith("-"):
                buf.append(value if is_set and value is not None else word)
            else:
                buf.append(word if is_set else "")
        return end + 1
    m = _NAME.match(text, i + 1)
    if not m:
        buf.append("$")
        return i + 1
    buf.append(env.get(m.group(0), ""))
    return m.end()
