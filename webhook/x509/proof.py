"""A v1beta1 PodCertificateRequest's deprecated `pkixPublicKey` and `proofOfPossession`:
parse_pkix_public_key reads the key, verify_pod_proof checks the signature over the pod UID.

The proof is as kube-apiserver verifies it (pkg/apis/certificates/validation/validation.go,
validateDeprecatedPKIXPublicKey): Ed25519 over the UID's bytes; ECDSA (ASN.1) and RSA-PSS
(any salt length, as Go's VerifyPSS with nil options) over SHA-256 of them. Never raises
for hostile bytes; knows no policy.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils


def parse_pkix_public_key(data: bytes) -> tuple[object, bytes] | str:
    """(key, its SubjectPublicKeyInfo DER re-encoded) or why the bytes are no key."""
    try:
        key = serialization.load_der_public_key(data)
        spki = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"not a DER SubjectPublicKeyInfo: {exc}"
    return key, spki


def verify_pod_proof(key: object, pod_uid: str, proof: bytes) -> bool:
    """True when `proof` is the key's signature over the pod UID, as the API server checks."""
    try:
        data = pod_uid.encode()
    except UnicodeEncodeError:  # a lone surrogate from JSON: no bytes any key signed
        return False
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    hashed = digest.finalize()
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(proof, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(proof, hashed, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        elif isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            key.verify(proof, hashed, pss, utils.Prehashed(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True
