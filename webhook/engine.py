"""Evaluate one typed admission request against the policy set and return a Decision.

CREATE: select the policy -> parse spec.request (cached) -> the CREATE_CHECKS (the policy's
own once, the rule checks per applicable rule) -> combine -> enforce. UPDATE: the
UPDATE_CHECKS over one UpdateContext. Every check is `check(context) -> Iterator[Violation]`.
Pure: no Flask, no metrics, no I/O. The request arrives parsed (webhook.admission), so nothing
here raises for a review: bad input becomes violations; only bugs raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from webhook import sankinds
from webhook.addresses import comparable_san
from webhook.admission import AdmissionRequest
from webhook.checks import (
    approval,
    deny,
    extensions,
    issuance,
    keys,
    lifetime,
    node,
    pending,
    recheck,
    requester,
    sans,
    signature,
    structure,
    subject,
    transitions,
    usages,
    volume,
)
from webhook.context import CreateContext, UpdateContext
from webhook.decision import Decision, Verdict, Violation, enforced
from webhook.facts import NO_CLUSTER, NO_FACTS_NEEDED, ClusterFacts, gather
from webhook.matching.variables import Requester, template_variables
from webhook.mutation import lifetime_patch
from webhook.parse_cache import parse_request
from webhook.pod_engine import evaluate_pod
from webhook.policy.model import PolicySet, Rule, SignerPolicy
from webhook.resource import CSRObject
from webhook.verdicts import ENFORCED_VERDICT, unmatched_signer
from webhook.x509.csr import ParsedCSR

CreateCheck = Callable[[CreateContext], Iterable[Violation]]
UpdateCheck = Callable[[UpdateContext], Iterable[Violation]]

# A CSR with more SANs or subject attributes than any policy allows is refused on that alone,
# before any per-entry check (its cost stays that of its parse).
VOLUME_CHECKS: tuple[CreateCheck, ...] = (volume.check,)
# The policy's own checks, once per review; their violations name no rule.
POLICY_CHECKS: tuple[CreateCheck, ...] = (structure.check, deny.check, requester.check)
# Per applicable rule; lifetime last so the mutating endpoint can ask "would this rule permit
# it apart from lifetime?" (SHAPE_CHECKS). The node binding and the pending quota need cluster
# facts, which the mutating endpoint does without: they are rule checks but no shape checks.
SHAPE_CHECKS: tuple[CreateCheck, ...] = (
    subject.check,
    sans.check,
    usages.check,
    extensions.check,
    keys.check,
    signature.check,
)
RULE_CHECKS: tuple[CreateCheck, ...] = (
    *SHAPE_CHECKS,
    node.check,
    pending.check,
    lifetime.check,
)
CREATE_CHECKS: tuple[CreateCheck, ...] = (*VOLUME_CHECKS, *POLICY_CHECKS, *RULE_CHECKS)
# Transition violations deny whatever the enforcement (an illegal update); the gates are the
# policy's and follow its enforcement.
TRANSITION_CHECKS: tuple[UpdateCheck, ...] = (transitions.check,)
GATE_CHECKS: tuple[UpdateCheck, ...] = (approval.check, issuance.check, recheck.check)
UPDATE_CHECKS: tuple[UpdateCheck, ...] = (*TRANSITION_CHECKS, *GATE_CHECKS)
# The engine's own code, for a signer no policy governs.
CODES = frozenset({"signer.unmatched"})


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    allow_unmatched_signers: bool = False


def evaluate(
    request: AdmissionRequest,
    policies: PolicySet,
    options: EngineOptions,
    *,
    facts: ClusterFacts = NO_CLUSTER,
    mutating: bool = False,
) -> Decision:
    """`facts` answers the rules that need the cluster (constraints.node, maxPending); without
    a cluster every such fact is unknown and those rules deny."""
    if request.is_pcr:
        return evaluate_pod(
            request,
            policies,
            allow_unmatched_signers=options.allow_unmatched_signers,
            mutating=mutating,
        )
    if not request.is_csr:
        return Decision(
            verdict=Verdict.IGNORED,
            warnings=(
                f"csr-webhook ignores {request.resource or 'unknown'}.{request.group or 'core'}: "
                "only certificatesigningrequests are checked (webhook misconfigured?)",
            ),
        )
    obj = request.object
    if obj is None:  # not a CREATE or UPDATE, or nothing to judge
        return Decision(verdict=Verdict.ALLOWED)
    caller = Requester(request.user_info.username, request.user_info.groups)
    if request.operation == "UPDATE" and request.old_object is not None:
        old = request.old_object
        return evaluate_update(
            request.sub_resource, old, obj, caller, policies, options, facts=facts
        )
    if mutating:
        return plan_mutation(obj, caller, policies)
    return evaluate_create(obj, Requester(obj.username, obj.groups), policies, options, facts=facts)


def evaluate_create(
    obj: CSRObject,
    requester: Requester,
    policies: PolicySet,
    options: EngineOptions,
    *,
    facts: ClusterFacts = NO_CLUSTER,
    admission: bool = True,
) -> Decision:
    """Decide a CREATE: allowed when no deny list matches and one applicable rule permits.
    `admission` is False when a stored CSR is judged again (approval recheck, issuance, the
    approval controller): checks that count the requester's other CSRs apply only at CREATE."""
    policy = policies.select(obj.signer_name)
    if policy is None:
        return unmatched_signer(obj.signer_name, allow=options.allow_unmatched_signers)
    verdict = ENFORCED_VERDICT[policy.enforcement]
    csr = parse_request(obj.request)
    if isinstance(csr, Violation):
        return enforced(verdict, policy.name, (), [csr])
    context = _policy_context(csr, obj, requester, policy, facts=facts, admission=admission)
    # Every rule reports the same SAN or subject value again: keep each violation once, in
    # the order first found (a dict, so merging stays linear in the number found).
    found: dict[Violation, None] = {}
    for check in VOLUME_CHECKS:
        for violation in check(context):
            found[violation] = None
    if found:
        return enforced(verdict, policy.name, (), list(found))
    for check in POLICY_CHECKS:
        for violation in check(context):
            found[violation] = None
    if not context.rules:
        return enforced(verdict, policy.name, (), list(found))
    names: list[str] = []
    permitting: list[str] = []
    reported_by: dict[Violation, tuple[str, ...]] = {}
    for rule in context.rules:
        judged = _judged_by(context, rule)
        reported: dict[Violation, None] = {}
        for check in RULE_CHECKS:
            for violation in check(judged):
                reported[violation] = None
        names.append(rule.name)
        if not reported:
            permitting.append(rule.name)
        for violation in reported:
            reported_by[violation] = (*reported_by.get(violation, ()), rule.name)
    if permitting and not found:
        return Decision(verdict=Verdict.ALLOWED, policy=policy.name, rules=(permitting[0],))
    found.update(dict.fromkeys(reported_by))
    return enforced(verdict, policy.name, tuple(names), list(found), reported_by)


def _policy_context(
    csr: ParsedCSR,
    obj: CSRObject,
    requester: Requester,
    policy: SignerPolicy,
    *,
    facts: ClusterFacts = NO_CLUSTER,
    admission: bool = True,
) -> CreateContext:
    """The context of the policy's own checks: the rules that apply to `requester` (the spec's
    identity at /validate, the caller's at /mutate); a rule check sees it with `rule` set."""
    admitted: list[Rule] = []
    need_node = need_pending = refuses_shared = False
    for rule in policy.rules:
        if rule.requesters is not None and not rule.requesters.admits(requester):
            continue
        admitted.append(rule)
        if rule.constraints.node is not None:
            need_node = True
            refuses_shared = refuses_shared or _refuses_shared(rule)
        if rule.constraints.max_pending is not None:
            need_pending = admission
    rules = tuple(admitted)
    variables = template_variables(requester, obj.signer_name)
    # The cluster is asked once per review, not per rule: every rule judges the same Node and
    # the same pending count; a review that needs nothing of it asks nothing.
    asked = NO_FACTS_NEEDED
    if need_node or need_pending:
        asked = gather(
            facts,
            variables.get("node"),
            obj.signer_name,
            obj.username,
            obj.name,
            need_node=need_node,
            need_pending=need_pending,
            san_keys=_san_keys(csr) if refuses_shared else (),
        )
    return CreateContext(
        csr=csr,
        obj=obj,
        requester=requester,
        variables=variables,
        policy=policy,
        rules=rules,
        facts=facts,
        admission=admission,
        asked=asked,
    )


def _judged_by(context: CreateContext, rule: Rule) -> CreateContext:
    """The policy's context as a rule check sees it (dataclasses.replace, without its
    per-call introspection of the fields)."""
    return CreateContext(
        csr=context.csr,
        obj=context.obj,
        requester=context.requester,
        variables=context.variables,
        policy=context.policy,
        rules=context.rules,
        rule=rule,
        facts=context.facts,
        admission=context.admission,
        asked=context.asked,
    )


def _refuses_shared(rule: Rule) -> bool:
    """The rule binds SANs to the Node's addresses and refuses those other Nodes list too."""
    binding = rule.constraints.node
    return binding is not None and bool(binding.sans_from_addresses) and not binding.allow_shared


def _san_keys(csr: ParsedCSR) -> Iterator[str]:
    """The comparable form of every DNS and IP SAN (webhook.addresses.comparable_san)."""
    for kind in (sankinds.DNS, sankinds.IP):
        for value in getattr(csr, kind.attribute):
            key = comparable_san(value, ip=kind is sankinds.IP)
            if key is not None:
                yield key


def evaluate_update(  # noqa: PLR0917 - the six facts of an update, all required
    sub_resource: str,
    old: CSRObject,
    new: CSRObject,
    caller: Requester,
    policies: PolicySet,
    options: EngineOptions,
    *,
    facts: ClusterFacts = NO_CLUSTER,
) -> Decision:
    """Transitions for every signer; approval and issuance gates where a policy governs. The
    gates judge the stored spec (`old`): a spec change is itself a transition violation, and
    must not launder a self-approval or raise an issuance bound."""
    policy = policies.select(old.signer_name)
    label = policy.name if policy is not None else "unmatched"
    requester = Requester(old.username, old.groups)
    before = sum(c.type == "Approved" for c in old.conditions)
    approving = sum(c.type == "Approved" for c in new.conditions) > before
    # The full CREATE evaluation is needed only for the approval recheck or to judge a newly
    # issued certificate (its rule's limits); other updates skip it.
    rechecking = (
        policy is not None and sub_resource == "approval" and policy.approval.recheck and approving
    )
    issuing = (
        policy is not None
        and sub_resource == "status"
        and bool(new.certificate)
        and new.certificate != old.certificate
    )
    evaluation = (
        evaluate_create(old, requester, policies, options, facts=facts, admission=False)
        if rechecking or issuing
        else None
    )
    parsed = parse_request(old.request) if issuing else None
    context = UpdateContext(
        sub_resource=sub_resource,
        old=old,
        new=new,
        caller=caller,
        requester=requester,
        policy=policy,
        recheck=evaluation,
        rule=_permitting_rule(policy, evaluation) if issuing else None,
        csr=parsed if not isinstance(parsed, Violation) else None,
    )
    broken: list[Violation] = []
    for check in TRANSITION_CHECKS:
        broken.extend(check(context))
    violations: list[Violation] = []
    for check in GATE_CHECKS:
        violations.extend(check(context))
    rules = evaluation.rules if evaluation is not None else ()
    reported_by = evaluation.reported_by if evaluation is not None else {}
    if broken:
        return _illegal(new, label, rules, [*broken, *violations], reported_by)
    if not violations or policy is None:
        return Decision(verdict=Verdict.ALLOWED, policy=label, rules=rules)
    # Approval and issuance violations are the policy's; the recheck's keep their rules.
    verdict = ENFORCED_VERDICT[policy.enforcement]
    return enforced(verdict, policy.name, rules, violations, reported_by)


def _illegal(
    new: CSRObject,
    label: str,
    rules: tuple[str, ...],
    violations: list[Violation],
    reported_by: Mapping[Violation, tuple[str, ...]],
) -> Decision:
    """Transition violations deny whatever the policy's enforcement says."""
    return Decision(
        verdict=Verdict.DENIED,
        policy=label,
        rules=rules,
        violations=tuple(violations),
        summary=f"illegal update of CSR {new.name!r}",
        reported_by=reported_by,
    )


def _permitting_rule(policy: SignerPolicy | None, evaluation: Decision | None) -> Rule | None:
    """The rule that permits the CSR now, if any; without one the issuance check falls back to
    the strictest limits of the policy (webhook/checks/issuance.py)."""
    if policy is None or evaluation is None:
        return None
    if evaluation.verdict is Verdict.ALLOWED and evaluation.rules:
        return next((r for r in policy.rules if r.name == evaluation.rules[0]), None)
    return None


def plan_mutation(obj: CSRObject, caller: Requester, policies: PolicySet) -> Decision:
    """Allowed, with the lifetime patch of the first rule that would permit the request apart
    from its lifetime; no patch when there is no such rule. Never denies (docs/policy-reference.md
    §5.3)."""
    policy = policies.select(obj.signer_name)
    if policy is None:
        return Decision(verdict=Verdict.ALLOWED, policy="unmatched")
    csr = parse_request(obj.request)
    if isinstance(csr, Violation):
        return Decision(verdict=Verdict.ALLOWED, policy=policy.name)
    context = _policy_context(csr, obj, caller, policy)
    if any(volume.check(context)):
        return Decision(verdict=Verdict.ALLOWED, policy=policy.name)
    for rule in context.rules:
        judged = _judged_by(context, rule)
        if any(v for check in SHAPE_CHECKS for v in check(judged)):
            continue
        patch = lifetime_patch(obj, rule.constraints.lifetime)
        return Decision(
            verdict=Verdict.ALLOWED,
            policy=policy.name,
            rules=(rule.name,),
            patch=tuple(patch) if patch else None,
        )
    return Decision(verdict=Verdict.ALLOWED, policy=policy.name)
