"""sprig's regular-expression functions and their `must*` variants.

Patterns run on Python's `re`, which reads nearly all RE2 syntax the same way (`\\z` is mapped).
In sprig v3.2.2 a pattern that does not compile makes `regexMatch` return false and every other
function (and every `must*` variant) fail, so only `regexMatch` and `mustRegexMatch` differ.
RE2 syntax `re` lacks (`\\p{L}`, `\\Q…\\E`, the `U` flag) is always an error here: orch cannot
tell what Go would have matched, so it never answers false for it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .funcs import i_, register, s_
from .tmplrt import Fault

_RE_CACHE: dict[str, re.Pattern[str]] = {}
_RE2_ONLY = re.compile(r"\\[pPQC]|\(\?[imsU]*U")


def _must(name: str) -> str:
    return "must" + name[0].upper() + name[1:]


def _re(pattern: Any, fn: str) -> re.Pattern[str]:
    p = s_(pattern, fn)
    rx = _RE_CACHE.get(p)
    if rx is None:
        try:
            rx = re.compile(p.replace("\\z", "\\Z"))
        except re.error as e:
            if _RE2_ONLY.search(p):
                raise Fault(f"{fn}: regular expression {p!r} uses RE2 syntax orch cannot run "
                            f"(\\p classes, \\Q...\\E, the U flag): {e}") from None
            raise Fault(f"{fn}: bad regular expression {p!r}: {e}") from None
        if len(_RE_CACHE) > 512:
            _RE_CACHE.clear()
        _RE_CACHE[p] = rx
    return rx


def _match(fn: str, lenient: bool) -> Callable[[Any, Any], bool]:
    def match(pattern: Any, s: Any) -> bool:
        p, text = s_(pattern, fn), s_(s, fn)
        try:
            rx = _re(p, fn)
        except Fault:
            if not lenient or _RE2_ONLY.search(p):
                raise
            return False  # sprig's regexMatch ignores the compile error
        return rx.search(text) is not None

    return match


register("regexMatch")(_match("regexMatch", True))
register("mustRegexMatch")(_match("mustRegexMatch", False))


def _find(fn: str) -> Callable[[Any, Any], str]:
    def find(pattern: Any, s: Any) -> str:
        m = _re(pattern, fn).search(s_(s, fn))
        return m.group(0) if m else ""

    return find


def _find_all(fn: str) -> Callable[[Any, Any, Any], list[str]]:
    def find_all(pattern: Any, s: Any, n: Any) -> list[str]:
        found = [m.group(0) for m in _re(pattern, fn).finditer(s_(s, fn))]
        n = i_(n, fn)
        return found if n < 0 else found[:n]

    return find_all


def _expand(m: re.Match[str], repl: str) -> str:
    """Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`; unknown groups expand to ""."""
    out: list[str] = []
    i = 0
    while i < len(repl):
        c = repl[i]
        if c != "$" or i + 1 >= len(repl):
            out.append(c)
            i += 1
            continue
        if repl[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if repl[i + 1] == "{":
            j = repl.find("}", i + 2)
            name = repl[i + 2:j] if j > 0 else ""
            nxt = j + 1
        else:
            mm = re.match(r"[A-Za-z0-9_]+", repl[i + 1:])
            name = mm.group(0) if mm else ""
            nxt = i + 1 + len(name)
        if not name or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            out.append("$")
            i += 1
            continue
        try:
            g = m.group(int(name) if name.isdigit() else name)
        except IndexError:
            g = ""
        out.append(g or "")
        i = nxt
    return "".join(out)


def _replace_all(fn: str) -> Callable[[Any, Any, Any], str]:
    def replace_all(pattern: Any, s: Any, repl: Any) -> str:
        r = s_(repl, fn)
        return _re(pattern, fn).sub(lambda m: _expand(m, r), s_(s, fn))

    return replace_all


def _replace_all_literal(fn: str) -> Callable[[Any, Any, Any], str]:
    def replace_all_literal(pattern: Any, s: Any, repl: Any) -> str:
        r = s_(repl, fn)
        return _re(pattern, fn).sub(lambda m: r, s_(s, fn))

    return replace_all_literal


def _split(fn: str) -> Callable[[Any, Any, Any], list[str]]:
    def split(pattern: Any, s: Any, n: Any) -> list[str]:
        n = i_(n, fn)
        parts = _re(pattern, fn).split(s_(s, fn), maxsplit=max(n - 1, 0) if n > 0 else 0)
        return parts if n != 0 else []

    return split


for _name, _make in (("regexFind", _find), ("regexFindAll", _find_all), ("regexReplaceAll", _replace_all),
                     ("regexReplaceAllLiteral", _replace_all_literal), ("regexSplit", _split)):
    register(_name)(_make(_name))
    register(_must(_name))(_make(_must(_name)))

_META = frozenset("\\.+*?()|[]{}^$")


@register("regexQuoteMeta")
def regex_quote_meta(s: Any) -> str:
    """regexp.QuoteMeta: a backslash before each of \\.+*?()|[]{}^$."""
    return "".join("\\" + c if c in _META else c for c in s_(s, "regexQuoteMeta"))
