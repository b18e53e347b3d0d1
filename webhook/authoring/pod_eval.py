"""`csr-webhook eval` for PodCertificateRequests: read one from a manifest, a List item or a
CREATE AdmissionReview, and decide it as the server's /validate does.

A request carries no creator (a CSR has spec.username; a PCR has none): unless `--as` says
otherwise, it is judged as created by the node it names, `system:node:<spec.nodeName>` in
group system:nodes, which is who creates it in a cluster (the kubelet, under NodeRestriction).
A request read from a manifest goes through the simulator's CREATE (webhook/authoring/
pod_reviews.py: status cleared, name from generateName, namespace `default` when absent, as
kubectl would send it), then parse_review -> engine.evaluate, the server's own path.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.admission import AdmissionRequest, parse_review
from webhook.authoring import pod_reviews, reviews
from webhook.decision import Decision
from webhook.engine import EngineOptions, evaluate
from webhook.errors import InputError, ReviewError
from webhook.matching.variables import Requester
from webhook.policy.model import PolicySet

KIND = pod_reviews.KIND
LIST_KIND = "PodCertificateRequestList"
API_VERSIONS = tuple(f"{pod_reviews.GROUP}/{v}" for v in pod_reviews.VERSIONS)
NODES_GROUP = "system:nodes"
DEFAULT_NAMESPACE = "default"  # kubectl's, for a manifest without metadata.namespace


@dataclass(frozen=True, slots=True, kw_only=True)
class PodRequest:
    """One PodCertificateRequest of the input: the object to create (or the review given)."""

    namespace: str
    signer_name: str
    node_name: str
    obj: Mapping[str, Any] | None  # from a manifest or a List
    review: Mapping[str, Any] | None = None  # a CREATE AdmissionReview given as input
    caller: Requester | None = None  # the review's userInfo, judged as is unless --as


def node_creator(node_name: str) -> Requester:
    """The node named in spec.nodeName, as the API server authenticates its kubelet."""
    return Requester(f"system:node:{node_name}", (NODES_GROUP, "system:authenticated"))


def is_pod_request(raw: Mapping[str, Any]) -> bool:
    return raw.get("kind") == KIND


def read_pod_request(raw: object, where: str, label: str) -> PodRequest:
    """A PodCertificateRequest object of the input; raises InputError naming where it is."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: {label} must be an object")
    api = raw.get("apiVersion")
    if api is not None and api not in API_VERSIONS:
        shown = " or ".join(API_VERSIONS)
        raise InputError(f"{where}: {label} has apiVersion {api!r}; only {shown}")
    obj = copy.deepcopy(raw)
    obj.setdefault("apiVersion", API_VERSIONS[0])
    obj.setdefault("kind", KIND)
    metadata = obj.get("metadata")
    if metadata is None:
        metadata = obj["metadata"] = {}
    if not isinstance(metadata, dict):
        raise InputError(f"{where}: {label}.metadata must be an object")
    metadata.setdefault("namespace", DEFAULT_NAMESPACE)
    obj.pop("status", None)  # PrepareForCreate clears it
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise InputError(f"{where}: {label}.spec must be an object")
    node = spec.get("nodeName")
    if not isinstance(node, str) or not node:
        # The API server requires it, and it names the creator eval assumes.
        raise InputError(f"{where}: {label}.spec.nodeName must be a node name, got {node!r}")
    item = PodRequest(
        namespace=str(metadata["namespace"]),
        signer_name=str(spec.get("signerName", "")),
        node_name=node,
        obj=obj,
    )
    _parse(item, node_creator(item.node_name), where, label)  # what the server would refuse
    return item


def review_pod_request(raw: Mapping[str, Any], where: str) -> tuple[PodRequest, Requester]:
    """A CREATE AdmissionReview of a PodCertificateRequest, judged as given (its caller)."""
    wire = raw.get("request")
    operation = wire.get("operation") if isinstance(wire, dict) else None
    if operation not in (None, "CREATE"):
        sub = wire.get("subResource") if isinstance(wire, dict) else None
        shown = f"{operation} of podcertificaterequests" + (f"/{sub}" if sub else "")
        raise InputError(f"{where}: eval takes CREATE reviews, got {shown}")
    try:
        request = parse_review(json.dumps(raw, default=str).encode())
    except ReviewError as exc:
        raise InputError(f"{where}: not a usable AdmissionReview: {exc}") from None
    pod = request.pod_request
    if pod is None or request.operation != "CREATE":
        raise InputError(f"{where}: eval takes CREATE reviews of a PodCertificateRequest")
    user = request.user_info
    caller = Requester(user.username, user.groups)
    item = PodRequest(
        namespace=pod.namespace,
        signer_name=pod.signer_name,
        node_name=pod.node_name,
        obj=None,
        review=raw,
        caller=caller,
    )
    return item, caller


def _review(item: PodRequest, requester: Requester) -> Mapping[str, Any]:
    if item.review is not None:
        if requester == item.caller:
            return item.review
        review = copy.deepcopy(dict(item.review))
        review["request"]["userInfo"] = reviews.user_info(requester.username, requester.groups)
        return review
    assert item.obj is not None
    caller = reviews.user_info(requester.username, requester.groups)
    return pod_reviews.create_review(item.obj, caller)


def _parse(item: PodRequest, requester: Requester, where: str, label: str) -> AdmissionRequest:
    try:
        request = parse_review(json.dumps(_review(item, requester), default=str).encode())
    except ReviewError as exc:
        # The review wraps the object: name its fields as the input does.
        raise InputError(f"{where}: {str(exc).replace('request.object', label, 1)}") from None
    return request


def decide_pod(
    item: PodRequest, requester: Requester, policies: PolicySet, options: EngineOptions
) -> Decision:
    """The /validate decision for the request created by `requester`."""
    request = parse_review(json.dumps(_review(item, requester), default=str).encode())
    return evaluate(request, policies, options)
