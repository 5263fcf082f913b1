"""Go's regular-expression syntax (RE2, `regexp/syntax`) as Python `re` patterns that match the
same text (sprig's regex functions, `funcs_regex`, run Go patterns through this).

A Go pattern is parsed the way Go's `regexp/syntax` parses it and rewritten as a
Python `re` pattern that matches the same text: `\\d`, `\\s`, `\\w`, `\\b` and the POSIX classes
(`[[:alpha:]]`) are ASCII-only as in Go (Python's are Unicode), `$` without `(?m)` matches only at
the very end (Python's also matches before a final newline), `{` that is not a repeat is a literal
(Python reads `x{,3}` as a repeat), `\\Q…\\E`, `\\x{…}`, octal escapes and the `U` (ungreedy) flag
are translated, and `(?i)`/`(?m)`/`(?s)` in the middle of a pattern keep Go's scoping (to the end
of the enclosing group). Python-only syntax (lookarounds, backreferences, `(?#…)`, possessive
repeats, …) is rejected like Go rejects it, and so is `(?<name>…)` (Go reads it only since 1.22).
A pattern Go rejects makes `regexMatch` answer false and every other function (and every `must*`
variant) fail, as in sprig v3.2.2. Unicode classes (`\\p{Greek}`) are valid RE2 that orch
cannot run: they are always an error here, never a silent false. Remaining differences: under
`(?i)` Python also folds a few non-ASCII letters Go does not (dotted/dotless i), and Python's
backtracking, unlike RE2, can be slow on pathological patterns.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_MAX_RUNE = 0x10FFFF
_MAX_REPEAT = 1000
_I, _M, _S, _U = 1, 2, 4, 8  # Go's FoldCase, multi-line (not OneLine), DotNL, NonGreedy

Ranges = list[tuple[int, int]]
_PERL: dict[str, tuple[bool, Ranges]] = {  # regexp/syntax perl_groups.go
    "d": (False, [(0x30, 0x39)]),
    "s": (False, [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]),
    "w": (False, [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]),
}
_PERL.update({k.upper(): (True, r) for k, (_, r) in list(_PERL.items())})
_POSIX_BASE: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_POSIX: dict[str, tuple[bool, Ranges]] = {f"[:{k}:]": (False, r) for k, r in _POSIX_BASE.items()}
_POSIX.update({f"[:^{k}:]": (True, r) for k, r in _POSIX_BASE.items()})
_WORD = "[0-9A-Za-z_]"
_BOUNDARY = f"(?-i:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
_NOT_BOUNDARY = f"(?-i:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"
_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"


class GoSyntaxError(Exception):
    """Go's regexp.Compile rejects the pattern (the text is Go's error code)."""


class Unsupported(Exception):
    """Valid RE2 that orch cannot run (`\\p` classes)."""


@dataclass(frozen=True)
class GoRegexp:
    """A compiled Go pattern: the Python pattern and Go's SubexpNames ("" for unnamed groups)."""

    expr: str
    rx: re.Pattern[str]
    names: tuple[str, ...]


# ------------------------------------------------------------------ translation Go -> Python
def _normalize(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _negate(ranges: Ranges) -> Ranges:
    out: Ranges = []
    nxt = 0
    for lo, hi in _normalize(ranges):
        if nxt <= lo - 1:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_RUNE:
        out.append((nxt, _MAX_RUNE))
    return out


def _fold_ascii(ranges: Ranges) -> Ranges:
    """Go's appendFoldedClass for an ASCII class: the other case of each letter, and the two
    non-ASCII members of ASCII fold orbits (k, K, U+212A KELVIN; s, S, U+017F LONG S)."""
    out = list(ranges)
    for lo, hi in ranges:
        for c in range(max(lo, 0x41), min(hi, 0x7A) + 1):
            ch = chr(c)
            if ch.isalpha():
                other = ord(ch.swapcase())
                out.append((other, other))
                if ch in "kK":
                    out.append((0x212A, 0x212A))
                elif ch in "sS":
                    out.append((0x17F, 0x17F))
    return _normalize(out)


def _group(neg: bool, ranges: Ranges, fold: bool) -> Ranges:
    """Go's appendGroup: a Perl or POSIX class, folded under (?i), then negated if `\\D`/`[:^x:]`."""
    r = _fold_ascii(ranges) if fold else _normalize(ranges)
    return _negate(r) if neg else r


def _lit(c: int) -> str:
    ch = chr(c)
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch
    if c < 0x80:
        return f"\\x{c:02x}"
    return ch  # non-ASCII code points are literal in Python patterns


def _set(ranges: Ranges, neg: bool = False) -> str:
    body = "".join(_lit(lo) if lo == hi else f"{_lit(lo)}-{_lit(hi)}" for lo, hi in ranges)
    return f"[{'^' if neg else ''}{body}]"


@dataclass
class _Frame:
    saved_flags: int  # Go flags outside the group (restored at its `)`)
    saved_py_i: bool  # Python's case-insensitivity outside the group
    base_py_i: bool  # Python's case-insensitivity at the start of the group's content
    start: int = 0  # index of the group's opener in the output
    wrap: str = ""  # an open `(?i:`/`(?-i:` that carries a mid-group (?i)/(?-i) flag change


class _Translator:
    def __init__(self, src: str) -> None:
        self.src, self.i, self.n = src, 0, len(src)
        self.out: list[str] = []
        self.flags = 0
        self.py_i = False
        self.frames = [_Frame(0, False, False)]
        self.names: list[str] = [""]
        self.can_repeat = False  # an operand precedes (Go: the stack top is not a pseudo-op)
        self.last_repeat = False  # the previous token was a repetition (a** is an error)
        self.after_flags = False  # the previous token was a (?flags) setter
        self.operand_start = 0  # where the last operand starts in the output
        self.operand_repeated = False  # the last operand already has a repetition operator
        self.flag_mark = 0  # where the output stood before the (?flags) setters that just ran
        self.repeat_at = 0  # where the last repetition operator starts in the pattern

    # -------------------------------------------------------------- driver
    def run(self) -> tuple[str, tuple[str, ...]]:
        src = self.src
        while self.i < self.n:
            c = src[self.i]
            repeat = False
            after_flags = False
            if c == "(":
                if src.startswith("(?", self.i):
                    after_flags = self.perl_flags()
                else:
                    self.names.append("")
                    self.open_group("(", self.flags)
                    self.i += 1
            elif c == "|":
                self.close_wrap()
                self.out.append("|")
                self.reopen_wrap()
                self.can_repeat = False
                self.i += 1
            elif c == ")":
                self.close_group()
                self.i += 1
            elif c == "^":
                self.atom(r"(?:(?<=\n)|\A)" if self.flags & _M else r"(?:\A)")
                self.i += 1
            elif c == "$":
                self.atom(r"(?:(?=\n)|\Z)" if self.flags & _M else r"(?:\Z)")
                self.i += 1
            elif c == ".":
                self.atom("(?s:.)" if self.flags & _S else "[^\\n]")
                self.i += 1
            elif c == "[":
                self.char_class()
            elif c in "*+?":
                self.repeat(c, self.i + 1)
                repeat = True
            elif c == "{":
                rep = self.parse_repeat(self.i)
                if rep is None:
                    self.atom(_lit(ord("{")))
                    self.i += 1
                else:
                    lo, hi, end = rep
                    if lo < 0 or lo > _MAX_REPEAT or hi > _MAX_REPEAT or 0 <= hi < lo:
                        raise GoSyntaxError(f"invalid repeat count: `{src[self.i:end]}`")
                    text = f"{{{lo}}}" if hi == lo else f"{{{lo},}}" if hi < 0 else f"{{{lo},{hi}}}"
                    self.repeat(text, end)
                    repeat = True
            elif c == "\\":
                self.escape()
            else:
                self.atom(_lit(ord(c)))
                self.i += 1
            self.last_repeat = repeat
            self.after_flags = after_flags
        if len(self.frames) > 1:
            raise GoSyntaxError(f"missing closing ): `{src}`")
        self.close_wrap()
        return "".join(self.out), tuple(self.names)

    def atom(self, code: str) -> None:
        self.operand_start = len(self.out)
        self.operand_repeated = False
        self.out.append(code)
        self.can_repeat = True

    # -------------------------------------------------------------- groups and flags
    def open_group(self, opener: str, new_flags: int) -> None:
        self.frames.append(_Frame(self.flags, self.py_i, bool(new_flags & _I), len(self.out)))
        self.out.append(opener)
        self.flags = new_flags
        self.py_i = bool(new_flags & _I)
        self.can_repeat = False

    def close_group(self) -> None:
        if len(self.frames) == 1:
            raise GoSyntaxError(f"unexpected ): `{self.src}`")
        self.close_wrap()
        frame = self.frames.pop()
        self.out.append(")")
        self.flags, self.py_i = frame.saved_flags, frame.saved_py_i
        self.operand_start, self.operand_repeated = frame.start, False
        self.can_repeat = True

    def close_wrap(self) -> None:
        frame = self.frames[-1]
        if frame.wrap:
            self.out.append(")")
            self.py_i = frame.base_py_i

    def reopen_wrap(self) -> None:
        frame = self.frames[-1]
        if frame.wrap:
            self.out.append(frame.wrap)
            self.py_i = not frame.base_py_i

    def set_flags(self, new_flags: int) -> None:
        """(?flags): the change lasts to the end of the enclosing group, across its `|`s."""
        want_i = bool(new_flags & _I)
        if want_i != self.py_i:
            frame = self.frames[-1]
            self.close_wrap()
            frame.wrap = ""
            if want_i != self.py_i:
                frame.wrap = "(?i:" if want_i else "(?-i:"
                self.out.append(frame.wrap)
                self.py_i = want_i
        self.flags = new_flags

    def perl_flags(self) -> bool:
        """`(?P<name>`, `(?flags)`, `(?flags:` (Go's parsePerlFlags). True for a setter. `(?<name>`
        is an error, as in the Go releases luet 0.35 was built with (Go 1.22 added it)."""
        src, i = self.src, self.i
        t = src[i:]
        if len(t) > 4 and t[2] == "P" and t[3] == "<":
            start = i + 4
            end = src.find(">", i)
            if end < 0:
                raise GoSyntaxError(f"invalid named capture: `{t}`")
            name = src[start:end]
            if not name or not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in name):
                raise GoSyntaxError(f"invalid named capture: `{src[i:end + 1]}`")
            self.names.append(name)
            self.open_group("(", self.flags)
            self.i = end + 1
            return False
        j = i + 2
        flags, neg, saw = self.flags, False, False
        while j < self.n:
            c = src[j]
            j += 1
            if c in "imsU":
                bit = {"i": _I, "m": _M, "s": _S, "U": _U}[c]
                flags = flags & ~bit if neg else flags | bit
                saw = True
            elif c == "-" and not neg:
                neg, saw = True, False
            elif c in ":)" and (saw or not neg):
                self.i = j
                if c == ":":
                    want_i = bool(flags & _I)
                    self.open_group("(?:" if want_i == self.py_i else "(?i:" if want_i else "(?-i:", flags)
                    return False
                if not self.after_flags:
                    self.flag_mark = len(self.out)
                self.set_flags(flags)
                return True
            else:
                break
        raise GoSyntaxError(f"invalid or unsupported Perl syntax: `{src[i:j]}`")

    # -------------------------------------------------------------- repetition
    def parse_repeat(self, i: int) -> tuple[int, int, int] | None:
        """Go's parseRepeat: `{n}`, `{n,}`, `{n,m}` -> (min, max or -1, end); None: `{` is literal."""
        m = re.compile(r"\{(0|[1-9][0-9]*)(?:(,)([0-9]*))?\}").match(self.src, i)
        if m is None or (m.group(3) or "").startswith("0") and len(m.group(3)) > 1:
            return None

        def num(s: str) -> int:
            return int(s) if len(s) <= 8 else -1  # parseInt gives up past 1e8

        lo = num(m.group(1))
        if m.group(2) is None:
            hi = lo
        elif m.group(3) == "":
            hi = -1
        else:
            hi = num(m.group(3))
            if hi < 0:
                lo = -1
        return lo, hi, m.end()

    def repeat(self, op: str, end: int) -> None:
        lazy = end < self.n and self.src[end] == "?"
        if lazy:
            end += 1
        if self.last_repeat:
            raise GoSyntaxError(f"invalid nested repetition operator: `{self.src[self.repeat_at:end]}`")
        if not self.can_repeat:
            raise GoSyntaxError(f"missing argument to repetition operator: `{self.src[self.i:end]}`")
        if self.flags & _U:
            lazy = not lazy
        # After (?flags) Go repeats the operand before them (`a(?i)*` is `a*` then case-folding):
        # the operator goes where that operand ended, before any wrapper the flags opened or closed.
        at = self.flag_mark if self.after_flags else len(self.out)
        if self.operand_repeated:  # `a*(?i)*` or `a*\Q\E*`: Go repeats the repetition, (?:a*)*
            self.out[self.operand_start:at] = ["(?:", *self.out[self.operand_start:at], ")"]
            at += 2
        self.out.insert(at, op + ("?" if lazy else ""))
        self.operand_repeated = True
        self.repeat_at, self.i = self.i, end

    # -------------------------------------------------------------- escapes and classes
    def parse_escape(self, i: int) -> tuple[int, int]:
        """Go's parseEscape at src[i] == '\\': (code point, index after the escape)."""
        src, n = self.src, self.n
        if i + 1 >= n:
            raise GoSyntaxError("trailing backslash at end of expression: ``")
        c, j = src[i + 1], i + 2
        if c in "1234567" and not (j < n and src[j] in _OCTAL):
            raise GoSyntaxError(f"invalid escape sequence: `{src[i:j]}`")
        if c in _OCTAL:
            r = int(c)
            for _ in range(2):
                if j < n and src[j] in _OCTAL:
                    r = r * 8 + int(src[j])
                    j += 1
            return r, j
        if c == "x" and j < n:
            if src[j] == "{":
                k = j + 1
                while k < n and src[k] in _HEX:
                    k += 1
                digits = src[j + 1:k]
                if k < n and src[k] == "}" and digits and int(digits, 16) <= _MAX_RUNE:
                    return int(digits, 16), k + 1
            elif j + 1 < n and src[j] in _HEX and src[j + 1] in _HEX:
                return int(src[j:j + 2], 16), j + 2
            raise GoSyntaxError(f"invalid escape sequence: `{src[i:min(j + 2, n)]}`")
        if c in _ESCAPES:
            return _ESCAPES[c], j
        if c.isascii() and not c.isalnum():
            return ord(c), j
        raise GoSyntaxError(f"invalid escape sequence: `{src[i:j]}`")

    def escape(self) -> None:
        src, i = self.src, self.i
        c = src[i + 1] if i + 1 < self.n else ""
        if c == "A":
            self.atom(r"(?:\A)")
        elif c == "z":
            self.atom(r"(?:\Z)")
        elif c == "b":
            self.atom(_BOUNDARY)
        elif c == "B":
            self.atom(_NOT_BOUNDARY)
        elif c == "C":
            raise GoSyntaxError("invalid escape sequence: `\\C`")
        elif c == "Q":
            end = src.find("\\E", i + 2)
            lit = src[i + 2:] if end < 0 else src[i + 2:end]
            for ch in lit:
                self.atom(_lit(ord(ch)))
            self.i = self.n if end < 0 else end + 2
            return
        elif c in "pP":
            raise Unsupported("\\p classes")
        elif c in _PERL:
            neg, ranges = _PERL[c]
            self.class_atom(_group(neg, ranges, bool(self.flags & _I)), [])
        else:
            r, self.i = self.parse_escape(i)
            self.atom(_lit(r))
            return
        self.i = i + 2

    def class_atom(self, groups: Ranges, chars: Ranges, neg: bool = False) -> None:
        """Emit a class: `groups` are exact (already folded like Go), `chars` Python folds under (?i)."""
        if not self.py_i or not groups:
            self.atom(_set(_normalize(groups + chars), neg))
            return
        exact = f"(?-i:{_set(_normalize(groups))})"
        either = f"{exact}|{_set(_normalize(chars))}" if chars else exact
        self.atom(f"(?:(?!{either})(?s:.))" if neg else f"(?:{either})")

    def char_class(self) -> None:
        """Go's parseClass: ranges, escapes, Perl classes and [:posix:] classes."""
        src, n = self.src, self.n
        whole_start = self.i
        j = self.i + 1
        neg = j < n and src[j] == "^"
        if neg:
            j += 1
        fold = bool(self.flags & _I)
        groups: Ranges = []
        chars: Ranges = []
        first = True
        while j >= n or src[j] != "]" or first:
            if j >= n:
                raise GoSyntaxError(f"missing closing ]: `{src[whole_start:]}`")
            first = False
            if src.startswith("[:", j) and j + 2 < n:
                k = src.find(":]", j + 2)
                if k >= 0:
                    name = src[j:k + 2]
                    if name not in _POSIX:
                        raise GoSyntaxError(f"invalid character class range: `{name}`")
                    groups += _group(*_POSIX[name], fold)
                    j = k + 2
                    continue
            if src.startswith(("\\p", "\\P"), j):
                raise Unsupported("\\p classes")
            if src[j] == "\\" and j + 1 < n and src[j + 1] in _PERL:
                groups += _group(*_PERL[src[j + 1]], fold)
                j += 2
                continue
            start = j
            lo, j = self.class_char(j, whole_start)
            hi = lo
            if j + 1 < n and src[j] == "-" and src[j + 1] != "]":
                hi, j = self.class_char(j + 1, whole_start)
                if hi < lo:
                    raise GoSyntaxError(f"invalid character class range: `{src[start:j]}`")
            chars.append((lo, hi))
        self.i = j + 1
        self.class_atom(groups, chars, neg)

    def class_char(self, j: int, whole_start: int) -> tuple[int, int]:
        if j >= self.n:
            raise GoSyntaxError(f"missing closing ]: `{self.src[whole_start:]}`")
        if self.src[j] == "\\":
            return self.parse_escape(j)
        return ord(self.src[j]), j + 1


_RE_CACHE: dict[str, GoRegexp | tuple[type[Exception], str]] = {}


def compile_go(pattern: str) -> GoRegexp:
    """Go's regexp.Compile; raises GoSyntaxError (Go fails too) or Unsupported (orch cannot run it)."""
    hit = _RE_CACHE.get(pattern)
    if hit is None:
        try:
            py, names = _Translator(pattern).run()
            try:
                hit = GoRegexp(pattern, re.compile(py), names)
            except re.error as e:
                hit = (Unsupported, f"Python's re cannot run its translation: {e}")
        except (GoSyntaxError, Unsupported) as e:
            hit = (type(e), str(e))
        if len(_RE_CACHE) > 512:
            _RE_CACHE.clear()
        _RE_CACHE[pattern] = hit
    if isinstance(hit, tuple):
        raise hit[0](hit[1])  # a fresh exception each time: a cached one would grow its traceback
    return hit
