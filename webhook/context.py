"""What a check sees: one context type per operation, CreateContext and UpdateContext.

Built by the engine from typed values only (webhook.resource, webhook.x509.csr, the policy);
shared by every check module (checks never import each other). Plain values: a check reads
fields (UpdateContext.added is the one helper).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from webhook.decision import Decision
from webhook.facts import NO_CLUSTER, NO_FACTS_NEEDED, ClusterFacts, ReviewFacts
from webhook.matching.variables import Requester
from webhook.policy.model import Rule, SignerPolicy
from webhook.resource import CSRObject
from webhook.x509.csr import ParsedCSR


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateContext:
    """A CREATE of a CSR under the policy governing its signer. `rules` are the policy's rules
    that apply to the requester; `rule` is the one a rule check judges, None for the policy's
    own checks (structure, deny lists, requester), which run once per review. `facts` answers
    what the cluster knows (Nodes, pending CSRs); `admission` is False when a stored CSR is
    judged again (approval recheck, issuance, the approval controller). `asked` is what the
    review needs of `facts`, asked once by the engine: the requester's Node when an applicable
    rule has `constraints.node`, its pending CSRs when one has `maxPending` at admission."""

    csr: ParsedCSR
    obj: CSRObject
    requester: Requester
    variables: Mapping[str, str]
    policy: SignerPolicy
    rules: tuple[Rule, ...]
    rule: Rule | None = None
    facts: ClusterFacts = NO_CLUSTER
    admission: bool = True
    asked: ReviewFacts = NO_FACTS_NEEDED


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateContext:
    """An UPDATE of a CSR: `caller` is request.userInfo (approver on /approval, signer on
    /status). Every gate judges the stored spec, `old`'s (a spec change is a transition
    violation); `new` contributes only its status. `requester` is who asked for the
    certificate (`old.username`). `recheck` is the CREATE evaluation of the stored spec, made
    when the update approves under `approval.recheck` or issues a certificate; `rule` is the
    rule that permits the CSR now (None when none does or there is no policy) and `csr` the
    parsed stored request, both only when a certificate is issued."""

    sub_resource: str
    old: CSRObject
    new: CSRObject
    caller: Requester
    requester: Requester
    policy: SignerPolicy | None
    recheck: Decision | None = None
    rule: Rule | None = None
    csr: ParsedCSR | None = None

    def added(self, kind: str) -> bool:
        """True when the update adds a condition of this type."""
        before = sum(c.type == kind for c in self.old.conditions)
        return sum(c.type == kind for c in self.new.conditions) > before
