"""parse_certificates: `status.certificate` bytes -> certificates, by the API server's rules.

Mirrors validateCertificate (pkg/apis/certificates/validation/validation.go): one or more PEM
blocks, all CERTIFICATE, no headers, each parsing to at least one certificate (a block may hold
several concatenated DER certificates); malformed blocks and text outside blocks are skipped as
Go's encoding/pem does. Raises CertificateFormatError and nothing else.
"""

from __future__ import annotations

from cryptography import x509

from webhook import der
from webhook.pem import decode_pem_blocks

MAX_CERTIFICATE_BYTES = 1024 * 1024


class CertificateFormatError(ValueError):
    """The bytes break the API server's rules for status.certificate; str() says how."""


def _split_der(body: bytes) -> list[bytes]:
    certificates, offset = [], 0
    while offset < len(body):
        try:
            tlv, offset = der.read_tlv(body, offset)
        except der.DERError as exc:
            raise CertificateFormatError(f"certificate DER is malformed: {exc}") from exc
        certificates.append(tlv.raw)
    return certificates


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in order: the leaf first, then any chain the signer appended."""
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateFormatError(f"{len(data)} bytes; at most {MAX_CERTIFICATE_BYTES}")
    blocks = decode_pem_blocks(data)
    if not blocks:
        raise CertificateFormatError("must contain at least one CERTIFICATE PEM block")
    certificates: list[x509.Certificate] = []
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
            try:
                certificates.append(x509.load_der_x509_certificate(piece))
            except (ValueError, x509.InvalidVersion) as exc:
                raise CertificateFormatError(
                    f"PEM block {index} does not parse as a certificate: {exc}"
                ) from exc
    return certificates
