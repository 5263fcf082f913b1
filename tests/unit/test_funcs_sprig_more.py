"""The rest of sprig v3.2.2 (+ Go's `js`): expected outputs are what luet (Go + sprig) prints for
the same template, worked out from sprig's docs and the Go sources it calls."""
from __future__ import annotations

import math
from typing import Any

import pytest

from orchestrator.errors import Reason, SpecError
from orchestrator.spec.funcs import FUNCS
from orchestrator.spec.funcs_refused import REFUSED
from orchestrator.spec.render import Renderer


@pytest.fixture(scope="module")
def r() -> Renderer:
    return Renderer([])


def render(r: Renderer, text: str, values: dict[str, Any] | None = None) -> str:
    return r.render("packages/p/build.yaml", text, values if values is not None else {})


def fails(r: Renderer, text: str, values: dict[str, Any] | None = None) -> SpecError:
    with pytest.raises(SpecError) as ei:
        render(r, text, values)
    return ei.value


# ------------------------------------------------------------------ paths (Go's path / path/filepath)
@pytest.mark.parametrize("text,want", [
    ('{{ base "/a/b.txt" }}|{{ base "" }}|{{ base "/" }}|{{ base "a/b//" }}|{{ base "x" }}', "b.txt|.|/|b|x"),
    ('{{ dir "/a/b/c" }}|{{ dir "a" }}|{{ dir "/" }}|{{ dir "a/b/" }}|{{ dir "" }}', "/a/b|.|/|a/b|."),
    ('{{ clean "a//b/../c/." }}|{{ clean "" }}|{{ clean "/../x" }}|{{ clean "../../a/.." }}|{{ clean "//a/" }}',
     "a/c|.|/x|../..|/a"),
    ('{{ ext "x.tar.gz" }}|{{ ext "a.b/c" }}|{{ ext "noext" }}|{{ ext ".bashrc" }}', ".gz|||.bashrc"),
    ('{{ isAbs "/x" }} {{ isAbs "x/y" }} {{ isAbs "" }}', "true false false"),
    ('{{ osBase "/a/b.txt" }} {{ osDir "/a/b" }} {{ osClean "a/./b/" }} {{ osExt "f.yaml" }} {{ osIsAbs "/" }}',
     "b.txt /a a/b .yaml true"),
])
def test_paths(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


# ------------------------------------------------------------------ strings
@pytest.mark.parametrize("text,want", [
    # huandu/xstrings v1.3.1 (sprig's docs and xstrings' own examples)
    ('{{ camelcase "foo_bar" }} {{ camelcase "http_server" }} {{ camelcase "_complex__case_" }} {{ camelcase "a" }}',
     "FooBar HttpServer _Complex_Case_ A"),
    ('{{ camelcase "fooBar" }}', "Foobar"),  # v1.3.1 lowers everything but word starts
    ('{{ snakecase "FirstName" }} {{ snakecase "HTTPServer" }} {{ snakecase "NoHTTPS" }} {{ snakecase "GO_PATH" }}',
     "first_name http_server no_https go_path"),
    ('{{ snakecase "GO PATH" }} {{ snakecase "GO-PATH" }} {{ snakecase "HTTP2XX" }} {{ snakecase "http2xx" }}',
     "go_path go_path http_2xx http_2xx"),
    ('{{ snakecase "HTTP20xOK" }} {{ kebabcase "FirstName" }} {{ kebabcase "HTTPServer" }} {{ kebabcase "GO_PATH" }}',
     "http_20x_ok first-name http-server go-path"),
    # goutils
    ('{{ swapcase "This Is A.Test" }}', "tHIS iS a.tEST"),
    ('{{ abbrev 5 "hello world" }}|{{ abbrev 3 "hello world" }}|{{ abbrev 20 "hello" }}', "he...|hello world|hello"),
    ('{{ abbrevboth 5 10 "1234 5678 9123" }}|{{ abbrevboth 0 7 "abcdefghij" }}|{{ abbrevboth 1 6 "x" }}',
     "...5678...|abcd...|x"),
    ('{{ initials "First Try" }}|{{ initials "  a  b c" }}', "FT|abc"),
    ('{{ initials "élan vital" }}', "Ãv"),  # goutils reads bytes: the lead byte of "é" (0xC3) is "Ã"
    ('{{ wrap 5 "Hello World" }}', "Hello\nWorld"),
    ('{{ wrap 3 "a verylongword b" }}', "a\nverylongword\nb"),
    ('{{ wrapWith 5 "\\t" "Hello World" }}|{{ wrapWith 3 "|" "a verylongword b" }}',
     "Hello\tWorld|a|ver|ylo|ngw|ord|b"),
    ('{{ plural "one anchovy" "many anchovies" 1 }}, {{ plural "one anchovy" "many anchovies" 2 }}',
     "one anchovy, many anchovies"),
    ('{{ trimall "$" "$5.00$" }} {{ "$5$" | trimall "$" }}', "5.00 5"),
    ('{{ regexQuoteMeta "1.2.3" }} {{ regexQuoteMeta "a+b*(c)|[d]{e}^$\\\\" }}',
     "1\\.2\\.3 a\\+b\\*\\(c\\)\\|\\[d\\]\\{e\\}\\^\\$\\\\"),
    ('{{ hello }}', "Hello!"),
    # Go's builtin js (text/template JSEscapeString)
    ('{{ js "a\'b<" }}', "a\\'b\\u003C"),
    ('{{ js "\\"x\\" > & = \\\\" }}', '\\"x\\" \\u003E \\u0026 \\u003D \\\\'),
    ('{{ js "tab\\there\\x7f é\\u00a0" }}', "tab\\u0009here\x7f é\\u00A0"),
    ('{{ js 1 2 }} {{ js "a" 1 }}', "1 2 a1"),
])
def test_strings(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


# ------------------------------------------------------------------ math
@pytest.mark.parametrize("text,want", [
    ("{{ floor 123.9999 }} {{ ceil 123.001 }} {{ floor -1.5 }} {{ ceil -0.5 }} {{ floor \"2.7\" }} {{ floor 3 }}",
     "123 124 -2 -0 2 3"),
    ("{{ round 123.555555 3 }} {{ round 3.14159 2 }} {{ round 2.5 0 }} {{ round 1234.5678 -2 }}",
     "123.556 3.14 3 1200"),
    ("{{ round -3.14159 2 }} {{ round 3.14159 2 0.1 }}", "-3.15 3.15"),  # sprig floors unless frac >= roundOn
    ("{{ addf 1.5 2 2 }} {{ add1f 1.5 }} {{ subf 7.5 2 3 }} {{ mulf 1.5 2 2 }} {{ divf 10 2 4 }}",
     "5.5 2.5 2.5 6 1.25"),
    ("{{ addf 0.1 0.2 }} {{ mulf 0.1 3 }} {{ subf 0.3 0.1 }} {{ addf }}", "0.3 0.3 0.2 0"),  # decimal, not float
    ("{{ divf 1 3 }} {{ divf 10 3 }} {{ divf 2 3 }} {{ divf -2 3 }}",
     "0.3333333333333333 3.3333333333333335 0.6666666666666667 -0.6666666666666667"),
    ('{{ addf "1.5" 1 }} {{ maxf 1 2.5 3 }} {{ minf 1.5 2 3 }} {{ maxf "x" -1 }}', "2.5 3 1.5 0"),
    ('{{ toDecimal "0777" }} {{ toDecimal 755 }} {{ toDecimal "-17" }} {{ toDecimal "9" }} {{ toDecimal "0o7" }}',
     "511 493 -15 0 0"),
    ("{{ biggest 1 5 3 }} {{ typeOf (floor 1) }} {{ typeOf (addf 1 1) }}", "5 float64 float64"),
])
def test_math(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


def test_float_math_edges(r: Renderer) -> None:
    assert render(r, "{{ maxf .Values.n 1 }} {{ floor .Values.i }} {{ round .Values.i 2 }}",
                  {"n": math.nan, "i": math.inf}) == "NaN +Inf +Inf"
    assert "decimal division by zero" in fails(r, "{{ divf 1 0 }}").message
    assert "Cannot create a Decimal from NaN" in fails(r, "{{ addf .Values.n }}", {"n": math.nan}).message
    assert "expected float64; got string" in fails(r, '{{ round 1.5 0 "0.5" }}').message


# ------------------------------------------------------------------ lists, dicts, JSON, reflection
@pytest.mark.parametrize("text,want", [
    (("{{ mustFirst (list 1 2 3) }} {{ mustRest (list 1 2 3) }} {{ mustLast (list 1 2 3) }} "
      "{{ mustInitial (list 1 2 3) }}"),
     "1 [2 3] 3 [1 2]"),
    (("{{ mustAppend (list 1) 2 }} {{ mustPush (list 1) 2 }} {{ mustPrepend (list 1) 0 }} "
      "{{ mustReverse (list 1 2 3) }}"),
     "[1 2] [1 2] [0 1] [3 2 1]"),
    (('{{ mustUniq (list 1 1 2) }} {{ mustWithout (list 1 2 3) 2 }} {{ mustHas 2 (list 1 2) }} '
      '{{ mustCompact (list 1 "" 0 "a") }}'),
     "[1 2] [1 3] true [1 a]"),
    (("{{ mustSlice (list 1 2 3 4) 1 3 }} {{ mustSlice (list 1 2 3) 1 }} {{ mustSlice (list 1 2 3) }} "
      "{{ mustSlice (list 1 2 3) \"1\" }}"),
     "[2 3] [2 3] [1 2 3] [2 3]"),
    ("{{ mustChunk 2 (list 1 2 3) }}", "[[1 2] [3]]"),
    (('{{ mustMerge (dict "a" 1 "b" 2) (dict "b" 3 "c" 4) }} '
      '{{ mustMergeOverwrite (dict "a" 1 "b" 2) (dict "b" 3 "c" 4) }}'),
     "map[a:1 b:2 c:4] map[a:1 b:3 c:4]"),
    ('{{ mustToJson (dict "a" "<b>") }} {{ mustToRawJson (dict "a" "<b>") }} {{ mustToPrettyJson (list 1) }}',
     '{"a":"\\u003cb\\u003e"} {"a":"<b>"} [\n  1\n]'),
    ('{{ mustFromJson "{\\"a\\": [1, 2.5, null]}" }} {{ mustFromJson "\\"s\\"" }} {{ typeOf (mustFromJson "1") }}',
     "map[a:[1 2.5 <nil>]] s float64"),
    (('{{ $d := dict "a" (list 1) }}{{ $c := deepCopy $d }}{{ $_ := set $c "b" 2 }}'
      '{{ $d }} {{ $c }} {{ mustDeepCopy 5 }}'),
     "map[a:[1]] map[a:[1] b:2] 5"),
    ('{{ typeIsLike "int" 1 }} {{ typeIsLike "string" 1 }} {{ typeIsLike "map[string]interface {}" (dict) }}',
     "true false true"),
    ('{{ required "x is required" .Values.x }} {{ required "n" 0 }}', "1 0"),
])
def test_lists_dicts_json(r: Renderer, text: str, want: str) -> None:
    assert render(r, text, {"x": 1}) == want


def test_must_merge_never_changes_the_values(r: Renderer) -> None:
    values = {"m": {"a": 1, "n": {"x": 1}}}
    text = '{{ mustMergeOverwrite .Values.m (dict "a" 2 "n" (dict "y" 2)) }} {{ .Values.m }}'
    # sprig merges into its first argument: the same render sees the change (luet prints this) ...
    assert render(r, text, values) == "map[a:2 n:map[x:1 y:2]] map[a:2 n:map[x:1 y:2]]"
    # ... but the renderer works on a copy, so the values themselves never change
    assert values == {"m": {"a": 1, "n": {"x": 1}}}


def test_json_encoders_swallow_or_raise_like_sprig(r: Renderer) -> None:
    v = {"x": [1.0, math.nan]}
    assert render(r, "[{{ toJson .Values.x }}][{{ toPrettyJson .Values.x }}]", v) == "[][]"
    for fn in ("mustToJson", "mustToPrettyJson", "mustToRawJson", "toRawJson"):
        assert "json: unsupported value: NaN" in fails(r, f"{{{{ {fn} .Values.x }}}}", v).message
    assert "invalid character 'N'" in fails(r, '{{ mustFromJson "NaN" }}').message
    assert "mustFromJson" in fails(r, '{{ mustFromJson "{" }}').message


# ------------------------------------------------------------------ regexes
def test_regex_must_variants(r: Renderer) -> None:
    t = ('{{ mustRegexMatch "^a.c$" "abc" }} {{ mustRegexFind "a+" "baaa" }} {{ mustRegexFindAll "a" "aaa" 2 }} '
         '{{ mustRegexSplit "," "a,b,c" 2 }} {{ mustRegexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }} '
         '{{ mustRegexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}')
    assert render(r, t) == "true aaa [a a] [a b,c] -W-xxW- -${1}-${1}-"
    assert render(r, '{{ regexMatch "(" "x" }}') == "false"  # sprig ignores the compile error here only
    for fn in ("mustRegexMatch", "regexFind", "mustRegexFind"):
        e = fails(r, f'{{{{ {fn} "(" "x" }}}}')
        assert e.reason is Reason.TEMPLATE_ERROR and f"{fn}: bad regular expression" in e.message
    assert "RE2 syntax" in fails(r, '{{ regexMatch "\\\\pL" "x" }}').message  # never a silent false


# ------------------------------------------------------------------ URLs (Go's net/url)
def test_url_parse_and_join(r: Renderer) -> None:
    got = render(r, '{{ urlParse "http://admin:secret@server.com:8080/api?list=false#anchor" }}')
    assert got == ("map[fragment:anchor host:server.com:8080 hostname:server.com opaque: path:/api "
                   "query:list=false scheme:http userinfo:admin:secret]")
    got = render(r, '{{ $u := urlParse "http://[::1%25en0]:80/a%20b?q#f%20g" }}{{ $u.host }}|{{ $u.hostname }}|'
                    '{{ $u.path }}|{{ $u.fragment }}|{{ (urlParse "mailto:joe@x.org").opaque }}')
    assert got == "[::1%en0]:80|::1%en0|/a b|f g|joe@x.org"
    t = ('{{ urlJoin (dict "fragment" "fragment" "host" "host:80" "path" "/path" "query" "query" "scheme" "http") }} '
         '{{ urlJoin (dict "scheme" "http" "host" "h" "path" "a b" "userinfo" "u:p@ss") }} '
         '{{ urlJoin (dict "path" "a:b") }}')
    assert render(r, t) == "http://host:80/path?query#fragment http://u:p%40ss@h/a%20b ./a:b"
    assert 'unable to parse url: parse ":x": missing protocol scheme' in fails(r, '{{ urlParse ":x" }}').message
    assert 'invalid port ":p" after host' in fails(r, '{{ urlParse "http://h:p/" }}').message
    assert "must be of type string, but int found" in fails(r, '{{ urlJoin (dict "host" 1) }}').message


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("text,fragment", [
    ("{{ base }}", "wrong number of args for base: want 1 got 0"),
    ('{{ camelcase "a" "b" }}', "wrong number of args for camelcase: want 1 got 2"),
    ("{{ round 1.5 }}", "wrong number of args for round: want at least 2 got 1"),
    ('{{ wrapWith 1 "x" }}', "wrong number of args for wrapWith: want 3 got 2"),
    ("{{ mustFirst }}", "wrong number of args for mustFirst: want 1 got 0"),
    ("{{ base 1 }}", "base: wrong type for value; expected string; got int"),
    ('{{ abbrev "5" "x" }}', "abbrev: wrong type for value; expected int; got string"),
    ("{{ mustFirst 1 }}", "Cannot find first on type int"),
    ('{{ mustSlice "abc" 1 }}', "list should be type of slice or array but string"),
    ("{{ mustSlice (list 1 2) 1 5 }}", "reflect.Value.Slice: slice index out of bounds"),
    ('{{ required "need .Values.x" .Values.x }}', "need .Values.x"),
    ('{{ required "need it" "" }}', "need it"),
])
def test_errors(r: Renderer, text: str, fragment: str) -> None:
    e = fails(r, "a: 1\n" + text)
    assert e.reason is Reason.TEMPLATE_ERROR and e.line == 2
    assert fragment in e.message


@pytest.mark.parametrize("name", ["now", "uuidv4", "randAlphaNum", "env", "getHostByName", "genCA", "derivePassword"])
def test_non_reproducible_functions_are_refused_clearly(r: Renderer, name: str) -> None:
    e = fails(r, f'x: 1\ny: {{{{ {name} "a" }}}}\n')
    assert e.reason is Reason.TEMPLATE_ERROR and (e.file, e.line) == ("packages/p/build.yaml", 2)
    assert f'function "{name}" is not supported' in e.message and "--values" in e.message
    assert "not defined" not in e.message


def test_refusals_cover_the_whole_non_deterministic_set() -> None:
    expected = {"now", "date", "dateInZone", "date_in_zone", "dateModify", "date_modify", "mustDateModify",
                "must_date_modify", "htmlDate", "htmlDateInZone", "ago", "duration", "durationRound", "toDate",
                "mustToDate", "unixEpoch", "randAlphaNum", "randAlpha", "randAscii", "randNumeric", "randBytes",
                "randInt", "shuffle", "uuidv4", "env", "expandenv", "getHostByName", "genPrivateKey", "genCA",
                "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert",
                "genSignedCertWithKey", "buildCustomCert", "derivePassword", "htpasswd", "bcrypt", "encryptAES",
                "decryptAES", "semver"}
    assert expected <= set(REFUSED)
    assert not set(REFUSED) & set(FUNCS)


def test_semver_is_refused_and_unknown_functions_still_not_defined(r: Renderer) -> None:
    assert "semverCompare" in fails(r, '{{ (semver "1.2.3").Major }}').message
    assert 'function "nosuch" not defined' in fails(r, "{{ nosuch 1 }}").message


def test_new_functions_work_in_native_templates(r: Renderer) -> None:
    text = "{{ base('/a/b.txt') }} {{ '/a/b' | dir }} {{ camelcase('foo_bar') }} {{ divf(1, 4) }}"
    assert r.render("packages/p/build.yaml.j2", text, {}) == "b.txt /a FooBar 0.25"
