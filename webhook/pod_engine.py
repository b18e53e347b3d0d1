"""Evaluate one typed admission request for a PodCertificateRequest and return a Decision.

CREATE: select the policy by signer -> its `podCertificates` -> the pod CREATE checks (who
creates, which pod, the stub's key, maxExpirationSeconds, annotations). UPDATE: the
transition rules of the resource (immutable spec, terminal status) and, on /status, the
issuer and the issued chain against `podCertificates.issued` and `caBundle`. Pure: no Flask,
no metrics, no I/O.
"""

from __future__ import annotations

from webhook.admission import AdmissionRequest
from webhook.decision import Decision
from webhook.policy.model import PolicySet


def evaluate_pod(
    request: AdmissionRequest, policies: PolicySet, *, allow_unmatched_signers: bool, mutating: bool
) -> Decision:
    """The decision for a review whose `is_pcr` is true."""
    raise NotImplementedError("PodCertificateRequest evaluation")  # filled in by issue 16
