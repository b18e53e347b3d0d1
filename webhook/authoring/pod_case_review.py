"""The AdmissionReview kube-apiserver sends for a PolicyTest PodCertificateRequest case: the
request made from the case's `pod:` block with the run's keys, then (issue) the /status update
its `issue:` block describes, from the stored request. Builds wire dicts only.
"""

from __future__ import annotations

from typing import Any

from webhook.authoring import pod_keys, pod_reviews
from webhook.authoring.generate import KeyCache
from webhook.authoring.issue import SigningCA
from webhook.authoring.pod_issue import issued_status, stored_status
from webhook.authoring.pod_suite import PodCase, PodSpec


def build_pod_object(pod: PodSpec, keys: KeyCache, *, name: str | None = None) -> dict[str, Any]:
    """The request as its kubelet sends it, its key the run's key of `pod.key`."""
    stub: bytes | None = None
    pkix = proof = None
    if pod.proof_of_possession is not None:
        pkix = pod_keys.pkix_public_key(pod.key, keys)
        proof = pod_keys.proof_of_possession(pod.key, keys, pod.pod_uid)
        if pod.proof_of_possession == "invalid":
            proof = pod_keys.proof_of_possession(pod.key, keys, pod.pod_uid + "-other")
    elif pod.stub != "missing":
        stub = pod_keys.build_stub(pod.key, keys, corrupt_signature=pod.stub == "badSignature")
    return pod_reviews.sent_pcr(
        namespace=pod.namespace,
        signer_name=pod.signer_name,
        pod_name=pod.pod_name,
        pod_uid=pod.pod_uid,
        service_account_name=pod.service_account_name,
        service_account_uid=pod.service_account_uid,
        node_name=pod.node_name,
        node_uid=pod.node_uid,
        stub=stub,
        pkix_public_key=pkix,
        proof_of_possession=proof,
        max_expiration_seconds=pod.max_expiration_seconds,
        annotations=pod.annotations,
        version=pod.api_version,
        name=name,
    )


def build_pod_review(
    case: PodCase,
    keys: KeyCache,
    *,
    signer: SigningCA,
    trusted: SigningCA,
    other_keys: KeyCache,
) -> dict[str, Any]:
    """`signer` signs an issue case's chain (the suite's CA or the rogue one); `trusted` signs
    a stored terminal status; `other_keys` hold keys no request of the run was made with."""
    sent = build_pod_object(case.pod, keys, name=f"policytest-{case.index + 1}")
    if case.operation == "create":
        return pod_reviews.create_review(sent, case.requester)
    assert case.issue is not None and case.actor is not None
    created = pod_reviews.created_pcr(sent)
    # The leaf is issued to the request's key: the stub's, or the run's key of that type.
    stub = pod_keys.build_stub(case.pod.key, keys)
    max_expiration = created["spec"]["maxExpirationSeconds"]
    old_status = stored_status(case.issue.stored, stub, max_expiration, trusted, other_keys)
    stored = pod_reviews.stored_pcr(created, old_status, resource_version="1")
    status = issued_status(case.issue, stub, max_expiration, signer, other_keys)
    return pod_reviews.status_review(stored, status, case.actor)
