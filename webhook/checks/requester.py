"""`requesters` (docs/policy-reference.md §5.2): a CREATE is judged only by the rules that admit its
requester; with none, the requester may not use the signer at all. `constraints.maxPending`
(§3.6): at admission only, a rule refuses a requester that already has that many pending CSRs
of the signer; an Unknown count refuses too (fail closed).

Codes: requester.not_permitted, requester.too_many_pending, requester.pending_unknown.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.facts import Unknown
from webhook.text import show

CODES = frozenset(
    {"requester.not_permitted", "requester.too_many_pending", "requester.pending_unknown"}
)


def check(ctx: CreateContext) -> Iterator[Violation]:
    if ctx.rules:
        return
    yield Violation(
        code="requester.not_permitted",
        field="spec.username",
        message=f"requester {ctx.requester.username!r} may not request certificates "
        f"from signer {ctx.obj.signer_name!r}",
    )


def check_pending(ctx: CreateContext) -> Iterator[Violation]:
    """A rule check: the quota is the rule's. Not at the approval recheck or issuance: the CSR
    was counted when it was created, and approving the backlog must stay possible."""
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    limit = rule.constraints.max_pending
    if limit is None or not ctx.admission:
        return
    username, signer = ctx.obj.username, ctx.obj.signer_name
    count = ctx.facts.pending_csrs(signer, username, excluding=ctx.obj.name)
    if isinstance(count, Unknown):
        yield Violation(
            code="requester.pending_unknown",
            field="spec.username",
            message=f"rule {rule.name!r} allows {limit} pending CSR(s) of signer "
            f"{show(signer)} per requester; those of {show(username)} cannot be counted now: "
            f"{count.reason}",
        )
    elif count >= limit:
        yield Violation(
            code="requester.too_many_pending",
            field="spec.username",
            message=f"requester {show(username)} has {count} pending CSR(s) of signer "
            f"{show(signer)}; rule {rule.name!r} allows at most {limit} (maxPending)",
        )
