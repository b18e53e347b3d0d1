"""Hypothesis strategies for issued certificates and intermediates damaged inside their DER
and then re-signed by their issuer, so that they verify and reach the issuance checks.

The TBSCertificate is parsed into a TLV tree (OCTET and BIT STRINGs that wrap DER included, so
extension values and keys are reached too); one to three nodes are damaged (content, tag,
deleted, duplicated, or an odd value inserted: GeneralNames cryptography cannot represent,
odd extensions, times and strings; extensions and GeneralNames are also aimed at directly); the
tree is re-encoded with correct lengths and signed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from hypothesis import strategies as st

from tests.builders import oid, raw_extension, seq
from tests.issuance_builders import (
    TestCA,
    dns_general_name,
    edi_party_name,
    pem_block,
    sign_tbs,
    x400_address,
)
from webhook import errors
from webhook.x509 import der

_WRAPPERS = (der.OCTET_STRING, der.BIT_STRING)


@dataclass
class Node:
    tag: int
    content: bytes = b""
    children: list[Node] | None = None
    wrapped: bool = False  # an OCTET/BIT STRING whose content is DER (BIT STRING: after 0x00)

    def encode(self) -> bytes:
        if self.children is None:
            return der.encode_tlv(self.tag, self.content)
        body = b"".join(child.encode() for child in self.children)
        if self.wrapped and self.tag == der.BIT_STRING:
            body = b"\x00" + body
        return der.encode_tlv(self.tag, body)


def parse_tree(data: bytes) -> Node:
    return _node(der.read_single(data))


def _node(tlv: der.TLV) -> Node:
    if tlv.constructed:
        try:
            return Node(tlv.tag, children=[_node(c) for c in der.children(tlv)])
        except errors.DERError:
            return Node(tlv.tag, tlv.content)
    if tlv.tag in _WRAPPERS:
        inner = tlv.content[1:] if tlv.tag == der.BIT_STRING else tlv.content
        if tlv.tag != der.BIT_STRING or tlv.content[:1] == b"\x00":
            try:
                return Node(tlv.tag, children=[_node(der.read_single(inner))], wrapped=True)
            except errors.DERError:
                pass
    return Node(tlv.tag, tlv.content)


def _nodes(root: Node) -> list[tuple[Node | None, Node]]:
    """(parent, node) for every node below the root."""
    found: list[tuple[Node | None, Node]] = []
    pending: list[Node] = [root]
    while pending:
        parent = pending.pop()
        for child in parent.children or []:
            found.append((parent, child))
            pending.append(child)
    return found


SAN = "2.5.29.17"
ODD_VALUES: tuple[bytes, ...] = (
    x400_address(),
    edi_party_name(),
    dns_general_name("*.example.com"),
    der.encode_tlv(0x87, b"\x0a\x00\x00"),
    der.encode_tlv(0x87, b"\x0a\x00\x00\x00\xff\xff\xff\x00"),
    der.encode_tlv(0xA0, seq(oid("1.2.3"), der.encode_tlv(0xA0, b"\x0c\x01x"))),
    der.encode_tlv(0xA4, seq(seq())),
    der.encode_tlv(0x88, b"\x2a\x03"),
    raw_extension(SAN, seq(x400_address())),
    raw_extension("2.5.29.18", seq(edi_party_name())),
    raw_extension("2.5.29.15", der.encode_tlv(der.BIT_STRING, b"\x07\x80"), critical=True),
    raw_extension("2.5.29.15", der.encode_tlv(der.BIT_STRING, b"\x00")),
    raw_extension("2.5.29.19", seq(der.encode_tlv(der.BOOLEAN, b"\xff"))),
    raw_extension("2.5.29.19", seq(der.encode_tlv(der.BOOLEAN, b"\xff"), b"\x02\x01\xff")),
    raw_extension("2.5.29.37", seq(oid("2.5.29.37.0"))),
    raw_extension("2.5.29.30", b"\x30\x03\xa0\x01\x00"),
    raw_extension("1.2.3.4.5", b"\x05\x00", critical=True),
    der.encode_tlv(0x17, b"491231235959Z"),
    der.encode_tlv(0x18, b"00000101000000Z"),
    der.encode_tlv(0x18, b"99991231235959Z"),
    der.encode_tlv(0x18, b"20200101000000Z"),
    der.encode_tlv(der.UTF8_STRING, b"\xff"),
    der.encode_tlv(der.UTF8_STRING, b"a" * 65),
    der.encode_tlv(der.UTF8_STRING, b"a\x00b"),
    der.encode_tlv(der.BMP_STRING, b"\x00a"),
    der.encode_tlv(der.T61_STRING, b"\xe9"),
    der.encode_tlv(der.UNIVERSAL_STRING, b"\x00\x00\x00a"),
    der.encode_tlv(der.PRINTABLE_STRING, b"a*b@"),
    der.encode_tlv(der.IA5_STRING, b"\x80"),
    der.encode_tlv(der.INTEGER, b"\x00\x01"),
    der.encode_tlv(0x05, b""),
)
TAGS = (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1C, 0x1E,
        0x30, 0x31, 0x80, 0x81, 0x82, 0x86, 0x87, 0x88, 0xA0, 0xA3, 0xA5)  # fmt: skip
CONTENTS = (b"", b"\x00", b"\xff", b"\x80", b"\x7f" * 3, b"\xff" * 40, b"a" * 300)


ODD_GENERAL_NAMES = ODD_VALUES[:8]
ODD_EXTENSIONS = ODD_VALUES[8:17]


def _extensions(root: Node) -> Node | None:
    """The SEQUENCE of Extensions inside TBSCertificate's [3], if the tree still has one."""
    explicit = next((c for c in root.children or [] if c.tag == 0xA3 and c.children), None)
    return explicit.children[0] if explicit and explicit.children else None


def _targeted(draw: st.DrawFn, root: Node, op: str) -> None:
    """Odd values where they matter most: a whole extension, or a GeneralName appended to the
    value of an extension (its GeneralNames when it is subjectAltName or issuerAltName)."""
    extensions = _extensions(root)
    if extensions is None or extensions.children is None:
        return
    if op == "extension" or not extensions.children:
        odd = parse_tree(draw(st.sampled_from(ODD_EXTENSIONS)))
        extensions.children.insert(draw(st.integers(0, len(extensions.children))), odd)
        return
    extension = draw(st.sampled_from(extensions.children))
    value = (extension.children or [Node(0)])[-1]
    inner = (value.children or [Node(0)])[0] if value.wrapped else None
    if inner is not None and inner.children is not None:
        inner.children.append(parse_tree(draw(st.sampled_from(ODD_GENERAL_NAMES))))


@st.composite
def damage(draw: st.DrawFn, tbs: bytes) -> bytes:
    """`tbs` (TBSCertificate DER) with one to three nodes damaged, re-encoded."""
    root = parse_tree(tbs)
    for _ in range(draw(st.integers(1, 3))):
        targeted = draw(st.sampled_from(("extension", "general_name", "", "", "")))
        if targeted:
            _targeted(draw, root, targeted)
            continue
        parent, node = draw(st.sampled_from(_nodes(root)))
        assert parent is not None and parent.children is not None
        op = draw(st.sampled_from(("content", "tag", "delete", "duplicate", "insert", "insert")))
        if op == "content":
            node.children, node.wrapped = None, False
            node.content = draw(st.sampled_from(CONTENTS) | st.binary(max_size=24))
        elif op == "tag":
            node.tag = draw(st.sampled_from(TAGS))
        elif op == "delete":
            parent.children.remove(node)
        elif op == "duplicate":
            parent.children.insert(parent.children.index(node), copy.deepcopy(node))
        else:
            odd = parse_tree(draw(st.sampled_from(ODD_VALUES)))
            index = draw(st.integers(0, len(parent.children)))
            if draw(st.booleans()):
                parent.children[parent.children.index(node)] = odd
            else:
                parent.children.insert(index, odd)
        if not root.children:
            break
    return root.encode()


def tbs_of(certificate_der: bytes) -> bytes:
    return der.children(der.read_single(certificate_der), der.SEQUENCE)[0].raw


@st.composite
def resigned(draw: st.DrawFn, certificate: TestCA | bytes, issuer: TestCA) -> bytes:
    """PEM of `certificate` (DER, or a CA's certificate) damaged and re-signed by `issuer`."""
    if isinstance(certificate, TestCA):
        certificate = certificate.certificate.public_bytes(serialization.Encoding.DER)
    fields = der.children(der.read_single(draw(damage(tbs_of(certificate)))), None)
    return pem_block(sign_tbs([f.raw for f in fields], issuer))
