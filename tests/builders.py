"""CSR builders for tests: cryptography's builders for ordinary CSRs, raw DER for malformed ones.

Keys are generated once per test run and live only in memory (or in a tmp dir for openssl);
no key material is ever written into the repository.
"""

from __future__ import annotations

import base64
import ipaddress
import subprocess
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from webhook.x509 import der

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)
_CURVES: dict[str, ec.EllipticCurve] = {
    "p256": ec.SECP256R1(),
    "p384": ec.SECP384R1(),
    "p521": ec.SECP521R1(),
}
EXTENSION_REQUEST_OID = "1.2.840.113549.1.9.14"


@cache
def private_key(kind: str = "ecdsa-p256") -> PrivateKey:
    family, _, size = kind.partition("-")
    if family == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(size))
    if family == "ecdsa":
        return ec.generate_private_key(_CURVES[size])
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate()
    if family == "dsa":
        return dsa.generate_private_key(key_size=int(size))
    raise ValueError(f"unknown key kind {kind!r}")


def _default_hash(key: str) -> hashes.HashAlgorithm | None:
    return None if key.startswith("ed") else hashes.SHA256()


def build_csr(
    *,
    key: str = "ecdsa-p256",
    common_name: str | None = None,
    organization: Sequence[str] = (),
    subject: x509.Name | None = None,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    uris: Sequence[str] = (),
    emails: Sequence[str] = (),
    other_sans: Sequence[x509.GeneralName] = (),
    extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
    hash_alg: Any = "default",
    attributes: Iterable[tuple[x509.ObjectIdentifier, bytes]] = (),
) -> bytes:
    """A PEM CSR made by cryptography's builder; `hash_alg="default"` picks SHA-256 or None."""
    if subject is None:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
        attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organization]
        subject = x509.Name(attrs)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    sans += [x509.RFC822Name(e) for e in emails]
    sans += list(other_sans)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    for oid, value in attributes:
        builder = builder.add_attribute(oid, value)
    algorithm: Any = _default_hash(key) if hash_alg == "default" else hash_alg
    csr = builder.sign(private_key(key), algorithm)
    return csr.public_bytes(serialization.Encoding.PEM)


# ---- raw DER, for CSRs cryptography's builder refuses to make ----------------------------------


def to_pem(der_bytes: bytes, label: str = "CERTIFICATE REQUEST") -> bytes:
    body = base64.encodebytes(der_bytes).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def csr_to_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)


def seq(*items: bytes) -> bytes:
    return der.encode_tlv(der.SEQUENCE, b"".join(items))


def set_of(*items: bytes) -> bytes:
    """DER SET OF: elements in sorted order, as cryptography insists."""
    return der.encode_tlv(der.SET, b"".join(sorted(items)))


def oid(dotted: str | x509.ObjectIdentifier) -> bytes:
    if isinstance(dotted, x509.ObjectIdentifier):
        dotted = dotted.dotted_string
    return der.encode_oid(dotted)


def raw_name(*rdns: Sequence[tuple[x509.ObjectIdentifier, int, bytes]]) -> bytes:
    """Name DER from RDNs of (oid, string tag, content bytes) — any bytes, NUL included."""
    return seq(*(set_of(*(seq(oid(o), der.encode_tlv(t, v)) for o, t, v in rdn)) for rdn in rdns))


def utf8_name(*pairs: tuple[x509.ObjectIdentifier, str]) -> bytes:
    return raw_name(*([(o, der.UTF8_STRING, v.encode())] for o, v in pairs))


def raw_extension(oid_: x509.ObjectIdentifier | str, value: bytes, critical: bool = False) -> bytes:
    flag = der.encode_tlv(der.BOOLEAN, b"\xff") if critical else b""
    return seq(oid(oid_), flag, der.encode_tlv(der.OCTET_STRING, value))


def extension_of(ext: x509.ExtensionType, critical: bool = False) -> bytes:
    """Extension DER for a cryptography ExtensionType (its value encoded by cryptography)."""
    return raw_extension(ext.oid, ext.public_bytes(), critical)


def raw_attribute(oid_: x509.ObjectIdentifier | str, *values: bytes) -> bytes:
    return seq(oid(oid_), set_of(*values))


def extension_request(*extensions: bytes) -> bytes:
    return raw_attribute(EXTENSION_REQUEST_OID, seq(*extensions))


def spki_of(key: str) -> bytes:
    return (
        private_key(key)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


_HASHES: dict[str | None, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha1": hashes.SHA1(),
    "md5": hashes.MD5(),
}
_SIG_OIDS = {
    ("rsa", "sha256"): SignatureAlgorithmOID.RSA_WITH_SHA256,
    ("rsa", "sha1"): SignatureAlgorithmOID.RSA_WITH_SHA1,
    ("rsa", "md5"): SignatureAlgorithmOID.RSA_WITH_MD5,
    ("ecdsa", "sha256"): SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    ("ecdsa", "sha384"): SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    ("ecdsa", "sha1"): SignatureAlgorithmOID.ECDSA_WITH_SHA1,
    ("dsa", "sha256"): SignatureAlgorithmOID.DSA_WITH_SHA256,
    ("dsa", "sha1"): SignatureAlgorithmOID.DSA_WITH_SHA1,
    ("ed25519", None): SignatureAlgorithmOID.ED25519,
    ("ed448", None): SignatureAlgorithmOID.ED448,
}


def sign_info(info: bytes, *, key: str = "ecdsa-p256", hash_name: str | None = "sha256") -> bytes:
    """Complete CertificationRequest DER: `info` signed with `key` (any hash, SHA-1 included)."""
    family = key.partition("-")[0]
    if family.startswith("ed"):
        hash_name = None
    k = private_key(key)
    if isinstance(k, rsa.RSAPrivateKey):
        signature = k.sign(info, padding.PKCS1v15(), _HASHES[hash_name])
    elif isinstance(k, ec.EllipticCurvePrivateKey):
        signature = k.sign(info, ec.ECDSA(_HASHES[hash_name]))
    elif isinstance(k, dsa.DSAPrivateKey):
        signature = k.sign(info, _HASHES[hash_name])
    else:
        signature = k.sign(info)
    params = der.encode_tlv(0x05, b"") if family == "rsa" else b""
    alg = seq(oid(_SIG_OIDS[family, hash_name]), params)
    return seq(info, alg, der.encode_tlv(der.BIT_STRING, b"\x00" + signature))


def raw_csr(
    *,
    key: str = "ecdsa-p256",
    subject: bytes | None = None,
    extensions: Sequence[bytes] | None = None,
    attributes: Sequence[bytes] = (),
    hash_name: str | None = "sha256",
) -> bytes:
    """A signed CSR DER assembled by hand: `subject` Name DER, `extensions` as Extension DERs
    in one extensionRequest (None: no extensionRequest), plus extra `attributes` (all in DER
    SET order, which cryptography insists on)."""
    if subject is None:
        subject = utf8_name((NameOID.COMMON_NAME, "raw"))
    attrs = list(attributes)
    if extensions is not None:
        attrs.insert(0, extension_request(*extensions))
    info = seq(
        der.encode_tlv(der.INTEGER, b"\x00"),
        subject,
        spki_of(key),
        der.encode_tlv(der.CONTEXT_0, b"".join(sorted(attrs))),
    )
    return sign_info(info, key=key, hash_name=hash_name)


def openssl_csr(tmp_dir: Path, *, key: str, subj: str, addext: Sequence[str] = ()) -> bytes:
    """A PEM CSR made by `openssl req`, its key written only to `tmp_dir`."""
    key_path = tmp_dir / "key.pem"
    key_path.write_bytes(
        private_key(key).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = tmp_dir / "openssl.cnf"
    config.write_text("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n")
    args = ["openssl", "req", "-new", "-config", str(config), "-key", str(key_path)]
    args += ["-subj", subj, "-sha256"]
    for ext in addext:
        args += ["-addext", ext]
    try:
        return subprocess.run(args, check=True, capture_output=True).stdout
    finally:
        key_path.unlink()
