"""webhook.jsonwire writes what json.dumps with compact separators writes."""

from __future__ import annotations

import json

import pytest

from webhook.jsonwire import compact_json

VALUES: list[object] = [
    {"uid": "ü\n\t\x00\u2028", "list": [1, 2.5, True, False, None, {"a": []}], "n": 1.234},
    {"z": 1, "a": 2},
    [],
    {},
    "x\u00fc",
    0,
    -1.5e300,
    None,
]


@pytest.mark.parametrize("value", VALUES)
def test_compact_json_is_json_dumps_with_compact_separators(value: object) -> None:
    assert compact_json(value) == json.dumps(value, separators=(",", ":"))


def test_a_value_json_cannot_encode_raises_as_json_dumps_does() -> None:
    with pytest.raises(TypeError, match="Object of type bytes is not JSON serializable"):
        compact_json({"a": b"x"})
