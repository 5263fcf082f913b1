"""sprig's `urlParse` and `urlJoin`: a port of the parts of Go's net/url they use (Parse, String).

Python's urllib splits and escapes differently (hosts, `;`, which characters stay unescaped), so the
Go rules are reproduced here: RFC 3986 parsing with Go's error messages, %-unescaping of host, path
and fragment, and Go's escaping when a URL is put back together. Escaped bytes that do not form
UTF-8 come out as U+FFFD (Go keeps the raw bytes).
"""
from __future__ import annotations

from typing import Any

from .funcs import kind_of, m_, register, s_
from .gofmt import quote
from .tmplrt import Fault, Missing, UndefinedValue

_PATH, _SEGMENT, _HOST, _ZONE, _USER, _QUERY, _FRAGMENT = range(1, 8)
_HEX = "0123456789ABCDEF"


class URLError(Exception):
    """A net/url parse error (its Error() text)."""


def _should_escape(c: int, mode: int) -> bool:
    """net/url's shouldEscape for one byte."""
    ch = chr(c)
    if ch.isascii() and ch.isalnum():
        return False
    if mode in (_HOST, _ZONE) and ch in "!$&'()*+,;=:[]<>\"":
        return False
    if ch in "-_.~":
        return False
    if ch in "$&+,/:;=?@":
        if mode == _PATH:
            return ch == "?"
        if mode == _SEGMENT:
            return ch in "/;,?"
        if mode == _USER:
            return ch in "@/?:"
        if mode == _QUERY:
            return True
        if mode == _FRAGMENT:
            return False
    return not (mode == _FRAGMENT and ch in "!()*")


def _escape(s: str, mode: int) -> str:
    out: list[str] = []
    for c in s.encode():
        if c == 0x20 and mode == _QUERY:
            out.append("+")
        elif _should_escape(c, mode):
            out.append("%" + _HEX[c >> 4] + _HEX[c & 15])
        else:
            out.append(chr(c))
    return "".join(out)


def _ishex(c: int) -> bool:
    return chr(c) in "0123456789abcdefABCDEF"


def _unescape(s: str, mode: int) -> str:
    b = s.encode()
    out = bytearray()
    i = 0
    while i < len(b):
        c = b[i]
        if c == 0x25:  # %
            if i + 2 >= len(b) or not _ishex(b[i + 1]) or not _ishex(b[i + 2]):
                raise URLError("invalid URL escape " + quote(b[i:i + 3].decode(errors="replace")))
            v = int(b[i + 1:i + 3], 16)
            esc = b[i:i + 3].decode()
            if mode == _HOST and v >> 4 < 8 and esc != "%25":
                raise URLError("invalid URL escape " + quote(esc))
            if mode == _ZONE and esc != "%25" and v != 0x20 and _should_escape(v, _HOST):
                raise URLError("invalid URL escape " + quote(esc))
            out.append(v)
            i += 3
            continue
        if mode in (_HOST, _ZONE) and c < 0x80 and _should_escape(c, mode):
            raise URLError("invalid character " + quote(chr(c)) + " in host name")
        out.append(0x20 if c == 0x2B and mode == _QUERY else c)
        i += 1
    return out.decode(errors="replace")


def _valid_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


def _parse_host(host: str) -> str:
    if host.startswith("["):
        i = host.rfind("]")
        if i < 0:
            raise URLError("missing ']' in host")
        if not _valid_port(host[i + 1:]):
            raise URLError(f"invalid port {quote(host[i + 1:])} after host")
        zone = host.find("%25", 0, i)
        if zone >= 0:
            return _unescape(host[:zone], _HOST) + _unescape(host[zone:i], _ZONE) + _unescape(host[i:], _HOST)
    elif (i := host.rfind(":")) != -1 and not _valid_port(host[i:]):
        raise URLError(f"invalid port {quote(host[i:])} after host")
    return _unescape(host, _HOST)


_USERINFO_OK = frozenset("-._:~!$&'()*+,;=%@")


def _parse_authority(authority: str) -> tuple[tuple[str, str | None] | None, str]:
    i = authority.rfind("@")
    host = _parse_host(authority[i + 1:])
    if i < 0:
        return None, host
    info = authority[:i]
    if any(not (c.isascii() and c.isalnum()) and c not in _USERINFO_OK for c in info):
        raise URLError("net/url: invalid userinfo")
    name, colon, password = info.partition(":")
    return (_unescape(name, _USER), _unescape(password, _USER) if colon else None), host


def _user_string(user: tuple[str, str | None]) -> str:
    name, password = user
    return _escape(name, _USER) + ("" if password is None else ":" + _escape(password, _USER))


def _parse_ref(raw: str) -> dict[str, Any]:
    """net/url's parse (not via a request): the URL's fields, or URLError."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise URLError("net/url: invalid control character in URL")
    u: dict[str, Any] = {"scheme": "", "opaque": "", "user": None, "host": "", "path": "", "query": "",
                         "force_query": False, "fragment": ""}
    if raw == "*":
        u["path"] = "*"
        return u
    rest = raw
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c in "0123456789+-.":
            if i == 0:
                break
            continue
        if c == ":":
            if i == 0:
                raise URLError("missing protocol scheme")
            u["scheme"], rest = raw[:i].lower(), raw[i + 1:]
        break
    if rest.endswith("?") and rest.count("?") == 1:
        u["force_query"], rest = True, rest[:-1]
    else:
        rest, _, u["query"] = rest.partition("?")
    if not rest.startswith("/"):
        if u["scheme"]:
            u["opaque"] = rest
            return u
        if ":" in rest.partition("/")[0]:
            raise URLError("first path segment in URL cannot contain colon")
    if (u["scheme"] or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
        u["user"], u["host"] = _parse_authority(authority)
    u["path"] = _unescape(rest, _PATH)
    return u


def parse_url(raw: str) -> dict[str, Any]:
    """url.Parse: errors read `parse "<url>": <reason>`."""
    ref, _, frag = raw.partition("#")
    try:
        u = _parse_ref(ref)
    except URLError as e:
        raise URLError(f"parse {quote(ref)}: {e}") from None
    if frag:
        try:
            u["fragment"] = _unescape(frag, _FRAGMENT)
        except URLError as e:
            raise URLError(f"parse {quote(raw)}: {e}") from None
    return u


def _hostname(host: str) -> str:
    colon = host.rfind(":")
    if colon != -1 and _valid_port(host[colon:]):
        host = host[:colon]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@register("urlParse")
def url_parse(v: Any) -> dict[str, Any]:
    try:
        u = parse_url(s_(v, "urlParse"))
    except URLError as e:
        raise Fault(f"unable to parse url: {e}") from None
    return {"scheme": u["scheme"], "host": u["host"], "hostname": _hostname(u["host"]), "path": u["path"],
            "query": u["query"], "opaque": u["opaque"], "fragment": u["fragment"],
            "userinfo": "" if u["user"] is None else _user_string(u["user"])}


def _field(d: dict[Any, Any], key: str) -> str:
    if key not in d:
        return ""
    v = d[key]
    if isinstance(v, Missing):
        raise UndefinedValue(v.path, v._null, used_by="urlJoin")
    if not isinstance(v, str):
        raise Fault(f"unable to parse {key} key, must be of type string, but {kind_of(v)} found")
    return v


@register("urlJoin")
def url_join(d: Any) -> str:
    """The URL a dict like urlParse's result describes (url.URL.String; `hostname` is ignored)."""
    m = m_(d, "urlJoin")
    scheme, host, path, query, opaque, frag = (_field(m, k) for k in
                                               ("scheme", "host", "path", "query", "opaque", "fragment"))
    user = None
    if info := _field(m, "userinfo"):
        try:
            user = parse_url(f"proto://{info}@host")["user"]
        except URLError as e:
            raise Fault(f"unable to parse userinfo in dict: {e}") from None
    out = f"{scheme}:" if scheme else ""
    if opaque:
        out += opaque
    else:
        if scheme or host or user is not None:
            if host or path or user is not None:
                out += "//"
            if user is not None:
                out += _user_string(user) + "@"
            out += _escape(host, _HOST)
        epath = "*" if path == "*" else _escape(path, _PATH)
        if epath and epath[0] != "/" and host:
            out += "/"
        if not out and ":" in epath.partition("/")[0]:
            out += "./"
        out += epath
    if query:
        out += "?" + query
    if frag:
        out += "#" + _escape(frag, _FRAGMENT)
    return out
