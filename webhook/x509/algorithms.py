"""Key and signature AlgorithmIdentifiers as Go's crypto/x509 reads them.

cryptography reads some encodings Go refuses; the API server parses and verifies requests with
Go, so a request it cannot read must not be allowed. Returns problems as text and never raises
but der.DERError; knows nothing of policy.
"""

from __future__ import annotations

from cryptography.x509.oid import SignatureAlgorithmOID

from webhook.x509 import der

_NULL = b"\x05\x00"
# cryptography.x509.oid names neither hash algorithms nor MGF1 (RFC 4055 §2.1, §6).
_MGF1 = "1.2.840.113549.1.1.8"
_HASH_NAMES = {
    "1.3.14.3.2.26": "SHA-1",
    "2.16.840.1.101.3.4.2.4": "SHA-224",
    "2.16.840.1.101.3.4.2.1": "SHA-256",
    "2.16.840.1.101.3.4.2.2": "SHA-384",
    "2.16.840.1.101.3.4.2.3": "SHA-512",
}
_PSS_HASH_SIZES = {
    "2.16.840.1.101.3.4.2.1": 32,
    "2.16.840.1.101.3.4.2.2": 48,
    "2.16.840.1.101.3.4.2.3": 64,
}


def key_parameters_problem(request_der: bytes, is_rsa: bool) -> str | None:
    """An RSA key must carry NULL parameters (RFC 3279 §2.3.1): cryptography reads one without
    them, Go's x509.ParseCertificateRequest refuses it ("RSA key missing NULL parameters")."""
    if not is_rsa:
        return None
    _oid, parameters = der.read_key_algorithm(request_der)
    if parameters == _NULL:
        return None
    found = "absent" if parameters is None else f"0x{parameters.hex()}"
    return f"RSA key parameters are {found}; they must be NULL (RFC 3279 §2.3.1)"


def signature_parameters_problem(request_der: bytes) -> str | None:
    """RSASSA-PSS as Go verifies it (x509.go getSignatureAlgorithmFromAI): SHA-256, -384 or
    -512, MGF1 with the same hash, a salt as long as the hash, the default trailer. Any other
    PSS signature is an unknown algorithm to Go, and CheckSignature fails."""
    algorithm, parameters = der.read_signature_algorithm(request_der)
    if algorithm != SignatureAlgorithmOID.RSASSA_PSS.dotted_string:
        return None
    hash_oid, mgf_oid, mgf_hash_oid, salt, trailer = der.read_pss_parameters(parameters or b"")
    size = _PSS_HASH_SIZES.get(hash_oid)
    if size is not None and (mgf_oid, mgf_hash_oid, salt, trailer) == (_MGF1, hash_oid, size, 1):
        return None
    hash_name = _HASH_NAMES.get(hash_oid, hash_oid)
    mgf_hash = _HASH_NAMES.get(mgf_hash_oid, mgf_hash_oid)
    found = f"hash {hash_name}, MGF1 with {mgf_hash}, salt {salt}, trailer {trailer}"
    return (
        f"RSASSA-PSS with {found}: Go's crypto/x509 verifies only SHA-256/384/512 with MGF1 of "
        "the same hash and a salt as long as the hash"
    )
