"""`status.certificate` bytes -> certificates: parse_certificates by the API server's rules,
read_certificates for what the issuance gate compares.

parse_certificates mirrors validateCertificate (pkg/apis/certificates/validation/validation.go):
one or more PEM blocks, all CERTIFICATE, no headers, each parsing to at least one certificate (a
block may hold several concatenated DER certificates); malformed blocks and text outside blocks
are skipped as Go's encoding/pem does. It raises CertificateFormatError and nothing else.

read_certificates also makes, here and nowhere else, every access of cryptography's that is lazy
and can raise on hostile bytes (public key, validity, extensions; the subject is read from DER):
what cannot be read is a Violation (issuance.certificate_unparseable when the certificate is
unusable, issuance.extension_unparseable per extension), never an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from webhook.decision import Violation
from webhook.errors import CertificateFormatError, DERError
from webhook.x509 import der
from webhook.x509.csr import parse_extension
from webhook.x509.oids import EXTENSION_NAMES, KEY_USAGE_BITS
from webhook.x509.pem import decode_pem_blocks

MAX_CERTIFICATE_BYTES = 1024 * 1024
FIELD = "status.certificate"
# What cryptography raises from a lazy access. UserWarning too: it warns on some names (a
# directoryName CN over 64 characters), and under -W error the warning is raised. KeyError:
# cryptography 44 to 49 raise it for a name attribute value whose tag no string type has (50
# raises ValueError); pyproject.toml allows them.
_LAZY_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UserWarning,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateInfo:
    """What one certificate says, read eagerly. `certificate` is kept for signature checks;
    `subject` values are None when not a decodable string; `problems` are the extensions that
    could not be read."""

    certificate: x509.Certificate = field(repr=False)
    public_key_der: bytes = field(repr=False)
    subject: tuple[tuple[str, str | None], ...]
    sans: tuple[tuple[str, str], ...]
    lifetime_seconds: float
    is_ca: bool
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...]
    problems: tuple[Violation, ...] = ()


def _split_der(body: bytes) -> list[bytes]:
    certificates, offset = [], 0
    while offset < len(body):
        try:
            tlv, offset = der.read_tlv(body, offset)
        except DERError as exc:
            raise CertificateFormatError(f"certificate DER is malformed: {exc}") from exc
        certificates.append(tlv.raw)
    return certificates


def _load(data: bytes) -> Iterator[tuple[bytes, x509.Certificate]]:
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateFormatError(f"{len(data)} bytes; at most {MAX_CERTIFICATE_BYTES}")
    blocks = decode_pem_blocks(data)
    if not blocks:
        raise CertificateFormatError("must contain at least one CERTIFICATE PEM block")
    for index, block in enumerate(blocks):
        if block.type != "CERTIFICATE":
            raise CertificateFormatError(
                f"only CERTIFICATE PEM blocks are allowed, found {block.type!r}"
            )
        if block.headers:
            raise CertificateFormatError("no PEM block headers are permitted")
        pieces = _split_der(block.body)
        if not pieces:
            raise CertificateFormatError("found CERTIFICATE PEM block containing 0 certificates")
        for piece in pieces:
            _check_serial(piece, index)
            try:
                yield piece, x509.load_der_x509_certificate(piece)
            except (ValueError, x509.InvalidVersion) as exc:
                raise CertificateFormatError(
                    f"PEM block {index} does not parse as a certificate: {exc}"
                ) from exc


def _check_serial(piece: bytes, index: int) -> None:
    """RFC 5280 §4.1.2.2: the serial number is positive. cryptography loads a zero or negative
    one with a deprecation warning (an error under -W error, and in its future releases);
    refusing it before cryptography sees it keeps the answer the same under any warning filter."""
    try:
        serial = der.read_certificate(piece).serial
    except DERError:
        return  # not a certificate; cryptography's own parse says so
    if serial.tag == der.INTEGER and (
        not serial.content.strip(b"\x00") or serial.content[0] & 0x80
    ):
        raise CertificateFormatError(
            f"PEM block {index}: the certificate's serial number is not positive (RFC 5280)"
        )


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in order: the leaf first, then any chain the signer appended."""
    return [certificate for _, certificate in _load(data)]


def read_certificates(data: bytes) -> list[CertificateInfo | Violation]:
    """parse_certificates, each certificate read: a Violation in place of one that is unusable
    (its public key, validity, subject or TBS framing cannot be read). Raises only
    CertificateFormatError, as parse_certificates does."""
    return [_read(piece, cert, index) for index, (piece, cert) in enumerate(_load(data))]


def position(index: int) -> str:
    """How messages name a certificate of status.certificate."""
    return "the leaf" if index == 0 else f"certificate {index + 1} (an intermediate)"


def _unusable(index: int, what: str, exc: Exception) -> Violation:
    return Violation(
        code="issuance.certificate_unparseable",
        field=FIELD,
        message=f"{position(index)}: cannot read its {what}: {exc}",
    )


def _read(piece: bytes, cert: x509.Certificate, index: int) -> CertificateInfo | Violation:
    try:
        parts = der.read_certificate(piece)
        subject, name_problems = _subject(parts.subject)
    except DERError as exc:
        return _unusable(index, "structure", exc)
    try:
        public_key_der = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except _LAZY_ERRORS as exc:
        return _unusable(index, "public key", exc)
    try:
        lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    except _LAZY_ERRORS as exc:
        return _unusable(index, "validity", exc)
    found = _Extensions()
    problems = [_unusable(index, "subject", ValueError(p)) for p in name_problems]
    problems.extend(_extensions(parts.extensions, index, found))
    return CertificateInfo(
        certificate=cert,
        public_key_der=public_key_der,
        subject=subject,
        sans=tuple(found.sans),
        lifetime_seconds=lifetime,
        is_ca=found.is_ca,
        key_usage=frozenset(found.key_usage),
        extended_key_usage=tuple(found.eku),
        problems=tuple(problems),
    )


def _subject(name: der.TLV) -> tuple[tuple[tuple[str, str | None], ...], list[str]]:
    """(OID, value) of every attribute of every RDN, and what is malformed about the name. Read
    from DER rather than `cert.subject`, which raises on a string that does not decode, warns on
    odd lengths, and refuses an empty RDN or one attribute type twice in an RDN (X.501): those
    are reported here instead."""
    attributes: list[tuple[str, str | None]] = []
    problems: list[str] = []
    for rdn_index, rdn in enumerate(der.children(name, der.SEQUENCE)):
        oids = []
        for attribute in der.children(rdn, der.SET):
            oid_tlv, value = der.fields(attribute, der.SEQUENCE, 2)
            oids.append(der.decode_oid(oid_tlv))
            try:
                attributes.append((oids[-1], der.decode_string(value)))
            except DERError:
                attributes.append((oids[-1], None))
        if not oids:
            problems.append(f"RDN {rdn_index} is empty")
        elif len(set(oids)) != len(oids):
            problems.append(f"RDN {rdn_index} holds an attribute type twice")
    return tuple(attributes), problems


@dataclass(slots=True)
class _Extensions:
    sans: list[tuple[str, str]] = field(default_factory=list)
    is_ca: bool = False
    key_usage: set[str] = field(default_factory=set)
    eku: list[str] = field(default_factory=list)


def _extensions(raws: list[der.TLV], index: int, out: _Extensions) -> Iterator[Violation]:
    """Each extension parsed on its own, so that a bad one is named: one cryptography cannot
    represent (an x400Address or ediPartyName GeneralName in any certificate of the chain) is
    not read around but refused, and so is an extension twice (RFC 5280 §4.2)."""
    seen: set[str] = set()
    for number, raw in enumerate(raws):
        try:
            oid, _ = der.read_extension_header(raw)
        except DERError as exc:
            yield _bad_extension(index, f"extension {number} is malformed: {exc}")
            continue
        label = f"extension {oid} ({EXTENSION_NAMES.get(oid, 'unknown')})"
        if oid in seen:
            yield _bad_extension(index, f"{label} occurs more than once")
            continue
        seen.add(oid)
        try:
            _collect(parse_extension(raw.raw).value, out)
        except _LAZY_ERRORS as exc:
            yield _bad_extension(index, f"{label} cannot be parsed: {exc}")


def _bad_extension(index: int, message: str) -> Violation:
    return Violation(
        code="issuance.extension_unparseable", field=FIELD, message=f"{position(index)}: {message}"
    )


def _collect(value: x509.ExtensionType, out: _Extensions) -> None:
    if isinstance(value, x509.SubjectAlternativeName):
        out.sans.extend(_general_name(name) for name in value)
    elif isinstance(value, x509.BasicConstraints):
        out.is_ca = value.ca
    elif isinstance(value, x509.KeyUsage):
        out.key_usage = {usage for attr, usage in KEY_USAGE_BITS if getattr(value, attr)}
        if value.key_agreement:
            out.key_usage |= {"encipher only"} if value.encipher_only else set()
            out.key_usage |= {"decipher only"} if value.decipher_only else set()
    elif isinstance(value, x509.ExtendedKeyUsage):
        out.eku = [oid.dotted_string for oid in value]


def _general_name(name: x509.GeneralName) -> tuple[str, str]:
    if isinstance(name, x509.DNSName):
        return "DNS", name.value.lower()
    if isinstance(name, x509.IPAddress):
        return "IP", str(name.value)
    if isinstance(name, x509.UniformResourceIdentifier):
        return "URI", name.value
    if isinstance(name, x509.RFC822Name):
        return "email", name.value
    if isinstance(name, x509.OtherName):
        return "otherName", name.type_id.dotted_string
    if isinstance(name, x509.DirectoryName):
        return "directoryName", name.value.rfc4514_string()
    if isinstance(name, x509.RegisteredID):
        return "registeredID", name.value.dotted_string
    return type(name).__name__, ""  # pragma: no cover - cryptography has no other kinds today
