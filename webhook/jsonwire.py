"""Compact JSON text of trees of dicts, lists, strings, numbers and booleans, from one C encoder
made at import: `JSONEncoder(separators=(",", ":")).encode` makes a new one on every call.

The same text as that encode (ASCII, keys in insertion order). No cycle check: the callers
encode values they have just built, which cannot contain themselves.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii

try:
    from _json import make_encoder
except ImportError:  # pragma: no cover - a Python built without _json
    make_encoder = None  # type: ignore[assignment,misc]

_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _default(value: object) -> object:
    return _ENCODER.default(value)  # raises TypeError, as encode would


_C_ENCODE = (
    None
    if make_encoder is None
    else make_encoder(None, _default, encode_basestring_ascii, None, ":", ",", False, False, True)
)


def compact_json(value: object) -> str:
    """`json.dumps(value, separators=(",", ":"))`."""
    if _C_ENCODE is None:  # pragma: no cover - a Python built without _json
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))
