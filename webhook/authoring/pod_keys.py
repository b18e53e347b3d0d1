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
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

from webhook.authoring.generate import KeyCache, PrivateKey


def stub_der(key: PrivateKey, *, corrupt_signature: bool = False) -> bytes:
    """The DER stub CSR of `key` as Go signs it (SHA-256 for RSA and P-256, SHA-384 for
    P-384, SHA-512 for P-521, pure Ed25519); `corrupt_signature` flips the last byte of its
    signature, so it parses but does not verify."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    der = builder.sign(key, _algorithm(key)).public_bytes(serialization.Encoding.DER)
    if corrupt_signature:
        der = der[:-1] + bytes([der[-1] ^ 0x01])
    return der


def _algorithm(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp521r1":
        return hashes.SHA512()
    return hashes.SHA256()


def pkix_der(key: PrivateKey) -> bytes:
    """SubjectPublicKeyInfo DER of `key` (spec.pkixPublicKey)."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign_proof(key: PrivateKey, pod_uid: str) -> bytes:
    """spec.proofOfPossession: `key`'s signature over the pod UID, as the kubelet made it."""
    data = pod_uid.encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    digest = hashlib.sha256(data).digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(digest, ec.ECDSA(prehashed))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    return key.sign(digest, pss, prehashed)


def build_stub(key_type: str, keys: KeyCache, *, corrupt_signature: bool = False) -> bytes:
    """The stub CSR for the run's key of `key_type`."""
    return stub_der(keys.get(key_type), corrupt_signature=corrupt_signature)


def pkix_public_key(key_type: str, keys: KeyCache) -> bytes:
    return pkix_der(keys.get(key_type))


def proof_of_possession(key_type: str, keys: KeyCache, pod_uid: str) -> bytes:
    return sign_proof(keys.get(key_type), pod_uid)
