"""parse_csr: untrusted `spec.request` bytes -> ParsedCSR, or CSRError when nothing can be said.

Owns PEM/DER interpretation and proof of possession; it judges nothing else (checks do).
A common CSR in a plain PEM block is read by the fast paths (webhook.x509.pem.sole_block_body,
webhook.x509.common_csr); everything else, and the reference they are tested equal to
(parse_csr_exhaustive), is the exhaustive reader here, which names every problem.
Fatal `CSRError` codes (field `spec.request`):
  csr.too_large, csr.pem_missing, csr.pem_multiple, csr.pem_type, csr.pem_headers,
  csr.der_invalid, csr.public_key_unsupported, csr.signature_unsupported, csr.signature_invalid
Non-fatal `ParsedCSR.problems` codes:
  csr.subject_value_not_string, csr.subject_string_type, csr.subject_value_undecodable,
  csr.attribute_invalid, csr.extension_unparseable
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import (
    ExtensionOID,
    PublicKeyAlgorithmOID,
)

from webhook.decision import Violation
from webhook.errors import CSRError, DERError
from webhook.text import show
from webhook.x509 import algorithms, der
from webhook.x509.common_csr import read_common
from webhook.x509.oids import (
    CURVE_NAMES,
    EXTENSION_NAMES,
    EXTENSION_REQUEST_OID,
    KEY_USAGE_BITS,
    LEGACY_SIGNATURES,
    MS_EXTENSION_REQUEST_OID,
    SIGNATURE_NAMES,
    SUBJECT_NAMES,
)
from webhook.x509.parsed import ExtensionInfo, ParsedCSR, PublicKeyInfo, SubjectAttribute
from webhook.x509.pem import decode_pem_blocks, sole_block_body

__all__ = [
    "EXTENSION_REQUEST_OID",
    "MAX_REQUEST_BYTES",
    "MS_EXTENSION_REQUEST_OID",
    "PEM_TYPE",
    "ExtensionInfo",
    "ParsedCSR",
    "PublicKeyInfo",
    "SubjectAttribute",
    "key_info",
    "parse_csr",
    "parse_csr_exhaustive",
    "parse_extension",
]

MAX_REQUEST_BYTES = 64 * 1024
PEM_TYPE = "CERTIFICATE REQUEST"
FIELD = "spec.request"


_GENERAL_NAME_KINDS = {0xA3: "x400Address", 0xA5: "ediPartyName"}
# What cryptography raises while lazily decoding parts of a CSR. UserWarning too: it warns on
# some names (a directoryName CN over 64 characters), and under -W error that warning is raised.
# KeyError: cryptography 44 to 49 raise it for a name attribute value whose tag no string type
# has (50 raises ValueError); pyproject.toml allows them.
_LAZY_ERRORS = (
    ValueError,
    KeyError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
    UserWarning,
)


def _pem_body(request_pem: bytes, *, fast: bool) -> bytes:
    if len(request_pem) > MAX_REQUEST_BYTES:
        raise CSRError(
            "csr.too_large", f"{len(request_pem)} bytes; at most {MAX_REQUEST_BYTES} allowed"
        )
    if fast and (body := sole_block_body(request_pem, PEM_TYPE)) is not None:
        return body
    blocks = decode_pem_blocks(request_pem)
    if not blocks:
        raise CSRError("csr.pem_missing", f"no well-formed {PEM_TYPE} PEM block found")
    if len(blocks) > 1:
        found = ", ".join(repr(b.type) for b in blocks)
        raise CSRError("csr.pem_multiple", f"{len(blocks)} PEM blocks ({found}); expected one")
    if request_pem.count(b"-----BEGIN") > 1:
        # Go's pem.Decode (and so the API server) skips a malformed block; a signer with a
        # more lenient decoder might read that one instead of the block we checked.
        raise CSRError(
            "csr.pem_multiple",
            "a malformed PEM block besides the request; expected exactly one block",
        )
    block = blocks[0]
    if block.type != PEM_TYPE:
        raise CSRError("csr.pem_type", f"PEM block type is {block.type!r}; expected {PEM_TYPE!r}")
    if block.headers:
        keys = ", ".join(repr(k) for k, _ in block.headers)
        raise CSRError("csr.pem_headers", f"PEM headers ({keys}) are not allowed")
    return block.body


def key_info(key: object) -> PublicKeyInfo:
    """What kind of key this is, for the key rules."""
    if isinstance(key, rsa.RSAPublicKey):
        return PublicKeyInfo(type="rsa", bits=key.key_size, exponent=key.public_numbers().e)
    if isinstance(key, ec.EllipticCurvePublicKey):
        name = key.curve.name
        return PublicKeyInfo(type="ecdsa", bits=key.key_size, curve=CURVE_NAMES.get(name, name))
    if isinstance(key, ed25519.Ed25519PublicKey):
        return PublicKeyInfo(type="ed25519")
    if isinstance(key, ed448.Ed448PublicKey):
        return PublicKeyInfo(type="ed448")
    if isinstance(key, dsa.DSAPublicKey):
        return PublicKeyInfo(type="dsa", bits=key.key_size)
    return PublicKeyInfo(type="other")


def _check_algorithm_parameters(body: bytes, key: object) -> None:
    """The key and signature AlgorithmIdentifiers as Go's crypto/x509 reads them, or CSRError:
    the API server refuses a request Go cannot read or verify."""
    try:
        key_problem = algorithms.key_parameters_problem(body, isinstance(key, rsa.RSAPublicKey))
        signature_problem = algorithms.signature_parameters_problem(body)
    except DERError as exc:
        message = f"a malformed key or signature algorithm: {exc}"
        raise CSRError("csr.der_invalid", message) from exc
    if key_problem:
        raise CSRError("csr.public_key_unsupported", key_problem)
    if signature_problem:
        raise CSRError("csr.signature_unsupported", signature_problem)


def _verify(csr: x509.CertificateSigningRequest, key: object, valid: bool | None) -> None:
    """Proof of possession, or CSRError; `valid` is is_signature_valid if already known."""
    try:
        if csr.is_signature_valid if valid is None else valid:
            return
        oid = csr.signature_algorithm_oid
        expected_key = LEGACY_SIGNATURES.get(oid)
        hash_alg = csr.signature_hash_algorithm
        if expected_key is None or hash_alg is None or not isinstance(key, expected_key):
            raise CSRError("csr.signature_invalid", "the signature does not verify")
        signature, tbs = csr.signature, csr.tbs_certrequest_bytes
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, tbs, padding.PKCS1v15(), hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, tbs, ec.ECDSA(hash_alg))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, tbs, hash_alg)
    except UnsupportedAlgorithm as exc:
        raise CSRError("csr.signature_unsupported", f"cannot verify the signature: {exc}") from exc
    except (InvalidSignature, ValueError) as exc:
        raise CSRError("csr.signature_invalid", "the signature does not verify") from exc


def _signature_names(csr: x509.CertificateSigningRequest) -> tuple[str, str | None]:
    oid = csr.signature_algorithm_oid
    try:
        hash_alg = csr.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        hash_alg = None
    name = SIGNATURE_NAMES.get(oid, oid.dotted_string)
    return name, hash_alg.name if isinstance(hash_alg, hashes.HashAlgorithm) else None


def _problem(code: str, path: str, message: str) -> Violation:
    return Violation(code=code, field=f"{FIELD}.{path}", message=message)


def _subject(name: der.TLV, problems: list[Violation]) -> tuple[SubjectAttribute, ...]:
    """All attributes of all RDNs in order. Read from DER rather than `csr.subject`:
    cryptography warns while parsing (a CN over 64 characters, a country code not two long) and
    rejects a repeated attribute in one RDN, and we must report those, not trip over them.
    A value is kept only when Go's crypto/x509, which the API server and the signer use, reads
    the same text from it (der.GO_READ_STRING_TYPES); any other is a problem and left out."""
    result = []
    for rdn_index, oid, value_tlv in der.name_attributes(name):
        key = SUBJECT_NAMES.get(oid)
        where = f"subject attribute {key or oid} (RDN {rdn_index})"
        type_name = der.STRING_TYPE_NAMES.get(value_tlv.tag)
        if type_name is not None and value_tlv.tag not in der.GO_READ_STRING_TYPES:
            code = "csr.subject_string_type"
            reason = (
                "Go releases read differently (raw bytes or Latin-1)"
                if value_tlv.tag == der.T61_STRING
                else "Go's crypto/x509 (the API server's and the signer's parser) skips, "
                "so the certificate would be issued without it"
            )
            message = (
                f"{where} {show(der.decode_any_string(value_tlv))} is a {type_name}, which "
                f"{reason}; use UTF8String or PrintableString"
            )
            problems.append(_problem(code, f"subject.{key or oid}", message))
            continue
        try:
            value = der.decode_string(value_tlv)
        except DERError as exc:
            code = "csr.subject_value_undecodable"
            message = f"{where} is not a valid {type_name}: {exc}"
        else:
            if value is not None:
                result.append(SubjectAttribute(oid=oid, name=key, value=value, rdn_index=rdn_index))
                continue
            code = "csr.subject_value_not_string"
            message = f"{where} has ASN.1 tag 0x{value_tlv.tag:02x}; expected a string type"
        problems.append(_problem(code, f"subject.{key or oid}", message))
    return tuple(result)


def _raw_extensions(
    attributes: list[der.TLV], problems: list[Violation]
) -> tuple[list[str], list[der.TLV], bool]:
    """(OIDs of attributes other than extensionRequest, Extension TLVs of every value of every
    extension-request attribute, whether cryptography may read them all at once). Reading them
    all means a signer that reads another one than cryptography does (which takes the first
    only) cannot be handed an unchecked extension. All at once only if every extension-request
    attribute has one value: cryptography 43 panics at one with none (PanicException)."""
    attribute_oids: list[str] = []
    extensions: list[der.TLV] = []
    requests = 0
    in_bulk = True
    for index, attribute in enumerate(attributes):
        path = f"attributes[{index}]"
        try:
            oid, values = der.read_attribute(attribute)
        except DERError as exc:
            problems.append(_problem("csr.attribute_invalid", path, f"malformed attribute: {exc}"))
            continue
        if oid == EXTENSION_REQUEST_OID:
            requests += 1
            if requests > 1 or len(values) != 1:
                message = "extensionRequest must occur once, with exactly one value"
                problems.append(_problem("csr.attribute_invalid", path, message))
        else:
            attribute_oids.append(oid)
            if oid != MS_EXTENSION_REQUEST_OID:
                continue
        in_bulk = in_bulk and len(values) == 1
        for value in values:
            try:
                extensions.extend(der.children(value, der.SEQUENCE))
            except DERError as exc:
                message = f"extension request {oid} is malformed: {exc}"
                problems.append(_problem("csr.attribute_invalid", path, message))
    return attribute_oids, extensions, in_bulk


def parse_extension(raw: bytes) -> x509.Extension[x509.ExtensionType]:
    """One extension (its DER), parsed by cryptography alone inside a minimal unsigned CSR:
    cryptography parses a CSR's or a certificate's extensions all at once and fails on the
    first bad or duplicate one without saying which, and we must name each. Raises what
    cryptography raises for a bad extension."""
    carrier = der.single_extension_request(
        raw,
        request_oid=EXTENSION_REQUEST_OID,
        ed25519_oid=PublicKeyAlgorithmOID.ED25519.dotted_string,
    )
    extension: x509.Extension[x509.ExtensionType] = next(
        iter(x509.load_der_x509_csr(carrier).extensions)
    )
    return extension


@dataclass(slots=True)
class _Collected:
    dns: list[str]
    ips: list[str]
    uris: list[str]
    emails: list[str]
    others: list[str]
    key_usage: set[str] | None = None
    eku: list[str] | None = None
    ca: bool | None = None


def _collect(value: x509.ExtensionType, out: _Collected) -> None:
    if isinstance(value, x509.SubjectAlternativeName):
        for general_name in value:
            if isinstance(general_name, x509.DNSName):
                out.dns.append(general_name.value)
            elif isinstance(general_name, x509.IPAddress):
                if isinstance(general_name.value, ipaddress.IPv4Address | ipaddress.IPv6Address):
                    out.ips.append(str(general_name.value))
                else:  # 8 or 32 octets: cryptography reads a network, Go refuses the CSR
                    out.others.append(f"iPAddress network:{general_name.value}")
            elif isinstance(general_name, x509.UniformResourceIdentifier):
                out.uris.append(general_name.value)
            elif isinstance(general_name, x509.RFC822Name):
                out.emails.append(general_name.value)
            elif isinstance(general_name, x509.OtherName):
                out.others.append(f"otherName:{general_name.type_id.dotted_string}")
            elif isinstance(general_name, x509.DirectoryName):
                out.others.append(f"directoryName:{general_name.value.rfc4514_string()}")
            elif isinstance(general_name, x509.RegisteredID):
                out.others.append(f"registeredID:{general_name.value.dotted_string}")
            else:  # pragma: no cover - cryptography has no other GeneralName kinds today
                out.others.append(type(general_name).__name__)
    elif isinstance(value, x509.KeyUsage):
        usages = {usage for attr, usage in KEY_USAGE_BITS if getattr(value, attr)}
        if value.key_agreement:
            usages |= {"encipher only"} if value.encipher_only else set()
            usages |= {"decipher only"} if value.decipher_only else set()
        out.key_usage = (out.key_usage or set()) | usages
    elif isinstance(value, x509.ExtendedKeyUsage):
        out.eku = [*(out.eku or []), *(oid.dotted_string for oid in value)]
    elif isinstance(value, x509.BasicConstraints):
        out.ca = bool(out.ca) or value.ca


def _bulk_extensions(
    csr: x509.CertificateSigningRequest | None, headers: list[tuple[str, bool] | None]
) -> dict[str, x509.Extension[x509.ExtensionType]]:
    """cryptography's own one-pass parse (None: it may not be asked), used only when it saw
    exactly the extensions we read ourselves (no duplicates, no second request attribute);
    else {} and each extension is parsed on its own, which is slower but names the bad one."""
    if csr is None or None in headers or len({h[0] for h in headers if h}) != len(headers):
        return {}
    try:
        parsed = {e.oid.dotted_string: e for e in csr.extensions}
    except _LAZY_ERRORS:
        return {}
    if {(oid, e.critical) for oid, e in parsed.items()} != set(headers):
        return {}
    return parsed


def _extensions(
    raws: list[der.TLV],
    out: _Collected,
    problems: list[Violation],
    csr: x509.CertificateSigningRequest | None,
) -> Iterator[ExtensionInfo]:
    headers: list[tuple[str, bool] | None] = []
    for raw in raws:
        try:
            headers.append(der.read_extension_header(raw))
        except DERError:
            headers.append(None)
    bulk = _bulk_extensions(csr, headers)
    for index, raw in enumerate(raws):
        path = f"extensions[{index}]"
        try:
            oid, critical, value = der.read_extension(raw)
        except DERError as exc:
            message = f"extension {index} is malformed: {exc}"
            problems.append(_problem("csr.extension_unparseable", path, message))
            continue
        name = EXTENSION_NAMES.get(oid, "unknown")
        yield ExtensionInfo(oid=oid, critical=critical, name=name, value=value)
        try:
            try:
                extension = bulk.get(oid) or parse_extension(raw.raw)
            except x509.UnsupportedGeneralNameType:
                if oid != ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string:
                    raise
                # Keep reading the names cryptography can represent; record the others.
                cleaned, dropped = der.without_general_names(raw, _GENERAL_NAME_KINDS)
                out.others.extend(_GENERAL_NAME_KINDS[tag] for tag in dropped)
                extension = parse_extension(cleaned)
            _collect(extension.value, out)
        except _LAZY_ERRORS as exc:
            message = f"extension {oid} ({name}) cannot be parsed: {exc}"
            problems.append(_problem("csr.extension_unparseable", path, message))


def parse_csr(request_pem: bytes) -> ParsedCSR:
    """Interpret `spec.request`; raise CSRError (and nothing else) when that is impossible."""
    return _parse(request_pem, fast=True)


def parse_csr_exhaustive(request_pem: bytes) -> ParsedCSR:
    """parse_csr without its fast paths (webhook.x509.pem.sole_block_body,
    webhook.x509.common_csr): the reference they are tested equal to."""
    return _parse(request_pem, fast=False)


def _parse(request_pem: bytes, *, fast: bool) -> ParsedCSR:
    body = _pem_body(request_pem, fast=fast)
    try:
        csr = x509.load_der_x509_csr(body)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CSRError("csr.der_invalid", f"not a DER CertificationRequest: {exc}") from exc
    valid = None
    if fast and (common := read_common(body)) is not None:
        try:
            valid = csr.is_signature_valid
        except Exception:  # whatever it is, the exhaustive reader meets it again and says so
            valid = None
        if valid:
            return common
    return _exhaustive(body, csr, valid)


def _exhaustive(body: bytes, csr: x509.CertificateSigningRequest, valid: bool | None) -> ParsedCSR:
    """Everything parse_csr can say about any CSR cryptography loads, each problem named."""
    try:
        subject, attribute_list = der.read_request(body)
    except ValueError as exc:
        raise CSRError("csr.der_invalid", f"not a DER CertificationRequest: {exc}") from exc
    try:
        key = csr.public_key()
        public_key_der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise CSRError("csr.public_key_unsupported", f"unsupported public key: {exc}") from exc
    _verify(csr, key, valid)
    _check_algorithm_parameters(body, key)
    signature_algorithm, signature_hash = _signature_names(csr)

    problems: list[Violation] = []
    try:
        subject_attributes = _subject(subject, problems)
    except DERError as exc:
        raise CSRError("csr.der_invalid", f"the subject is malformed: {exc}") from exc
    attribute_oids, raw_extensions, in_bulk = _raw_extensions(attribute_list, problems)
    collected = _Collected(dns=[], ips=[], uris=[], emails=[], others=[])
    bulk_csr = csr if in_bulk else None
    extensions = tuple(_extensions(raw_extensions, collected, problems, bulk_csr))
    return ParsedCSR(
        der=body,
        public_key_der=public_key_der,
        key=key_info(key),
        signature_algorithm=signature_algorithm,
        signature_hash=signature_hash,
        subject=subject_attributes,
        dns_names=tuple(collected.dns),
        ip_addresses=tuple(collected.ips),
        uris=tuple(collected.uris),
        email_addresses=tuple(collected.emails),
        other_names=tuple(collected.others),
        extensions=extensions,
        key_usage=None if collected.key_usage is None else frozenset(collected.key_usage),
        extended_key_usage=None if collected.eku is None else tuple(collected.eku),
        basic_constraints_ca=collected.ca,
        attribute_oids=tuple(attribute_oids),
        problems=tuple(problems),
    )
