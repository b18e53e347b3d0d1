"""The key a PodCertificateRequest asks a certificate for, read once per review: the stub CSR
(spec.stubPKCS10Request, DER, parsed and verified by webhook.parse_cache) or, for v1beta1,
pkixPublicKey with its proofOfPossession over spec.podUID.

`read_key` never raises: what cannot be read is the StubKey's `problem` (pod.stub_invalid or
pod.proof_invalid), for the CREATE key check to report. Pure apart from the parse cache.
"""

from __future__ import annotations

import base64

from webhook.decision import Violation
from webhook.parse_cache import parse_request
from webhook.pod_context import MAX_PKIX_BYTES, MAX_PROOF_BYTES, MAX_STUB_BYTES, StubKey
from webhook.resource import PCRObject
from webhook.x509.csr import PEM_TYPE, PublicKeyInfo, key_info
from webhook.x509.proof import parse_pkix_public_key, verify_pod_proof

CODES = frozenset({"pod.stub_invalid", "pod.proof_invalid"})
STUB_FIELD = "spec.stubPKCS10Request"
PKIX_FIELD = "spec.pkixPublicKey"
PROOF_FIELD = "spec.proofOfPossession"


def _stub_problem(message: str) -> StubKey:
    return StubKey(problem=Violation(code="pod.stub_invalid", field=STUB_FIELD, message=message))


def _proof_problem(field: str, message: str) -> StubKey:
    problem = Violation(code="pod.proof_invalid", field=field, message=message)
    return StubKey(field=PKIX_FIELD, problem=problem)


def as_pem(der: bytes) -> bytes:
    """The DER stub as the PEM spec.request of a CSR, for the one CSR parser and its cache."""
    body = base64.encodebytes(der)
    return b"-----BEGIN %s-----\n%s-----END %s-----\n" % (
        PEM_TYPE.encode(),
        body,
        PEM_TYPE.encode(),
    )


def read_key(pcr: PCRObject) -> StubKey:
    stub, pkix, proof = pcr.stub_request, pcr.pkix_public_key, pcr.proof_of_possession
    if stub is None:
        return _stub_problem("spec.stubPKCS10Request is not valid base64")
    if pkix is None:
        return _proof_problem(PKIX_FIELD, "spec.pkixPublicKey is not valid base64")
    if proof is None:
        return _proof_problem(PROOF_FIELD, "spec.proofOfPossession is not valid base64")
    if stub and not pkix and not proof:
        return _read_stub(stub)
    if not stub and pkix and proof and pcr.api_version == "v1beta1":
        return _read_pkix(pcr.pod_uid, pkix, proof)
    if pcr.api_version == "v1":
        return _stub_problem("spec.stubPKCS10Request must be set")
    return _stub_problem(
        "exactly one of stubPKCS10Request or (pkixPublicKey, proofOfPossession) must be set"
    )


def _read_stub(stub: bytes) -> StubKey:
    if len(stub) > MAX_STUB_BYTES:
        return _stub_problem(f"{len(stub)} bytes; at most {MAX_STUB_BYTES} (the API server's)")
    parsed = parse_request(as_pem(stub))
    if isinstance(parsed, Violation):
        return _stub_problem(f"not a usable PKCS#10 request ({parsed.code}): {parsed.message}")
    return StubKey(public_key_der=parsed.public_key_der, csr=parsed, field=STUB_FIELD)


def _read_pkix(pod_uid: str, pkix: bytes, proof: bytes) -> StubKey:
    if len(pkix) > MAX_PKIX_BYTES:
        return _proof_problem(PKIX_FIELD, f"{len(pkix)} bytes; at most {MAX_PKIX_BYTES}")
    if len(proof) > MAX_PROOF_BYTES:
        return _proof_problem(PROOF_FIELD, f"{len(proof)} bytes; at most {MAX_PROOF_BYTES}")
    parsed = parse_pkix_public_key(pkix)
    if isinstance(parsed, str):
        return _proof_problem(PKIX_FIELD, parsed)
    key, spki = parsed
    if not verify_pod_proof(key, pod_uid, proof):
        return _proof_problem(
            PROOF_FIELD, "the proof of possession does not verify over spec.podUID with the key"
        )
    return StubKey(public_key_der=spki, field=PKIX_FIELD, pkix_key=key_info(key))


def key_of(key: StubKey) -> PublicKeyInfo | None:
    """The judged key's type and size, None when it could not be read."""
    if key.csr is not None:
        return key.csr.key
    return key.pkix_key
