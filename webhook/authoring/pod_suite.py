"""PolicyTest cases of `kind: PodCertificateRequest`: which fields they take, and their typed
form (PodCase). The suite loader (`webhook.authoring.suite`) calls these for such cases and
reports what they raise or return as problems of the file; the reviews are built by
`webhook.authoring.pod_case_review`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.authoring.pod_issue import PodIssueSpec, parse_pod_issue_spec
from webhook.authoring.suite_schema import POD_OPERATIONS
from webhook.facts import StaticFacts
from webhook.policy.source import PathKey

POD_KIND = "PodCertificateRequest"
_UIDS = uuid.UUID("6f1c3a52-5b0e-4d1e-9a57-2f1d8c0e4b21")  # the namespace of derived UIDs


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSpec:
    """A validated `pod:` block: the request as its kubelet creates it (no key material)."""

    api_version: str
    signer_name: str
    namespace: str
    pod_name: str
    pod_uid: str
    service_account_name: str
    service_account_uid: str
    node_name: str
    node_uid: str
    max_expiration_seconds: int | None
    key: str
    stub: str  # valid | badSignature | missing
    proof_of_possession: str | None  # valid | invalid: v1beta1 pkixPublicKey instead of stub
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodCase:
    """One PodCertificateRequest case: `create` (the CREATE at /validate) or `issue` (the
    signer's /status update)."""

    name: str
    where: str
    index: int
    operation: str  # create | issue
    requester: dict[str, Any]  # who creates the request (userInfo of the CREATE)
    actor: dict[str, Any] | None  # issue: the status writer
    pod: PodSpec
    expect: str
    violations: tuple[str, ...]
    issue: PodIssueSpec | None = None
    patch: int | None = None  # never: /mutate patches no PodCertificateRequest
    facts: StaticFacts = field(default_factory=StaticFacts)


def derived_uid(*parts: str) -> str:
    """A stable UID for a named object of a suite, as the API server would have given one."""
    return str(uuid.uuid5(_UIDS, "/".join(parts)))


def field_problems(raw: Mapping[str, Any], operation: str) -> Iterator[tuple[PathKey, str]]:
    """What a PodCertificateRequest case has that it must not, or lacks (relative paths)."""
    if operation not in POD_OPERATIONS:
        yield (
            ("operation",),
            f"a PodCertificateRequest case is create or issue, got {operation!r}: there is no "
            "/approval subresource, and /mutate patches nothing",
        )
    for name, instead in (("csr", "pod"), ("certificate", "issue")):
        if name in raw:
            yield (name,), f"a PodCertificateRequest case describes the request under {instead!r}"
    if "patch" in raw:
        yield ("patch",), "patch is only for CertificateSigningRequest mutate cases"
    if "cluster" in raw:
        yield ("cluster",), "cluster facts are for CertificateSigningRequest rules only"
    if "pod" not in raw:
        yield (), "missing required field 'pod'"
    if "expect" not in raw:
        yield (), "missing required field 'expect'"
    if operation == "issue" and "actor" not in raw:
        yield (), "missing required field 'actor' (the signer that writes /status)"
    if operation != "issue":
        for name in ("actor", "issue"):
            if name in raw:
                yield (name,), f"{name} is only for operation issue"
    pod = raw.get("pod")
    if isinstance(pod, dict) and "proofOfPossession" in pod:
        if pod.get("apiVersion", "v1") != "v1beta1":
            yield (
                ("pod", "proofOfPossession"),
                "pkixPublicKey and proofOfPossession exist in v1beta1 only (apiVersion: v1beta1)",
            )
        if "stub" in pod:
            yield ("pod", "stub"), "give stub or proofOfPossession, not both"


def csr_only_problems(raw: Mapping[str, Any]) -> Iterator[tuple[PathKey, str]]:
    """A CertificateSigningRequest case (the default kind) with PodCertificateRequest fields."""
    for name in ("pod", "issue"):
        if name in raw:
            yield (name,), f"{name} is only for kind: {POD_KIND}"
    if "csr" not in raw:
        yield (), "missing required field 'csr'"


def parse_pod_spec(raw: Mapping[str, Any]) -> PodSpec:
    """A shape-validated `pod:` block, UIDs derived where not given."""
    namespace, name = str(raw["namespace"]), str(raw["name"])
    account, node = str(raw["serviceAccountName"]), str(raw["nodeName"])
    proof = raw.get("proofOfPossession")
    return PodSpec(
        api_version=str(raw.get("apiVersion", "v1")),
        signer_name=str(raw["signerName"]),
        namespace=namespace,
        pod_name=name,
        pod_uid=str(raw.get("uid") or derived_uid("pods", namespace, name)),
        service_account_name=account,
        service_account_uid=derived_uid("serviceaccounts", namespace, account),
        node_name=node,
        node_uid=derived_uid("nodes", node),
        max_expiration_seconds=raw.get("maxExpirationSeconds"),
        key=str(raw.get("key", "ecdsa-p256")),
        stub=str(raw.get("stub", "valid")),
        proof_of_possession=str(proof) if proof is not None else None,
        annotations=dict(raw.get("annotations") or {}),
    )


def parse_issue(raw: Mapping[str, Any] | None, path: PathKey) -> PodIssueSpec:
    """The `issue:` block (absent: a well-behaved signer's status); raises SpecError."""
    return parse_pod_issue_spec(raw or {}, path)
