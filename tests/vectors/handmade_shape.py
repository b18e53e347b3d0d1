"""What a hand-made CSR is, less what make_handmade.py draws at random on every run: the PEM
framing line by line and every DER TLV, with the public key replaced by what it is (algorithm,
size, exponent or curve) and the signature by whether cryptography finds it valid.

Two files with the same shape differ only in their key and signature bytes. The DER is walked
by a few lines of its own, not by webhook.x509.der, and what does not parse is kept as bytes.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

SEQUENCE, BIT_STRING = 0x30, 0x03
BASE64_LINE = re.compile(r"[A-Za-z0-9+/=]+")


@dataclass(frozen=True)
class Tlv:
    tag: int
    raw: bytes
    content: bytes
    children: tuple[Tlv | bytes, ...] | None  # constructed: the TLVs inside, or the bytes left


def read_tlvs(data: bytes) -> tuple[Tlv | bytes, ...]:
    """The TLVs one after the other in `data`; from the first that does not parse, the rest of
    the bytes as they are."""
    items: list[Tlv | bytes] = []
    offset = 0
    while offset < len(data):
        bounds = _bounds(data, offset)
        if bounds is None:
            items.append(data[offset:])
            break
        start, end = bounds
        tag, content = data[offset], data[start:end]
        children = read_tlvs(content) if tag & 0x20 else None
        items.append(Tlv(tag, data[offset:end], content, children))
        offset = end
    return tuple(items)


def _bounds(data: bytes, offset: int) -> tuple[int, int] | None:
    """Where the content of the TLV at `offset` starts and ends, if its header is whole."""
    if offset + 2 > len(data):
        return None
    first, start = data[offset + 1], offset + 2
    length = first
    if first & 0x80:
        count = first & 0x7F
        if not 0 < count <= 4 or start + count > len(data):
            return None
        length, start = int.from_bytes(data[start : start + count], "big"), start + count
    return (start, start + length) if start + length <= len(data) else None


def key_shape(spki: Tlv) -> object:
    try:
        key = serialization.load_der_public_key(spki.raw)
    except (ValueError, UnsupportedAlgorithm):
        return ("unreadable key", view(spki))
    if isinstance(key, rsa.RSAPublicKey):
        return ("rsa", key.key_size, key.public_numbers().e)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("ec", key.curve.name)
    if isinstance(key, dsa.DSAPublicKey):
        return ("dsa", key.key_size)
    return (type(key).__name__,)


def signature_shape(csr: Tlv) -> object:
    try:
        return ("signature valid", x509.load_der_x509_csr(csr.raw).is_signature_valid)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return ("signature not checked", type(exc).__name__)


def view(item: Tlv | bytes) -> object:
    if isinstance(item, bytes):
        return ("unparsed", item)
    if item.children is None:
        return (item.tag, item.content)
    return (item.tag, tuple(view(child) for child in item.children))


def csr_shape(csr: Tlv | bytes) -> object:
    """A CertificationRequest's view with its key and signature masked; anything else as it
    is (a key or signature there would then make two runs differ, and the test say so)."""
    if not isinstance(csr, Tlv) or csr.tag != SEQUENCE or csr.children is None:
        return view(csr)
    parts = csr.children
    if len(parts) != 3 or not all(isinstance(part, Tlv) for part in parts):
        return view(csr)
    info, algorithm, signature = parts
    assert isinstance(info, Tlv) and isinstance(algorithm, Tlv) and isinstance(signature, Tlv)
    if info.children is None or len(info.children) != 4 or signature.tag != BIT_STRING:
        return view(csr)
    version, subject, spki, attributes = info.children
    if not isinstance(spki, Tlv):
        return view(csr)
    fields = (view(version), view(subject), key_shape(spki), view(attributes))
    return (csr.tag, ((info.tag, fields), view(algorithm), signature_shape(csr)))


def pem_shape(pem: bytes) -> list[object]:
    """Each line outside a PEM block's base64 as it is; each block's base64 as the shapes of
    the TLVs it decodes to."""
    shape: list[object] = []
    body: list[str] | None = None
    for line in pem.decode("ascii").splitlines():
        if line.startswith("-----BEGIN "):
            shape.append(line)
            body = []
        elif body is not None and line.startswith("-----END "):
            der_bytes = base64.b64decode("".join(body))
            shape.append([csr_shape(item) for item in read_tlvs(der_bytes)])
            shape.append(line)
            body = None
        elif body is not None and BASE64_LINE.fullmatch(line):
            body.append(line)
        else:
            shape.append(line)
    shape.append(("ends with a newline", pem.endswith(b"\n")))
    return shape
