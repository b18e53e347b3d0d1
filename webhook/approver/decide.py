"""What the approval controller does with one stored CSR: approve, deny, leave it, or retry.

The verdict is the engine's CREATE evaluation of the stored object (identity from its spec,
admission=False: a stored CSR is judged again, as the approval recheck does). Only a clean
pass (verdict allowed, no violation) is approved, and only a denial with no unknown cluster
fact is denied; a violation whose code ends in `.unknown` means a fact could not be told
(the cache has not synced), which is a reason to ask again later, never to deny. Pure: no
I/O, no Kubernetes client.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from webhook.decision import Decision, Verdict
from webhook.engine import EngineOptions, evaluate_create
from webhook.facts import ClusterFacts
from webhook.matching.variables import Requester
from webhook.policy.model import PolicySet
from webhook.resource import CSRObject

APPROVED_REASON = "AutoApproved"
DENIED_REASON = "PolicyViolation"
# A condition message is stored in every CSR's status; a CSR with thousands of bad SANs must
# not make it unbounded. Cut on a violation's boundary, saying how many were left out.
MAX_MESSAGE = 2048


class Action(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    LEAVE = "leave"  # the policy's approval.auto does not act on this outcome
    RETRY = "retry"  # a cluster fact is unknown: evaluate again later


# The `result` label of the decisions metric, per action.
RESULTS = {
    Action.APPROVE: "approved",
    Action.DENY: "denied",
    Action.LEAVE: "left_pending",
    Action.RETRY: "unknown",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    action: Action
    decision: Decision
    message: str  # the condition's message (approve, deny) or why nothing is done

    @property
    def result(self) -> str:
        return RESULTS[self.action]

    @property
    def codes(self) -> list[str]:
        return sorted({v.code for v in self.decision.violations})


def is_finished(obj: CSRObject) -> bool:
    """A CSR with any Approved, Denied or Failed condition is no longer the controller's."""
    return any(c.type in ("Approved", "Denied", "Failed") for c in obj.conditions)


def is_automatic(obj: CSRObject, policies: PolicySet) -> bool:
    policy = policies.select(obj.signer_name)
    return policy is not None and policy.approval.auto is not None


def decide(
    obj: CSRObject, policies: PolicySet, options: EngineOptions, facts: ClusterFacts
) -> Outcome | None:
    """None when the CSR is not the controller's to decide (finished, or its signer's policy
    has no approval.auto)."""
    policy = policies.select(obj.signer_name)
    if is_finished(obj) or policy is None or policy.approval.auto is None:
        return None
    auto = policy.approval.auto
    decision = evaluate_create(
        obj, Requester(obj.username, obj.groups), policies, options, facts=facts, admission=False
    )
    unknown = [v for v in decision.violations if v.code.endswith(".unknown")]
    if unknown:
        why = "; ".join(f"{v.code}: {v.message}" for v in unknown)
        return Outcome(action=Action.RETRY, decision=decision, message=why)
    if decision.verdict is Verdict.ALLOWED:
        rule = decision.rules[0] if decision.rules else ""
        if not auto.approve:
            return Outcome(
                action=Action.LEAVE,
                decision=decision,
                message=f"policy {policy.name!r} allows it; approval.auto.approve is false",
            )
        return Outcome(
            action=Action.APPROVE,
            decision=decision,
            message=(
                f"csr-webhook approve: policy {policy.name!r} rule {rule!r} allows this request"
            ),
        )
    if decision.allowed:
        return Outcome(
            action=Action.LEAVE,
            decision=decision,
            message=(
                f"policy {policy.name!r} ({policy.enforcement.value}) reports violations; "
                "only a CSR with none is approved automatically"
            ),
        )
    if not auto.deny:
        return Outcome(
            action=Action.LEAVE,
            decision=decision,
            message=f"policy {policy.name!r} denies it; approval.auto.deny is false",
        )
    return Outcome(action=Action.DENY, decision=decision, message=denial_message(decision))


def denial_message(decision: Decision) -> str:
    head = f"csr-webhook approve: policy {decision.policy!r} denies this request: "
    parts: list[str] = []
    used = len(head)
    violations = decision.violations
    for index, v in enumerate(violations):
        part = f"{v.code}: {v.field}: {v.message}"
        left = len(violations) - index
        tail = f"; … ({left} more)"
        if used + len(part) + 2 + len(tail) > MAX_MESSAGE and index:
            return head + "; ".join(parts) + tail
        parts.append(part[: MAX_MESSAGE - len(head) - len(tail)])
        used += len(part) + 2
    return head + "; ".join(parts)
