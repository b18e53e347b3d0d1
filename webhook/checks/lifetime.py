"""constraints.lifetime (docs/policy-reference.md §3.6) against spec.expirationSeconds.

Codes: lifetime.missing (max set and no expirationSeconds: the signer would choose its own,
possibly longer, default), lifetime.too_long, lifetime.too_short. Clamping is the mutating
endpoint's job; here an excessive value is denied whatever onExceed says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.policy.model import Lifetime

CODES = frozenset({"lifetime.missing", "lifetime.too_long", "lifetime.too_short"})

_FIELD = "spec.expirationSeconds"


def human(seconds: int) -> str:
    """`90000` -> `25h (90000s)`, for messages."""
    if seconds % 86400 == 0:
        text = f"{seconds // 86400}d"
    elif seconds % 3600 == 0:
        text = f"{seconds // 3600}h"
    elif seconds % 60 == 0:
        text = f"{seconds // 60}m"
    else:
        return f"{seconds}s"
    return f"{text} ({seconds}s)"


def check(ctx: CreateContext) -> Iterable[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    lifetime = rule.constraints.lifetime
    requested = ctx.obj.expiration_seconds
    if (
        requested is not None
        and (lifetime.max is None or requested <= lifetime.max)
        and (lifetime.min is None or requested >= lifetime.min)
    ):
        return ()  # within bounds: no generator
    return _violations(lifetime, requested)


def _violations(lifetime: Lifetime, requested: int | None) -> Iterator[Violation]:
    if requested is None:
        if lifetime.max is not None:
            yield Violation(
                code="lifetime.missing",
                field=_FIELD,
                message="expirationSeconds is required: the signer's own default may exceed "
                f"the maximum of {human(lifetime.max)}",
            )
        return
    if lifetime.max is not None and requested > lifetime.max:
        yield Violation(
            code="lifetime.too_long",
            field=_FIELD,
            message=f"expirationSeconds {human(requested)} exceeds the maximum of "
            f"{human(lifetime.max)}",
        )
    if lifetime.min is not None and requested < lifetime.min:
        yield Violation(
            code="lifetime.too_short",
            field=_FIELD,
            message=f"expirationSeconds {human(requested)} is below the minimum of "
            f"{human(lifetime.min)}",
        )
