"""One version comparator, used both to order versions and to match selectors.

Why a single comparator: luet (0.35.x, ``pkg/versioner/versioner.go``) has two that disagree on
47 of 272 = 17.3 % of version pairs (luet commit ``8e03397e``, #394):

* ordering / "best" (``Sort``, ``Packages.Best``) uses Debian semantics (go-deb-version) after
  ``_`` -> ``-``: ``0.9 < 1.0~rc1 < 1.0 < 1.0-1 < 1.0+1 < 1.0+2 < 1.0+10``;
* selector matching (``ValidateSelector``) uses hashicorp/go-version (SemVer-ish), where ``+N`` is
  ignored (``1.0+2`` is not ``>1.0+1``), ``-N`` is a *pre-release* (``1.0-1`` is ``<1.0``, the
  opposite of the ordering), ``1.0_p1`` is not ``>1.0``, non-numeric versions never match ``>=0``,
  and an unknown operator such as ``~1.2`` silently never matches.

So in luet the "best" version can fail the very selector it was chosen for. Here everything goes
through :func:`compare`; a selector never disagrees with :func:`sorted` / :func:`best`.

Ordering rules (Debian policy, as dpkg's ``verrevcmp``):

* the text is stripped and ``_`` is read as ``-`` (``1.0_p1`` == ``1.0-p1``);
* ``[epoch:]upstream[-revision]``: the epoch is an optional run of digits before the first ``:``
  (default 0, compared first); the revision is what follows the *last* ``-`` (absent == ``0``);
* upstream and revision are compared as alternating non-digit / digit runs: digit runs
  numerically (``1.10 > 1.9``, ``01 == 1``), non-digit runs character by character with
  ``~`` < end-of-run < letters < everything else (``.``, ``+``, ...).

Consequences: ``1.0~rc1 < 1.0 < 1.0-1 < 1.0_p1 < 1.0+1 < 1.0+2 < 1.0+10``, ``latest > 9.9``.

Two spellings of one version (``1.0``/``1.00``/``1.0-0``, ``1.0_1``/``1.0-1``) are *equivalent*:
selectors cannot tell them apart (``=1.0`` matches ``1.00``), but :func:`compare` breaks the tie
with the raw string so it is a strict total order and sorting never loses or shuffles a version
(luet's ``Sort(["1.0_1", "1.0-1"])`` returned ``["1.0-1", "1.0-1"]``).
"""
from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Op", "Constraint", "Selector", "ANY", "compare", "sort_key", "parse_selector", "matches", "best"]

# A run's key: per-character weights plus a terminating 0, so `~` (-1) sorts below the end of the run.
_Run = tuple[int, ...]
_Part = tuple[tuple[_Run, int], ...]
_Rank = tuple[int, _Part, _Part]

_END: tuple[_Run, int] = ((0,), 0)
_RUNS = re.compile(r"(\D*)(\d*)")


def _weight(char: str) -> int:
    # dpkg `order()`: '~' before everything (even the end), letters by code, other symbols after letters.
    if char == "~":
        return -1
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + 256


def _part_key(text: str) -> _Part:
    """Key of an upstream or revision string, comparable with plain tuple comparison.

    The empty string is read as "0" (Debian: no revision == revision 0). After the first pair every
    non-digit run is non-empty, so a real pair never equals `_END`, and `_END` against a longer
    string's pair compares exactly as dpkg's implicit padding does.
    """
    pairs: list[tuple[_Run, int]] = []
    for match in _RUNS.finditer(text or "0"):
        letters, digits = match.group(1), match.group(2)
        if not letters and not digits:
            continue
        pairs.append((tuple(_weight(c) for c in letters) + (0,), int(digits) if digits else 0))
    pairs.append(_END)
    return tuple(pairs)


@functools.lru_cache(maxsize=65536)
def _rank(version: str) -> _Rank:
    """The semantic key of a version: equal ranks mean equivalent spellings."""
    text = version.strip().replace("_", "-")
    epoch = 0
    head, colon, rest = text.partition(":")
    if colon and head.isdigit():
        epoch, text = int(head), rest
    upstream, dash, revision = text.rpartition("-")
    if not dash:
        upstream, revision = text, ""
    return (epoch, _part_key(upstream), _part_key(revision))


def compare(a: str, b: str, *, tie_break: bool = True) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b`.

    With `tie_break` (default) equivalent spellings are ordered by their raw text, so 0 means
    `a == b`. Selectors use `tie_break=False`: 0 then means "the same version".
    """
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if not tie_break or a == b:
        return 0
    return -1 if a < b else 1


def sort_key(version: str) -> tuple[_Rank, str]:
    """Key for `sorted(..., key=sort_key)`, consistent with :func:`compare`."""
    return (_rank(version), version)


# ---------------------------------------------------------------------------------- selectors
class Op(enum.Enum):
    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"
    NE = "!"
    EQ = "="


# Longest operators first so `>=` is not read as `>` followed by `=1.0`.
_OPS: tuple[tuple[str, Op], ...] = (
    (">=", Op.GE),
    ("<=", Op.LE),
    ("!=", Op.NE),
    (">", Op.GT),
    ("<", Op.LT),
    ("!", Op.NE),
    ("=", Op.EQ),
)
# Versions in selectors must start with a letter or digit: rejects `~>1`, `^1`, `~1.2`, `*`, `>=` ...
_VERSION = re.compile(r"(?:\d+:)?[A-Za-z0-9][A-Za-z0-9.+~_:-]*")


@dataclass(frozen=True)
class Constraint:
    op: Op
    version: str

    def __str__(self) -> str:
        return f"{self.op.value}{self.version}"

    def allows(self, version: str) -> bool:
        c = compare(version, self.version, tie_break=False)
        if self.op is Op.GE:
            return c >= 0
        if self.op is Op.GT:
            return c > 0
        if self.op is Op.LE:
            return c <= 0
        if self.op is Op.LT:
            return c < 0
        if self.op is Op.NE:
            return c != 0
        return c == 0


@dataclass(frozen=True)
class Selector:
    """An AND of constraints; no constraints means "any version"."""

    constraints: tuple[Constraint, ...] = ()

    @property
    def is_any(self) -> bool:
        return not self.constraints

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.constraints) if self.constraints else ">=0"


ANY = Selector()


def parse_selector(text: str) -> Selector:
    """Parse `>=1.0`, `>1`, `<=2`, `<2`, `!1.0`, `=1.0`, `1.0` (exact) or a comma-joined AND of them.

    `""` and `>=0` mean any version, including ones below `0` in the ordering (`0~rc1`) and
    non-numeric ones (`latest`): a `>=` bound equivalent to `0` is dropped rather than compared.
    Raises ValueError on anything else (`>=`, `~>1`, `1.0,`, `>=1.0 <2`).
    """
    stripped = text.strip()
    if not stripped:
        return ANY
    constraints: list[Constraint] = []
    for raw in stripped.split(","):
        part = raw.strip()
        op = Op.EQ
        for prefix, candidate in _OPS:
            if part.startswith(prefix):
                op, part = candidate, part[len(prefix):].strip()
                break
        if not _VERSION.fullmatch(part):
            raise ValueError(f"invalid version selector {text!r}: bad constraint {raw.strip()!r}")
        if op is Op.GE and compare(part, "0", tie_break=False) == 0:
            continue
        constraint = Constraint(op, part)
        if constraint not in constraints:
            constraints.append(constraint)
    return Selector(tuple(constraints))


def matches(sel: Selector, version: str) -> bool:
    """True when `version` satisfies every constraint of `sel`."""
    return all(c.allows(version) for c in sel.constraints)


def best(sel: Selector, versions: Iterable[str]) -> str | None:
    """The highest version (by :func:`sort_key`) satisfying `sel`, or None."""
    candidates = [v for v in versions if matches(sel, v)]
    return max(candidates, key=sort_key) if candidates else None
