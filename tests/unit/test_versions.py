"""orchestrator.versions: one comparator for ordering and selectors (real tree versions + properties)."""
from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.versions import ANY, Op, best, compare, matches, parse_selector, sort_key


# ------------------------------------------------------------------ oracle: a literal port of dpkg
def _order(c: str) -> int:
    if c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256 if c else 0


def _verrevcmp(a: str, b: str) -> int:
    """dpkg lib/dpkg/version.c verrevcmp, index-based."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split(v: str) -> tuple[int, str, str]:
    v = v.strip().replace("_", "-")
    head, colon, rest = v.partition(":")
    epoch = 0
    if colon and head.isdigit():
        epoch, v = int(head), rest
    up, dash, rev = v.rpartition("-")
    return (epoch, up, rev) if dash else (epoch, v, "")


def _dpkg(a: str, b: str) -> int:
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    c = _verrevcmp(ua, ub) or _verrevcmp(ra, rb)
    return (c > 0) - (c < 0)


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


# ------------------------------------------------------------------ real examples
REAL = ["0.10.7", "1.19.4-1", "0.33.0-3", "1.18b7-5", "0.20230106", "2022.09.20+115", "0.9+23", "1.0~rc1", "1.0_p1",
        "0.0.1-alpha14-16", "1.19.4+k3s1", "1.23.6+k0s.2", "2.14.2+0", "20170419-5.197", "2021.03.10-2.1", "6.03-5"]


def test_luet_verified_sort_order() -> None:
    expected = ["0.9", "1.0~rc1", "1.0", "1.0-1", "1.0+1", "1.0+2", "1.0+10"]
    for perm in itertools.islice(itertools.permutations(expected), 0, 5040, 97):
        assert sorted(perm, key=sort_key) == expected


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("0.9", "0.10.7"),
        ("0.10.7", "0.33.0-3"),
        ("1.19.4", "1.19.4-1"),
        ("1.19.4-1", "1.19.4-1+1"),  # `luet tree bump` appends +N after a revision
        ("1.18b7-5", "1.18.0"),  # letters sort before '.'
        ("1.18b7-5", "1.18b7-6"),
        ("1.18b7", "1.18b8"),
        ("0.20230106", "0.20260813"),
        ("0.9+23", "0.10"),
        ("0.9", "0.9+23"),
        ("2022.09.20", "2022.09.20+115"),
        ("2022.09.20+99", "2022.09.20+115"),
        ("1.0~rc1", "1.0"),
        ("1.0~rc1", "1.0~rc2"),
        ("1.0~~", "1.0~"),
        ("1.0", "1.0_p1"),
        ("1.0-1", "1.0_p1"),  # _p1 is revision "p1": letters after digits-only
        ("1.0_p1", "1.0+1"),
        ("9.9", "1:0.1"),  # epoch wins
        ("9.9", "latest"),
        ("1.23.6+k0s.2", "1.23.6+k0s.10"),
    ],
)
def test_ordering_pairs(low: str, high: str) -> None:
    assert compare(low, high) == -1
    assert compare(high, low) == 1
    assert compare(low, high, tie_break=False) == -1


@pytest.mark.parametrize(("a", "b"), [("1.0", "1.00"), ("1.0", "1.0-0"), ("1.0_1", "1.0-1"), ("01.1", "1.1"),
                                      ("0:1.0", "1.0"), (" 1.0 ", "1.0")])
def test_equivalent_spellings_tie_break_by_raw(a: str, b: str) -> None:
    assert compare(a, b, tie_break=False) == 0
    assert compare(a, b) == (-1 if a < b else 1)
    assert sorted([a, b], key=sort_key) == sorted([b, a], key=sort_key) == sorted([a, b])
    assert matches(parse_selector(f"={b}"), a) and matches(parse_selector(b), a)
    assert not matches(parse_selector(f"!{b}"), a)


def test_sort_never_loses_a_version() -> None:  # luet 0.35: Sort(["1.0_1","1.0-1"]) == ["1.0-1","1.0-1"]
    assert sorted(["1.0_1", "1.0-1"], key=sort_key) == ["1.0-1", "1.0_1"]


# ------------------------------------------------------------------ selectors
def test_parse_selector_forms() -> None:
    assert parse_selector(">=1.0").constraints[0].op is Op.GE
    assert parse_selector(">1").constraints[0].op is Op.GT
    assert parse_selector("<=2").constraints[0].op is Op.LE
    assert parse_selector("<2").constraints[0].op is Op.LT
    assert parse_selector("!1.0").constraints[0].op is Op.NE
    assert parse_selector("=1.0") == parse_selector("1.0") == parse_selector(" = 1.0 ")
    sel = parse_selector(">=1.0, <2.0")
    assert [str(c) for c in sel.constraints] == [">=1.0", "<2.0"]
    assert str(sel) == ">=1.0, <2.0"
    assert parse_selector("") == parse_selector(">=0") == parse_selector("  ") == ANY
    assert ANY.is_any and str(ANY) == ">=0"


@pytest.mark.parametrize("garbage", [">=", "~>1", "~1.2", "^1.0", ">>1", "=>1.0", "==1.0", ">=1.0,", ",", ">=1.0 <2",
                                     "1.0 2.0", "*", "<", "!", "-1", ">=+1", "a b"])
def test_parse_selector_rejects_garbage(garbage: str) -> None:
    with pytest.raises(ValueError):
        parse_selector(garbage)


@pytest.mark.parametrize("version", REAL + ["latest", "0", "0~rc1", "~x", "", "1:0", "0.0.0"])
def test_ge_zero_matches_everything(version: str) -> None:
    assert matches(parse_selector(">=0"), version)
    assert matches(parse_selector(""), version)


def test_selectors_agree_with_ordering_where_luet_disagrees() -> None:
    assert matches(parse_selector(">1.0+1"), "1.0+2")  # luet: ignored +N
    assert matches(parse_selector(">=1.0"), "1.0-1")  # luet: -N is a pre-release
    assert not matches(parse_selector("<1.0"), "1.0-1")
    assert matches(parse_selector(">1.0"), "1.0_p1")
    assert matches(parse_selector(">0.0.10"), "0.0.10-7")
    assert matches(parse_selector(">0.6.1-1"), "0.6.1-2") and not matches(parse_selector(">0.6.1-1"), "0.6.1")
    assert matches(parse_selector(">=1.0, <2.0"), "2.0~rc1")  # 2.0~rc1 < 2.0
    assert matches(parse_selector(">=1.0, <2.0"), "1.99") and not matches(parse_selector(">=1.0, <2.0"), "2.0")


def test_best_real_examples() -> None:
    cos = ["0.33.0-3", "0.33.0", "0.33.0-10", "0.32.9-20", "0.34.0~rc1"]
    assert best(ANY, cos) == "0.34.0~rc1"
    assert best(parse_selector("<0.34"), cos) == "0.33.0-10"
    assert best(parse_selector(">=0.33, !0.33.0-10"), cos) == "0.34.0~rc1"
    assert best(parse_selector("0.33.0"), cos) == "0.33.0"
    assert best(parse_selector(">1"), cos) is None
    assert best(ANY, []) is None
    assert best(ANY, ["1.0", "1.00"]) == "1.00"  # deterministic among equivalents


# ------------------------------------------------------------------ properties
_atom = st.one_of(
    st.integers(0, 120).map(str),
    st.sampled_from(["0", "00", "01", "007"]),
    st.sampled_from(["a", "b", "rc", "p", "alpha", "k3s", "", "latest"]),
)
_sep = st.sampled_from([".", ".", "-", "_", "+", "~", "", ":"])


@st.composite
def versions(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(_atom, _sep), min_size=1, max_size=6))
    text = "".join(a + s for a, s in parts)
    if draw(st.booleans()):
        text = f"{draw(st.integers(0, 3))}:{text}"
    return text


_prefix_pool = st.sampled_from(REAL + ["1.0", "1.00", "1.0-0", "1.0_1", "1.0-1", "1.0+1", "1.0~rc1", "0", "latest"])
any_version = st.one_of(versions(), _prefix_pool)


@settings(max_examples=400)
@given(any_version, any_version)
def test_rank_matches_dpkg_oracle(a: str, b: str) -> None:
    assert compare(a, b, tie_break=False) == _dpkg(a, b)


@settings(max_examples=400)
@given(any_version, any_version)
def test_antisymmetric_and_strict(a: str, b: str) -> None:
    assert compare(a, b) == -compare(b, a)
    assert (compare(a, b) == 0) == (a == b)
    assert _sign((sort_key(a) > sort_key(b)) - (sort_key(a) < sort_key(b))) == compare(a, b)
    if compare(a, b, tie_break=False) != 0:
        assert compare(a, b) == compare(a, b, tie_break=False)


@settings(max_examples=300)
@given(any_version, any_version, any_version)
def test_transitive(a: str, b: str, c: str) -> None:
    if compare(a, b) <= 0 and compare(b, c) <= 0:
        assert compare(a, c) <= 0
    if compare(a, b, tie_break=False) == 0 and compare(b, c, tie_break=False) == 0:
        assert compare(a, c, tie_break=False) == 0


@settings(max_examples=50)
@given(st.lists(any_version, max_size=30))
def test_sorted_is_consistent_with_compare(vs: list[str]) -> None:
    by_key = sorted(vs, key=sort_key)
    assert by_key == sorted(vs, key=functools.cmp_to_key(compare))
    assert all(compare(x, y) <= 0 for x, y in zip(by_key, by_key[1:]))


_SIGN_OK = {">=": lambda c: c >= 0, ">": lambda c: c > 0, "<=": lambda c: c <= 0, "<": lambda c: c < 0,
            "!": lambda c: c != 0, "=": lambda c: c == 0, "": lambda c: c == 0}


@settings(max_examples=400)
@given(st.sampled_from(sorted(_SIGN_OK)), versions().filter(lambda v: v[:1].isalnum()), any_version)
def test_matches_is_compare(op: str, bound: str, version: str) -> None:
    try:
        sel = parse_selector(op + bound)
    except ValueError:
        assume(False)
        return
    assume(not sel.is_any)  # `>=0` is "any" by definition
    assert matches(sel, version) == _SIGN_OK[op](compare(version, bound, tie_break=False))


@settings(max_examples=200)
@given(st.lists(any_version, max_size=20), _prefix_pool, _prefix_pool)
def test_best_is_max_of_matching(vs: list[str], lo: str, hi: str) -> None:
    sel = parse_selector(f">={lo}, <{hi}")
    matching = [v for v in vs if matches(sel, v)]
    result = best(sel, vs)
    if not matching:
        assert result is None
    else:
        assert result in matching
        assert all(compare(result, v) >= 0 for v in matching)
        assert result == sorted(matching, key=sort_key)[-1]
