"""Values the decision core produces: a Violation per broken rule, a Decision per review.

Pure data; nothing here knows about HTTP, Flask or metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One broken rule. `code` is stable (tests and metrics key on it)."""

    code: str
    field: str
    message: str


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    WARNED = "warned"
    AUDITED = "audited"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The outcome of evaluating one admission request.

    `policy` is a policy name, "unmatched" (no policy governs the signer) or "none"
    (nothing to evaluate); it is safe to use as a metric label. `reported_by` names the rules
    that reported a violation; one it does not list is the policy's own (structure, deny
    lists, requester, approval, issuance), so messages never blame a rule for it.
    """

    verdict: Verdict
    policy: str = "none"
    rules: tuple[str, ...] = ()
    violations: tuple[Violation, ...] = ()
    warnings: tuple[str, ...] = ()
    patch: tuple[dict[str, object], ...] | None = None
    summary: str = ""
    reported_by: Mapping[Violation, tuple[str, ...]] = field(default_factory=dict)
    # Everything but a denial is admitted (warned and audited ones too); stored, not computed
    # on each read, like every other fact of the decision.
    allowed: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", self.verdict is not Verdict.DENIED)


def enforced(
    verdict: Verdict,
    policy: str,
    rules: tuple[str, ...],
    violations: Sequence[Violation],
    reported_by: Mapping[Violation, tuple[str, ...]] | None = None,
) -> Decision:
    """The Decision for a policy's violations under its enforcement's verdict (denied, warned
    or audited); a warned one repeats each violation as a warning. kubectl prints `admission
    webhook "..." denied the request: <message>`: the summary names who decided and the
    message says what, without a second "denied"."""
    warnings: tuple[str, ...] = ()
    if verdict is Verdict.WARNED:
        warnings = tuple(f"{v.code}: {v.field}: {v.message}" for v in violations)
    return Decision(
        verdict=verdict,
        policy=policy,
        rules=rules,
        violations=tuple(violations),
        warnings=warnings,
        summary=f"policy {policy!r}",
        reported_by=reported_by or {},
    )
