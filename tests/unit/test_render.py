"""Go-dialect rendering: every template feature luet trees use, with exact expected output."""
from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import Reason, SpecError
from orchestrator.spec import render as render_mod
from orchestrator.spec.render import Renderer

SHARED = [
    ("packages/templates/distro.yaml", """{{ define "distro_install" }}
{{- if eq .Values.distribution "opensuse" }}
- zypper in -y {{ .Packages }}
{{- else if eq .Values.distribution "fedora" }}
- dnf install -y {{ .Packages }}
{{- else }}
- apt-get install -y {{ .Packages }}
{{- end }}
{{- end }}
"""),
    ("packages/templates/utils.yaml", """{{ define "greet" }}hello {{ . }}{{ end }}
{{- define "deep" }}{{ .Values.a.b }}{{ end }}
{{- define "rec" }}{{ if . }}x{{ template "rec" (rest .) }}{{ end }}{{ end }}
{{- define "forever" }}{{ template "forever" . }}{{ end }}"""),
]


@pytest.fixture(scope="module")
def r() -> Renderer:
    return Renderer(SHARED)


def render(r: Renderer, text: str, values: dict[str, Any] | None = None, path: str = "packages/p/build.yaml") -> str:
    out = r.render(path, text, values if values is not None else {})
    # the shared templates' text outside defines ("\n" after the first file) is emitted on top
    assert out.startswith("\n")
    return out[1:]


def fails(r: Renderer, text: str, values: dict[str, Any] | None = None) -> SpecError:
    with pytest.raises(SpecError) as ei:
        r.render("packages/p/build.yaml", text, values or {})
    return ei.value


# ------------------------------------------------------------------ values, fields, printing
@pytest.mark.parametrize("text,values,want", [
    ("{{ .Values.name }}", {"name": "curl"}, "curl"),
    ("{{.Values.labels.foo}}", {"labels": {"foo": "bar"}}, "bar"),
    ("{{ $.Values.name }}", {"name": "x"}, "x"),
    ("{{ .Values.t }} {{ .Values.f }}", {"t": True, "f": False}, "true false"),
    ("{{ .Values.i }} {{ .Values.x }} {{ .Values.big }} {{ .Values.one }}", {"i": 3, "x": 1.5, "big": 1e6, "one": 1.0},
     "3 1.5 1e+06 1"),
    ("{{ .Values.l }}", {"l": ["a", 1, True, None]}, "[a 1 true <nil>]"),
    ("{{ .Values.m }}", {"m": {"z": 1, "a": [1, 2], "m": {"k": "v"}}}, "map[a:[1 2] m:map[k:v] z:1]"),
    ("{{ . }}", {"a": 1}, "map[Values:map[a:1]]"),
])
def test_field_access_and_go_printing(r: Renderer, text: str, values: dict[str, Any], want: str) -> None:
    assert render(r, text, values) == want


def test_trim_markers_follow_go_exactly(r: Renderer) -> None:
    assert render(r, "a  \n\t {{- 1 -}} \n\n b") == "a1b"
    assert render(r, "a\n\n{{- \"x\" }}\n\n{{- \"y\" -}}\n\nz") == "axyz"
    assert render(r, "a {{- /* c */ -}}  b {{/* c2 */}} c") == "ab  c"
    assert render(r, "{{-3}}") == "-3"  # not a trim marker: the number -3
    assert render(r, "x {{ 2 }} y") == "x 2 y"


def test_comments_and_quoted_delimiters(r: Renderer) -> None:
    assert render(r, '{{/* a "quoted" }} comment */}}ok') == "ok"
    assert render(r, '{{ "}}" }}|{{ `a}}b` }}|{{ printf "%c" \'}\' }}') == "}}|a}}b|}"


# ------------------------------------------------------------------ control structures
def test_if_else_if_else(r: Renderer) -> None:
    t = '{{ if eq .Values.d "a" }}A{{ else if eq .Values.d "b" }}B{{ else if .Values.x }}X{{ else }}Z{{ end }}'
    assert [render(r, t, {"d": d, "x": x}) for d, x in [("a", 0), ("b", 0), ("c", 1), ("c", 0)]] == ["A", "B", "X", "Z"]


@pytest.mark.parametrize("value,truth", [
    (False, "F"), (0, "F"), (0.0, "F"), ("", "F"), (None, "F"), ([], "F"), ({}, "F"),
    (True, "T"), (1, "T"), ("0", "T"), ([0], "T"), ({"a": 0}, "T"), ("false", "T"),
])
def test_go_truthiness(r: Renderer, value: Any, truth: str) -> None:
    assert render(r, "{{ if .Values.v }}T{{ else }}F{{ end }}", {"v": value}) == truth
    assert render(r, "{{ if not .Values.v }}F{{ else }}T{{ end }}", {"v": value}) == truth


def test_range_over_list_and_map(r: Renderer) -> None:
    v = {"l": ["a", "b"], "m": {"b": 2, "a": 1}}
    assert render(r, "{{ range .Values.l }}[{{ . }}]{{ end }}", v) == "[a][b]"
    assert render(r, "{{ range $i, $v := .Values.l }}{{ $i }}={{ $v }};{{ end }}", v) == "0=a;1=b;"
    assert render(r, "{{ range $k, $v := .Values.m }}{{ $k }}:{{ $v }},{{ end }}", v) == "a:1,b:2,"
    assert render(r, "{{ range $v := .Values.m }}{{ $v }}{{ end }}", v) == "12"
    assert render(r, "{{ range .Values.e }}x{{ else }}empty{{ end }}", {"e": []}) == "empty"
    assert render(r, "{{ range .Values.l }}{{ $.Values.m.a }}{{ end }}", v) == "11"


def test_range_break_continue(r: Renderer) -> None:
    t = "{{ range .Values.l }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}"
    assert render(r, t, {"l": [1, 2, 3, 4, 5]}) == "13"


def test_with_rebinds_dot(r: Renderer) -> None:
    t = "{{ with .Values.m }}{{ .a }}{{ else }}none{{ end }}"
    assert render(r, t, {"m": {"a": "A"}}) == "A"
    assert render(r, t, {"m": {}}) == "none"
    assert render(r, t, {}) == "none"
    assert render(r, "{{ with $x := .Values.n }}{{ $x }}{{ . }}{{ end }}", {"n": 5}) == "55"


def test_variables_declare_assign_and_scope(r: Renderer) -> None:
    assert render(r, '{{ $arch := "" }}{{ if eq .Values.arch "amd64" }}{{ $arch = "linux64" }}{{ end }}jq-{{ $arch }}',
                  {"arch": "amd64"}) == "jq-linux64"
    t = "{{ $last := 0 }}{{ range .Values.l }}{{ $last = . }}{{ end }}{{ $last }}"
    assert render(r, t, {"l": [3, 4]}) == "4"
    assert render(r, '{{ $a := "x" }}{{ if true }}{{ $a := "inner" }}{{ $a }}{{ end }}{{ $a }}') == "innerx"
    assert render(r, "{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}") == "12"


# ------------------------------------------------------------------ define / template / include
def test_template_with_data_argument(r: Renderer) -> None:
    t = '{{ template "distro_install" (dict "Values" .Values "Packages" "curl") }}'
    assert render(r, t, {"distribution": "fedora"}) == "\n- dnf install -y curl"
    assert render(r, t, {"distribution": "opensuse"}) == "\n- zypper in -y curl"
    assert render(r, '{{ template "greet" "bob" }}') == "hello bob"
    assert render(r, '{{ include "greet" .Values.n | upper | indent 2 }}', {"n": "x"}) == "  HELLO X"
    assert render(r, '{{ include "greet" 1 | nindent 4 }}') == "\n    hello 1"


def test_local_define_and_variables(r: Renderer) -> None:
    t = ('{{ define "dl" }}{{ $v := get . "version" }}{{ $h := get . "host" | default "github.com" }}'
         "{{ $h }}/{{ $v }}{{ end }}"
         '{{ $opts := dict "version" (printf "v%s" .Values.version) }}{{ template "dl" $opts }}')
    assert render(r, t, {"version": "1.2"}) == "github.com/v1.2"


def test_template_without_argument_has_nil_dot(r: Renderer) -> None:
    assert render(r, '{{ define "e" }}{{ if . }}set{{ else }}nil{{ end }}{{ end }}{{ template "e" }}') == "nil"


def test_block_defines_and_calls(r: Renderer) -> None:
    assert render(r, '{{ block "b" .Values.n }}<{{ . }}>{{ end }}', {"n": 7}) == "<7>"


def test_shared_literal_text_is_emitted_on_top() -> None:
    rr = Renderer([("t/a.yaml", '# header\n{{ define "x" }}X{{ end }}\n'), ("t/b.yaml", "# b {{ .Values.n }}\n")])
    assert rr.render("p/build.yaml", "body: {{ template \"x\" }}\n", {"n": 1}) == "# header\n\n# b 1\nbody: X\n"
    assert rr.render("p/build.yaml", "plain: yes\n", {"n": 1}) == "# header\n\n# b 1\nplain: yes\n"


def test_trim_markers_work_across_the_concatenation() -> None:
    rr = Renderer([("t/a.yaml", '{{ define "x" }}X{{ end }}\n\n')])
    assert rr.render("p/build.yaml", "{{- 1 }}", {}) == "1"  # trims the template file's trailing text
    assert rr.render("p/build.yaml", "{{ 1 }}", {}) == "\n\n1"
    rr2 = Renderer([("t/a.yaml", '{{ define "x" }}X{{ end -}}')])
    assert rr2.render("p/build.yaml", "\n\n  a: 1\n", {}) == "a: 1\n"
    assert rr2.render("p/build.yaml", "\n a: {{ 1 }}\n", {}) == "a: 1\n"


# ------------------------------------------------------------------ functions
@pytest.mark.parametrize("text,want", [
    ('{{ eq "a" "a" }} {{ eq "a" "b" "a" }} {{ eq "a" "b" "c" }} {{ ne 1 2 }}', "true true false true"),
    ("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 3 2 }} {{ lt \"a\" \"b\" }}", "true true false true true"),
    ('{{ and 1 0 "x" }}|{{ and 1 "x" }}|{{ or 0 "" "y" }}|{{ or 0 "" }}|{{ not "" }}', "0|x|y||true"),
    ('{{ len "héllo" }} {{ len (list 1 2) }} {{ len (dict "a" 1) }}', "6 2 1"),
    ('{{ index (dict "a.b" "dotted") "a.b" }} {{ index (list 4 5) 1 }} {{ index (list (list 1 2)) 0 1 }}', "dotted 5 2"),
    ('{{ printf "%s|%d|%v|%q|%t|%x|%X|%5.2f|%-4s|%04d|%e|%g|%%" "s" 42 (list 1 "a") "q\\n" true 255 255 3.14159 "l" 7 1500.0 0.5}}',
     's|42|[1 a]|"q\\n"|true|ff|FF| 3.14|l   |0007|1.500000e+03|0.5|%'),
    ('{{ printf "%d %s" "x" }} {{ printf "%s" "a" "b" }}', "%!d(string=x) %!s(MISSING) a%!(EXTRA string=b)"),
    ('{{ print "a" 1 2 "b" }}|{{ println "a" 1 }}|{{ print }}', "a1 2b|a 1\n|"),
    ('{{ contains "ell" "hello" }} {{ hasPrefix "he" "hello" }} {{ hasSuffix "lo" "hello" }}', "true true true"),
    ('{{ join "," (list "a" 1 true) }} {{ splitList "," "a,b" }} {{ split "," "a,b" }}', "a,1,true [a b] map[_0:a _1:b]"),
    ('{{ replace "a" "b" "banana" }} {{ trim "  x " }} {{ trimPrefix "v" "v1.2" }} {{ trimSuffix ".0" "1.0" }}', "bbnbnb x 1.2 1"),
    ('{{ upper "ab" }} {{ lower "AB" }} {{ title "hello wide-world" }}', "AB ab Hello Wide-World"),
    ('{{ quote "a\\"b" 1 }} {{ squote "c" }}', '"a\\"b" "1" \'c\''),
    ('{{ default "d" "" }} {{ default "d" "v" }} {{ "" | default "p" }} {{ empty 0 }} {{ empty (list 1) }}', "d v p true false"),
    ('{{ coalesce "" 0 "c" "d" }} {{ ternary "y" "n" true }} {{ false | ternary "y" "n" }}', "c y n"),
    ('{{ toYaml (dict "b" (list 1 2) "a" "x") }}', "a: x\nb:\n- 1\n- 2"),
    ('{{ toJson (dict "b" (list 1 2.0) "a" "<x>") }}', '{"a":"\\u003cx\\u003e","b":[1,2]}'),
    ('{{ (fromYaml "a: [1, 2]").a }} {{ (fromJson "{\\"k\\": true}").k }} {{ (fromYaml "- 1").Error }}',
     "[1 2] true yaml: cannot unmarshal into a map"),
    ('{{ indent 2 "a\\nb" }}|{{ nindent 2 "a" }}', "  a\n  b|\n  a"),
    ('{{ regexMatch "^a.c$" "abc" }} {{ regexMatch "^a$" "b" }} {{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}',
     "true false -W-xxW-"),
    ('{{ b64enc "hi" }} {{ b64dec "aGk=" }} {{ sha256sum "abc" }}',
     "aGk= hi ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ('{{ toString 1.5 }} {{ int "42" }} {{ int 3.9 }} {{ atoi "7" }} {{ atoi "x" }} {{ int "0x10" }}', "1.5 42 3 7 0 16"),
    ("{{ add 1 2 3 }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ div -7 2 }} {{ mod -7 3 }} {{ add1 1 }}", "6 -2 24 3 -3 -1 2"),
    ("{{ until 3 }} {{ seq 3 }} {{ seq 2 4 }} {{ untilStep 0 10 3 }}", "[0 1 2] 1 2 3 2 3 4 [0 3 6 9]"),
    ('{{ first (list 3 4) }} {{ last (list 3 4) }} {{ uniq (list 1 1 2 1) }} {{ sortAlpha (list "b" "a" 1) }}',
     "3 4 [1 2] [1 a b]"),
    ('{{ keys (dict "b" 1 "a" 2) }} {{ values (dict "b" 1 "a" 2) }} {{ has 2 (list 1 2) }} {{ has 3 (list 1 2) }}',
     "[a b] [2 1] true false"),
    ('{{ $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}{{ $d }} {{ unset $d "a" }} {{ hasKey $d "b" }} {{ hasKey $d "a" }}',
     "map[a:1 b:2] map[b:2] true false"),
    ('{{ merge (dict "a" 1 "n" (dict "x" 1)) (dict "a" 2 "b" 3 "n" (dict "y" 2)) }}', "map[a:1 b:3 n:map[x:1 y:2]]"),
    ("{{ append (list 1) 2 }} {{ prepend (list 1) 0 }} {{ concat (list 1) (list 2 3) }}", "[1 2] [0 1] [1 2 3]"),
    ('{{ get (dict "a" 1) "a" }} {{ get (dict "a" 1) "zz" | default "none" }}', "1 none"),
    ('{{ semverCompare ">=1.2.0, <2" "1.5.0" }} {{ semverCompare "^1.2" "2.0.0" }} {{ semverCompare "~1.2.3" "1.2.9" }}',
     "true false true"),
    ('{{ typeOf 1 }} {{ typeOf "s" }} {{ kindOf (list) }} {{ (dict "a" (dict "b" "deep")).a.b }}', "int string slice deep"),
])
def test_functions(r: Renderer, text: str, want: str) -> None:
    assert render(r, text) == want


def test_pipelines_and_parentheses(r: Renderer) -> None:
    assert render(r, '{{ "hello" | upper | printf "%s!" }}') == "HELLO!"
    assert render(r, '{{ ( index .Values.labels "emerge.jobs" ) | default "3" }}', {"labels": {}}) == "3"
    assert render(r, '{{ printf "%s-%s" (index .Values.l 0) (.Values.n | toString) }}', {"l": ["a"], "n": 5}) == "a-5"
    assert render(r, "{{ 3 | printf \"%d\" }}") == "3"


def test_and_or_short_circuit_like_go(r: Renderer) -> None:
    t = '{{ if and .Values.skip (has .Values.name .Values.skip) }}skip{{ else }}check{{ end }}'
    assert render(r, t, {"name": "a"}) == "check"  # `has` never sees the undefined list
    assert render(r, t, {"name": "a", "skip": ["a"]}) == "skip"
    assert render(r, "{{ or .Values.a .Values.b }}", {"b": "B"}) == "B"


def test_mutating_functions_never_change_the_callers_values(r: Renderer) -> None:
    values = {"m": {"a": 1}}
    assert render(r, '{{ $_ := set .Values.m "b" 2 }}{{ .Values.m }}', values) == "map[a:1 b:2]"
    assert values == {"m": {"a": 1}}


# ------------------------------------------------------------------ undefined values (strict by design)
def test_output_of_undefined_value_names_key_file_and_line(r: Renderer) -> None:
    e = fails(r, "image: x\nsteps:\n- echo {{ .Values.os_brand }}\n", {"name": "x"})
    assert e.reason is Reason.UNDEFINED_VALUE
    assert (e.file, e.line) == ("packages/p/build.yaml", 3)
    assert str(e) == ("packages/p/build.yaml:3: undefined value '.Values.os_brand' "
                      "(define it in a values file or the package definition)")


@pytest.mark.parametrize("text,path", [
    ("{{ .Values.a.b }}", ".Values.a"),
    ('{{ index .Values.labels "github.owner" }}', '.Values.labels["github.owner"]'),
    ("{{ upper .Values.x }}", ".Values.x"),
    ('{{ printf "%s" .Values.x }}', ".Values.x"),
    ("{{ $v := .Values.x }}{{ $v }}", ".Values.x"),
    ('{{ $o := dict "org" .Values.org }}{{ $o.org }}', ".Values.org"),
    ("{{ .Values.nul }}", ".Values.nul"),
])
def test_using_undefined_is_an_error(r: Renderer, text: str, path: str) -> None:
    e = fails(r, text, {"labels": {}, "nul": None})
    assert e.reason is Reason.UNDEFINED_VALUE
    assert f"'{path}'" in e.message
    assert "<no value>" not in str(e)


@pytest.mark.parametrize("text,want", [
    ("{{ if .Values.fips }}y{{ else }}n{{ end }}", "n"),
    ("{{ if .Values.a.b.c }}y{{ else }}n{{ end }}", "n"),
    ("{{ with .Values.a }}y{{ else }}n{{ end }}", "n"),
    ("{{ if and .Values.a .Values.b }}y{{ else }}n{{ end }}{{ if or .Values.a 1 }}y{{ end }}", "ny"),
    ("{{ if not .Values.a }}y{{ end }}", "y"),
    ('{{ .Values.a | default "d" }} {{ empty .Values.a }} {{ hasKey .Values "a" }} {{ coalesce .Values.a "c" }}',
     "d true false c"),
    ('{{ eq .Values.missing "x" }} {{ ne .Values.missing "x" }} {{ eq .Values.missing nil }}', "false true true"),
    ("{{ range .Values.none }}x{{ else }}empty{{ end }}", "empty"),
    ('{{ ternary "y" "n" .Values.flag }}', "n"),
])
def test_testing_undefined_is_false(r: Renderer, text: str, want: str) -> None:
    assert render(r, text, {}) == want


def test_undefined_inside_shared_define_reports_call_site_and_template(r: Renderer) -> None:
    e = fails(r, "a: 1\n\nb: {{ template \"deep\" . }}\n", {})
    assert e.reason is Reason.UNDEFINED_VALUE
    assert (e.file, e.line) == ("packages/p/build.yaml", 3)
    assert "'.Values.a'" in e.message and "packages/templates/utils.yaml:2" in e.message


def test_type_errors_are_template_errors(r: Renderer) -> None:
    assert "incompatible types" in fails(r, "{{ eq 1 1.0 }}").message
    assert "can't evaluate field b" in fails(r, "{{ .Values.a.b }}", {"a": "str"}).message
    assert "index out of range" in fails(r, "{{ index (list 1) 5 }}").message
    assert fails(r, "{{ div 1 0 }}").reason is Reason.TEMPLATE_ERROR
    assert "wrong number of args" in fails(r, "{{ upper }}").message


# ------------------------------------------------------------------ syntax errors
@pytest.mark.parametrize("text,line,fragment", [
    ("a: 1\nb: {{ if .Values.x }}\n", 2, "unclosed {{if}}"),
    ("a\n\n{{ end }}", 3, "unexpected {{end}}"),
    ("a\n{{ else }}", 2, "unexpected {{else}}"),
    ("x\ny\n{{ nosuchfunc 1 }}", 3, 'function "nosuchfunc" not defined'),
    ("{{ $x }}", 1, 'undefined variable "$x"'),
    ("ok\n{{ .Values.x\n", 2, "unclosed action"),
    ("{{/* never closed", 1, "unclosed comment"),
    ('{{ "abc }}', 1, "unterminated quoted string"),
    ("{{ }}", 1, "missing value for command"),
    ("{{ nil }}", 1, "nil is not a command"),
    ("{{ .a | .b }}", 1, "non-function"),
    ("{{ break }}", 1, "outside {{range}}"),
    ('{{ define "x" }}{{ define "y" }}{{ end }}{{ end }}', 1, "top level"),
    ("a\n{{ 1x }}", 2, "bad number"),
])
def test_syntax_errors_name_file_and_line(r: Renderer, text: str, line: int, fragment: str) -> None:
    e = fails(r, text)
    assert e.reason is Reason.TEMPLATE_ERROR
    assert (e.file, e.line) == ("packages/p/build.yaml", line)
    assert fragment in e.message


def test_syntax_error_in_shared_template_names_that_file() -> None:
    with pytest.raises(SpecError) as ei:
        Renderer([("t/ok.yaml", '{{ define "a" }}{{ end }}\n'), ("t/bad.yaml", 'x\n{{ define "b" }}\n{{ if }}{{ end }}')])
    assert (ei.value.file, ei.value.line) == ("t/bad.yaml", 3)


def test_unknown_template_and_duplicate_define(r: Renderer) -> None:
    e = fails(r, 'a\n{{ template "nope" . }}')
    assert (e.line, e.reason) == (2, Reason.TEMPLATE_ERROR) and "no such template 'nope'" in e.message
    e = fails(r, 'a\n{{ define "greet" }}other{{ end }}')
    assert e.line == 2 and "already defined in packages/templates/utils.yaml:1" in e.message


# ------------------------------------------------------------------ bounds
def test_recursion_is_bounded(r: Renderer) -> None:
    assert render(r, '{{ template "rec" (until 900) }}') == "x" * 900
    e = fails(r, '{{ template "forever" . }}')
    assert "nested deeper than 1000" in e.message and e.reason is Reason.TEMPLATE_ERROR


@pytest.mark.parametrize("text,fragment", [
    ("{{ range until 1000000000 }}x{{ end }}", "exceeds the limit"),
    ("{{ range until 1000000 }}{{ range until 1000000 }}{{ end }}{{ end }}", "iterations"),
    ('{{ $x := "0123456789abcdef" }}{{ range until 40 }}{{ $x = printf "%s%s" $x $x }}{{ end }}{{ len $x }}', "16 MiB"),
    ('{{ $s := repeat 1024 "x" }}{{ range until 20000 }}{{ $s }}{{ end }}', "16 MiB"),
    ('{{ printf "%0999999999d" 1 }}', "width"),
    ('{{ indent 100000000 "a" }}', "indent"),
    ('{{ repeat 100000000 "ab" }}', "repeat"),
])
def test_bombs_are_spec_errors(r: Renderer, text: str, fragment: str) -> None:
    e = fails(r, text)
    assert e.reason is Reason.TEMPLATE_ERROR and fragment in e.message


def test_dunder_fields_are_plain_missing_keys(r: Renderer) -> None:
    e = fails(r, "{{ .Values.__class__ }}")
    assert e.reason is Reason.UNDEFINED_VALUE
    assert render(r, "{{ .Values.__class__ }}", {"__class__": "just data"}) == "just data"


# ------------------------------------------------------------------ caching and API
def test_text_without_actions_is_returned_unchanged() -> None:
    rr = Renderer([])
    text = "image: alpine\nsteps:\n- echo hi\n"
    assert rr.render("p/build.yaml", text, {}) is text


def test_same_skeleton_is_compiled_once() -> None:
    rr = Renderer([])
    before = dict(render_mod.STATS)
    outs = [rr.render(f"p{i}/build.yaml", f"name: pkg{i}-{{{{ .Values.n7f3a }}}}\n", {"n7f3a": str(i)})
            for i in range(50)]  # 50 distinct texts, one action skeleton
    assert outs[7] == "name: pkg7-7\n"
    assert render_mod.STATS["skeletons"] - before["skeletons"] == 1
    again = dict(render_mod.STATS)
    assert rr.render("p0/build.yaml", "name: pkg0-{{ .Values.n7f3a }}\n", {"n7f3a": "x"}) == "name: pkg0-x\n"
    assert render_mod.STATS == again


def test_fingerprint_is_stable_and_content_sensitive() -> None:
    a = Renderer(SHARED).fingerprint
    assert a == Renderer(list(SHARED)).fingerprint
    assert a != Renderer(SHARED[:1]).fingerprint
    assert a != Renderer(SHARED[::-1]).fingerprint
    assert len(a) == 64


def test_rendering_in_a_worker_thread_is_safe(r: Renderer) -> None:
    import threading

    results: list[object] = []

    def work() -> None:
        results.append(render(r, '{{ template "rec" (until 100) }}'))
        try:
            render(r, '{{ template "forever" . }}')
        except SpecError as e:
            results.append(e.reason)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert results == ["x" * 100, Reason.TEMPLATE_ERROR]
