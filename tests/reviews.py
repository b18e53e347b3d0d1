"""Test-side shorthands over the one API-server simulator (webhook/authoring/reviews.py).

Only argument shapes the unit tests share (a PEM and keyword spec fields in, a review out);
every review is built by the shipped simulator.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from webhook.authoring import reviews
from webhook.authoring.reviews import KIND as CSR_KIND
from webhook.authoring.reviews import RESOURCE as CSR_RESOURCE
from webhook.authoring.reviews import user_info

__all__ = [
    "CSR_KIND",
    "CSR_RESOURCE",
    "DERIVED",
    "admission_review",
    "create_review",
    "csr_object",
    "mutating_create_review",
    "user_info",
    "with_forged_identity",
]

DERIVED = "derived"  # csr_object(uid=...): a stable uid made from the username


def _requester(
    username: str,
    groups: list[str] | None,
    uid: str | None,
    extra: dict[str, list[str]] | None,
) -> dict[str, Any]:
    if uid == DERIVED:
        uid = str(uuid.uuid5(uuid.NAMESPACE_DNS, username))
    groups = groups if groups is not None else ["system:authenticated"]
    return user_info(username, groups, uid=uid or "", extra=extra)


def csr_object(
    request_pem: bytes,
    *,
    username: str | None = "alice",
    groups: list[str] | None = None,
    uid: str | None = DERIVED,
    extra: dict[str, list[str]] | None = None,
    status: dict[str, Any] | None = None,
    created: str = reviews.CREATED,
    **sent: Any,
) -> dict[str, Any]:
    """A CSR after PrepareForCreate (`username=None`: as the client sent it)."""
    obj = reviews.sent_csr(request_pem, **sent)
    if username is not None:
        obj = reviews.created_csr(obj, _requester(username, groups, uid, extra), now=created)
    if status is not None:
        obj["status"] = status
    return obj


def admission_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    sub_resource: str = "",
    caller: dict[str, Any] | None = None,
    old_object: dict[str, Any] | None = None,
    kind: dict[str, str] | None = None,
    resource: dict[str, str] | None = None,
    name: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """An AdmissionReview with exactly these objects (for hostile and malformed reviews)."""
    review = reviews.admission_review(
        obj,
        old_object,
        operation,
        sub_resource,
        caller or user_info("alice", ["system:authenticated"]),
        dry_run=dry_run,
    )
    request = review["request"]
    if kind:
        request["kind"] = request["requestKind"] = kind
    if resource:
        request["resource"] = request["requestResource"] = resource
    if name is not None:
        request.pop("name", None)
        if name:
            request["name"] = name
    return review


def create_review(
    request_pem: bytes,
    *,
    requester: str = "alice",
    groups: list[str] | None = None,
    uid: str | None = DERIVED,
    extra: dict[str, list[str]] | None = None,
    dry_run: bool = False,
    **sent: Any,
) -> dict[str, Any]:
    """A CREATE as the validating webhook sees it: spec identity = the authenticated caller."""
    caller = _requester(requester, groups, uid, extra)
    return reviews.create_review(reviews.sent_csr(request_pem, **sent), caller, dry_run=dry_run)


def mutating_create_review(
    request_pem: bytes,
    *,
    requester: str = "alice",
    groups: list[str] | None = None,
    dry_run: bool = False,
    **sent: Any,
) -> dict[str, Any]:
    """A CREATE as the mutating webhook sees it: the object as sent."""
    caller = user_info(requester, groups if groups is not None else ["system:authenticated"])
    sent_obj = reviews.sent_csr(request_pem, **sent)
    return reviews.mutating_create_review(sent_obj, caller, dry_run=dry_run)


def with_forged_identity(
    review: dict[str, Any], username: str, groups: list[str]
) -> dict[str, Any]:
    forged = copy.deepcopy(review)
    forged["request"]["object"]["spec"].update({"username": username, "groups": groups})
    return forged
