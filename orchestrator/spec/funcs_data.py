"""sprig/helm data functions: YAML/JSON, base64, hashes, semver constraints (regexes: funcs_regex).

JSON follows Go's encoding/json (sorted keys, `<>&` escaped, integral floats without `.0`);
`toJson`/`toPrettyJson` print "" for what JSON cannot hold (NaN, infinities), as helm and sprig do,
while `toRawJson` and the `mustTo*Json` variants fail. `toYaml` trims the final newline like helm;
`fromYaml` refuses alias-heavy documents so a tiny string cannot expand into a huge value.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import zlib
from collections.abc import Mapping
from typing import Any

import yaml

from .funcs import register, s_
from .gofmt import format_float
from .tmplrt import Fault, Missing, UndefinedValue

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_ALIASES = 100


def plain(v: Any) -> Any:
    """Data fit for serialising: tuples become lists, undefined values are an error."""
    if isinstance(v, Missing):
        raise UndefinedValue(v.path, v._null, used_by="a serialising function")
    if isinstance(v, Mapping):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


# ------------------------------------------------------------------ JSON (Go encoding/json style)
class JSONUnsupported(Fault):
    """json.Marshal's UnsupportedValueError (sprig's non-must encoders swallow it)."""


def _go_float(f: float) -> str:
    if not math.isfinite(f):
        raise JSONUnsupported(f"json: unsupported value: {format_float(f)}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return repr(f).replace("e-0", "e-")
    if f == int(f):
        return str(int(f))
    return repr(f)


def _json(v: Any, html: bool, indent: str, level: int) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        if html:
            s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return s
    nl = "\n" + indent * (level + 1) if indent else ""
    end = "\n" + indent * level if indent else ""
    sep = ": " if indent else ":"
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f"{_json(str(k), html, indent, 0)}{sep}{_json(v[k], html, indent, level + 1)}"
                 for k in sorted(v, key=str)]
        return "{" + nl + ("," + nl).join(items) + end + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        return "[" + nl + ("," + nl).join(_json(x, html, indent, level + 1) for x in v) + end + "]"
    return _json(str(v), html, indent, level)


@register("mustToJson")
def must_to_json(v: Any) -> str:
    return _json(plain(v), True, "", 0)


@register("toRawJson", "mustToRawJson")
def to_raw_json(v: Any) -> str:
    return _json(plain(v), False, "", 0)


@register("mustToPrettyJson")
def must_to_pretty_json(v: Any) -> str:
    return _json(plain(v), True, "  ", 0)


@register("toJson")
def to_json(v: Any) -> str:
    try:
        return must_to_json(v)
    except JSONUnsupported:
        return ""


@register("toPrettyJson")
def to_pretty_json(v: Any) -> str:
    try:
        return must_to_pretty_json(v)
    except JSONUnsupported:
        return ""


def _load_json(s: str) -> Any:
    return json.loads(s)


@register("fromJson")
def from_json(s: Any) -> Any:
    try:
        v = _load_json(s_(s, "fromJson"))
    except ValueError as e:
        return {"Error": str(e)}
    return v if isinstance(v, dict) else {"Error": "json: cannot unmarshal into a map"}


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _json_number(text: str) -> float:
    f = float(text)
    if not math.isfinite(f):
        raise ValueError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return f


@register("mustFromJson")
def must_from_json(s: Any) -> Any:
    """sprig's decoder: any JSON value, numbers as float64 (like Go's interface{}); bad JSON fails."""
    return json.loads(s_(s, "mustFromJson"), parse_int=_json_number, parse_float=_json_number,
                      parse_constant=_no_constant)


@register("fromJsonArray")
def from_json_array(s: Any) -> Any:
    try:
        v = _load_json(s_(s, "fromJsonArray"))
    except ValueError as e:
        return [str(e)]
    return v if isinstance(v, list) else ["json: cannot unmarshal into a list"]


# ------------------------------------------------------------------ YAML
@register("toYaml")
def to_yaml(v: Any) -> str:
    text = yaml.safe_dump(plain(v), default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 30)
    if text.endswith("\n...\n"):
        text = text[:-4]
    return text.removesuffix("\n")


def _load_yaml(s: str) -> Any:
    if "*" in s and "&" in s:
        aliases = sum(1 for ev in yaml.parse(s, Loader=_YAML_LOADER) if isinstance(ev, yaml.AliasEvent))
        if aliases > _MAX_ALIASES:
            raise Fault(f"fromYaml: document uses {aliases} aliases (limit {_MAX_ALIASES})")
    return yaml.load(s, Loader=_YAML_LOADER)


@register("fromYaml")
def from_yaml(s: Any) -> Any:
    try:
        v = _load_yaml(s_(s, "fromYaml"))
    except yaml.YAMLError as e:
        return {"Error": str(e).replace("\n", " ")}
    if v is None:
        return {}
    return v if isinstance(v, dict) else {"Error": "yaml: cannot unmarshal into a map"}


@register("fromYamlArray")
def from_yaml_array(s: Any) -> Any:
    try:
        v = _load_yaml(s_(s, "fromYamlArray"))
    except yaml.YAMLError as e:
        return [str(e).replace("\n", " ")]
    return v if isinstance(v, list) else [] if v is None else ["yaml: cannot unmarshal into a list"]


# ------------------------------------------------------------------ encodings and hashes
@register("b64enc")
def b64enc(s: Any) -> str:
    return base64.b64encode(s_(s, "b64enc").encode()).decode()


@register("b64dec")
def b64dec(s: Any) -> str:
    try:
        return base64.b64decode(s_(s, "b64dec"), validate=True).decode(errors="replace")
    except binascii.Error as e:
        return f"illegal base64 data: {e}"


@register("b32enc")
def b32enc(s: Any) -> str:
    return base64.b32encode(s_(s, "b32enc").encode()).decode()


@register("b32dec")
def b32dec(s: Any) -> str:
    try:
        return base64.b32decode(s_(s, "b32dec")).decode(errors="replace")
    except binascii.Error as e:
        return f"illegal base32 data: {e}"


@register("sha256sum")
def sha256sum(s: Any) -> str:
    return hashlib.sha256(s_(s, "sha256sum").encode()).hexdigest()


@register("sha1sum")
def sha1sum(s: Any) -> str:
    return hashlib.sha1(s_(s, "sha1sum").encode()).hexdigest()


@register("adler32sum")
def adler32sum(s: Any) -> str:
    return str(zlib.adler32(s_(s, "adler32sum").encode()))


# ------------------------------------------------------------------ semver (Masterminds-style)
_VER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_CONSTRAINT = re.compile(r"^(!=|>=|=>|<=|=<|>|<|=|~>|~|\^)?\s*(v?[0-9xX*][0-9A-Za-z.+*-]*)$")


def _pre_key(pre: str) -> tuple[Any, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))


def _version(s: str) -> tuple[tuple[int, int, int], str]:
    m = _VER.match(s.strip())
    if not m:
        raise Fault(f"semverCompare: invalid semantic version {s!r}")
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)), m.group(4) or ""


def _cmp(a: tuple[tuple[int, int, int], str], b: tuple[tuple[int, int, int], str]) -> int:
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    if a[1] == b[1]:
        return 0
    if not a[1] or not b[1]:
        return 1 if not a[1] else -1
    return -1 if _pre_key(a[1]) < _pre_key(b[1]) else 1


def _check(op: str, spec: str, v: tuple[tuple[int, int, int], str]) -> bool:
    parts = spec.lstrip("v").split("-")[0].split("+")[0].split(".")
    fixed = [p for p in parts[:3] if p not in ("x", "X", "*")]
    nums = [int(p) for p in fixed] + [0] * (3 - len(fixed))
    pre = spec.split("-", 1)[1].split("+")[0] if "-" in spec else ""
    base = ((nums[0], nums[1], nums[2]), pre)
    c = _cmp(v, base)
    n = len(fixed)
    if op in ("", "=") and n < 3:
        op = "~" if n else ">="
    if op in ("~", "~>"):
        hi = (nums[0] + 1, 0, 0) if n <= 1 else (nums[0], nums[1] + 1, 0)
        return c >= 0 and v[0] < hi
    if op == "^":
        hi = (nums[0] + 1, 0, 0) if nums[0] or n == 1 else (0, nums[1] + 1, 0) if nums[1] or n == 2 else (0, 0, nums[2] + 1)
        return c >= 0 and v[0] < hi
    return {"": c == 0, "=": c == 0, "!=": c != 0, ">": c > 0, "<": c < 0, ">=": c >= 0, "=>": c >= 0,
            "<=": c <= 0, "=<": c <= 0}[op]


@register("semverCompare")
def semver_compare(constraint: Any, version: Any) -> bool:
    v = _version(s_(version, "semverCompare"))
    for group in s_(constraint, "semverCompare").split("||"):
        items = [t for t in re.split(r"\s*,\s*|\s+(?=[<>=!~^v\d])", group.strip()) if t]
        if not items:
            continue
        ok, has_pre = True, False
        for item in items:
            m = _CONSTRAINT.match(item.strip())
            if not m:
                raise Fault(f"semverCompare: improper constraint {item!r}")
            has_pre = has_pre or "-" in m.group(2)
            ok = ok and _check(m.group(1) or "", m.group(2), v)
        if ok and (not v[1] or has_pre):
            return True
    return False
