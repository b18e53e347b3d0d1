"""Test CAs and certificates issued the way kube-controller-manager's csrsigning does it.

Source: pkg/controller/certificates/authority/{authority.go,policies.go} (reference §4.5):
NotBefore = now - 5m, subject and SANs copied from the CSR, every other CSR extension dropped,
BasicConstraints CA:false, KeyUsage/ExtKeyUsage only from spec.usages. Keys live in memory
only; nothing here writes key material anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from tests.builders import PrivateKey, private_key, seq
from webhook.x509 import der

ROOT_NAME = "csr-webhook test root CA"
INTERMEDIATE_NAME = "csr-webhook test intermediate CA"
BACKDATE = datetime.timedelta(minutes=5)

# pkg/controller/certificates/authority/policies.go: keyUsageDict / extKeyUsageDict.
KEY_USAGE_BITS: dict[str, str] = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
EXT_KEY_USAGES: dict[str, x509.ObjectIdentifier] = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}


@dataclass(frozen=True)
class TestCA:
    """A CA certificate and its in-memory key."""

    __test__ = False  # not a pytest test class

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def _now() -> datetime.datetime:
    # X.509 times have whole-second resolution; start from a whole second so that
    # notAfter - notBefore is exactly what a test asks for.
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _ca_certificate(
    subject_cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: TestCA | None,
    *,
    is_ca: bool = True,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer.key if issuer else key, hashes.SHA256())


@cache
def _ca(label: str, subject_cn: str, issuer_label: str | None, is_ca: bool = True) -> TestCA:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = _CAS[issuer_label]() if issuer_label else None
    certificate = _ca_certificate(subject_cn, key, issuer, is_ca=is_ca)
    return TestCA(name=label, key=key, certificate=certificate)


def root_ca() -> TestCA:
    """The signer's trusted root."""
    return _ca("root", ROOT_NAME, None)


def intermediate_ca() -> TestCA:
    """An intermediate issued by `root_ca()`."""
    return _ca("intermediate", INTERMEDIATE_NAME, "root")


def unrelated_root_ca() -> TestCA:
    """A root nobody trusts, with a name of its own."""
    return _ca("unrelated", "some other CA", None)


def impostor_root_ca() -> TestCA:
    """A root with exactly the trusted root's subject DN but a different key."""
    return _ca("impostor-root", ROOT_NAME, None)


def impostor_intermediate_ca() -> TestCA:
    """The trusted intermediate's subject DN, issued by the impostor root."""
    return _ca("impostor-intermediate", INTERMEDIATE_NAME, "impostor-root")


def end_entity_of_root() -> TestCA:
    """A certificate issued by `root_ca()` with CA:false and no keyCertSign: not an issuer,
    although signatures made with its key verify against it."""
    return _ca("end-entity", "csr-webhook test end entity", "root", is_ca=False)


_CAS = {
    "root": root_ca,
    "intermediate": intermediate_ca,
    "unrelated": unrelated_root_ca,
    "impostor-root": impostor_root_ca,
}


def _key_usage(bits: set[str]) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    flags = {name: name in bits for name in names}
    return x509.KeyUsage(**flags)


def sign_csr(
    csr_pem: bytes,
    ca: TestCA | None = None,
    *,
    usages: Sequence[str] = ("digital signature", "client auth"),
    lifetime: datetime.timedelta = datetime.timedelta(hours=1),
    backdate: datetime.timedelta = BACKDATE,
    extra_dns: Sequence[str] = (),
    key: str | PrivateKey | None = None,
    subject: x509.Name | None = None,
    is_ca: bool = False,
    key_usage: Sequence[str] | None = None,
    extended_key_usage: Sequence[str] | None = None,
    chain: Sequence[TestCA] = (),
    extensions: Sequence[x509.ExtensionType] = (),
) -> bytes:
    """PEM of a leaf for `csr_pem` issued by `ca` (default: the root), then `chain` blocks.

    notBefore = now - `backdate`, notAfter = now + `lifetime`; so the in-tree signer's short
    certificate for expirationSeconds=N is `lifetime=N seconds` with the default backdate.
    `usages` are spec.usages, mapped to KU/EKU the in-tree way; `key_usage` /
    `extended_key_usage` override them with usage names. `key` (a builders key kind or a key)
    puts a different public key in the certificate. `subject` replaces the CSR's subject.
    `extensions` are added as they are (an UnrecognizedExtension carries raw DER of any OID); a
    subjectAltName among them replaces the CSR's.
    """
    ca = ca or root_ca()
    csr = x509.load_pem_x509_csr(csr_pem)
    if key is None:
        public_key = csr.public_key()
    elif isinstance(key, str):
        public_key = private_key(key).public_key()
    else:
        public_key = key.public_key()
    sans: list[x509.GeneralName] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    sans += [x509.DNSName(name) for name in extra_dns]

    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject if subject is not None else csr.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    ku_names = key_usage if key_usage is not None else [u for u in usages if u in KEY_USAGE_BITS]
    bits = {KEY_USAGE_BITS[u] for u in ku_names}
    if bits:
        builder = builder.add_extension(_key_usage(bits), critical=True)
    eku_names = (
        extended_key_usage
        if extended_key_usage is not None
        else [u for u in usages if u in EXT_KEY_USAGES]
    )
    ekus = sorted({EXT_KEY_USAGES[u] for u in eku_names}, key=lambda o: o.dotted_string)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    own_san = any(e.oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME for e in extensions)
    if sans and not own_san:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    leaf = builder.sign(ca.key, hashes.SHA256())
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    return pem + b"".join(c.pem for c in chain)


def pem_block(der_bytes: bytes, label: str = "CERTIFICATE", headers: str = "") -> bytes:
    """A PEM block with any label, optional header lines, and the body wrapped at 64."""
    body = base64.encodebytes(der_bytes).decode()
    return f"-----BEGIN {label}-----\n{headers}{body}-----END {label}-----\n".encode()


def first_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificates(pem)[0].public_bytes(serialization.Encoding.DER)


def intermediate_with(extensions: Sequence[x509.ExtensionType]) -> TestCA:
    """A fresh intermediate issued by `root_ca()`, with the trusted intermediate's name and these
    extra extensions (raw DER through UnrecognizedExtension)."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _ca_certificate(INTERMEDIATE_NAME, key, root_ca(), extensions=extensions)
    return TestCA(name="intermediate-with-extensions", key=key, certificate=certificate)


# ---- raw DER, for certificates cryptography's builder refuses to make -------------------------


def x400_address() -> bytes:
    """GeneralName x400Address [3] (an empty ORAddress): cryptography cannot represent it."""
    return der.encode_tlv(0xA3, seq())


def edi_party_name() -> bytes:
    """GeneralName ediPartyName [5] with partyName [1] "party": cryptography cannot represent
    it either."""
    return der.encode_tlv(0xA5, der.encode_tlv(0xA1, der.encode_tlv(der.UTF8_STRING, b"party")))


def dns_general_name(name: str) -> bytes:
    return der.encode_tlv(0x82, name.encode())


def general_names(oid: x509.ObjectIdentifier, *names: bytes) -> x509.UnrecognizedExtension:
    """A GeneralNames-valued extension (subjectAltName, issuerAltName, ...) from raw entries."""
    return x509.UnrecognizedExtension(oid, seq(*names))


def tbs_fields(certificate_der: bytes) -> list[bytes]:
    """The TBSCertificate fields of a certificate, each as raw DER (version first)."""
    tbs = der.children(der.read_single(certificate_der), der.SEQUENCE)[0]
    return [field.raw for field in der.children(tbs, der.SEQUENCE)]


def sign_tbs(fields: Sequence[bytes], issuer: TestCA) -> bytes:
    """Certificate DER: a TBSCertificate of these raw fields, signed ecdsa-with-SHA256 by
    `issuer`, so hand-edited certificates still verify and reach the issuance checks."""
    tbs = seq(*fields)
    signature = issuer.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    algorithm = seq(der.encode_oid("1.2.840.10045.4.3.2"))
    return seq(tbs, algorithm, der.encode_tlv(der.BIT_STRING, b"\x00" + signature))


# Positions in TBSCertificate (with the explicit version present, as every v3 certificate has).
TBS_VALIDITY, TBS_SUBJECT, TBS_SPKI = 4, 5, 6


def edit_certificate(pem: bytes, issuer: TestCA, position: int, replacement: bytes) -> bytes:
    """PEM of the first certificate of `pem` with one TBS field replaced, re-signed by `issuer`,
    followed by the rest of `pem` unchanged."""
    certificates = x509.load_pem_x509_certificates(pem)
    fields = tbs_fields(certificates[0].public_bytes(serialization.Encoding.DER))
    fields[position] = replacement
    rest = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates[1:])
    return pem_block(sign_tbs(fields, issuer)) + rest


def append_extension(pem: bytes, issuer: TestCA, extension: bytes) -> bytes:
    """Like `edit_certificate`, appending one raw Extension DER to the first certificate's
    extensions (a duplicate too, which cryptography's builder refuses)."""
    certificates = x509.load_pem_x509_certificates(pem)
    fields = tbs_fields(certificates[0].public_bytes(serialization.Encoding.DER))
    explicit = der.read_single(fields[-1])  # [3] EXPLICIT Extensions, the last TBS field
    extensions = der.children(der.read_single(explicit.content), der.SEQUENCE)
    rebuilt = seq(*(e.raw for e in extensions), extension)
    fields[-1] = der.encode_tlv(0xA3, rebuilt)
    rest = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates[1:])
    return pem_block(sign_tbs(fields, issuer)) + rest
