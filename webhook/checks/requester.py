"""`requesters` (docs/policy-reference.md §5.2): a CREATE is judged only by the rules that admit its
requester; with none, the requester may not use the signer at all.

Codes: requester.not_permitted.
"""

from __future__ import annotations

from webhook.context import CreateContext
from webhook.decision import Violation

CODES = frozenset({"requester.not_permitted"})


def check(ctx: CreateContext) -> tuple[Violation, ...]:
    if ctx.rules:
        return ()
    return (
        Violation(
            code="requester.not_permitted",
            field="spec.username",
            message=f"requester {ctx.requester.username!r} may not request certificates "
            f"from signer {ctx.obj.signer_name!r}",
        ),
    )
