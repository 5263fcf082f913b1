"""Scanner, lexer and parser of the Go template front end."""
from __future__ import annotations

import pytest

from orchestrator.spec.gojinja import generate
from orchestrator.spec.goparse import parse
from orchestrator.spec.gotmpl import (
    COMMENT,
    GoSyntaxError,
    Out,
    Range,
    Tmpl,
    lex,
    number,
    scan,
    scan_careful,
    unquote,
)

FUNCS = {"printf", "eq", "and", "or", "not", "include", "dict", "index", "default", "upper"}


def test_scan_splits_and_trims_like_go() -> None:
    text = "a \n{{- .x -}}\n b{{ .y }} c {{- /* c */}} d"
    s = scan(text)
    assert s.key == (".x", " .y ", COMMENT)
    assert s.literals == ("a", "b", " c", " d")
    assert s.offsets == tuple(i for i in range(len(text)) if text.startswith("{{", i))
    assert scan_careful(text) == s
    assert s.first_ltrim and not s.last_rtrim


def test_scan_boundary_flags() -> None:
    assert scan("{{- 1 }}x").first_ltrim and not scan("{{ 1 }}x").first_ltrim
    assert scan("x{{ 1 -}}").last_rtrim and not scan("x{{ 1 }}").last_rtrim
    assert scan("no actions").key == () and scan("no actions").literals == ("no actions",)


def test_scan_skeleton_ignores_literal_text() -> None:
    a, b = scan("name: a\n{{ .Values.v }}\n"), scan("other text {{- .Values.v }}")
    assert a.key == (" .Values.v ",) and b.key == (".Values.v ",)
    assert scan("x {{ .Values.v }} y").key == scan("zzz{{ .Values.v }}").key


@pytest.mark.parametrize("text", ['{{ "}}" }}', "{{ `}}` }}", "{{ '}' }}", '{{ "a\\"}}" }}'])
def test_scan_closing_delimiter_inside_quotes(text: str) -> None:
    assert len(scan(text + "tail").key) == 1 and scan(text + "tail").literals[-1] == "tail"


@pytest.mark.parametrize("text,message", [
    ("a {{ .x", "unclosed action"),
    ("{{/* x", "unclosed comment"),
    ("{{/* x */ y }}", "comment ends before closing delimiter"),
    ('{{ "abc\n" }}', "unterminated quoted string"),
    ("{{ `abc }}", "unterminated raw quoted string"),
])
def test_scan_errors_carry_offsets(text: str, message: str) -> None:
    with pytest.raises(GoSyntaxError) as ei:
        scan(text)
    assert message in ei.value.message and ei.value.offset == text.index("{{")


def test_lexer_tokens() -> None:
    toks = lex(' $x := .Values.a.b | printf "%s" (index $ "k") 1.5 -2 \'a\' nil true', 0)
    assert [t.kind for t in toks] == ["var", "decl", "field", "|", "ident", "str", "(", "ident", "var", "str", ")",
                                      "num", "num", "char", "nil", "bool"]
    assert toks[2].text == ".Values.a.b"


def test_numbers_and_strings() -> None:
    assert number("42", 0) == 42 and number("0x1F", 0) == 31 and number("1_000", 0) == 1000
    assert number("1.5", 0) == 1.5 and number("1e3", 0) == 1000.0 and isinstance(number("1e3", 0), float)
    assert number("017", 0) == 15
    tok = lex(r'"a\tb\n\x41\u00e9\"q"', 0)[0]
    assert unquote(tok, 0) == 'a\tb\nA\u00e9"q'
    assert unquote(lex("`raw\\n`", 0)[0], 0) == "raw\\n"


def test_parser_builds_blocks_and_defines() -> None:
    key = tuple(scan('{{ define "d" }}{{ . }}{{ end }}{{ range $i, $v := .l }}{{ template "d" $v }}{{ end }}').key)
    prog = parse(key, FUNCS)
    assert set(prog.defines) == {"d"}
    rng = next(s for s in prog.main.body if isinstance(s, Range))
    assert [d.name for d in rng.pipe.decl] == ["$i", "$v"]
    assert isinstance(rng.body[1], Tmpl) and rng.body[1].name == "d"
    assert isinstance(prog.defines["d"].body[1], Out)


def test_reassigned_variables_live_in_a_namespace() -> None:
    prog = parse(tuple(scan('{{ $a := 1 }}{{ $b := 2 }}{{ range .l }}{{ $a = . }}{{ end }}{{ $a }}{{ $b }}').key), FUNCS)
    src = generate(prog.main).source
    assert "_ns.v1" in src and "namespace()" in src and "_ns.v2" not in src


def test_generated_jinja_contains_no_literal_text() -> None:
    prog = parse(scan("secret literal {{ .x }} more literal").key, FUNCS)
    unit = generate(prog.main)
    assert "secret" not in unit.source and "literal" not in unit.source
    assert unit.k_of_line.count(0) == 1  # the action sits on its own Jinja line


@pytest.mark.parametrize("actions,message,k", [
    (("if .x",), "unclosed {{if}}", 0),
    (("end",), "unexpected {{end}}", 0),
    (("if .x", "else", "else", "end"), "unexpected {{else}}", 2),
    (("range .l", "else if .x", "end"), "after {{else}}", 1),
    (("nope 1",), 'function "nope" not defined', 0),
    (("$y",), 'undefined variable "$y"', 0),
    (('define "a"', 'define "b"', "end", "end"), "top level", 1),
    (('define "a"', " 1 ", "end", 'define "a"', " 2 ", "end"), "multiple definition", 3),
    (("printf",), "", -1),
    ((".a .b",), "non-function", 0),
    (("1 | 2",), "non executable command in pipeline stage 2", 0),
    (("(printf",), "unclosed left paren", 0),
    (("template x",), "quoted template name", 0),
])
def test_parse_errors(actions: tuple[str, ...], message: str, k: int) -> None:
    if k < 0:
        parse(actions, FUNCS)  # valid: a function with no arguments
        return
    with pytest.raises(GoSyntaxError) as ei:
        parse(actions, FUNCS)
    assert message in ei.value.message and ei.value.k == k


def test_fast_scanner_agrees_with_careful_scanner() -> None:
    import random

    atoms = ["{{", "}}", "{{-", "-}}", " ", "\n", "\t", "x", '"', "'", "`", "/*", "*/", "-", "}", "{", '"}}"',
             "{{/* c */}}", "{{- /* c */ -}}", "{{ .x }}", "{{- .y -}}", "\\", "{{ '}' }}", " -", "rm /tmp/*",
             "{{ x\n-}}", "{{-\t3 }}", "{{-\t/*", "{{ `a\nb` }}"]
    rng = random.Random(7)

    def outcome(fn: object, text: str) -> object:
        try:
            s = fn(text)  # type: ignore[operator]
            return s, s.offsets
        except GoSyntaxError as e:
            return e.message, e.offset

    for _ in range(20_000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 12)))
        assert outcome(scan, text) == outcome(scan_careful, text), text
