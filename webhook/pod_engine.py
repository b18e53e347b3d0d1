"""Evaluate one typed admission request for a PodCertificateRequest and return a Decision.

CREATE: select the policy by signer -> its `podCertificates` -> the pod CREATE checks (who
creates, which pod, the stub's key, maxExpirationSeconds, annotations). UPDATE: the
transition rules of the resource (immutable spec, terminal status) and, on /status, the
issuer and the issued chain against `podCertificates.issued` and `caBundle`. Pure: no Flask,
no metrics, no I/O. The mutating endpoint allows every PCR unpatched (the spec is immutable
and the API server defaults it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from webhook.admission import AdmissionRequest
from webhook.checks import pod_create, pod_key, pod_status, pod_transitions
from webhook.decision import Decision, Verdict, Violation, enforced
from webhook.matching.variables import Requester
from webhook.pod_context import PodCreateContext, PodUpdateContext, pod_variables
from webhook.pod_stub import read_key
from webhook.policy.model import PolicySet, SignerPolicy
from webhook.resource import PCRObject
from webhook.verdicts import ENFORCED_VERDICT, unmatched_signer

PodCreateCheck = Callable[[PodCreateContext], Iterable[Violation]]
PodUpdateCheck = Callable[[PodUpdateContext], Iterable[Violation]]

POD_CREATE_CHECKS: tuple[PodCreateCheck, ...] = (pod_create.check, pod_key.check)
# Transition violations deny whatever the enforcement; the gates follow the policy's.
POD_TRANSITION_CHECKS: tuple[PodUpdateCheck, ...] = (pod_transitions.check,)
POD_GATE_CHECKS: tuple[PodUpdateCheck, ...] = (pod_status.check,)
# The pod engine's own codes: a signer no policy governs, or one without podCertificates.
CODES = frozenset({"signer.unmatched", "pod.not_governed"})


def evaluate_pod(
    request: AdmissionRequest, policies: PolicySet, *, allow_unmatched_signers: bool, mutating: bool
) -> Decision:
    """The decision for a review whose `is_pcr` is true."""
    pcr = request.pod_request
    if pcr is None:  # not a CREATE or UPDATE, or nothing to judge
        return Decision(verdict=Verdict.ALLOWED)
    if mutating:
        policy = policies.select(pcr.signer_name)
        return Decision(verdict=Verdict.ALLOWED, policy=policy.name if policy else "unmatched")
    writer = Requester(request.user_info.username, request.user_info.groups)
    old = request.old_pod_request
    if request.operation == "UPDATE" and old is not None:
        return evaluate_pod_update(request.sub_resource, old, pcr, writer, policies)
    return evaluate_pod_create(
        pcr, writer, policies, allow_unmatched_signers=allow_unmatched_signers
    )


def _not_governed(pcr: PCRObject, policy: SignerPolicy) -> Violation:
    return Violation(
        code="pod.not_governed",
        field="spec.signerName",
        message=f"policy {policy.name!r} governs signer {pcr.signer_name!r} but has no "
        "podCertificates: it admits no PodCertificateRequest",
    )


def evaluate_pod_create(
    pcr: PCRObject, creator: Requester, policies: PolicySet, *, allow_unmatched_signers: bool
) -> Decision:
    policy = policies.select(pcr.signer_name)
    if policy is None:
        return unmatched_signer(pcr.signer_name, allow=allow_unmatched_signers)
    verdict = ENFORCED_VERDICT[policy.enforcement]
    pods = policy.pod_certificates
    if pods is None:
        return enforced(verdict, policy.name, (), [_not_governed(pcr, policy)])
    context = PodCreateContext(
        pcr=pcr, creator=creator, policy=policy, pods=pods, key=read_key(pcr)
    )
    found: dict[Violation, None] = {}
    for check in POD_CREATE_CHECKS:
        found.update(dict.fromkeys(check(context)))
    if not found:
        return Decision(verdict=Verdict.ALLOWED, policy=policy.name)
    return enforced(verdict, policy.name, (), list(found))


def evaluate_pod_update(
    sub_resource: str, old: PCRObject, new: PCRObject, writer: Requester, policies: PolicySet
) -> Decision:
    """Transitions for every signer; the /status gates where a policy governs. The gates judge
    the stored spec (`old`): a spec change is itself a transition violation."""
    policy = policies.select(old.signer_name)
    label = policy.name if policy is not None else "unmatched"
    pods = policy.pod_certificates if policy is not None else None
    writing = sub_resource == "status" and pod_transitions.status_of(
        old
    ) != pod_transitions.status_of(new)
    gated = writing and pod_transitions.terminal(old) is None
    issuing = gated and pods is not None and any(c.type == "Issued" for c in new.conditions)
    context = PodUpdateContext(
        sub_resource=sub_resource,
        old=old,
        new=new,
        writer=writer,
        policy=policy,
        pods=pods,
        key=read_key(old) if issuing else None,
        variables=pod_variables(old, nodes_only=pods.nodes_only) if issuing and pods else None,
    )
    broken = [v for check in POD_TRANSITION_CHECKS for v in check(context)]
    violations: list[Violation] = []
    if gated and policy is not None and pods is None:
        violations.append(_not_governed(old, policy))
    if gated:
        violations.extend(v for check in POD_GATE_CHECKS for v in check(context))
    if broken:
        return Decision(
            verdict=Verdict.DENIED,
            policy=label,
            violations=(*broken, *violations),
            summary=f"illegal update of PodCertificateRequest {old.namespace}/{old.name}",
        )
    if not violations or policy is None:
        return Decision(verdict=Verdict.ALLOWED, policy=label)
    return enforced(ENFORCED_VERDICT[policy.enforcement], policy.name, (), violations)
