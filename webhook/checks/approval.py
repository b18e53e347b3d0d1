"""The approval gate on /approval for signers with a policy (docs/policy-reference.md §5.6): who may
add Approved or Denied, and no self-approval by the requester of the stored spec (`oldObject`: a
spec rewritten in the update is a transition violation and must not launder one). The recheck of the
CSR itself is webhook/checks/recheck.py's.

Codes: approval.not_approver, approval.self_approval.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import UpdateContext
from webhook.decision import Violation

CODES = frozenset({"approval.not_approver", "approval.self_approval"})


def check(ctx: UpdateContext) -> Iterator[Violation]:
    if ctx.policy is None or ctx.sub_resource != "approval":
        return
    approval = ctx.policy.approval
    caller = ctx.caller.username
    for kind in ("Approved", "Denied"):
        if not ctx.added(kind):
            continue
        if approval.approvers is not None and not approval.approvers.includes(ctx.caller):
            yield Violation(
                code="approval.not_approver",
                field="status.conditions",
                message=f"{caller!r} may not add {kind} for signer {ctx.old.signer_name!r}: "
                f"not an approver of policy {ctx.policy.name!r}",
            )
        if kind == "Approved" and not approval.self_approval and caller == ctx.old.username:
            yield Violation(
                code="approval.self_approval",
                field="status.conditions",
                message=f"{caller!r} may not approve its own CSR (selfApproval: Deny)",
            )
