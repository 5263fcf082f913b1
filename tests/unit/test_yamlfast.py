"""`yamlfast` parses its subset exactly as PyYAML's C safe loader does, and refuses (None)
everything else, invalid YAML included, so libyaml parses it and reports the error."""
from __future__ import annotations

import random

import pytest
import yaml

from orchestrator.spec import yamlfast, yamlload
from tests.unit.test_yamlload import corpus_yaml_files, same

TAKEN = [
    "name: pkg00091\ncategory: cat00\nversion: \"1.9.91\"\nfinal: false\ndeps: \n- {name: a, category: b}\n",
    "packages:\n  - name: a\n    version: '1.0'\n    deps: []\n  - name: b\n    hidden: yes\n    labels: {}\n",
    "---\nrequires:\n- name: \"x\"\n  category: \"y\"\n  version: \">=0\"\n\nenv:\n\n- ARCH=x86_64\n",
    "steps:\n  - ./configure --prefix=/usr && make -j4\n  - echo 'it''s' \"quoted\" | tee a#b\n",
    "# a comment\na:\n  b:\n    c: [1, 2.5, null, ~, on, Off, 0x1F, 1_000, .inf, x]\n  # another\n  d: 1:20\n",
    "url: http://example.org/a?b=c\nk: 'it''s'\nempty: ''\nq: \"\"\nneg: -1\ndash: -x\nn:\n",
    "- a\n- b: 1\n  c:\n  - d\n-   e: f\n    g: h\n",
    "a:\n- 1\n- 2\nb: {x: 1, y: two,}\nc: [a, b, ]\n   \n",
]
REFUSED = [
    "a: |\n  block\n", "a: >-\n  folded\n", "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: !!python/object:os.system x\n",
    "a: b # comment\n", "a: \"esc\\n\"\n", "a: multi\n  line\n", "a:\tb\n", "a: caf\u00e9\n", "a: 1\n---\nb: 2\n",
    "a: 1\n...\n", "<<: {a: 1}\n", "=: 1\n", "yes: 1\n", "1: a\n", "~: a\n", "a: 2001-12-14\n", "a: [b, [c]]\n",
    "a: {b: [c]}\n", "a: [b: c]\n", "a: [b\n", "a: {b}\n", "a: 'open\n", "- - x\n", "-\n  a: 1\n", "? a\n: b\n",
    "a: b: c\n", "a:\n    b: 1\n  c: 2\n", "a: 1\n - b\n", "just a scalar\n", "", "# only a comment\n",
    "a: x\n b: y\n", "a: [x?y]\n", "a: {b: c:d}\n", "a: [,]\n", "a: [b,,c]\n", "%YAML 1.1\n---\na: 1\n",
    "'quoted key': 1\n", "k" + " " * 1100 + ": v\n", "a: {k" + " " * 1100 + ": v}\n", "\"k\": 1\n", "a: @x\n", "a: `x`\n", "a: - x\n", "a: x:\n", "a: 1\r\nb: 2\r\n",
]


@pytest.mark.parametrize("text", TAKEN)
def test_the_subset_is_taken_and_matches(text: str) -> None:
    got = yamlfast.load(text)
    assert got is not None, text
    assert same(got[0], yaml.load(text, Loader=yaml.CSafeLoader))


@pytest.mark.parametrize("text", REFUSED)
def test_everything_else_is_left_to_libyaml(text: str) -> None:
    assert yamlfast.load(text) is None


ATOMS = ["a", "name", "yes", "No", "on", "~", "null", "0x1F", "017", "1_0", "1:20", ".inf", "1e3", "1.5", "+1",
         "-1", "2001-12-14", "<<", "=", "'q'", "'it''s'", '"d"', '"a\\"b"', "[]", "{}", "[a, b]", "{a: 1, b: x}",
         "[a,]", "{a}", "a:b", "a: b", "a #c", "a#b", "-x", "- x", "-", "?x", "? x", ":x", "&a x", "*a", "!!str x",
         "|", ">", "%x", "@x", "`x`", "x,y", "[a, [b]]", "{a: [1]}", "[a:b]", "[a: b]", "[a, b", "'a", '"a', "x y",
         "http://x", "a?b", "[a?b]", "---", "...", "--- x", "#c", "a #", "''", '""', "' '", "[ ]", "{ }", "[,]",
         "[a,,b]", "{a: }", "{: a}", "\u00e9", "\t", "a\tb", "True", "FALSE", "0.", "-.5", "0b101", "0o17", "~x",
         "n", "y", "NULL", "-0"]
SIMPLE = ["a", "x y", "1", "true", "'q'", '"d"', "[a, 1]", "{a: 1, b: c}", "-x", "http://x", "[]", "~"]


def _atom(rng: random.Random) -> str:
    return rng.choice(ATOMS if rng.random() < 0.5 else SIMPLE)


def _node(rng: random.Random, ind: int, depth: int) -> list[str]:
    """Random block YAML lines: maps and sequences of tricky scalars, odd indentation, comments."""
    lines: list[str] = []
    if rng.random() < 0.55:
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(["k", "name", "a b", "x.y", _atom(rng), f"key{rng.randint(0, 3)}"])
            sub = _node(rng, ind + rng.choice([1, 2, 4]), depth + 1) if depth < 3 and rng.random() < 0.4 else []
            if sub:
                lines += [" " * ind + f"{key}:" + rng.choice(["", " "]), *sub]
            else:
                lines.append(" " * ind + f"{key}:{rng.choice([' ', ' ', '  ', ''])}{_atom(rng)}"
                             + rng.choice(["", "", " ", " # c"]))
        return lines
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.5:
            lines.append(" " * ind + "-" + rng.choice([" ", "  ", ""]) + _atom(rng))
        elif r < 0.8:
            pad = rng.choice([" ", "   "])
            lines.append(" " * ind + "-" + pad + f"{rng.choice(['n', 'v', 'yes', 'a'])}: {_atom(rng)}")
            col = ind + 1 + len(pad)
            for _ in range(rng.randint(0, 2)):
                lines.append(" " * rng.choice([col, col, col - 1, col + 1]) + f"k{rng.randint(0, 5)}: {_atom(rng)}")
        else:
            lines += [" " * ind + "-", *(_node(rng, ind + 2, depth + 1) if depth < 3 else [" " * (ind + 2) + "x"])]
        if rng.random() < 0.1:
            lines.append(rng.choice(["", "  # comment", "#x", "   "]))
    return lines


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(0, 2)):
        i = rng.randrange(len(text) + 1)
        op = rng.random()
        if op < 0.4:
            text = text[:i] + rng.choice(" :-#'\"[]{},\n?&*!|>\tx") + text[i:]
        elif op < 0.7:
            text = text[:i] + text[i + 1:]
        else:
            text = text[:i] + " " + text[i:]
    return text


@pytest.mark.parametrize("seed", range(4))
def test_random_documents_match_libyaml_or_are_refused(seed: int) -> None:
    """Differential: random (and randomly broken) documents; whatever the fast path takes must be
    what libyaml gives, and it must take nothing libyaml rejects."""
    rng = random.Random(seed)
    taken = 0
    for _ in range(3000):
        text = "\n".join(_node(rng, rng.choice([0, 0, 2]), 0)) + rng.choice(["\n", "", "\n\n"])
        if rng.random() < 0.1:
            text = "---\n" + text
        if rng.random() < 0.5:
            text = _mutate(rng, text)
        got = yamlfast.load(text)
        if got is None:
            continue
        taken += 1
        try:
            want = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError as exc:
            pytest.fail(f"taken, but libyaml rejects it ({exc}): {text!r}")
        assert same(got[0], want), text
    assert taken > 200  # the subset is not empty: the comparison means something


def test_every_corpus_spec_the_fast_path_takes_matches() -> None:
    taken = 0
    for path in corpus_yaml_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        got = yamlfast.load(text)
        if got is not None:
            taken += 1
            assert same(got[0], yaml.load(text, Loader=yaml.CSafeLoader)), path
    assert taken > 50


def test_load_plain_takes_the_fast_path_and_falls_back() -> None:
    assert yamlload.load_plain("a: [1, x]\n", "x.yaml") == ({"a": [1, "x"]}, True)
    assert yamlload.load_plain("a: &x [1]\nb: *x\n", "x.yaml") == ({"a": [1], "b": [1]}, True)
    with pytest.raises(Exception, match="x.yaml:2: invalid YAML"):
        yamlload.load("a: 1\n b: 2\n", "x.yaml")


@pytest.mark.parametrize("line", ["a" + " " * 2_000_000 + "b", "k" + " " * 2_000_000 + ": v", "- x" + " " * 2_000_000 + "y"],
                         ids=["scalar", "key", "item"])
def test_long_runs_of_spaces_stay_linear(line: str) -> None:
    """A hostile spec is bounded by its size (8 MiB), and parsing it must stay linear in it: a
    pattern that backtracks over a run of spaces would take hours here, not milliseconds."""
    import time

    start = time.perf_counter()
    got = yamlfast.load(line + "\n")
    seconds = time.perf_counter() - start
    assert seconds < 5
    if got is not None:
        assert same(got[0], yaml.load(line, Loader=yaml.CSafeLoader)), got[0] if len(line) < 100 else "differs"
