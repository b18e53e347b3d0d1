"""The fast path of parse_csr: the common, well-formed CSR read in one pass over its DER.

`read_common(der)` returns the ParsedCSR the exhaustive reader (webhook.x509.csr) would
return, or None the moment anything is unusual, and the caller then runs that reader. Common
means: a P-256/P-384/P-521 key (uncompressed point) or an RSA key (NULL parameters); an ECDSA
or RSA PKCS#1 v1.5 signature with SHA-256/384/512; subject attributes of the named types, as
UTF8String or PrintableString; no attribute but one extensionRequest of distinct
subjectAltName (DNS, IP, URI, email), keyUsage, extendedKeyUsage (named usages) and
basicConstraints (no path length) extensions, each as strictly encoded as cryptography and Go
require. Reads indices into the DER and builds no TLV objects. The public key DER is the
request's own SubjectPublicKeyInfo, which is what cryptography writes back for these keys
(the encoding is canonical: minimal lengths and integers). It proves nothing about the
signature: the caller accepts the result only once the signature verifies.
tests/test_parse_paths.py holds it equal to the exhaustive reader.
"""

from __future__ import annotations

import ipaddress
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from webhook.x509 import der
from webhook.x509.oids import (
    CURVE_NAMES,
    EKU_USAGE_NAMES,
    EXTENSION_NAMES,
    EXTENSION_REQUEST_OID,
    KEY_USAGE_BITS,
    SIGNATURE_NAMES,
    SUBJECT_NAMES,
)
from webhook.x509.parsed import ExtensionInfo, ParsedCSR, PublicKeyInfo, SubjectAttribute, builder

_VERSION_1 = b"\x02\x01\x00"
_CRITICAL = b"\x01\x01\xff"  # BOOLEAN TRUE; DER has no other encoding of it
_PRINTABLE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&"


# Each takes every field positionally, in the order the dataclass declares them.
_parsed_csr = builder(ParsedCSR)
_subject_attribute = builder(SubjectAttribute)
_extension_info = builder(ExtensionInfo)


class _UncommonError(Exception):
    """Not the common case: let the exhaustive reader say what it is."""


# Tables keyed on a whole OBJECT IDENTIFIER TLV (tag, short length, content): a slice of the
# input is looked up as it is, and an encoding other than these simply is not found.
_SUBJECT_OIDS = {der.encode_oid(oid): (oid, name) for oid, name in SUBJECT_NAMES.items()}
_EKU_OIDS = {der.encode_oid(oid): oid for oid in EKU_USAGE_NAMES}
_EXTENSION_REQUEST = der.encode_oid(EXTENSION_REQUEST_OID)
_SAN, _KU, _EKU, _BC = (
    e.dotted_string
    for e in (
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
    )
)
_EXTENSION_OIDS = {der.encode_oid(oid): oid for oid in (_SAN, _KU, _EKU, _BC)}
_NULL = der.encode_tlv(0x05, b"")


# The signature AlgorithmIdentifier's DER -> (signature_algorithm, signature_hash).
_S = SignatureAlgorithmOID
_SIGNATURES = {
    der.encode_tlv(der.SEQUENCE, der.encode_oid(oid.dotted_string) + (_NULL if is_rsa else b"")): (
        SIGNATURE_NAMES[oid],
        hash_name,
    )
    for oid, hash_name, is_rsa in (
        (_S.ECDSA_WITH_SHA256, hashes.SHA256.name, False),
        (_S.ECDSA_WITH_SHA384, hashes.SHA384.name, False),
        (_S.ECDSA_WITH_SHA512, hashes.SHA512.name, False),
        (_S.RSA_WITH_SHA256, hashes.SHA256.name, True),
        (_S.RSA_WITH_SHA384, hashes.SHA384.name, True),
        (_S.RSA_WITH_SHA512, hashes.SHA512.name, True),
    )
}


def _ec_spki_head(curve_oid: str, coordinate_bytes: int) -> bytes:
    """A named-curve SubjectPublicKeyInfo up to and including the 0x04 of an uncompressed
    point; the point's 2 * coordinate_bytes follow."""
    algorithm = der.encode_oid("1.2.840.10045.2.1") + der.encode_oid(curve_oid)
    point = der.encode_tlv(der.BIT_STRING, bytes(2 + 2 * coordinate_bytes))
    spki = der.encode_tlv(der.SEQUENCE, der.encode_tlv(der.SEQUENCE, algorithm) + point)
    return spki[: len(spki) - 2 * coordinate_bytes - 1] + b"\x04"


# SubjectPublicKeyInfo head -> (its whole length, the key), for the EC keys of the fast path.
_EC_KEYS = {
    _ec_spki_head(oid, size): (
        len(_ec_spki_head(oid, size)) + 2 * size,
        PublicKeyInfo(type="ecdsa", bits=bits, curve=CURVE_NAMES[name]),
    )
    for oid, name, bits, size in (
        ("1.2.840.10045.3.1.7", "secp256r1", 256, 32),
        ("1.3.132.0.34", "secp384r1", 384, 48),
        ("1.3.132.0.35", "secp521r1", 521, 66),
    )
}
_RSA_ALGORITHM = der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.113549.1.1.1") + _NULL)


def _tlv(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """(content start, content end) of the DER value with `tag` at `pos`, inside `end`."""
    if pos + 2 > end or data[pos] != tag:
        raise _UncommonError
    length = data[pos + 1]
    pos += 2
    if length >= 0x80:
        count = length - 0x80
        if not 1 <= count <= 2 or pos + count > end:
            raise _UncommonError
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < (0x80 if count == 1 else 0x100):
            raise _UncommonError
        pos += count
    if pos + length > end:
        raise _UncommonError
    return pos, pos + length


class _Names:
    """What the extensions say, gathered while reading them."""

    __slots__ = ("ca", "dns", "eku", "emails", "ips", "key_usage", "uris")

    def __init__(self) -> None:
        self.dns: list[str] = []
        self.ips: list[str] = []
        self.uris: list[str] = []
        self.emails: list[str] = []
        self.key_usage: frozenset[str] | None = None
        self.eku: tuple[str, ...] | None = None
        self.ca: bool | None = None


def read_common(data: bytes) -> ParsedCSR | None:
    """The ParsedCSR of the CertificationRequest `data` if it is a common one, else None."""
    try:
        return _read(data)
    except (_UncommonError, IndexError, ValueError):  # ValueError: a UTF8String not UTF-8
        return None


def _read(data: bytes) -> ParsedCSR:
    start, end = _tlv(data, 0, len(data), der.SEQUENCE)
    info_start, info_end = _tlv(data, start, end, der.SEQUENCE)
    _, algorithm_end = _tlv(data, info_end, end, der.SEQUENCE)
    signature = _SIGNATURES.get(data[info_end:algorithm_end])
    if signature is None or _tlv(data, algorithm_end, end, der.BIT_STRING)[1] != end:
        raise _UncommonError
    if end != len(data):
        raise _UncommonError
    if data[info_start : info_start + 3] != _VERSION_1:
        raise _UncommonError
    subject_start, subject_end = _tlv(data, info_start + 3, info_end, der.SEQUENCE)
    spki_end = _tlv(data, subject_end, info_end, der.SEQUENCE)[1]
    attributes_start, attributes_end = _tlv(data, spki_end, info_end, der.CONTEXT_0)
    if attributes_end != info_end:
        raise _UncommonError
    subject = _subject(data, subject_start, subject_end)
    public_key_der = data[subject_end:spki_end]
    names = _Names()
    extensions = _extension_request(data, attributes_start, attributes_end, names)
    return _parsed_csr(
        data,  # der
        public_key_der,
        _key(public_key_der),
        signature[0],  # signature_algorithm
        signature[1],  # signature_hash
        subject,
        tuple(names.dns),
        tuple(names.ips),
        tuple(names.uris),
        tuple(names.emails),
        (),  # other_names
        extensions,
        names.key_usage,
        names.eku,  # extended_key_usage
        names.ca,  # basic_constraints_ca
        (),  # attribute_oids
        (),  # problems
    )


def _subject(data: bytes, pos: int, end: int) -> tuple[SubjectAttribute, ...]:
    """Single-valued RDNs of short values, each read inline: SET { SEQUENCE { OID, value } }."""
    result = []
    rdn_index = 0
    while pos < end:
        set_end = pos + 2 + data[pos + 1]
        oid_end = pos + 6 + data[pos + 5]
        known = _SUBJECT_OIDS.get(data[pos + 4 : oid_end])
        tag = data[oid_end]
        value_end = oid_end + 2 + data[oid_end + 1]
        if (
            data[pos] != der.SET
            or data[pos + 2] != der.SEQUENCE
            or data[pos + 3] + 4 != set_end - pos  # one attribute, and lengths under 0x80
            or known is None
            or value_end != set_end
            or set_end > end
            or (data[pos + 1] | data[pos + 3] | data[pos + 5] | data[oid_end + 1]) >= 0x80
        ):
            raise _UncommonError
        raw = data[oid_end + 2 : value_end]
        if tag == der.UTF8_STRING:
            value = raw.decode("utf-8")
        elif tag == der.PRINTABLE_STRING and not raw.translate(None, _PRINTABLE):
            value = raw.decode("ascii")
        else:
            raise _UncommonError
        result.append(
            _subject_attribute(known[0], known[1], value, rdn_index)  # oid, name, value, index
        )
        rdn_index += 1
        pos = set_end
    return tuple(result)


def _key(spki: bytes) -> PublicKeyInfo:
    for head, (length, info) in _EC_KEYS.items():
        if len(spki) == length and spki.startswith(head):
            return info
    start, end = _tlv(spki, 0, len(spki), der.SEQUENCE)
    if not spki.startswith(_RSA_ALGORITHM, start):
        raise _UncommonError
    bits_start, bits_end = _tlv(spki, start + len(_RSA_ALGORITHM), end, der.BIT_STRING)
    if bits_end != end or spki[bits_start : bits_start + 1] != b"\x00":
        raise _UncommonError
    key_start, key_end = _tlv(spki, bits_start + 1, end, der.SEQUENCE)
    modulus_start, modulus_end = _tlv(spki, key_start, key_end, der.INTEGER)
    exponent_start, exponent_end = _tlv(spki, modulus_end, key_end, der.INTEGER)
    if key_end != end or exponent_end != end:
        raise _UncommonError
    modulus = _positive(spki[modulus_start:modulus_end])
    exponent = _positive(spki[exponent_start:exponent_end])
    return PublicKeyInfo(type="rsa", bits=modulus.bit_length(), exponent=exponent)


def _positive(content: bytes) -> int:
    """A positive INTEGER in its one DER encoding."""
    if not content or content[0] >= 0x80 or (content[0] == 0 and content[1:2] < b"\x80"):
        raise _UncommonError
    return int.from_bytes(content, "big")


# keyUsage, extendedKeyUsage and basicConstraints repeat from request to request (a signer's
# clients ask for the same usages): each one read is kept by its whole DER, with what it set on
# _Names, and the next request with those very bytes shares the ExtensionInfo (immutable).
_SHARED_ATTRIBUTE = {_KU: "key_usage", _EKU: "eku", _BC: "ca"}
_SHARED: dict[bytes, tuple[ExtensionInfo, object]] = {}
_SHARED_MAX = 256


def _extension_request(data: bytes, pos: int, end: int, names: _Names) -> tuple[ExtensionInfo, ...]:
    if pos == end:
        return ()
    attribute, attribute_end = _tlv(data, pos, end, der.SEQUENCE)
    oid_end = attribute + len(_EXTENSION_REQUEST)
    if data[attribute:oid_end] != _EXTENSION_REQUEST or attribute_end != end:
        raise _UncommonError
    values, values_end = _tlv(data, oid_end, end, der.SET)
    item, item_end = _tlv(data, values, end, der.SEQUENCE)
    if not item_end == values_end == end or item == item_end:
        raise _UncommonError
    result = []
    seen = set()
    while item < end:
        extension, extension_end = _tlv(data, item, end, der.SEQUENCE)
        value_pos = extension + 2 + data[extension + 1]
        oid = _EXTENSION_OIDS.get(data[extension:value_pos])
        if oid in _SHARED_ATTRIBUTE and oid not in seen:
            whole = data[item:extension_end]
            if (shared := _SHARED.get(whole)) is not None:
                seen.add(oid)
                setattr(names, _SHARED_ATTRIBUTE[oid], shared[1])
                result.append(shared[0])
                item = extension_end
                continue
        critical = data[value_pos : value_pos + 3] == _CRITICAL
        if critical:
            value_pos += 3
        value_start = value_pos + 2
        value_end = value_start + data[value_pos + 1]
        if data[value_pos + 1] >= 0x80:
            value_start, value_end = _tlv(data, value_pos, extension_end, der.OCTET_STRING)
        elif data[value_pos] != der.OCTET_STRING:
            raise _UncommonError
        if oid is None or oid in seen or value_end != extension_end:
            raise _UncommonError
        seen.add(oid)
        value = data[value_start:value_end]
        _READERS[oid](value, names)
        info = _extension_info(oid, critical, EXTENSION_NAMES[oid], value)
        result.append(info)
        if oid in _SHARED_ATTRIBUTE:
            if len(_SHARED) >= _SHARED_MAX:
                _SHARED.clear()
            _SHARED[data[item:extension_end]] = (info, getattr(names, _SHARED_ATTRIBUTE[oid]))
        item = extension_end
    return tuple(result)


def _subject_alt_name(value: bytes, names: _Names) -> None:
    pos, end = _tlv(value, 0, len(value), der.SEQUENCE)
    if end != len(value) or pos == end:
        raise _UncommonError
    while pos < end:
        tag = value[pos]
        start = pos + 2
        stop = start + value[pos + 1]
        if value[pos + 1] >= 0x80:
            start, stop = _tlv(value, pos, end, tag)
        elif stop > end:
            raise _UncommonError
        raw = value[start:stop]
        if tag == 0x87 and len(raw) == 4:
            names.ips.append(f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}")
        elif tag == 0x87 and len(raw) == 16:
            names.ips.append(_ipv6(raw))
        elif not raw or not raw.isascii():  # an IA5String, of some text
            raise _UncommonError
        elif tag == 0x82:
            names.dns.append(raw.decode("ascii"))
        elif tag == 0x86:
            names.uris.append(raw.decode("ascii"))
        elif tag == 0x81:
            names.emails.append(raw.decode("ascii"))
        else:
            raise _UncommonError
        pos = stop


# Runs of zero groups, longest first: RFC 5952 shortens the longest (the first of equals).
_ZERO_RUNS = tuple(":0" * n + ":" for n in range(8, 1, -1))


def _ipv6(raw: bytes) -> str:
    """str(ipaddress.IPv6Address(raw)), without its cost: RFC 5952 text."""
    if not any(raw[:10]):
        # ::ffff:a.b.c.d and ::a.b.c.d: Python releases write these differently.
        return str(ipaddress.IPv6Address(raw))
    text = ":%x:%x:%x:%x:%x:%x:%x:%x:" % struct.unpack(">8H", raw)  # noqa: UP031
    for run in _ZERO_RUNS:
        at = text.find(run)
        if at >= 0:
            text = text[:at] + "::" + text[at + len(run) :]
            break
    start = 0 if text.startswith("::") else 1  # drop the colons added at either end
    stop = len(text) if text.endswith("::") else len(text) - 1
    return text[start:stop]


# keyUsage's first octet of named bits (digitalSignature .. cRLSign; encipherOnly, bit 7, is
# left to the exhaustive reader) -> the usages it names.
_KEY_USAGES = {
    bits: frozenset(usage for i, (_, usage) in enumerate(KEY_USAGE_BITS) if bits & (0x80 >> i))
    for bits in range(0, 0x100, 2)
}


def _key_usage(value: bytes, names: _Names) -> None:
    # A BIT STRING of that one octet, its unused bits zero as DER requires.
    if (
        len(value) != 4
        or value[:2] != b"\x03\x02"
        or value[2] > 7
        or value[3] & ((1 << value[2]) - 1)
    ):
        raise _UncommonError
    usages = _KEY_USAGES.get(value[3])
    if usages is None:
        raise _UncommonError
    names.key_usage = usages


def _extended_key_usage(value: bytes, names: _Names) -> None:
    pos, end = _tlv(value, 0, len(value), der.SEQUENCE)
    if end != len(value) or pos == end:
        raise _UncommonError
    usages = []
    while pos < end:
        stop = pos + 2 + value[pos + 1]
        usage = _EKU_OIDS.get(value[pos:stop])
        if usage is None or stop > end:
            raise _UncommonError
        usages.append(usage)
        pos = stop
    names.eku = tuple(usages)


_BASIC_CONSTRAINTS = {b"\x30\x00": False, b"\x30\x03\x01\x01\xff": True}


def _basic_constraints(value: bytes, names: _Names) -> None:
    ca = _BASIC_CONSTRAINTS.get(value)
    if ca is None:
        raise _UncommonError
    names.ca = ca


_READERS = {
    _SAN: _subject_alt_name,
    _KU: _key_usage,
    _EKU: _extended_key_usage,
    _BC: _basic_constraints,
}
