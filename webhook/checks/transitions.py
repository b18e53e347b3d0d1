"""Condition and certificate transitions on every UPDATE of a CSR, for every signer
(docs/policy-reference.md §5.5).

Compares the old and new objects; only what the update changes is judged, so an object that
already breaks a rule (ratcheting, reference §1.9) can still get a metadata update. Codes:
transition.condition_status, .condition_duplicate, .approved_and_denied, .condition_removed,
.condition_modified, .approval_subresource_required, .status_subresource_required,
.certificate_unapproved, .certificate_modified, .denied_after_issue, .certificate_malformed,
.spec_changed, .main_resource_modified.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from webhook.context import UpdateContext
from webhook.decision import Violation
from webhook.errors import CertificateFormatError
from webhook.resource import Condition, CSRObject
from webhook.spec_change import spec_change
from webhook.x509.certificate import parse_certificates

CODES = frozenset(
    {
        "transition.condition_status",
        "transition.condition_duplicate",
        "transition.approved_and_denied",
        "transition.condition_removed",
        "transition.condition_modified",
        "transition.approval_subresource_required",
        "transition.status_subresource_required",
        "transition.certificate_unapproved",
        "transition.certificate_modified",
        "transition.certificate_malformed",
        "transition.denied_after_issue",
        "transition.spec_changed",
        "transition.main_resource_modified",
    }
)

_FIELD = "status.conditions"
TRUE_ONLY = ("Approved", "Denied", "Failed")
_APPROVAL_TYPES = ("Approved", "Denied")


def _of_type(obj: CSRObject, kind: str) -> list[Condition]:
    return [c for c in obj.conditions if c.type == kind]


def _said(condition: Condition) -> tuple[str, str, str]:
    # Timestamps are filled in by the API server (populateConditionTimestamps); what the
    # condition says is its type, status, reason and message.
    return (condition.status, condition.reason, condition.message)


def _same(a: Condition, b: Condition) -> bool:
    return _said(a) == _said(b)


def _conditions(ctx: UpdateContext) -> Iterator[Violation]:
    old, new = ctx.old, ctx.new
    old_counts = Counter(c.type for c in old.conditions)
    new_counts = Counter(c.type for c in new.conditions)
    # What each old condition said, by type, once: looking it up per new condition made an
    # update with thousands of conditions quadratic.
    previous: dict[str, set[tuple[str, str, str]]] = {}
    for condition in old.conditions:
        previous.setdefault(condition.type, set()).add(_said(condition))
    for index, condition in enumerate(new.conditions):
        field = f"{_FIELD}[{index}]"
        if (
            condition.type in TRUE_ONLY
            and condition.status != "True"
            and _said(condition) not in previous.get(condition.type, ())
        ):
            yield Violation(
                code="transition.condition_status",
                field=f"{field}.status",
                message=f"{condition.type} condition has status {condition.status!r}; "
                "only 'True' is allowed",
            )
    for kind, count in new_counts.items():
        if count > 1 and count > old_counts.get(kind, 0):
            yield Violation(
                code="transition.condition_duplicate",
                field=_FIELD,
                message=f"condition type {kind!r} appears {count} times; at most once",
            )
    both = all(new_counts.get(k) for k in _APPROVAL_TYPES)
    if both and not all(old_counts.get(k) for k in _APPROVAL_TYPES):
        yield Violation(
            code="transition.approved_and_denied",
            field=_FIELD,
            message="Approved and Denied conditions are mutually exclusive",
        )
    for kind in TRUE_ONLY:
        before, after = _of_type(old, kind), _of_type(new, kind)
        if len(after) < len(before):
            yield Violation(
                code="transition.condition_removed",
                field=_FIELD,
                message=f"a {kind} condition may never be removed",
            )
        elif any(not _same(a, b) for a, b in zip(before, after, strict=False)):
            yield Violation(
                code="transition.condition_modified",
                field=_FIELD,
                message=f"a {kind} condition may never be changed once present",
            )
        if len(after) > len(before):
            yield from _added(ctx, kind)


def _added(ctx: UpdateContext, kind: str) -> Iterator[Violation]:
    if kind in _APPROVAL_TYPES and ctx.sub_resource != "approval":
        yield Violation(
            code="transition.approval_subresource_required",
            field=_FIELD,
            message=f"{kind} may only be added through the /approval subresource, "
            f"not {_where(ctx)}",
        )
    if kind == "Failed" and ctx.sub_resource != "status":
        yield Violation(
            code="transition.status_subresource_required",
            field=_FIELD,
            message=f"Failed may only be added through the /status subresource, not {_where(ctx)}",
        )
    if kind == "Denied" and ctx.old.certificate:
        yield Violation(
            code="transition.denied_after_issue",
            field=_FIELD,
            message="Denied cannot be added to a CSR whose certificate was issued",
        )


def _where(ctx: UpdateContext) -> str:
    return f"/{ctx.sub_resource}" if ctx.sub_resource else "the main resource"


def _certificate(ctx: UpdateContext) -> Iterator[Violation]:
    old, new = ctx.old.certificate or b"", ctx.new.certificate
    if new is None:
        yield Violation(
            code="transition.certificate_malformed",
            field="status.certificate",
            message="status.certificate is not valid base64",
        )
        return
    if new == old:
        return
    if old:
        yield Violation(
            code="transition.certificate_modified",
            field="status.certificate",
            message="the issued certificate may never be changed or removed",
        )
        return
    if ctx.sub_resource != "status":
        yield Violation(
            code="transition.status_subresource_required",
            field="status.certificate",
            message=f"the certificate may only be set through /status, not {_where(ctx)}",
        )
    types = {c.type for c in ctx.new.conditions if c.status == "True"}
    if "Approved" not in types or types & {"Denied", "Failed"}:
        state = ", ".join(sorted(types & {"Approved", "Denied", "Failed"})) or "no condition"
        yield Violation(
            code="transition.certificate_unapproved",
            field="status.certificate",
            message=f"a certificate may only be set on an Approved CSR that is neither Denied "
            f"nor Failed (it has: {state})",
        )
    try:
        parse_certificates(new)
    except CertificateFormatError as exc:
        yield Violation(
            code="transition.certificate_malformed",
            field="status.certificate",
            message=str(exc),
        )


def _status(obj: CSRObject) -> tuple[object, ...]:
    conditions = tuple((c.type, c.status, c.reason, c.message) for c in obj.conditions)
    return (conditions, obj.certificate or b"")


def _main_resource(ctx: UpdateContext) -> Iterator[Violation]:
    # The API server's strategy drops status changes on the main resource
    # (pkg/registry/certificates/certificates/strategy.go); seeing one means another server.
    if ctx.sub_resource:
        return
    if _status(ctx.old) != _status(ctx.new):
        yield Violation(
            code="transition.main_resource_modified",
            field="status",
            message="an update of the main resource may change only metadata, not status",
        )


def _spec_changed(ctx: UpdateContext) -> Iterator[Violation]:
    """Any spec change, on every endpoint. Every endpoint's PrepareForUpdate restores the stored
    spec (strategy.go), so a change means the review did not come that way; the gates judge the
    stored spec, and a rewritten spec.username or spec.expirationSeconds must not pass."""
    violation = spec_change(ctx.old.spec, ctx.new.spec)
    if violation is not None:
        yield violation


def check(ctx: UpdateContext) -> Iterator[Violation]:
    yield from _spec_changed(ctx)
    yield from _main_resource(ctx)
    yield from _conditions(ctx)
    yield from _certificate(ctx)
