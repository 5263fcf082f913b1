"""JSON text of plain data, exactly as `json.dumps` gives it, at a fraction of its per-call cost.

`json.dumps(x, <options>)` builds a `JSONEncoder`, then a C encoder and its circular-reference
table, on every call: ~3 µs before the first byte, more than encoding a small spec takes. A
plan encodes tens of thousands of small documents (each package's definition, rendered spec,
used values; the stored plan's slices), so the C encoders are made once here.

Only for acyclic data: without the circular-reference table a cycle would end in a
RecursionError, not in json's ValueError. Everything orch encodes is parsed YAML (recursive
aliases are refused when loading), merged values or its own records: trees, never cycles.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_make: Any
try:
    import _json

    _make, _ascii = _json.make_encoder, _json.encode_basestring_ascii
except (ImportError, AttributeError):  # pragma: no cover - an interpreter without json's C accelerator
    _make = None


def _refuse(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _encoder(*, sort_keys: bool = False, compact: bool = False,
             default: Callable[[Any], Any] = _refuse) -> Callable[[Any], str]:
    key_sep, item_sep = (":", ",") if compact else (": ", ", ")
    if _make is None:  # pragma: no cover
        return json.JSONEncoder(sort_keys=sort_keys, separators=(item_sep, key_sep), default=default).encode
    # the arguments of json.encoder.JSONEncoder.iterencode's C path: no markers (no cycle check),
    # no indent, ensure_ascii, skipkeys off, allow_nan on
    encode = _make(None, default, _ascii, None, key_sep, item_sep, sort_keys, False, True)
    join = "".join

    def dumps(obj: Any) -> str:
        if isinstance(obj, str):  # the C encoder handles containers and scalars, as iterencode's caller does
            return _ascii(obj)
        return join(encode(obj, 0))

    return dumps


dumps: Callable[[Any], str] = _encoder()  # json.dumps(x)
dumps_any: Callable[[Any], str] = _encoder(default=str)  # json.dumps(x, default=str)
compact: Callable[[Any], str] = _encoder(compact=True)  # json.dumps(x, separators=(",", ":"))
canonical: Callable[[Any], str] = _encoder(sort_keys=True, compact=True)  # ... and sort_keys=True
