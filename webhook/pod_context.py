"""What a PodCertificateRequest check sees: PodCreateContext at CREATE, PodUpdateContext at
UPDATE, and `pod_variables`, the ${pod.*} and ${node} values of `podCertificates.issued`.

Built by webhook.pod_engine from typed values only (webhook.resource, the parsed stub, the
policy); shared by the pod check modules (checks never import each other). Plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from webhook.decision import Violation
from webhook.matching.variables import MAX_VARIABLE_CHARS, Requester
from webhook.policy.model import PodCertificates, SignerPolicy
from webhook.resource import PCRObject
from webhook.x509.csr import ParsedCSR, PublicKeyInfo

# kube-apiserver's MaxStubPKCS10RequestSize and MaxCertificateChainSize
# (pkg/apis/certificates/types.go); a stub or chain over them is refused before any parse.
MAX_STUB_BYTES = 10 * 1024
MAX_CHAIN_BYTES = 100 * 1024
MAX_PKIX_BYTES = 10 * 1024
MAX_PROOF_BYTES = 10 * 1024
# A chain is a leaf and its intermediates; the API server allows ten RSA-4096 certificates in
# its 100 KiB. More PEM blocks than this is refused before a certificate is parsed.
MAX_CHAIN_CERTIFICATES = 10
# The API server defaults an absent maxExpirationSeconds before admission (types.go).
DEFAULT_MAX_EXPIRATION_SECONDS = 86400


def pod_variables(pcr: PCRObject, *, nodes_only: bool) -> dict[str, str]:
    """The pod template variables from the spec; `node` only when the policy admits only node
    creators (then spec.nodeName is the creator: CREATE checks pod.node_mismatch). A value
    longer than MAX_VARIABLE_CHARS defines nothing (a pattern using it matches nothing)."""
    out = {
        "pod.namespace": pcr.namespace,
        "pod.name": pcr.pod_name,
        "pod.uid": pcr.pod_uid,
        "pod.serviceAccountName": pcr.service_account_name,
        "signerName": pcr.signer_name,
    }
    if nodes_only and pcr.node_name:
        out["node"] = pcr.node_name
    return {
        name: value for name, value in out.items() if value and len(value) <= MAX_VARIABLE_CHARS
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class StubKey:
    """The key a PCR asks a certificate for: from the stub CSR (`csr`) or, for v1beta1, the
    pkixPublicKey; `public_key_der` its SubjectPublicKeyInfo, `field` where it was read.
    `problem` is the violation that stopped reading it (then the rest is empty)."""

    public_key_der: bytes = b""
    csr: ParsedCSR | None = None
    pkix_key: PublicKeyInfo | None = None
    field: str = "spec.stubPKCS10Request"
    problem: Violation | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PodCreateContext:
    """A CREATE of a PodCertificateRequest under the policy governing its signer: `creator` is
    request.userInfo; `key` the stub's (or v1beta1 pkixPublicKey's) key."""

    pcr: PCRObject
    creator: Requester
    policy: SignerPolicy
    pods: PodCertificates
    key: StubKey


@dataclass(frozen=True, slots=True, kw_only=True)
class PodUpdateContext:
    """An UPDATE: `writer` is request.userInfo; every gate judges the stored spec (`old`'s),
    `new` contributes only its status. `policy` and `pods` are None when no policy, or none
    with podCertificates, governs the signer; `key` and `variables` are the stored spec's."""

    sub_resource: str
    old: PCRObject
    new: PCRObject
    writer: Requester
    policy: SignerPolicy | None
    pods: PodCertificates | None
    key: StubKey | None = None
    variables: Mapping[str, str] | None = None
