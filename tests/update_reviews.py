"""UPDATE reviews of CSRs as kube-apiserver presents them to a VALIDATING webhook.

Validating admission runs after the endpoint's PrepareForUpdate
(pkg/registry/certificates/certificates/strategy.go; reference §2.2, §2.3):
- every endpoint: `spec` of the new object equals the stored spec;
- main resource: `status` equals the stored status too; only metadata changes survive;
- `/approval`: conditions as submitted, timestamps filled; certificate equals the stored one;
- `/status`: Approved/Denied instances restored from the stored object when their count did
  not change (preserveConditionInstances), timestamps filled; certificate and other conditions
  as submitted.
Both objects carry the same metadata.resourceVersion (the one the client read: the new one is
assigned on write, after admission), as recorded from kube-apiserver v1.37.2.
`request.userInfo` is the caller (approver on /approval, signer on /status);
`object.spec.username` stays the original requester. `raw_update` bypasses the strategy, for
defence-in-depth cases a differently configured server could send.
"""

from __future__ import annotations

import base64
import copy
import datetime
from collections.abc import Sequence
from typing import Any

from flask.testing import FlaskClient

from tests.reviews import admission_review, csr_object, user_info

APPROVER = user_info("carol", ["csr-approvers", "system:authenticated"])
SIGNER = user_info("signer-bot", ["csr-signers", "system:authenticated"])
STORED_TIME = "2026-11-28T07:05:00Z"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str,
    status: str = "True",
    *,
    reason: str = "",
    message: str = "",
    stamped: bool = False,
) -> dict[str, Any]:
    """A condition as a client submits it (no timestamps) or, `stamped`, as stored."""
    result: dict[str, Any] = {"type": type_, "status": status}
    if reason:
        result["reason"] = reason
    if message:
        result["message"] = message
    if stamped:
        result["lastUpdateTime"] = STORED_TIME
        result["lastTransitionTime"] = STORED_TIME
    return result


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
    obj = csr_object(request_pem, **spec)
    obj["metadata"]["resourceVersion"] = "100"
    status: dict[str, Any] = {}
    if conditions:
        status["conditions"] = [_stamp_stored(c) for c in conditions]
    if certificate:
        status["certificate"] = base64.b64encode(certificate).decode()
    obj["status"] = status
    return obj


def _stamp_stored(cond: dict[str, Any]) -> dict[str, Any]:
    stamped = dict(cond)
    stamped.setdefault("lastUpdateTime", STORED_TIME)
    stamped.setdefault("lastTransitionTime", STORED_TIME)
    return stamped


def _populate_timestamps(
    new: list[dict[str, Any]], old: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """strategy.go populateConditionTimestamps."""
    now = now_rfc3339()
    result = []
    for submitted in new:
        cond = dict(submitted)
        if not cond.get("lastUpdateTime"):
            cond["lastUpdateTime"] = now
        if not cond.get("lastTransitionTime"):
            cond["lastTransitionTime"] = next(
                (
                    o["lastTransitionTime"]
                    for o in old
                    if o.get("type") == cond.get("type")
                    and o.get("status") == cond.get("status")
                    and o.get("lastTransitionTime")
                ),
                now,
            )
        result.append(cond)
    return result


def _preserve_instances(
    new: list[dict[str, Any]], old: list[dict[str, Any]], type_: str
) -> list[dict[str, Any]]:
    """strategy.go preserveConditionInstances: same count -> old instances, by position."""
    old_of_type = [c for c in old if c.get("type") == type_]
    new_positions = [i for i, c in enumerate(new) if c.get("type") == type_]
    if len(old_of_type) != len(new_positions):
        return new
    result = list(new)
    for position, original in zip(new_positions, old_of_type, strict=True):
        result[position] = copy.deepcopy(original)
    return result


def _conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    conditions: list[dict[str, Any]] = obj.get("status", {}).get("conditions", [])
    return conditions


def approval_update(
    old: dict[str, Any],
    new_conditions: Sequence[dict[str, Any]],
    caller: dict[str, Any] = APPROVER,
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """PUT /approval with `new_conditions`; the stored certificate is kept (a submitted one
    is dropped silently by csrApprovalStrategy.PrepareForUpdate)."""
    new = copy.deepcopy(old)
    status = copy.deepcopy(old.get("status", {}))
    status["conditions"] = _populate_timestamps(list(new_conditions), _conditions(old))
    if not status["conditions"]:
        del status["conditions"]
    new["status"] = status
    return raw_update(old, new, "approval", caller, dry_run=dry_run)


def status_update(
    old: dict[str, Any],
    *,
    certificate: bytes | None = None,
    conditions: Sequence[dict[str, Any]] | None = None,
    caller: dict[str, Any] = SIGNER,
    dry_run: bool = False,
) -> dict[str, Any]:
    """PUT /status. `certificate`: None keeps the stored one, b"" clears it, else the PEM.
    `conditions`: None keeps the stored list, else the submitted list (Approved/Denied
    restored from storage when their count is unchanged)."""
    new = copy.deepcopy(old)
    status = new.setdefault("status", {})
    old_conditions = _conditions(old)
    if conditions is not None:
        submitted = [dict(c) for c in conditions]
        for type_ in ("Approved", "Denied"):
            submitted = _preserve_instances(submitted, old_conditions, type_)
        status["conditions"] = _populate_timestamps(submitted, old_conditions)
        if not status["conditions"]:
            del status["conditions"]
    if certificate is not None:
        if certificate:
            status["certificate"] = base64.b64encode(certificate).decode()
        else:
            status.pop("certificate", None)  # []byte with omitempty
    return raw_update(old, new, "status", caller, dry_run=dry_run)


def main_update(
    old: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    finalizers: Sequence[str] | None = None,
    caller: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """PUT/PATCH on the main resource: only metadata survives PrepareForUpdate."""
    new = copy.deepcopy(old)
    metadata = new["metadata"]
    if labels is not None:
        metadata["labels"] = dict(labels)
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    if finalizers is not None:
        metadata["finalizers"] = list(finalizers)
    caller = caller or user_info("alice", ["system:authenticated"])
    return raw_update(old, new, "", caller, dry_run=dry_run)


def raw_update(
    old: dict[str, Any],
    new: dict[str, Any],
    sub_resource: str,
    caller: dict[str, Any],
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """An UPDATE review with exactly these objects (no strategy applied)."""
    return admission_review(
        new,
        operation="UPDATE",
        sub_resource=sub_resource,
        caller=caller,
        old_object=old,
        dry_run=dry_run,
    )


def with_status(
    obj: dict[str, Any],
    *,
    conditions: Sequence[dict[str, Any]] | None = None,
    certificate: bytes | None = None,
) -> dict[str, Any]:
    """A copy of `obj` with its status replaced as given (for raw_update's new object)."""
    new = copy.deepcopy(obj)
    status = new.setdefault("status", {})
    if conditions is not None:
        status["conditions"] = _populate_timestamps(list(conditions), _conditions(obj))
        if not status["conditions"]:
            del status["conditions"]
    if certificate is not None:
        if certificate:
            status["certificate"] = base64.b64encode(certificate).decode()
        else:
            status.pop("certificate", None)
    return new


def delete_review(old: dict[str, Any], caller: dict[str, Any] | None = None) -> dict[str, Any]:
    review = admission_review(
        None,
        operation="DELETE",
        caller=caller or user_info("alice", ["system:authenticated"]),
        old_object=old,
    )
    return review


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
