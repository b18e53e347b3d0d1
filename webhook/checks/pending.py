"""`constraints.maxPending` (docs/policy-reference.md §3.6): at admission only, a rule refuses a
requester that already has that many pending CSRs of the signer (no Approved, Denied or Failed
condition), counted by the cluster facts once per review. An Unknown count refuses too (fail
closed).

Codes: requester.too_many_pending, requester.pending_unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.facts import Unknown
from webhook.policy.model import Rule
from webhook.text import show

CODES = frozenset({"requester.too_many_pending", "requester.pending_unknown"})


def check(ctx: CreateContext) -> Iterable[Violation]:
    """A rule check: the quota is the rule's. Not at the approval recheck or issuance: the CSR
    was counted when it was created, and approving the backlog must stay possible."""
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    limit = rule.constraints.max_pending
    if limit is None or not ctx.admission:
        return ()  # no quota here: no generator
    return _violations(ctx, rule, limit)


def _violations(ctx: CreateContext, rule: Rule, limit: int) -> Iterator[Violation]:
    username, signer = ctx.obj.username, ctx.obj.signer_name
    count = ctx.asked.pending  # asked once per review by the engine
    assert count is not None, "the engine counts when a rule has maxPending at admission"
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
