"""The life of a PodCertificateRequest on every UPDATE, for every signer: an immutable spec,
status only through /status, a terminal status (Issued, Denied, Failed) never changed, at most
one terminal condition and only with status True, and Denied or Failed with nothing else set
(ValidatePodCertificateRequestStatusUpdate, pkg/apis/certificates/validation/validation.go).

Only what the update changes is judged (a stored object may already break a rule). Codes:
transition.spec_changed, transition.status_subresource_required, pod.terminal_changed,
transition.condition_duplicate, transition.condition_status, pod.fields_not_empty.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.decision import Violation
from webhook.pod_context import PodUpdateContext
from webhook.resource import PCRObject
from webhook.spec_change import spec_change

CODES = frozenset(
    {
        "transition.spec_changed",
        "transition.status_subresource_required",
        "pod.terminal_changed",
        "transition.condition_duplicate",
        "transition.condition_status",
        "pod.fields_not_empty",
    }
)

TERMINAL = ("Issued", "Denied", "Failed")
_CONDITIONS = "status.conditions"


def status_of(pcr: PCRObject) -> tuple[object, ...]:
    """What the status says (condition timestamps aside), for "did the update change it"."""
    conditions = tuple((c.type, c.status, c.reason, c.message) for c in pcr.conditions)
    times = (pcr.not_before, pcr.begin_refresh_at, pcr.not_after)
    return (conditions, pcr.certificate_chain, times)


def terminal(pcr: PCRObject) -> str | None:
    """The first terminal condition type the object has, if any."""
    return next((c.type for c in pcr.conditions if c.type in TERMINAL), None)


def _conditions(new: PCRObject) -> Iterator[Violation]:
    found = [(index, c) for index, c in enumerate(new.conditions) if c.type in TERMINAL]
    if len(found) > 1:
        kinds = ", ".join(c.type for _, c in found[:4])
        yield Violation(
            code="transition.condition_duplicate",
            field=_CONDITIONS,
            message=f"{len(found)} conditions of the types Issued, Denied and Failed ({kinds}); "
            "at most one",
        )
    for index, condition in found:
        if condition.status != "True":
            yield Violation(
                code="transition.condition_status",
                field=f"{_CONDITIONS}[{index}].status",
                message=f"{condition.type} condition has status {condition.status!r}; only "
                "'True' is allowed",
            )


def _fields(new: PCRObject) -> Iterator[Violation]:
    kinds = {c.type for c in new.conditions if c.type in TERMINAL}
    named = {
        "status.certificateChain": bool(new.certificate_chain),
        "status.notBefore": new.not_before is not None,
        "status.beginRefreshAt": new.begin_refresh_at is not None,
        "status.notAfter": new.not_after is not None,
    }
    set_fields = [name for name, present in named.items() if present]
    if not set_fields or kinds == {"Issued"}:
        return
    if kinds & {"Denied", "Failed"}:
        why = f"a {'/'.join(sorted(kinds & {'Denied', 'Failed'}))} request carries nothing else"
    else:
        why = "they are set only with an Issued condition"
    yield Violation(
        code="pod.fields_not_empty",
        field=set_fields[0],
        message=f"{', '.join(set_fields)} must be empty: {why}",
    )


def check(ctx: PodUpdateContext) -> Iterator[Violation]:
    change = spec_change(ctx.old.spec, ctx.new.spec)
    if change is not None:
        yield change
    if status_of(ctx.old) == status_of(ctx.new):
        return
    if ctx.sub_resource != "status":
        # The main resource's PrepareForUpdate restores the stored status (strategy.go); a
        # change seen here did not come from the API server.
        where = f"/{ctx.sub_resource}" if ctx.sub_resource else "the main resource"
        yield Violation(
            code="transition.status_subresource_required",
            field="status",
            message=f"the status may change only through /status, not {where}",
        )
        return
    stored = terminal(ctx.old)
    if stored is not None:
        yield Violation(
            code="pod.terminal_changed",
            field="status",
            message=f"the request is {stored}; its status may never change again",
        )
        return
    yield from _conditions(ctx.new)
    yield from _fields(ctx.new)
