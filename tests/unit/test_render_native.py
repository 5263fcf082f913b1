"""Native Jinja2 (`*.j2`) dialect, macro sharing across dialects, and the sandbox."""
from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator.errors import Reason, SpecError
from orchestrator.spec.render import Renderer

SHARED = [
    ("packages/templates/go.yaml", '{{ define "goinst" }}- install {{ .Packages }} on {{ .Values.distro }}{{ end }}'),
    ("packages/templates/macros.yaml.j2",
     ("{% macro pkgs(d) %}- pkgs {{ d.Packages }} on {{ Values.distro }}{% endmacro %}"
      "{% macro hello(n) %}hello {{ n }}{% endmacro %}")),
]
VALUES = {"distro": "fedora", "name": "foo", "l": [1, 2], "labels": {"a.b": "dotted"}}


@pytest.fixture(scope="module")
def r() -> Renderer:
    return Renderer(SHARED)


def native(r: Renderer, text: str, values: dict[str, Any] | None = None) -> str:
    return r.render("packages/p/build.yaml.j2", text, VALUES if values is None else values)


def native_fails(r: Renderer, text: str) -> SpecError:
    with pytest.raises(SpecError) as ei:
        native(r, text)
    return ei.value


def test_native_sees_values_functions_and_filters(r: Renderer) -> None:
    t = ("{{ Values.name | upper }} {{ printf('%s-%d', 'a', 3) }} {{ Values.missing | default('d') }} "
         "{{ Values.l | join(',') }} {{ Values.labels['a.b'] }} {{ Values.name | trimPrefix('f') }} "
         "{% if Values.missing %}x{% else %}no{% endif %} {{ toJson(Values.l) }}")
    assert native(r, t) == "FOO a-3 d 1,2 dotted oo no [1,2]"


def test_native_calls_go_defines_and_shared_macros(r: Renderer) -> None:
    t = ("{{ template('goinst', {'Values': Values, 'Packages': 'curl'}) }}\n{{ pkgs({'Packages': 'git'}) }}\n"
         "{{ include('hello', 'bob') | upper }}")
    assert native(r, t) == "- install curl on fedora\n- pkgs git on fedora\nHELLO BOB"


def test_go_dialect_calls_native_macros_by_name(r: Renderer) -> None:
    out = r.render("packages/p/build.yaml", '{{ template "pkgs" (dict "Packages" "vim") }} {{ include "hello" 1 }}',
                   VALUES)
    assert out == "- pkgs vim on fedora hello 1"


def test_native_undefined_values_are_errors_with_path_and_line(r: Renderer) -> None:
    e = native_fails(r, "a: 1\nb: {{ Values.os_brand }}\n")
    assert (e.reason, e.file, e.line) == (Reason.UNDEFINED_VALUE, "packages/p/build.yaml.j2", 2)
    assert "'Values.os_brand'" in e.message
    e = native_fails(r, "\n\n{{ Values.a.b }}")
    assert e.line == 3 and "'Values.a.b'" in e.message
    assert native(r, "{% if Values.a.b %}y{% else %}n{% endif %}") == "n"


def test_native_syntax_error_has_file_and_line(r: Renderer) -> None:
    e = native_fails(r, "ok\n{% if %}")
    assert (e.reason, e.file, e.line) == (Reason.TEMPLATE_ERROR, "packages/p/build.yaml.j2", 2)


def test_native_shared_template_syntax_error() -> None:
    with pytest.raises(SpecError) as ei:
        Renderer([("t/m.yaml.j2", "{% macro x() %}\n{% endfor %}")])
    assert (ei.value.file, ei.value.line) == ("t/m.yaml.j2", 2)


def test_native_macro_error_points_into_the_macro_file(r: Renderer) -> None:
    e = native_fails(r, "a\n{{ pkgs({}) }}")
    assert e.reason is Reason.UNDEFINED_VALUE and e.line == 2


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ Values.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ printf.__globals__ }}",
    "{{ self.__init__ }}",
    "{{ 'a{0.__class__}'.format('') }}",
    "{{ '{0.__globals__}'.format(printf) }}",
    "{{ ('x'|attr('format'))('{0.__class__.__init__.__globals__}') }}",
    "{{ 'x'|attr('__class__') }}",
    "{{ Values.l.append(3) }}",
    "{{ Values.name.upper.__self__ }}",
    "{% include '../../etc/passwd' %}",
    "{% import '/etc/passwd' as p %}",
    "{{ lipsum(10**6) }}",
])
def test_sandbox_escapes_fail_as_spec_errors(r: Renderer, payload: str) -> None:
    try:
        out = native(r, payload)
    except SpecError as e:
        assert e.file == "packages/p/build.yaml.j2" and e.reason in (Reason.TEMPLATE_ERROR, Reason.UNDEFINED_VALUE)
        return
    assert "class" not in out and "function" not in out and "root:" not in out, out


def test_go_dialect_attribute_escapes_are_just_missing_keys(r: Renderer) -> None:
    for payload in ["{{ .Values.__class__ }}", "{{ .Values.name.__class__ }}", '{{ index .Values "__init__" }}']:
        with pytest.raises(SpecError):
            r.render("p/build.yaml", payload, VALUES)


@pytest.mark.parametrize("bomb", [
    "{{ 'a' * 10**10 }}",
    "{{ '%999999999s' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '%s'|format(1) ~ ('%999999999d'|format(1)) }}",
    "{% for i in range(10**9) %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'a'|center(10**9) }}",
    "{{ 'a\nb'|indent(10**9) }}",
    "{{ [1, 2]|slice(10**9)|list }}",
    "{{ 2 ** (10 ** 8) }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
])
def test_native_bombs_are_bounded(r: Renderer, bomb: str) -> None:
    t = time.perf_counter()
    with pytest.raises(SpecError) as ei:
        native(r, bomb)
    assert ei.value.reason is Reason.TEMPLATE_ERROR
    assert time.perf_counter() - t < 5


def test_native_render_is_cached_per_text(r: Renderer) -> None:
    from orchestrator.spec import render as render_mod

    native(r, "{{ Values.name }}-cached-9e1")
    before = render_mod.STATS["native"]
    assert native(r, "{{ Values.name }}-cached-9e1") == "foo-cached-9e1"
    assert render_mod.STATS["native"] == before
