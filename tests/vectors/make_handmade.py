"""Writes the hand-made CSRs in tests/vectors/handmade/, one PEM per anomaly.

Run: .venv/bin/python -m tests.vectors.make_handmade
File names are fixed (tests/vectors/README.md catalogues each one); the bytes change on every
run because every key is generated in memory and thrown away. No private key is ever written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, ExtensionOID, NameOID

from tests.builders import (
    EXTENSION_REQUEST_OID,
    build_csr,
    csr_to_der,
    extension_of,
    oid,
    private_key,
    raw_attribute,
    raw_csr,
    raw_extension,
    raw_name,
    seq,
    sign_info,
    spki_of,
    to_pem,
    utf8_name,
)
from webhook.x509 import der

HANDMADE_DIR = Path(__file__).parent / "handmade"
UNKNOWN_EXTENSION_OID = "1.2.3.4.5.6"
MS_EXTENSION_REQUEST_OID = "1.3.6.1.4.1.311.2.1.14"
UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
KU_DIGITAL_SIGNATURE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def _cn(value: str) -> bytes:
    return utf8_name((NameOID.COMMON_NAME, value))


def _san(*general_names: bytes) -> bytes:
    """A subjectAltName extension from raw GeneralName TLVs (any bytes, any tags)."""
    return raw_extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, seq(*general_names))


def _dns(name: bytes) -> bytes:
    return der.encode_tlv(0x82, name)


def _ip(packed: bytes) -> bytes:
    return der.encode_tlv(0x87, packed)


def _pem(der_bytes: bytes) -> bytes:
    return to_pem(der_bytes)


def _info(subject: bytes, spki: bytes) -> bytes:
    return seq(der.encode_tlv(der.INTEGER, b"\x00"), subject, spki, b"\xa0\x00")


# ---- framing -----------------------------------------------------------------------------------


def two_pem_blocks() -> bytes:
    return build_csr(common_name="first-block") + build_csr(common_name="second-block")


def wrong_pem_type() -> bytes:
    der_bytes = csr_to_der(build_csr(common_name="wrong-pem-type"))
    return to_pem(der_bytes, "NEW CERTIFICATE REQUEST")


def pem_headers() -> bytes:
    lines = build_csr(common_name="pem-headers").decode().splitlines(keepends=True)
    return "".join([lines[0], "Comment: added by hand\n", "\n", *lines[1:]]).encode()


def trailing_der_bytes() -> bytes:
    return _pem(csr_to_der(build_csr(common_name="trailing-der-bytes")) + b"\x00")


# ---- keys and signatures -----------------------------------------------------------------------


def bad_signature() -> bytes:
    valid = raw_csr(subject=_cn("bad-signature"))
    return _pem(valid.replace(b"bad-signature", b"bad-signaturf"))


def sha1_signature() -> bytes:
    return _pem(raw_csr(key="rsa-2048", subject=_cn("sha1-signature"), hash_name="sha1"))


def ecdsa_sha1_signature() -> bytes:
    return _pem(raw_csr(key="ecdsa-p256", subject=_cn("ecdsa-sha1-signature"), hash_name="sha1"))


def md5_signature() -> bytes:
    return _pem(raw_csr(key="rsa-2048", subject=_cn("md5-signature"), hash_name="md5"))


def rsa_pss_signature() -> bytes:
    key = private_key("rsa-2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa-pss-signature")])
    )
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    csr = builder.sign(key, hashes.SHA256(), rsa_padding=pss)
    return csr.public_bytes(serialization.Encoding.PEM)


def unknown_signature_algorithm() -> bytes:
    info = _info(_cn("unknown-signature-algorithm"), spki_of("ecdsa-p256"))
    key = private_key("ecdsa-p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    return _pem(seq(info, seq(oid("1.2.3.4")), der.encode_tlv(der.BIT_STRING, b"\x00" + signature)))


def unknown_public_key_algorithm() -> bytes:
    spki = seq(seq(oid("1.2.3.4")), der.encode_tlv(der.BIT_STRING, b"\x00unknown-key"))
    info = _info(_cn("unknown-public-key-algorithm"), spki)
    ed25519 = seq(oid("1.3.101.112"))
    return _pem(seq(info, ed25519, der.encode_tlv(der.BIT_STRING, b"\x00" + bytes(64))))


def x25519_key() -> bytes:
    spki = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    info = _info(_cn("x25519-key"), spki)
    ed25519 = seq(oid("1.3.101.112"))
    return _pem(seq(info, ed25519, der.encode_tlv(der.BIT_STRING, b"\x00" + bytes(64))))


def rsa_key_without_null_parameters() -> bytes:
    # cryptography reads an rsaEncryption key with no parameters; Go's crypto/x509 does not.
    _algorithm, bits = der.children(der.read_single(spki_of("rsa-2048")))
    spki = seq(seq(oid("1.2.840.113549.1.1.1")), bits.raw)
    info = _info(_cn("rsa-key-without-null-parameters"), spki)
    return _pem(sign_info(info, key="rsa-2048"))


def dsa_key() -> bytes:
    return _pem(raw_csr(key="dsa-2048", subject=_cn("dsa-key"), hash_name="sha256"))


def rsa_exponent_3() -> bytes:
    # cryptography still generates e=3 keys "for legacy purposes", so the CSR is properly
    # signed and the exponent is the only thing wrong with it.
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa-exponent-3")])
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def ecdsa_secp256k1_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256K1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecdsa-secp256k1-key")])
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


# ---- subject -----------------------------------------------------------------------------------


def nul_in_common_name() -> bytes:
    subject = raw_name([(NameOID.COMMON_NAME, der.UTF8_STRING, b"nul\x00.example.com")])
    return _pem(raw_csr(subject=subject))


def two_common_names() -> bytes:
    subject = utf8_name((NameOID.COMMON_NAME, "svc-a"), (NameOID.COMMON_NAME, "svc-b"))
    return _pem(raw_csr(subject=subject))


def multi_valued_rdn() -> bytes:
    subject = raw_name(
        [
            (NameOID.COMMON_NAME, der.UTF8_STRING, b"svc-multi"),
            (NameOID.ORGANIZATION_NAME, der.UTF8_STRING, b"system:masters"),
        ]
    )
    return _pem(raw_csr(subject=subject))


def integer_subject_value() -> bytes:
    subject = raw_name(
        [(NameOID.COMMON_NAME, der.UTF8_STRING, b"integer-subject-value")],
        [(NameOID.ORGANIZATION_NAME, der.INTEGER, b"\x01")],
    )
    return _pem(raw_csr(subject=subject))


def invalid_utf8_subject() -> bytes:
    subject = raw_name(
        [(NameOID.COMMON_NAME, der.UTF8_STRING, b"invalid-utf8-subject")],
        [(NameOID.ORGANIZATION_NAME, der.UTF8_STRING, b"team-\xff")],
    )
    return _pem(raw_csr(subject=subject))


def _string_typed(common_name: tuple[int, bytes]) -> bytes:
    """A kubelet client CSR (ECDSA P-256, O=system:nodes) whose commonName has the given
    (string tag, content)."""
    subject = raw_name(
        [(NameOID.COMMON_NAME, *common_name)],
        [(NameOID.ORGANIZATION_NAME, der.UTF8_STRING, b"system:nodes")],
    )
    return _pem(raw_csr(subject=subject))


def visible_string_common_name() -> bytes:
    return _string_typed((der.VISIBLE_STRING, b"system:node:worker-1"))


def universal_string_common_name() -> bytes:
    return _string_typed((der.UNIVERSAL_STRING, "system:node:worker-1".encode("utf-32-be")))


def teletex_string_common_name() -> bytes:
    return _string_typed((der.T61_STRING, b"system:node:worker-1"))


# ---- attributes and extensions -----------------------------------------------------------------


def challenge_password() -> bytes:
    password = raw_attribute(
        AttributeOID.CHALLENGE_PASSWORD, der.encode_tlv(der.PRINTABLE_STRING, b"hunter2")
    )
    return _pem(raw_csr(subject=_cn("challenge-password"), extensions=[], attributes=[password]))


def extension_request_twice() -> bytes:
    usage = extension_of(KU_DIGITAL_SIGNATURE)
    client_auth = extension_of(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]))
    second = raw_attribute(EXTENSION_REQUEST_OID, seq(client_auth))
    return _pem(
        raw_csr(subject=_cn("extension-request-twice"), extensions=[usage], attributes=[second])
    )


def ms_extension_request() -> bytes:
    hidden = extension_of(x509.SubjectAlternativeName([x509.DNSName("hidden.example.com")]))
    attribute = raw_attribute(MS_EXTENSION_REQUEST_OID, seq(hidden))
    return _pem(raw_csr(subject=_cn("ms-extension-request"), attributes=[attribute]))


def duplicate_extensions() -> bytes:
    usage = extension_of(KU_DIGITAL_SIGNATURE)
    return _pem(raw_csr(subject=_cn("duplicate-extensions"), extensions=[usage, usage]))


def two_san_extensions() -> bytes:
    first = _san(_dns(b"a.example.com"))
    second = _san(_dns(b"b.example.com"))
    return _pem(raw_csr(subject=_cn("two-san-extensions"), extensions=[first, second]))


def othername_san() -> bytes:
    upn = x509.OtherName(UPN_OID, der.encode_tlv(der.UTF8_STRING, b"admin@example.com"))
    extension = extension_of(x509.SubjectAlternativeName([upn]))
    return _pem(raw_csr(subject=_cn("othername-san"), extensions=[extension]))


def lazily_failing_extension() -> bytes:
    # A three-byte iPAddress: load_der_x509_csr accepts the CSR and only `csr.extensions`
    # raises ValueError, so a parser that never touches extensions would miss it.
    extension = _san(_dns(b"lazy.example.com"), _ip(b"\x0a\x00\x01"))
    return _pem(raw_csr(subject=_cn("lazily-failing-extension"), extensions=[extension]))


def unknown_critical_extension() -> bytes:
    extension = raw_extension(UNKNOWN_EXTENSION_OID, der.encode_tlv(0x05, b""), critical=True)
    return _pem(raw_csr(subject=_cn("unknown-critical-extension"), extensions=[extension]))


# ---- SAN values --------------------------------------------------------------------------------


def _dns_csr(common_name: str, name: bytes) -> bytes:
    return _pem(raw_csr(subject=_cn(common_name), extensions=[_san(_dns(name))]))


def trailing_dot_dns() -> bytes:
    return _dns_csr("trailing-dot-dns", b"a.example.com.")


def u_label_dns() -> bytes:
    return _dns_csr("u-label-dns", "bücher.example.com".encode())


def punycode_invalid() -> bytes:
    # "xn--zz" is an incomplete punycode string: it has the ACE prefix but decodes to nothing.
    return _dns_csr("punycode-invalid", b"xn--zz.example.com")


def wildcard_request() -> bytes:
    return _dns_csr("wildcard-request", b"*.example.com")


def non_ascii_email() -> bytes:
    email = der.encode_tlv(0x81, "ops-é@mail.example.com".encode())
    return _pem(raw_csr(subject=_cn("non-ascii-email"), extensions=[_san(email)]))


def ipv4_mapped_ipv6() -> bytes:
    packed = ipaddress.IPv6Address("::ffff:10.1.2.3").packed
    return _pem(raw_csr(subject=_cn("ipv4-mapped-ipv6"), extensions=[_san(_ip(packed))]))


HANDMADE: dict[str, Callable[[], bytes]] = {
    "two-pem-blocks.pem": two_pem_blocks,
    "wrong-pem-type.pem": wrong_pem_type,
    "pem-headers.pem": pem_headers,
    "trailing-der-bytes.pem": trailing_der_bytes,
    "bad-signature.pem": bad_signature,
    "sha1-signature.pem": sha1_signature,
    "ecdsa-sha1-signature.pem": ecdsa_sha1_signature,
    "md5-signature.pem": md5_signature,
    "rsa-pss-signature.pem": rsa_pss_signature,
    "unknown-signature-algorithm.pem": unknown_signature_algorithm,
    "unknown-public-key-algorithm.pem": unknown_public_key_algorithm,
    "x25519-key.pem": x25519_key,
    "dsa-key.pem": dsa_key,
    "rsa-key-without-null-parameters.pem": rsa_key_without_null_parameters,
    "rsa-exponent-3.pem": rsa_exponent_3,
    "ecdsa-secp256k1-key.pem": ecdsa_secp256k1_key,
    "nul-in-common-name.pem": nul_in_common_name,
    "two-common-names.pem": two_common_names,
    "multi-valued-rdn.pem": multi_valued_rdn,
    "integer-subject-value.pem": integer_subject_value,
    "invalid-utf8-subject.pem": invalid_utf8_subject,
    "visible-string-common-name.pem": visible_string_common_name,
    "universal-string-common-name.pem": universal_string_common_name,
    "teletex-string-common-name.pem": teletex_string_common_name,
    "challenge-password.pem": challenge_password,
    "extension-request-twice.pem": extension_request_twice,
    "ms-extension-request.pem": ms_extension_request,
    "duplicate-extensions.pem": duplicate_extensions,
    "two-san-extensions.pem": two_san_extensions,
    "othername-san.pem": othername_san,
    "lazily-failing-extension.pem": lazily_failing_extension,
    "unknown-critical-extension.pem": unknown_critical_extension,
    "trailing-dot-dns.pem": trailing_dot_dns,
    "u-label-dns.pem": u_label_dns,
    "punycode-invalid.pem": punycode_invalid,
    "wildcard-request.pem": wildcard_request,
    "ipv4-mapped-ipv6.pem": ipv4_mapped_ipv6,
    "non-ascii-email.pem": non_ascii_email,
}


def main(directory: Path = HANDMADE_DIR) -> None:
    directory.mkdir(exist_ok=True)
    for name, make in HANDMADE.items():
        pem = make()
        assert b"PRIVATE KEY" not in pem, name
        (directory / name).write_bytes(pem)
        print(f"wrote {directory / name}")


if __name__ == "__main__":
    main()
