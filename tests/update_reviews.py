"""Test-side shorthands for UPDATE reviews over the one API-server simulator
(webhook/authoring/reviews.py), and the helpers that post a review and read the answer.

`request.userInfo` is the caller (approver on /approval, signer on /status); `object.spec.username`
stays the original requester. `raw_update` bypasses the strategy, for defence-in-depth cases a
differently configured server could send.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask.testing import FlaskClient

from tests.reviews import csr_object, user_info
from webhook.authoring import reviews
from webhook.authoring.reviews import condition, now_rfc3339, with_status

__all__ = [
    "APPROVER",
    "SIGNER",
    "STORED_TIME",
    "approval_update",
    "approved",
    "audited_codes",
    "codes",
    "condition",
    "delete_review",
    "denied",
    "failed",
    "fields_of",
    "main_update",
    "now_rfc3339",
    "raw_update",
    "status_update",
    "stored_csr",
    "validate",
    "with_status",
]

APPROVER = user_info("carol", ["csr-approvers", "system:authenticated"])
SIGNER = user_info("signer-bot", ["csr-signers", "system:authenticated"])
STORED_TIME = "2026-11-28T07:05:00Z"


def approved(reason: str = "ApprovedByTest") -> dict[str, Any]:
    return condition("Approved", reason=reason, message="approved in a test")


def denied(reason: str = "DeniedByTest") -> dict[str, Any]:
    return condition("Denied", reason=reason, message="denied in a test")


def failed(reason: str = "SignerValidationFailure") -> dict[str, Any]:
    return condition("Failed", reason=reason, message="failed in a test")


def stored_csr(
    request_pem: bytes,
    *,
    conditions: Sequence[dict[str, Any]] = (),
    certificate: bytes | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A CSR as it sits in storage: spec identity set, conditions stamped, optional cert."""
    stamped = [
        {"lastUpdateTime": STORED_TIME, "lastTransitionTime": STORED_TIME, **c} for c in conditions
    ]
    return reviews.stored_csr(
        csr_object(request_pem, **spec), conditions=stamped, certificate=certificate
    )


def approval_update(
    old: dict[str, Any],
    new_conditions: Sequence[dict[str, Any]],
    caller: dict[str, Any] = APPROVER,
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    return reviews.approval_review(old, new_conditions, caller, dry_run=dry_run)


def status_update(
    old: dict[str, Any],
    *,
    certificate: bytes | None = None,
    conditions: Sequence[dict[str, Any]] | None = None,
    caller: dict[str, Any] = SIGNER,
    dry_run: bool = False,
) -> dict[str, Any]:
    return reviews.status_review(
        old, caller, certificate=certificate, conditions=conditions, dry_run=dry_run
    )


def main_update(
    old: dict[str, Any],
    *,
    caller: dict[str, Any] | None = None,
    dry_run: bool = False,
    **metadata: Any,
) -> dict[str, Any]:
    caller = caller or user_info("alice", ["system:authenticated"])
    return reviews.update_review(old, caller, dry_run=dry_run, **metadata)


def raw_update(
    old: dict[str, Any],
    new: dict[str, Any],
    sub_resource: str,
    caller: dict[str, Any],
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    return reviews.raw_update_review(old, new, sub_resource, caller, dry_run=dry_run)


def delete_review(old: dict[str, Any], caller: dict[str, Any] | None = None) -> dict[str, Any]:
    return reviews.delete_review(old, caller or user_info("alice", ["system:authenticated"]))


# ---- posting and reading answers --------------------------------------------------------------


def validate(client: FlaskClient, review: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/validate", json=review)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    response: dict[str, Any] = answer.get_json()["response"]
    return response


def codes(response: dict[str, Any]) -> list[str]:
    """Sorted distinct violation codes of a denial (empty for an allowed answer)."""
    if response["allowed"]:
        return []
    causes = response.get("status", {}).get("details", {}).get("causes", [])
    return sorted({c["reason"] for c in causes})


def fields_of(response: dict[str, Any], code: str) -> list[str]:
    causes = response.get("status", {}).get("details", {}).get("causes", [])
    return [c["field"] for c in causes if c["reason"] == code]


def audited_codes(response: dict[str, Any]) -> list[str]:
    """Codes of an allowed-but-recorded answer (Warn/Audit), from auditAnnotations."""
    text = response.get("auditAnnotations", {}).get("violations", "")
    return sorted({c for c in text.split(",") if c})
