"""Who may create a PodCertificateRequest and for which pod (docs/policy-reference.md,
`spec.podCertificates`): the creator against `requesters` (a node only for its own
spec.nodeName), the pod's namespace and service account against `pods`, maxExpirationSeconds
against the cap, and every unverifiedUserAnnotations key and value against `annotations`.

Codes: pod.requester_not_permitted, pod.node_mismatch, pod.namespace_not_allowed,
pod.service_account_not_allowed, lifetime.too_long, pod.annotation_not_allowed,
pod.annotation_value_not_allowed.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.decision import Violation
from webhook.matching.patterns import first_match
from webhook.matching.shown import show_patterns
from webhook.pod_context import DEFAULT_MAX_EXPIRATION_SECONDS, PodCreateContext
from webhook.text import show

CODES = frozenset(
    {
        "pod.requester_not_permitted",
        "pod.node_mismatch",
        "pod.namespace_not_allowed",
        "pod.service_account_not_allowed",
        "lifetime.too_long",
        "pod.annotation_not_allowed",
        "pod.annotation_value_not_allowed",
    }
)

_NODE_PREFIX = "system:node:"
_SA_PREFIX = "system:serviceaccount:"
_ANNOTATIONS = "spec.unverifiedUserAnnotations"


def _creator(ctx: PodCreateContext) -> Iterator[Violation]:
    creator = ctx.creator
    if not ctx.pods.requesters.admits(creator):
        yield Violation(
            code="pod.requester_not_permitted",
            field="request.userInfo.username",
            message=f"{show(creator.username)} may not create PodCertificateRequests for signer "
            f"{show(ctx.pcr.signer_name)}: not admitted by podCertificates.requesters of policy "
            f"{ctx.policy.name!r}",
        )
    # A node may ask only for pods bound to it (NodeRestriction checks this too, when enabled).
    # Any `system:node:` name counts, in the nodes group or not: `nodes_only` policies define
    # ${node} at /status from spec.nodeName, which this makes the creator's own name.
    node = creator.username.removeprefix(_NODE_PREFIX)
    if creator.username.startswith(_NODE_PREFIX) and node != ctx.pcr.node_name:
        yield Violation(
            code="pod.node_mismatch",
            field="spec.nodeName",
            message=f"node {show(node)} may not ask for a pod on node {show(ctx.pcr.node_name)}",
        )


def _pod(ctx: PodCreateContext) -> Iterator[Violation]:
    pcr, pods = ctx.pcr, ctx.pods
    if pods.namespaces is not None and first_match(pods.namespaces, pcr.namespace) is None:
        yield Violation(
            code="pod.namespace_not_allowed",
            field="metadata.namespace",
            message=f"namespace {show(pcr.namespace)} matches none of podCertificates.pods."
            f"namespaces {show_patterns(pods.namespaces, {})}",
        )
    account = f"{_SA_PREFIX}{pcr.namespace}:{pcr.service_account_name}"
    accounts = pods.service_accounts
    if accounts is not None and first_match(accounts, account) is None:
        yield Violation(
            code="pod.service_account_not_allowed",
            field="spec.serviceAccountName",
            message=f"service account {show(f'{pcr.namespace}/{pcr.service_account_name}')} "
            f"matches none of podCertificates.pods.serviceAccounts {show_patterns(accounts, {})}",
        )


def _lifetime(ctx: PodCreateContext) -> Iterator[Violation]:
    cap = ctx.pods.max_expiration_seconds
    asked = ctx.pcr.max_expiration_seconds
    seconds = DEFAULT_MAX_EXPIRATION_SECONDS if asked is None else asked
    if cap is not None and seconds > cap:
        defaulted = " (the API server's default)" if asked is None else ""
        yield Violation(
            code="lifetime.too_long",
            field="spec.maxExpirationSeconds",
            message=f"{seconds}s{defaulted}; podCertificates.maxExpirationSeconds allows at "
            f"most {cap}s",
        )


def _annotations(ctx: PodCreateContext) -> Iterator[Violation]:
    allowed = ctx.pods.annotations
    for key, value in ctx.pcr.annotations.items():
        field = f"{_ANNOTATIONS}[{show(key, 64)}]"
        patterns = allowed.get(key)
        if patterns is None:
            known = ", ".join(show(k, 64) for k in sorted(allowed)[:8]) or "none"
            yield Violation(
                code="pod.annotation_not_allowed",
                field=field,
                message=f"annotation key {show(key)} is not allowed (allowed: {known})",
            )
        elif first_match(patterns, value) is None:
            yield Violation(
                code="pod.annotation_value_not_allowed",
                field=field,
                message=f"value {show(value)} of {show(key)} matches none of "
                f"{show_patterns(patterns, {})}",
            )


def check(ctx: PodCreateContext) -> Iterator[Violation]:
    yield from _creator(ctx)
    yield from _pod(ctx)
    yield from _lifetime(ctx)
    yield from _annotations(ctx)
