"""sprig's regular-expression functions and their `must*` variants, with Go's `regexp` semantics
(the syntax: `goregex`).

**Iteration.** `regexFindAll`, `regexReplaceAll*` and `regexSplit` walk the matches like Go's
`allMatches`/`replaceAll`: after an empty match the search resumes one character later, and an
empty match right where the previous match ended is skipped (`regexReplaceAll "a*" "baaac" "X"` is
`XbXcX`; Python's `re.sub` gives `XbXXcX`). `regexSplit` never returns capture groups, and
`regexReplaceAll` expands `$1`, `${1}`, `$name`, `${name}` and `$$` exactly like `Regexp.Expand`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .funcs import i_, register, s_
from .tmplrt import Fault

if TYPE_CHECKING:  # the translator is imported by the first regular expression (most trees have none)
    from .goregex import GoRegexp


def _re(pattern: Any, fn: str) -> GoRegexp:
    from . import goregex

    p = s_(pattern, fn)
    try:
        return goregex.compile_go(p)
    except goregex.Unsupported as e:
        raise Fault(f"{fn}: regular expression {p!r} uses RE2 syntax orch cannot run ({e})") from None
    except goregex.GoSyntaxError as e:
        raise Fault(f"{fn}: bad regular expression {p!r}: error parsing regexp: {e}") from None


# ------------------------------------------------------------------ Go's match iteration
def go_matches(rx: re.Pattern[str], s: str, n: int = -1) -> Iterator[re.Match[str]]:
    """The successive matches Go's FindAll*/ReplaceAll*/Split see (regexp.go allMatches): after an
    empty match the search resumes one character later; an empty match starting where the
    previous match ended is skipped; at most n matches (n < 0: all)."""
    pos, end, prev_end, found = 0, len(s), -1, 0
    while (n < 0 or found < n) and pos <= end:
        m = rx.search(s, pos)
        if m is None:
            return
        a, b = m.span()
        accept = True
        if b == pos:  # an empty match at pos
            accept = a != prev_end
            pos += 1
        else:
            pos = b
        prev_end = b
        if accept:
            found += 1
            yield m


def _extract(t: str) -> tuple[str, int, str] | None:
    """Go's extract: the name of `$name` / `${name}` (letters, digits, `_`), its number or -1, the rest."""
    brace = t.startswith("{")
    s = t[1:] if brace else t
    i = 0
    while i < len(s) and (s[i].isalpha() or s[i].isdecimal() or s[i] == "_"):
        i += 1
    if i == 0:
        return None
    name = s[:i]
    if brace:
        if i >= len(s) or s[i] != "}":
            return None
        i += 1
    num = 0
    for ch in name:
        if not "0" <= ch <= "9" or num >= 100_000_000:
            num = -1
            break
        num = num * 10 + ord(ch) - 48
    if name[0] == "0" and len(name) > 1:
        num = -1
    return name, num, s[i:]


def expand(g: GoRegexp, m: re.Match[str], template: str) -> str:
    """Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`; an unknown or unmatched group is ""."""
    out: list[str] = []
    t = template
    while t:
        k = t.find("$")
        if k < 0:
            break
        out.append(t[:k])
        t = t[k + 1:]
        if t.startswith("$"):
            out.append("$")
            t = t[1:]
            continue
        ext = _extract(t)
        if ext is None:
            out.append("$")
            continue
        name, num, t = ext
        if num >= 0:
            if num <= g.rx.groups and m.group(num) is not None:
                out.append(m.group(num))
        else:
            for i, n in enumerate(g.names):
                if n == name and m.group(i) is not None:
                    out.append(m.group(i))
                    break
    out.append(t)
    return "".join(out)


def replace_all(g: GoRegexp, s: str, repl: Callable[[re.Match[str]], str]) -> str:
    out: list[str] = []
    last = 0
    for m in go_matches(g.rx, s):
        out.append(s[last:m.start()])
        out.append(repl(m))
        last = m.end()
    out.append(s[last:])
    return "".join(out)


def split(g: GoRegexp, s: str, n: int) -> list[str]:
    """Go's Regexp.Split: the text between matches, never capture groups; n > 0: at most n parts."""
    if n == 0:
        return []
    if g.expr and not s:
        return [""]
    parts: list[str] = []
    beg = end = 0
    for m in go_matches(g.rx, s, n):
        if n > 0 and len(parts) >= n - 1:
            break
        end = m.start()
        if m.end() != 0:
            parts.append(s[beg:end])
        beg = m.end()
    if end != len(s):
        parts.append(s[beg:])
    return parts


# ------------------------------------------------------------------ the sprig functions
def _must(name: str) -> str:
    return "must" + name[0].upper() + name[1:]


def _match(fn: str, lenient: bool) -> Callable[[Any, Any], bool]:
    def match(pattern: Any, s: Any) -> bool:
        p, text = s_(pattern, fn), s_(s, fn)
        if lenient:
            from . import goregex

            try:
                goregex.compile_go(p)
            except goregex.GoSyntaxError:
                return False  # sprig's regexMatch ignores the compile error
            except goregex.Unsupported:
                pass  # _re raises it: never a silent false
        return _re(p, fn).rx.search(text) is not None

    return match


register("regexMatch")(_match("regexMatch", True))
register("mustRegexMatch")(_match("mustRegexMatch", False))


def _find(fn: str) -> Callable[[Any, Any], str]:
    def find(pattern: Any, s: Any) -> str:
        m = _re(pattern, fn).rx.search(s_(s, fn))
        return m.group(0) if m else ""

    return find


def _find_all(fn: str) -> Callable[[Any, Any, Any], list[str]]:
    def find_all(pattern: Any, s: Any, n: Any) -> list[str]:
        g, text, limit = _re(pattern, fn), s_(s, fn), i_(n, fn)
        return [m.group(0) for m in go_matches(g.rx, text, limit)]

    return find_all


def _replace_all(fn: str) -> Callable[[Any, Any, Any], str]:
    def replace_all_(pattern: Any, s: Any, repl: Any) -> str:
        g, text, r = _re(pattern, fn), s_(s, fn), s_(repl, fn)
        if "$" not in r:
            return replace_all(g, text, lambda m: r)
        return replace_all(g, text, lambda m: expand(g, m, r))

    return replace_all_


def _replace_all_literal(fn: str) -> Callable[[Any, Any, Any], str]:
    def replace_all_literal(pattern: Any, s: Any, repl: Any) -> str:
        g, text, r = _re(pattern, fn), s_(s, fn), s_(repl, fn)
        return replace_all(g, text, lambda m: r)

    return replace_all_literal


def _split(fn: str) -> Callable[[Any, Any, Any], list[str]]:
    def split_(pattern: Any, s: Any, n: Any) -> list[str]:
        g, text, limit = _re(pattern, fn), s_(s, fn), i_(n, fn)
        return split(g, text, limit)

    return split_


for _name, _make in (("regexFind", _find), ("regexFindAll", _find_all), ("regexReplaceAll", _replace_all),
                     ("regexReplaceAllLiteral", _replace_all_literal), ("regexSplit", _split)):
    register(_name)(_make(_name))
    register(_must(_name))(_make(_must(_name)))

_META = frozenset("\\.+*?()|[]{}^$")


@register("regexQuoteMeta")
def regex_quote_meta(s: Any) -> str:
    """regexp.QuoteMeta: a backslash before each of \\.+*?()|[]{}^$."""
    return "".join("\\" + c if c in _META else c for c in s_(s, "regexQuoteMeta"))
