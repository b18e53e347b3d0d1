"""Typed readers of one field of an untrusted JSON object from an AdmissionReview.

Shared by webhook.admission (the CSR) and webhook.pod_review (the PodCertificateRequest), the
only readers of the review's JSON. A field of the wrong JSON type raises ReviewError naming
`where` and the key; content that cannot be interpreted (bad base64) is None, for a check.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from webhook.errors import ReviewError
from webhook.resource import Condition, SpecValue
from webhook.text import show


def dict_at(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReviewError(f"{where}.{key} must be an object")
    return value


def list_at(parent: dict[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReviewError(f"{where}.{key} must be a list")
    return value


def string_at(parent: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = parent.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ReviewError(f"{where}.{key} must be a string")
    return value


def optional_string_at(parent: dict[str, Any], key: str, where: str) -> str | None:
    """A string that may be absent or null (None then): RFC 3339 times of a status."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReviewError(f"{where}.{key} must be a string")
    return value


def strings_at(parent: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = list_at(parent, key, where)
    if not all(isinstance(v, str) for v in values):
        raise ReviewError(f"{where}.{key} must be a list of strings")
    return tuple(values)


def integer_at(parent: dict[str, Any], key: str, where: str) -> int | None:
    value = parent.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ReviewError(f"{where}.{key} must be an integer")
    return value


def base64_at(parent: dict[str, Any], key: str, where: str) -> bytes | None:
    """The decoded bytes of a base64 string field (b"" when absent), None when not base64."""
    text = string_at(parent, key, where)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def conditions_at(status: dict[str, Any], where: str) -> tuple[Condition, ...]:
    conditions = []
    for index, raw in enumerate(list_at(status, "conditions", where)):
        path = f"{where}.conditions[{index}]"
        if not isinstance(raw, dict):
            raise ReviewError(f"{path} must be an object")
        conditions.append(
            Condition(
                type=string_at(raw, "type", path),
                status=string_at(raw, "status", path),
                reason=string_at(raw, "reason", path),
                message=string_at(raw, "message", path),
            )
        )
    return tuple(conditions)


def spec_value(value: object, where: str) -> SpecValue:
    try:
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except RecursionError as exc:  # no deeper than json.loads went; refused, never a 500
        raise ReviewError(f"{where} is nested too deeply") from exc
    if isinstance(value, str):
        shown = show(value)
    elif value is None or isinstance(value, bool | int | float):
        shown = canonical[:40]
    else:
        shown = "a list" if isinstance(value, list) else "an object"
    return SpecValue(canonical=canonical, shown=shown)


def shown(value: object) -> str:
    """A value from a broken review, for an error message: repr, cut to 64 characters."""
    text = repr(value)
    return text if len(text) <= 64 else f"{text[:64]}… ({len(text)} characters)"
