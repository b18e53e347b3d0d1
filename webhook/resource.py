"""Typed values of a certificates.k8s.io/v1 CertificateSigningRequest, as a review carries it.

Built only by webhook.admission, the one reader of the review's JSON; read by the engine, the
checks, the mutation and the logs, none of which sees a raw dict. Content the parser cannot
interpret (bad base64) is None here, for the checks to deny.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecValue:
    """One spec key's value as sent. `canonical` is its JSON with keys sorted, for comparing
    two specs by JSON type (true is not 1, 1 is not 1.0); `shown` names it in a message."""

    canonical: str
    shown: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CSRObject:
    name: str
    signer_name: str
    request: bytes | None  # decoded PEM text; None when spec.request is not valid base64
    usages: tuple[str, ...]
    expiration_seconds: int | None  # None when absent or null
    username: str
    groups: tuple[str, ...]
    conditions: tuple[Condition, ...]
    certificate: bytes | None  # None when status.certificate is not valid base64
    # False when the object has no spec at all: a JSON Patch into /spec would not apply.
    has_spec: bool = True
    # Every spec key as sent (uid and extra too), for the transition check's comparison.
    spec: Mapping[str, SpecValue] = field(default_factory=dict, repr=False, compare=False)
