"""Typed view of a certificates.k8s.io/v1 CertificateSigningRequest object from a review.

Wrong JSON types raise `ReviewError` (the API server never sends them, so the review is
malformed); content we cannot interpret (bad base64, bad PEM) is left for the checks to deny.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from webhook.errors import ReviewError


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    raw: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CSRObject:
    name: str
    signer_name: str
    request: bytes | None  # decoded PEM text; None when spec.request is not valid base64
    usages: tuple[str, ...]
    expiration_seconds: int | None
    username: str
    groups: tuple[str, ...]
    conditions: tuple[Condition, ...]
    certificate: bytes | None  # None when status.certificate is not valid base64
    # The spec as sent, every key (uid and extra too), for the transition check's comparison.
    spec: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def parse_csr_object(obj: dict[str, Any], where: str = "request.object") -> CSRObject:
    metadata = _dict(obj, "metadata", where)
    spec = _dict(obj, "spec", where)
    status = _dict(obj, "status", where)
    expiration = spec.get("expirationSeconds")
    if expiration is not None and (not isinstance(expiration, int) or isinstance(expiration, bool)):
        raise ReviewError(f"{where}.spec.expirationSeconds must be an integer")
    conditions = []
    for index, raw in enumerate(_list(status, "conditions", f"{where}.status")):
        if not isinstance(raw, dict):
            raise ReviewError(f"{where}.status.conditions[{index}] must be an object")
        path = f"{where}.status.conditions[{index}]"
        conditions.append(
            Condition(
                type=_str(raw, "type", path),
                status=_str(raw, "status", path),
                reason=_str(raw, "reason", path),
                message=_str(raw, "message", path),
                raw=raw,
            )
        )
    return CSRObject(
        name=_str(metadata, "name", f"{where}.metadata"),
        signer_name=_str(spec, "signerName", f"{where}.spec"),
        request=_bytes(spec, "request", f"{where}.spec"),
        usages=_strings(spec, "usages", f"{where}.spec"),
        expiration_seconds=expiration,
        username=_str(spec, "username", f"{where}.spec"),
        groups=_strings(spec, "groups", f"{where}.spec"),
        conditions=tuple(conditions),
        certificate=_bytes(status, "certificate", f"{where}.status"),
        spec=spec,
    )


def _dict(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReviewError(f"{where}.{key} must be an object")
    return value


def _list(parent: dict[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReviewError(f"{where}.{key} must be a list")
    return value


def _str(parent: dict[str, Any], key: str, where: str) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReviewError(f"{where}.{key} must be a string")
    return value


def _strings(parent: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _list(parent, key, where)
    if not all(isinstance(v, str) for v in values):
        raise ReviewError(f"{where}.{key} must be a list of strings")
    return tuple(values)


def _bytes(parent: dict[str, Any], key: str, where: str) -> bytes | None:
    text = _str(parent, key, where)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
