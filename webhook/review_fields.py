"""Typed readers of one field of an untrusted JSON object from an AdmissionReview.

Shared by webhook.admission (the CSR) and webhook.pod_review (the PodCertificateRequest), the
only readers of the review's JSON. A field of the wrong JSON type raises ReviewError naming
`where` and the key; content that cannot be interpreted (bad base64) is None, for a check.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterator, Mapping
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


# json.loads makes exact types only; map() of this runs the test in C, no generator frame.
_is_str = str.__instancecheck__


def all_strings(values: list[Any]) -> bool:
    """Whether every item is a str."""
    return all(map(_is_str, values))


def strings_at(parent: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = list_at(parent, key, where)
    if not all(map(_is_str, values)):
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
        # base64.b64decode(text, validate=True) without its wrapper: the same checks, and a
        # non-ASCII str raises the same ValueError.
        return binascii.a2b_base64(text, strict_mode=True)
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


# JSON values whose encoding cannot recurse: their SpecValue is built when a check asks for it.
_FLAT = (str, int, float, bool, type(None))
_is_flat = frozenset(_FLAT).__contains__
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def spec_value(value: object, where: str) -> SpecValue:
    try:
        canonical = _CANONICAL.encode(value)
    except RecursionError as exc:  # no deeper than json.loads went; refused, never a 500
        raise ReviewError(f"{where} is nested too deeply") from exc
    if isinstance(value, str):
        shown = show(value)
    elif value is None or isinstance(value, bool | int | float):
        shown = canonical[:40]
    else:
        shown = "a list" if isinstance(value, list) else "an object"
    return SpecValue(canonical=canonical, shown=shown)


class SpecValues(Mapping[str, SpecValue]):
    """Every key of a spec as a SpecValue, built on first read: only an UPDATE's transition
    check compares specs, so a CREATE never pays for them. A container value is encoded here,
    at parse time, so one nested too deeply is still a ReviewError (HTTP 400), never an error
    inside a check; a scalar or a list of scalars cannot fail to encode, so it waits."""

    __slots__ = ("_built", "_raw", "_where")

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        self._raw = raw
        self._where = where
        self._built: dict[str, SpecValue] = {}
        for key, value in raw.items():
            kind = type(value)
            if _is_flat(kind) or (kind is list and all(map(_is_flat, map(type, value)))):
                continue
            self._built[key] = spec_value(value, where)

    def __getitem__(self, key: str) -> SpecValue:
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = spec_value(self._raw[key], self._where)
        return built

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def shown(value: object) -> str:
    """A value from a broken review, for an error message: repr, cut to 64 characters."""
    text = repr(value)
    return text if len(text) <= 64 else f"{text[:64]}… ({len(text)} characters)"
