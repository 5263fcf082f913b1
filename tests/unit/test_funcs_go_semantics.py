"""Go/sprig semantics the first sprig port missed: merging into the first argument, sprig's `slice`,
Go's regexp (RE2 syntax and match iteration, `$` expansion), reflect.DeepEqual in the list
functions, and the refusal of non-reproducible functions in native templates.

Every expected output is what Go 1.19 text/template + sprig 3.2.3 (`sprig.TxtFuncMap()`, as luet
uses it) printed for the same template; the regexp and list code they run is that of sprig 3.2.2.
"""
from __future__ import annotations

import re
import warnings
from typing import Any

import pytest

from orchestrator.errors import Reason, SpecError
from orchestrator.spec.funcs_regex import go_matches
from orchestrator.spec.goregex import compile_go
from orchestrator.spec.gojinja import MUTATING
from orchestrator.spec.render import Renderer


@pytest.fixture(scope="module")
def r() -> Renderer:
    return Renderer([])


def render(r: Renderer, text: str, values: dict[str, Any] | None = None, path: str = "packages/p/build.yaml") -> str:
    return r.render(path, text, values if values is not None else {})


def fails(r: Renderer, text: str, values: dict[str, Any] | None = None,
          path: str = "packages/p/build.yaml") -> SpecError:
    with pytest.raises(SpecError) as ei:
        render(r, text, values, path)
    return ei.value


# ------------------------------------------------------------------ 1. merge into the first argument
@pytest.mark.parametrize("text,want", [
    ('{{ $d := dict "a" 1 }}{{ $_ := mustMerge $d (dict "b" 2) }}{{ $d.b }}', "2"),
    ('{{ $d := dict "a" 1 }}{{ $_ := mustMerge $d (dict "b" 2) }}{{ $d.b }} {{ $d }}', "2 map[a:1 b:2]"),
    (('{{ $d := dict "a" 1 "n" (dict "x" 1) }}{{ $r := mustMergeOverwrite $d (dict "a" 2 "n" (dict "y" 2)) }}'
      '{{ $d }} {{ $r }}'),
     "map[a:2 n:map[x:1 y:2]] map[a:2 n:map[x:1 y:2]]"),
    (('{{ $d := dict "a" 1 }}{{ $_ := merge $d (dict "a" 5 "b" 2) }}{{ $d }} '
      '{{ $e := dict "a" 1 }}{{ $_ := mergeOverwrite $e (dict "a" 5 "b" 2) }}{{ $e }}'),
     "map[a:1 b:2] map[a:5 b:2]"),
])
def test_merge_functions_change_their_first_argument(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


@pytest.mark.parametrize("text,want", [  # mergo's rules, as sprig's merge functions apply them
    ('{{ merge (dict "a" 0 "b" "" "c" (list) "d" false "e" nil) (dict "a" 1 "b" "x" "c" (list 1) "d" true "e" 5 "f" 6) }}',
     "map[a:1 b:x c:[1] d:true e:5 f:6]"),
    ('{{ mergeOverwrite (dict "a" 1 "b" "x" "c" (list 1) "d" true) (dict "a" 0 "b" "" "c" (list) "d" false) }}',
     "map[a:0 b: c:[] d:false]"),  # overwrite even with empty values
    ('{{ merge (dict "a" 1) (dict "e" nil) }} {{ mergeOverwrite (dict "a" 1) (dict "a" nil "e" nil) }}',
     "map[a:1] map[a:<nil> e:<nil>]"),
    (('{{ merge (dict "n" 1) (dict "n" (dict "x" 2)) }} {{ mergeOverwrite (dict "n" 1) (dict "n" (dict "x" 2)) }} '
      '{{ mergeOverwrite (dict "n" (dict "x" 1)) (dict "n" 5) }}'),
     "map[n:1] map[n:1] map[n:5]"),  # a non-empty scalar is never replaced by a map
    (('{{ merge (dict "n" "") (dict "n" (dict "x" 1)) }} {{ mergeOverwrite (dict "n" "") (dict "n" (list 1)) }} '
      '{{ merge (dict "n" 5) (dict "n" (list 1)) }} {{ mergeOverwrite (dict "l" 3) (dict "l" (list)) }}'),
     "map[n:map[x:1]] map[n:[1]] map[n:5] map[l:[]]"),
    ('{{ merge (dict "n" (dict "x" 0 "z" (dict "q" 1))) (dict "n" (dict "x" 2 "z" (dict "q" 5 "w" 6))) }}',
     "map[n:map[x:2 z:map[q:1 w:6]]]"),
    (('{{ mergeOverwrite (dict "n" (dict "x" 0 "z" (dict "q" 1))) (dict "n" (dict "x" 2 "z" (dict "q" "" "w" 6))) '
      '(dict "n" (dict "x" nil)) }}'),
     "map[n:map[x:<nil> z:map[q: w:6]]]"),
    ('{{ mustMerge (dict "l" (list 1 2)) (dict "l" (list 3)) }} {{ mustMergeOverwrite (dict "l" (list 1 2)) (dict "l" (list 3)) }}',
     "map[l:[1 2]] map[l:[3]]"),
    # source maps go in as they are: changing them later shows through the merged map, as in Go
    ('{{ $s := dict "n" (dict "x" 1) }}{{ $d := dict }}{{ $_ := merge $d $s }}{{ $_ := set $d.n "y" 2 }}{{ $s }}',
     "map[n:map[x:1 y:2]]"),
])
def test_merge_follows_mergo(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


def test_must_merge_is_protected_like_merge() -> None:
    assert {"set", "unset", "merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"} <= MUTATING


@pytest.mark.parametrize("fn", ["mustMerge", "mustMergeOverwrite", "merge", "mergeOverwrite"])
def test_values_seen_by_another_package_never_change(fn: str) -> None:
    values = {"m": {"a": 1, "n": {"x": 1}}}
    shared = ("templates/t.yaml", f'{{{{ define "grow" }}}}{{{{ $_ := {fn} .Values.m (dict "z" 1) }}}}{{{{ end }}}}')
    r = Renderer([shared])
    # in the same render the change is visible, as in luet ...
    assert r.render("packages/a/build.yaml", '{{ template "grow" . }}{{ .Values.m.z }}', values) == "1"
    assert render(r, f'{{{{ $_ := {fn} .Values.m.n (dict "y" 2) }}}}{{{{ .Values.m.n }}}}', values) == "map[x:1 y:2]"
    assert r.render("packages/n/build.yaml.j2", f'{{{{ {fn}(Values.m, {{"q": 1}}).q }}}}', values) == "1"
    # ... but the next package (and the caller) still sees the original values
    assert r.render("packages/b/build.yaml", "{{ .Values.m }}", values) == "map[a:1 n:map[x:1]]"
    assert values == {"m": {"a": 1, "n": {"x": 1}}}


# ------------------------------------------------------------------ 2. sprig's slice
@pytest.mark.parametrize("text,want", [
    (('{{ slice (list 1 2 3 4) 1 3 }} {{ slice (list 1 2 3) "1" }} {{ slice (list 1 2 3) 1.9 }} '
      '{{ slice (list 1 2 3) true }} {{ slice (list 1 2 3) 3 }} {{ slice (list 1 2 3) 0 0 }} {{ slice (list 1 2 3) }} '
      '{{ mustSlice (list 1 2 3) 1 2 99 }}'),
     "[2 3] [2 3] [2 3] [2 3] [] [] [1 2 3] [2]"),
    ('{{ slice (splitList "," "a,b,c") 1 }} {{ slice (list 1 2 3) "x" 2 }}', "[b c] [1 2]"),
    ("{{ if slice (list) }}x{{ else }}nil{{ end }} {{ typeOf (slice (list)) }}", "nil <nil>"),
])
def test_slice_is_sprigs(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


@pytest.mark.parametrize("text,fragment", [
    ('{{ slice "abc" 1 2 }}', "list should be type of slice or array but string"),  # text/template's would slice it
    ('{{ mustSlice "abc" }}', "list should be type of slice or array but string"),
    ('{{ slice (dict "a" 1) }}', "list should be type of slice or array but map"),
    ("{{ slice 5 }}", "list should be type of slice or array but int"),
    ("{{ slice (list 1 2 3) 0 4 }}", "reflect.Value.Slice: slice index out of bounds"),
    ("{{ slice (list 1 2 3) 2 1 }}", "reflect.Value.Slice: slice index out of bounds"),
    ("{{ slice (list 1 2 3) -1 }}", "reflect.Value.Slice: slice index out of bounds"),
])
def test_slice_errors(r: Renderer, text: str, fragment: str) -> None:
    e = fails(r, text)
    assert e.reason is Reason.TEMPLATE_ERROR and fragment in e.message


# ------------------------------------------------------------------ 3. Go's regexp
@pytest.mark.parametrize("text,want", [
    # match iteration: no empty match right after a match; resume one character after an empty one
    ('{{ regexReplaceAll "a*" "baaac" "X" }} {{ regexReplaceAllLiteral "a*" "baaac" "X" }}', "XbXcX XbXcX"),
    ('{{ regexFindAll "a*" "baaac" -1 | toJson }} {{ regexFindAll "a*" "baaac" 2 | toJson }}',
     '["","aaa",""] ["","aaa"]'),
    ('{{ regexFindAll "^|\\\\w+" "foo" -1 | toJson }} {{ regexFindAll "x*" "abc" -1 | toJson }}',
     '["","oo"] ["","","",""]'),
    ('{{ mustRegexFindAll "a*" "baaac" -1 | toJson }} {{ mustRegexReplaceAll "a*" "baaac" "X" }}',
     '["","aaa",""] XbXcX'),
    # Split: no capture groups, Go's n, empty input
    ('{{ regexSplit "a*" "abaabaccadaaae" 5 | toJson }} {{ regexSplit "x*" "b" -1 | toJson }}',
     '["","b","b","c","cadaaae"] ["b"]'),
    ('{{ regexSplit "(,)" "a,b,,c" -1 | toJson }} {{ regexSplit "(-)|(\\\\+)" "1-2+3" 2 | toJson }}',
     '["a","b","","c"] ["1","2+3"]'),
    ('{{ regexSplit "" "abc" -1 | toJson }} {{ regexSplit "," "" -1 | toJson }} {{ regexSplit "" "" -1 | toJson }}',
     '["a","b","c"] [""] []'),
    ('{{ regexSplit "," "a,b" 0 }} {{ mustRegexSplit "(,)" "a,b,c" 2 | toJson }}', '[] ["a","b,c"]'),
    # `$` is the very end unless (?m); \w \d \s \b and POSIX classes are ASCII
    ('{{ regexReplaceAll "(?m)$" "a\\nb\\n" "X" | toJson }} {{ regexReplaceAll "$" "a\\n" "X" | toJson }}',
     '"aX\\nbX\\nX" "a\\nX"'),
    ('{{ regexMatch "^[0-9]+$" "12\\n" }} {{ regexMatch "(?m)^[0-9]+$" "12\\n" }}', "false true"),
    ('{{ regexFindAll "\\\\w+" "café naïve" -1 | toJson }} {{ regexFindAll "\\\\d" "1٢3" -1 | toJson }}',
     '["caf","na","ve"] ["1","3"]'),
    ('{{ regexReplaceAll "\\\\s" "a\\u00a0b\\vc" "_" | toJson }} {{ regexReplaceAll "\\\\bé" "é xé" "E" }}',
     '"a\xa0b\\u000bc" é xE'),
    ('{{ regexFindAll "[[:alpha:]]+" "abc déf" -1 | toJson }} {{ regexFindAll "[[:^digit:]]+" "ab12cd" -1 | toJson }}',
     '["abc","d","f"] ["ab","cd"]'),
    # RE2 syntax Python reads differently or lacks
    ('{{ regexFindAll "a{,2}" "a{,2}" -1 | toJson }} {{ regexMatch "x{01}" "x{01}" }}', '["a{,2}"] true'),
    ('{{ regexFind "(?U)a+" "aaa" }} {{ regexFind "(?U)a+?" "aaa" }} {{ regexFind "\\\\Qa.b\\\\E+" "a.bbb" }}',
     "a aaa a.bbb"),
    ('{{ regexFind "\\\\x{41}\\\\101" "AA" }} {{ regexFind "[]a]+" "]a]" }} {{ regexFind "[\\\\d-z]+" "1-z" }}',
     "AA ]a] 1-z"),
    # (?flags) last to the end of the enclosing group, across its alternatives
    ('{{ regexFindAll "x(?i)a|c" "xA C c" -1 | toJson }} {{ regexFindAll "x((?i)a|c)" "xA xC xc" -1 | toJson }}',
     '["xA","C","c"] ["xA","xC","xc"]'),
    ('{{ regexFind "a(?i)*" "aaa" }}', "aaa"),  # the repetition applies to the `a` before the flags
    ('{{ regexFindAll "(?i)k" "kK\\u212a" -1 | toJson }} {{ regexFindAll "(?i)[^\\\\w]" "k\\u212as\\u017f-" -1 | toJson }}',
     '["k","K","\u212a"] ["-"]'),
])
def test_regex_functions_follow_go(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


@pytest.mark.parametrize("text,want", [
    ('{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }} {{ regexReplaceAll "a(x*)b" "-ab-axxb-" "$1W" }}',
     "-W-xxW- ---"),  # $1W is the (missing) group named "1W"
    ('{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "$$1\\\\1" }}', "-$1\\1-$1\\1-"),  # Python's \\1 means nothing
    ('{{ regexReplaceAll "(?P<first>\\\\w+) (?P<last>\\\\w+)" "John Smith" "${last}, $first" }}', "Smith, John"),
    ('{{ regexReplaceAll "(a)(b)?" "a" "[$2][$1][$3][${10}][$01][$][${1][$é]" }}', "[][a][][][][$][${1][]"),
    ('{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}$$" }}', "-${1}$$-${1}$$-"),
])
def test_replacement_expands_like_go(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


def test_patterns_go_rejects() -> None:
    r = Renderer([])
    # regexMatch answers false for every pattern Go's regexp.Compile rejects, Python-only syntax included
    text = ('{{ regexMatch "(" "x" }} {{ regexMatch "a**" "a" }} {{ regexMatch "(?=a)" "a" }} '
            '{{ regexMatch "(a)\\\\1" "aa" }} {{ regexMatch "(?<n>a)" "a" }} {{ regexMatch "a{1001}" "a" }} '
            '{{ regexMatch "[[:foo:]]" "a" }} {{ regexMatch "\\\\Z" "a" }}')
    assert render(r, text) == "false false false false false false false false"
    for text, fragment in [('{{ regexFindAll "a*+" "a" -1 }}', "invalid nested repetition operator: `*+`"),
                           ('{{ mustRegexMatch "(?=a)" "a" }}', "invalid or unsupported Perl syntax: `(?=`"),
                           ('{{ regexReplaceAll "(?x) a" "a" "b" }}', "invalid or unsupported Perl syntax: `(?x`"),
                           ('{{ regexSplit "[z-a]" "a" -1 }}', "invalid character class range: `z-a`")]:
        e = fails(r, text)
        assert e.reason is Reason.TEMPLATE_ERROR and "bad regular expression" in e.message and fragment in e.message
    assert "RE2 syntax orch cannot run" in fails(r, '{{ regexMatch "\\\\p{Greek}" "x" }}').message


def test_match_iteration_helper() -> None:
    rx = compile_go("a*").rx
    assert [m.span() for m in go_matches(rx, "baaac")] == [(0, 0), (1, 4), (5, 5)]
    assert [m.span() for m in go_matches(rx, "baaac", 2)] == [(0, 0), (1, 4)]
    assert re.sub("a*", "X", "baaac") == "XbXXcX"  # what Python alone would do


def test_translations_raise_no_python_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in ("[[a]", "[a[]", "[+--]", "[&&x]", "[||]", "[~~]", "[[:alpha:][]", "[a-z--]"):
            compile_go(p)


# ------------------------------------------------------------------ 4. reflect.DeepEqual
@pytest.mark.parametrize("text,want", [
    (('{{ has 1 (list 1.0 true "1") }} {{ has 1.0 (list 1 2) }} {{ has true (list 1) }} {{ has "1" (list 1) }} '
      "{{ has 1 (list 2 1) }} {{ has nil (list 1 nil) }} {{ has 1 nil }}"),
     "false false false false true true false"),
    (('{{ mustHas 1.0 (list 1.0) }} {{ has (list 1) (list (list 1)) }} {{ has (list 1) (list (list 1.0)) }} '
      '{{ has (dict "a" 1) (list (dict "a" 1)) }} {{ has (dict "a" 1) (list (dict "a" true)) }}'),
     "true true false true false"),
    ('{{ uniq (list 1 1.0 true "1" 1 1.0 "1" false 0 0.0 "" nil nil) }}', "[1 1 true 1 false 0 0  <nil>]"),
    ('{{ mustUniq (list (list 1) (list 1) (list 1.0) (dict "a" 1) (dict "a" 1)) }}', "[[1] [1] map[a:1]]"),
    ('{{ without (list 1 1.0 true "1" 2) 1 "1" }} {{ mustWithout (list 1 1.0 true) 1.0 true }}', "[1 true 2] [1]"),
    (('{{ deepEqual 1 1.0 }} {{ deepEqual 1 1 }} {{ deepEqual true 1 }} {{ deepEqual "a" "a" }} '
      "{{ deepEqual (list 1 2) (list 1 2) }} {{ deepEqual (list 1 2) (list 1 2.0) }} "
      '{{ deepEqual (dict "a" (list 1)) (dict "a" (list 1)) }} {{ deepEqual (dict) (dict "a" 1) }} {{ deepEqual nil nil }}'),
     "false true false true true false true false true"),
])
def test_list_functions_compare_like_deep_equal(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


def test_deep_equal_on_values(r: Renderer) -> None:
    values = {"ints": [1, 2], "floats": [1.0, 2.0], "flags": [True, False], "nan": float("nan")}
    text = ("{{ has 1 .Values.floats }} {{ has 1.0 .Values.floats }} {{ has 1 .Values.flags }} "
            "{{ deepEqual .Values.ints .Values.floats }} {{ uniq (concat .Values.ints .Values.floats .Values.flags) }} "
            "{{ has .Values.nan (list .Values.nan) }}")
    assert render(r, text, values) == "false true false false [1 2 1 2 true false] false"


# ------------------------------------------------------------------ 5. refusals in native templates
@pytest.mark.parametrize("text,name,line", [
    ("x: 1\ny: {{ now() }}\n", "now", 2),
    ("{{ 'a' | env }}", "env", 1),
    ("a\nb\n{{ uuidv4 }}", "uuidv4", 3),
    ("{{ randAlphaNum(5) ~ 'x' }}", "randAlphaNum", 1),
])
def test_native_templates_refuse_like_go_ones(r: Renderer, text: str, name: str, line: int) -> None:
    e = fails(r, text, path="packages/p/build.yaml.j2")
    assert e.reason is Reason.TEMPLATE_ERROR and (e.file, e.line) == ("packages/p/build.yaml.j2", line)
    assert f'function "{name}" is not supported' in e.message and "--values" in e.message
    assert "undefined value" not in e.message
    go = fails(r, text.replace("()", "").replace("'a' | env", '"a" | env').replace("(5) ~ 'x'", " 5"))
    assert f'function "{name}" is not supported' in go.message


def test_native_refusal_only_when_called_and_shared_macros_win() -> None:
    r = Renderer([("templates/m.yaml.j2", "{% macro date(x) %}D{{ x }}{% endmacro %}")])
    assert r.render("packages/p/build.yaml.j2", "{% if false %}{{ now() }}{% endif %}ok", {}) == "ok"
    assert r.render("packages/p/build.yaml.j2", "{{ date(1) }}", {}) == "D1"
