"""Whether a leaf certificate chains to trusted roots by signature, through intermediates
given with it: shared by the CSR issuance gate and the PodCertificateRequest /status check.

Signature checks only (no names, times or policies), bounded in number. Knows no policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from webhook.x509.certificate import CertificateInfo

MAX_CHAIN_VERIFICATIONS = 256
_VERIFY_ERRORS = (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, UserWarning)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except _VERIFY_ERRORS:
        return False
    return True


def chains_to(
    leaf: CertificateInfo,
    intermediates: Sequence[CertificateInfo],
    roots: Sequence[x509.Certificate],
) -> bool:
    """Signature verification up to one of `roots`, through the given intermediates (CAs
    only: RFC 5280 §6.1.4 (k)), within MAX_CHAIN_VERIFICATIONS signature checks: intermediates
    sharing one name would otherwise cost a check per pair, and a chain that needs more is no
    chain a signer writes (it is refused as untrusted)."""
    current, unused = leaf.certificate, [c for c in intermediates if c.is_ca]
    budget = MAX_CHAIN_VERIFICATIONS

    def issued_by(issuer: x509.Certificate) -> bool:
        nonlocal budget
        budget -= 1
        return budget >= 0 and _issued_by(current, issuer)

    while budget > 0:
        if any(issued_by(root) for root in roots):
            return True
        parent = next((c for c in unused if issued_by(c.certificate)), None)
        if parent is None:
            return False
        unused.remove(parent)
        current = parent.certificate
    return False
