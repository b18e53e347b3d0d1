"""Minimal DER reader and writer for the CSR and certificate pieces cryptography will not show us.

Owns TLV framing, OID and string decoding; knows nothing about policy. Readers raise
`DERError` (a ValueError) on malformed input and nothing else, whatever the bytes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from webhook.errors import DERError

BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
UTF8_STRING = 0x0C
NUMERIC_STRING = 0x12
PRINTABLE_STRING = 0x13
T61_STRING = 0x14
IA5_STRING = 0x16
VISIBLE_STRING = 0x1A
UNIVERSAL_STRING = 0x1C
BMP_STRING = 0x1E
SEQUENCE = 0x30
SET = 0x31
CONTEXT_0 = 0xA0

# The ASN.1 string types a name value can carry, by tag.
STRING_TYPE_NAMES = {
    UTF8_STRING: "UTF8String",
    NUMERIC_STRING: "NumericString",
    PRINTABLE_STRING: "PrintableString",
    T61_STRING: "TeletexString",
    0x15: "VideotexString",
    IA5_STRING: "IA5String",
    0x19: "GraphicString",
    VISIBLE_STRING: "VisibleString",
    0x1B: "GeneralString",
    UNIVERSAL_STRING: "UniversalString",
    BMP_STRING: "BMPString",
}
# The string types Go's crypto/x509 reads as text, with the text it reads (encoding/asn1,
# which x509.ParseCertificateRequest reads the subject with). Go leaves a VisibleString,
# UniversalString or any other type out of pkix.Name (the attribute vanishes: a commonName so
# encoded is issued as no commonName at all), and TeletexString has no single reading: Go
# releases differ (raw bytes, later Latin-1), as other parsers do.
GO_READ_STRING_TYPES = frozenset(
    {UTF8_STRING, NUMERIC_STRING, PRINTABLE_STRING, IA5_STRING, BMP_STRING}
)
# encoding/asn1's PrintableString alphabet: X.680's, plus '*' and '&' ("existing practice").
_PRINTABLE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&"
)
_NUMERIC = frozenset(b"0123456789 ")

# Anything longer than this cannot fit in a 64 KiB request; also stops huge-length games.
_MAX_LENGTH_OCTETS = 4
# 9 octets carry 63 bits: every arc Go's int-based OID readers accept, and then some.
_MAX_ARC_OCTETS = 9


@dataclass(frozen=True, slots=True)
class TLV:
    tag: int
    content: bytes
    raw: bytes

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


def read_tlv(data: bytes, offset: int = 0) -> tuple[TLV, int]:
    """Read one TLV at `offset`; return it and the offset just past it."""
    if offset + 2 > len(data):
        raise DERError("truncated TLV header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DERError("high tag numbers are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise DERError("indefinite length is not DER")
        if count > _MAX_LENGTH_OCTETS or pos + count > len(data):
            raise DERError("bad length octets")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DERError("non-minimal length encoding")
        pos += count
    end = pos + length
    if end > len(data):
        raise DERError("content runs past the end of the input")
    return TLV(tag, bytes(data[pos:end]), bytes(data[offset:end])), end


def read_single(data: bytes) -> TLV:
    """Read exactly one TLV spanning all of `data` (trailing bytes are an error)."""
    tlv, end = read_tlv(data)
    if end != len(data):
        raise DERError(f"{len(data) - end} trailing bytes after the DER value")
    return tlv


def children(tlv: TLV, tag: int | None = None) -> list[TLV]:
    """The TLVs inside a constructed value, optionally requiring its tag."""
    if tag is not None and tlv.tag != tag:
        raise DERError(f"expected tag 0x{tag:02x}, found 0x{tlv.tag:02x}")
    if not tlv.constructed:
        raise DERError(f"tag 0x{tlv.tag:02x} is not constructed")
    items = []
    pos = 0
    while pos < len(tlv.content):
        item, pos = read_tlv(tlv.content, pos)
        items.append(item)
    return items


def fields(tlv: TLV, tag: int, count: int | range) -> list[TLV]:
    """The children of `tlv`, which must have `tag` and `count` of them."""
    items = children(tlv, tag)
    allowed = count if isinstance(count, range) else range(count, count + 1)
    if len(items) not in allowed:
        expected = f"{allowed.start} to {allowed.stop - 1}" if len(allowed) > 1 else allowed.start
        raise DERError(f"expected {expected} fields, found {len(items)}")
    return items


def decode_oid(tlv: TLV) -> str:
    """Dotted string of an OBJECT IDENTIFIER."""
    content = tlv.content
    if tlv.tag != OID or not content or content[-1] & 0x80:
        raise DERError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    octets = 0
    for i, octet in enumerate(content):
        if value == 0 and octet == 0x80 and (i == 0 or not content[i - 1] & 0x80):
            raise DERError("non-minimal OBJECT IDENTIFIER arc")
        octets += 1
        if octets > _MAX_ARC_OCTETS:
            # Go reads arcs into an int and refuses larger ones; a huge arc would also cost
            # quadratic time to print (and Python refuses past 4300 digits).
            raise DERError(f"OBJECT IDENTIFIER arc longer than {_MAX_ARC_OCTETS} octets")
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
            octets = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


def decode_string(tlv: TLV) -> str | None:
    """Text of a string type Go reads (GO_READ_STRING_TYPES), exactly as Go reads it, or
    DERError where Go refuses the bytes; None when the tag is not one of those types."""
    content = tlv.content
    if tlv.tag == UTF8_STRING:
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            raise DERError("invalid UTF-8 in a UTF8String") from None
    if tlv.tag in (PRINTABLE_STRING, NUMERIC_STRING, IA5_STRING):
        alphabet = {PRINTABLE_STRING: _PRINTABLE, NUMERIC_STRING: _NUMERIC}.get(tlv.tag)
        for octet in content:
            if octet >= 0x80 or (alphabet is not None and octet not in alphabet):
                name = STRING_TYPE_NAMES[tlv.tag]
                raise DERError(f"byte 0x{octet:02x} is outside the {name} alphabet")
        return content.decode("ascii")
    if tlv.tag == BMP_STRING:
        return _decode_bmp(content)
    return None


def _decode_bmp(content: bytes) -> str:
    """UCS-2 as Go reads it, except that what Go and its earlier releases read differently
    (a trailing 0x0000 terminator Go strips, surrogates, noncharacters) is refused."""
    if len(content) % 2:
        raise DERError("a BMPString of an odd number of bytes")
    units = [int.from_bytes(content[i : i + 2], "big") for i in range(0, len(content), 2)]
    for unit in units:
        if 0xD800 <= unit <= 0xDFFF or 0xFDD0 <= unit <= 0xFDEF or unit in (0xFFFE, 0xFFFF):
            raise DERError(f"code unit U+{unit:04X} is not a BMP character")
    if units and units[-1] == 0:
        raise DERError("a BMPString ending in a NUL terminator")
    return "".join(map(chr, units))


def decode_any_string(tlv: TLV) -> str:
    """Best-effort text of any string type, for messages only (never for a decision)."""
    codec = {T61_STRING: "latin-1", UNIVERSAL_STRING: "utf-32-be", BMP_STRING: "utf-16-be"}
    return tlv.content.decode(codec.get(tlv.tag, "utf-8"), errors="replace")


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def encode_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def encode_oid(dotted: str) -> bytes:
    """DER OBJECT IDENTIFIER for a dotted string such as one from `ObjectIdentifier`."""
    arcs = [int(part) for part in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body.extend(reversed(chunk))
    return encode_tlv(OID, bytes(body))


# ---- PKCS#10 (RFC 2986) framing -----------------------------------------------------------------


def read_request(data: bytes) -> tuple[TLV, list[TLV]]:
    """(subject Name, Attribute TLVs) of a CertificationRequest spanning all of `data`."""
    info = fields(read_single(data), SEQUENCE, 3)[0]
    _version, subject, _spki, attributes = fields(info, SEQUENCE, 4)
    return subject, children(attributes, CONTEXT_0)


def read_key_algorithm(data: bytes) -> tuple[str, bytes | None]:
    """(algorithm OID, DER of its parameters or None) of a CertificationRequest's public key."""
    info = fields(read_single(data), SEQUENCE, 3)[0]
    spki = fields(info, SEQUENCE, 4)[2]
    algorithm = fields(fields(spki, SEQUENCE, 2)[0], SEQUENCE, range(1, 3))
    return decode_oid(algorithm[0]), algorithm[1].raw if len(algorithm) == 2 else None


def read_signature_algorithm(data: bytes) -> tuple[str, bytes | None]:
    """(algorithm OID, DER of its parameters or None) of a CertificationRequest's signature."""
    algorithm = fields(fields(read_single(data), SEQUENCE, 3)[1], SEQUENCE, range(1, 3))
    return decode_oid(algorithm[0]), algorithm[1].raw if len(algorithm) == 2 else None


def read_pss_parameters(params: bytes) -> tuple[str, str, str, int, int]:
    """(hash OID, mask generation OID, its hash OID, salt length, trailer field) of
    RSASSA-PSS-params (RFC 4055 §3.1), with the DEFAULTs (SHA-1, MGF1-SHA-1, 20, 1) filled in."""
    sha1, mgf1 = "1.3.14.3.2.26", "1.2.840.113549.1.1.8"
    hash_oid, mgf_oid, mgf_hash_oid, salt, trailer = sha1, mgf1, sha1, 20, 1
    for part in children(read_single(params), SEQUENCE):
        (inner,) = children(part)
        if part.tag == 0xA0:
            hash_oid = decode_oid(fields(inner, SEQUENCE, range(1, 3))[0])
        elif part.tag == 0xA1:
            mgf = fields(inner, SEQUENCE, 2)
            mgf_oid = decode_oid(mgf[0])
            mgf_hash_oid = decode_oid(fields(mgf[1], SEQUENCE, range(1, 3))[0])
        elif part.tag in (0xA2, 0xA3) and inner.tag == INTEGER and len(inner.content) <= 4:
            number = int.from_bytes(inner.content, "big", signed=True)
            salt, trailer = (number, trailer) if part.tag == 0xA2 else (salt, number)
        else:
            raise DERError(f"unexpected field 0x{part.tag:02x} in RSASSA-PSS parameters")
    return hash_oid, mgf_oid, mgf_hash_oid, salt, trailer


def name_attributes(name: TLV) -> Iterator[tuple[int, str, TLV]]:
    """(RDN index, attribute OID, value TLV) for every attribute of every RDN, in order."""
    for rdn_index, rdn in enumerate(children(name, SEQUENCE)):
        for attribute in children(rdn, SET):
            oid, value = fields(attribute, SEQUENCE, 2)
            yield rdn_index, decode_oid(oid), value


def read_attribute(tlv: TLV) -> tuple[str, list[TLV]]:
    """(OID, values) of an Attribute."""
    oid, values = fields(tlv, SEQUENCE, 2)
    return decode_oid(oid), children(values, SET)


def read_extension_header(tlv: TLV) -> tuple[str, bool]:
    """(extnID, critical) of an Extension; any non-zero BOOLEAN counts as critical."""
    oid, critical, _value = read_extension(tlv)
    return oid, critical


def read_extension(tlv: TLV) -> tuple[str, bool, bytes]:
    """(extnID, critical, extnValue content) of an Extension."""
    parts = fields(tlv, SEQUENCE, range(2, 4))
    critical = len(parts) == 3 and parts[1].tag == BOOLEAN and parts[1].content != b"\x00"
    return decode_oid(parts[0]), critical, parts[-1].content


def without_general_names(extension: TLV, tags: Collection[int]) -> tuple[bytes, list[int]]:
    """A GeneralNames-valued Extension re-encoded without the entries whose tag is in `tags`,
    and the tags it dropped."""
    *head, value = fields(extension, SEQUENCE, range(2, 4))
    names = children(read_single(value.content), SEQUENCE)
    kept = b"".join(n.raw for n in names if n.tag not in tags)
    new_value = encode_tlv(OCTET_STRING, encode_tlv(SEQUENCE, kept))
    body = b"".join(h.raw for h in head) + new_value
    return encode_tlv(SEQUENCE, body), [n.tag for n in names if n.tag in tags]


def single_extension_request(extension: bytes, *, request_oid: str, ed25519_oid: str) -> bytes:
    """An unsigned CSR carrying only `extension` (empty subject, an all-zero Ed25519 key),
    so a parser that reads all extensions at once can be made to read just this one."""
    algorithm = encode_tlv(SEQUENCE, encode_oid(ed25519_oid))
    spki = encode_tlv(SEQUENCE, algorithm + encode_tlv(BIT_STRING, bytes(33)))
    request = encode_oid(request_oid) + encode_tlv(SET, encode_tlv(SEQUENCE, extension))
    info = (
        encode_tlv(INTEGER, b"\x00")
        + encode_tlv(SEQUENCE, b"")
        + spki
        + encode_tlv(CONTEXT_0, encode_tlv(SEQUENCE, request))
    )
    signature = encode_tlv(BIT_STRING, b"\x00")
    return encode_tlv(SEQUENCE, encode_tlv(SEQUENCE, info) + algorithm + signature)


# ---- X.509 certificate (RFC 5280 §4.1) framing --------------------------------------------------

CONTEXT_3 = 0xA3
_TBS_HEAD = 6  # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo


@dataclass(frozen=True, slots=True)
class CertificateParts:
    serial: TLV
    subject: TLV
    extensions: list[TLV]


def read_certificate(data: bytes) -> CertificateParts:
    """Serial number, subject Name and Extension TLVs of a Certificate spanning all of `data`."""
    tbs = fields(read_single(data), SEQUENCE, 3)[0]
    items = children(tbs, SEQUENCE)
    if items and items[0].tag == CONTEXT_0:
        items = items[1:]  # [0] EXPLICIT version
    if len(items) < _TBS_HEAD:
        raise DERError(f"TBSCertificate has {len(items)} fields; expected at least {_TBS_HEAD}")
    extensions: list[TLV] = []
    for item in items[_TBS_HEAD:]:
        if item.tag == CONTEXT_3:
            extensions = children(read_single(item.content), SEQUENCE)
    return CertificateParts(serial=items[0], subject=items[4], extensions=extensions)
