"""The two decisions both engines (CSRs and PodCertificateRequests) share: the verdict a
policy's enforcement gives its violations, and the answer for a signer no policy governs.

Pure: no Flask, no metrics, no I/O.
"""

from __future__ import annotations

from webhook.decision import Decision, Verdict, Violation
from webhook.policy.model import Enforcement

ENFORCED_VERDICT = {
    Enforcement.DENY: Verdict.DENIED,
    Enforcement.WARN: Verdict.WARNED,
    Enforcement.AUDIT: Verdict.AUDITED,
}


def unmatched_signer(signer_name: str, *, allow: bool) -> Decision:
    """Allowed when the server is told to allow signers no policy governs; else denied with
    `signer.unmatched`, naming the signer."""
    if allow:
        return Decision(verdict=Verdict.ALLOWED, policy="unmatched")
    violation = Violation(
        code="signer.unmatched",
        field="spec.signerName",
        message=f"no policy governs signer {signer_name!r}",
    )
    return Decision(
        verdict=Verdict.DENIED,
        policy="unmatched",
        violations=(violation,),
        summary=f"signer {signer_name!r} is not governed by any policy",
    )
