"""Typed values of a certificates.k8s.io CertificateSigningRequest or PodCertificateRequest, as
a review carries it.

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


@dataclass(frozen=True, slots=True, kw_only=True)
class PCRObject:
    """A certificates.k8s.io PodCertificateRequest (namespaced; v1 since Kubernetes 1.37, or
    v1beta1, whose deprecated `pkixPublicKey` + `proofOfPossession` replace the stub CSR).
    Byte fields are the decoded base64, b"" when absent and None when not valid base64; times
    are the RFC 3339 text as sent (None when absent), for the checks to read."""

    api_version: str  # "v1" or "v1beta1": the version the object was sent in
    namespace: str
    name: str
    signer_name: str
    pod_name: str
    pod_uid: str
    service_account_name: str
    service_account_uid: str
    node_name: str
    node_uid: str
    max_expiration_seconds: int | None  # None when absent (the API server defaults it)
    stub_request: bytes | None  # spec.stubPKCS10Request: a DER CertificationRequest
    pkix_public_key: bytes | None = b""  # v1beta1 only
    proof_of_possession: bytes | None = b""  # v1beta1 only
    annotations: Mapping[str, str] = field(default_factory=dict)  # unverifiedUserAnnotations
    conditions: tuple[Condition, ...] = ()
    certificate_chain: str = ""  # status.certificateChain: PEM, leaf first
    not_before: str | None = None
    begin_refresh_at: str | None = None
    not_after: str | None = None
    # Every spec key as sent, for the transition check's comparison (the spec is immutable).
    spec: Mapping[str, SpecValue] = field(default_factory=dict, repr=False, compare=False)
