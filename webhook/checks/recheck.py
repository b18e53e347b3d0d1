"""The approval recheck (docs/policy-reference.md §5.6, `approval.recheck`): on /approval, adding
Approved to a CSR that no longer passes its policy (rules or deny lists changed since it was
created) is refused with the reasons. The engine evaluates the stored spec as a CREATE
(`UpdateContext.recheck`) only there; this check reports that evaluation.

Codes: approval.recheck_failed, then the evaluation's own violations (any CREATE code).
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import UpdateContext
from webhook.decision import Verdict, Violation

CODES = frozenset({"approval.recheck_failed"})


def check(ctx: UpdateContext) -> Iterator[Violation]:
    evaluation = ctx.recheck
    if evaluation is None or ctx.policy is None or ctx.sub_resource != "approval":
        return
    if evaluation.verdict is Verdict.ALLOWED:
        return
    yield Violation(
        code="approval.recheck_failed",
        field="spec.request",
        message=f"the CSR no longer passes policy {ctx.policy.name!r} "
        f"({len(evaluation.violations)} violation(s) follow)",
    )
    yield from evaluation.violations
