"""The key material of a PodCertificateRequest as a kubelet makes it, from a key of the run's
KeyCache (memory only, never serialised as a private key).

pkg/kubelet/podcertificate/podcertificatemanager.go generateKeyAndProof: the stub is
x509.CreateCertificateRequest of an empty template (no subject, no extensions), DER. The
deprecated v1beta1 form (pkg/apis/certificates/validation/validation.go
validateDeprecatedPKIXPublicKey): the PKIX public key and a proof of possession, a signature
over the pod UID (Ed25519: the bytes; ECDSA: ASN.1 over their SHA-256; RSA: PSS-SHA256 over
their SHA-256).
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from webhook.authoring.generate import KeyCache, RequestSpec, build_request_pem


def build_stub(key_type: str, keys: KeyCache, *, corrupt_signature: bool = False) -> bytes:
    """The DER stub CSR for the run's key of `key_type`; `corrupt_signature` flips the last
    byte of its signature, so it parses but does not verify."""
    pem = build_request_pem(RequestSpec(key=key_type, subject=x509.Name([]), sans=()), keys)
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    if corrupt_signature:
        der = der[:-1] + bytes([der[-1] ^ 0x01])
    return der


def pkix_public_key(key_type: str, keys: KeyCache) -> bytes:
    """SubjectPublicKeyInfo DER of the run's key of `key_type` (spec.pkixPublicKey)."""
    return (
        keys.get(key_type)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def proof_of_possession(key_type: str, keys: KeyCache, pod_uid: str) -> bytes:
    """spec.proofOfPossession: the key's signature over the pod UID, as the kubelet made it."""
    key = keys.get(key_type)
    data = pod_uid.encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    digest = hashlib.sha256(data).digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(digest, ec.ECDSA(prehashed))
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    return key.sign(digest, pss, prehashed)
