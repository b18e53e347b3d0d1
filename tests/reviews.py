"""AdmissionReviews built the way kube-apiserver builds them for CSRs.

Source: staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/request/admissionreview.go
(CreateV1AdmissionReview) and pkg/registry/certificates/certificates/strategy.go: a validating
webhook sees the CREATE object after PrepareForCreate (spec.username/uid/groups from the
authenticated user, status {}); a mutating webhook sees it as the client sent it.
"""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any

CSR_KIND = {"group": "certificates.k8s.io", "version": "v1", "kind": "CertificateSigningRequest"}
CSR_RESOURCE = {
    "group": "certificates.k8s.io",
    "version": "v1",
    "resource": "certificatesigningrequests",
}


def user_info(
    username: str,
    groups: list[str] | None = None,
    uid: str = "",
    extra: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """authentication/v1 UserInfo; uid, groups and extra are omitempty. Service account tokens
    and client certificates carry extra `authentication.kubernetes.io/credential-id`."""
    info: dict[str, Any] = {"username": username}
    if uid:
        info["uid"] = uid
    if groups:  # omitempty in the Go type
        info["groups"] = list(groups)
    if extra:
        info["extra"] = {key: list(values) for key, values in extra.items()}
    return info


DERIVED = "derived"  # csr_object(uid=...): a stable uid made from the username


def csr_object(
    request_pem: bytes,
    *,
    name: str | None = "csr-1",
    generate_name: str | None = None,
    signer_name: str = "example.com/signer",
    usages: list[str] | None = None,
    expiration_seconds: int | None = None,
    username: str | None = "alice",
    groups: list[str] | None = None,
    uid: str | None = DERIVED,
    extra: dict[str, list[str]] | None = None,
    labels: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CSR as stored. spec.uid and spec.extra copy the requester's (absent when it has
    none: bootstrap tokens, client certificates and impersonated users have no uid)."""
    spec: dict[str, Any] = {
        "request": base64.b64encode(request_pem).decode(),
        "signerName": signer_name,
        "usages": list(usages if usages is not None else ["digital signature", "client auth"]),
    }
    if expiration_seconds is not None:
        spec["expirationSeconds"] = expiration_seconds
    if username is not None:
        spec["username"] = username
        if uid == DERIVED:
            spec["uid"] = str(uuid.uuid5(uuid.NAMESPACE_DNS, username))
        elif uid:
            spec["uid"] = uid
        spec["groups"] = list(groups if groups is not None else ["system:authenticated"])
        if extra:
            spec["extra"] = {key: list(values) for key, values in extra.items()}
    metadata: dict[str, Any] = {}
    if generate_name:
        metadata["generateName"] = generate_name
    if name:
        metadata["name"] = name
    if labels:
        metadata["labels"] = dict(labels)
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = "2026-11-28T07:00:00Z"
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": metadata,
        "spec": spec,
        "status": status if status is not None else {},
    }


def admission_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    sub_resource: str = "",
    caller: dict[str, Any] | None = None,
    old_object: dict[str, Any] | None = None,
    kind: dict[str, str] | None = None,
    resource: dict[str, str] | None = None,
    name: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    if name is None:
        name = (obj or old_object or {}).get("metadata", {}).get("name", "")
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": kind or CSR_KIND,
        "resource": resource or CSR_RESOURCE,
        "requestKind": kind or CSR_KIND,
        "requestResource": resource or CSR_RESOURCE,
        # omitempty: a CREATE with metadata.generateName has no name yet
        **({"name": name} if name else {}),
        "operation": operation,
        "userInfo": caller or user_info("alice", ["system:authenticated"]),
        "object": obj,
        "oldObject": old_object,
        "dryRun": dry_run,
        "options": {
            "apiVersion": "meta.k8s.io/v1",
            "kind": {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}.get(
                operation, "DeleteOptions"
            ),
        },
    }
    if dry_run:  # the request's DryRun option, as the API server copies it
        request["options"]["dryRun"] = ["All"]
    if sub_resource:
        request["subResource"] = sub_resource
        request["requestSubResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def create_review(
    request_pem: bytes,
    *,
    requester: str = "alice",
    groups: list[str] | None = None,
    dry_run: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    """A CREATE as the validating webhook sees it: spec identity = the authenticated caller."""
    groups = groups if groups is not None else ["system:authenticated"]
    obj = csr_object(request_pem, username=requester, groups=groups, **spec)
    caller = user_info(
        requester, groups, uid=obj["spec"].get("uid", ""), extra=obj["spec"].get("extra")
    )
    return admission_review(obj, caller=caller, dry_run=dry_run)


def mutating_create_review(
    request_pem: bytes,
    *,
    requester: str = "alice",
    groups: list[str] | None = None,
    dry_run: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    """A CREATE as the mutating webhook sees it: the object as sent (no spec identity, no
    uid or creationTimestamp yet), with the empty `status: {}` the API server's decoding adds."""
    groups = groups if groups is not None else ["system:authenticated"]
    obj = csr_object(request_pem, username=None, **spec)
    obj["metadata"].pop("uid")
    obj["metadata"].pop("creationTimestamp")
    return admission_review(obj, caller=user_info(requester, groups), dry_run=dry_run)


def with_forged_identity(
    review: dict[str, Any], username: str, groups: list[str]
) -> dict[str, Any]:
    forged = copy.deepcopy(review)
    forged["request"]["object"]["spec"].update({"username": username, "groups": groups})
    return forged
