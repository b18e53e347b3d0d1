"""The simulator of kube-apiserver for PodCertificateRequests: the objects and AdmissionReviews
it sends a webhook (the CSR half is webhook/authoring/reviews.py, whose review envelope this
reuses).

Sources (v1.37.2): pkg/kubelet/podcertificate/podcertificatemanager.go (what a kubelet sends:
generateName `req-`, an owner reference to the pod), the v1 and v1beta1 defaults
(maxExpirationSeconds 86400 when absent), pkg/registry/certificates/podcertificaterequest/
strategy.go (PrepareForCreate clears status; /status keeps the stored spec and metadata; the
main resource keeps the stored status). A webhook registered for both versions gets a v1beta1
request as v1beta1 (an exact match wins over matchPolicy: Equivalent), so `version` names the
kind, the resource and the object. Checked key by key against the reviews recorded from a real
kube-apiserver v1.37.2 (tests/test_pod_simulator.py; those were made with kubectl, so the
kubelet's generateName and owner reference are from its source, not a recording). Builds wire
dicts only; judges nothing.
"""

from __future__ import annotations

import base64
import copy
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from webhook.authoring import reviews
from webhook.authoring.pod_fields import track_create, track_status

GROUP = "certificates.k8s.io"
KIND = "PodCertificateRequest"
RESOURCE = "podcertificaterequests"
VERSIONS = ("v1", "v1beta1")
DEFAULT_MAX_EXPIRATION_SECONDS = 86400  # SetObjectDefaults_PodCertificateRequest
GENERATE_NAME = "req-"  # the kubelet's
TERMINAL = ("Issued", "Denied", "Failed")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery names.SimpleNameGenerator


def _b64(data: bytes | None) -> str | None:
    """A Go []byte without omitempty: null when nil, else standard base64."""
    return base64.b64encode(data).decode() if data else None


def sent_pcr(
    *,
    namespace: str,
    signer_name: str,
    pod_name: str,
    pod_uid: str,
    service_account_name: str,
    service_account_uid: str,
    node_name: str,
    node_uid: str,
    stub: bytes | None = None,
    pkix_public_key: bytes | None = None,
    proof_of_possession: bytes | None = None,
    max_expiration_seconds: int | None = None,
    annotations: Mapping[str, str] | None = None,
    version: str = "v1",
    name: str | None = None,
    owner_reference: bool = True,
) -> dict[str, Any]:
    """The request as a kubelet sends it, after the API server's decoding (defaults filled,
    the empty `status: {}`). `name` None: generateName `req-`, as the kubelet does;
    `owner_reference` False: no reference to the pod (a request made with kubectl)."""
    metadata: dict[str, Any] = {"namespace": namespace}
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = GENERATE_NAME
    if owner_reference:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod_uid}
        ]
    spec: dict[str, Any] = {
        "signerName": signer_name,
        "podName": pod_name,
        "podUID": pod_uid,
        "serviceAccountName": service_account_name,
        "serviceAccountUID": service_account_uid,
        "nodeName": node_name,
        "nodeUID": node_uid,
        "maxExpirationSeconds": (
            DEFAULT_MAX_EXPIRATION_SECONDS
            if max_expiration_seconds is None
            else max_expiration_seconds
        ),
    }
    if version == "v1beta1":
        spec["pkixPublicKey"] = _b64(pkix_public_key)
        spec["proofOfPossession"] = _b64(proof_of_possession)
    spec["stubPKCS10Request"] = _b64(stub)
    if annotations:
        spec["unverifiedUserAnnotations"] = dict(annotations)
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": KIND,
        "metadata": metadata,
        "spec": spec,
        "status": {},
    }


def created_pcr(
    sent: Mapping[str, Any], *, now: str | None = None, manager: str = ""
) -> dict[str, Any]:
    """After PrepareForCreate, as the validating webhook sees it: status cleared, a name made
    from generateName, uid and creationTimestamp set, the `manager`'s managedFields entry; no
    resourceVersion yet."""
    created = copy.deepcopy(dict(sent))
    metadata = created["metadata"]
    stamp = now or reviews.now_rfc3339()
    if "generateName" in metadata and "name" not in metadata:
        suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        metadata["name"] = metadata["generateName"] + suffix
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = stamp
    track_create(created, manager, stamp)
    created["status"] = {}
    return created


def stored_pcr(
    created: Mapping[str, Any],
    status: Mapping[str, Any] | None = None,
    *,
    resource_version: str = "100",
) -> dict[str, Any]:
    """The request as it sits in storage with this status, at `resource_version`."""
    stored = copy.deepcopy(dict(created))
    stored["metadata"]["resourceVersion"] = resource_version
    stored["status"] = copy.deepcopy(dict(status or {}))
    return stored


def condition(
    type_: str,
    status: str = "True",
    *,
    reason: str = "",
    message: str = "",
    when: str | None = None,
) -> dict[str, Any]:
    """A metav1.Condition as a signer writes it (lastTransitionTime and reason are required)."""
    result: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastTransitionTime": when or reviews.now_rfc3339(),
        "reason": reason or type_,
    }
    if message:
        result["message"] = message
    return result


def pcr_status(
    conditions: Sequence[Mapping[str, Any]] = (),
    *,
    certificate_chain: str = "",
    not_before: str | None = None,
    begin_refresh_at: str | None = None,
    not_after: str | None = None,
) -> dict[str, Any]:
    """status as written (every field omitempty)."""
    status: dict[str, Any] = {}
    if conditions:
        status["conditions"] = [dict(c) for c in conditions]
    if certificate_chain:
        status["certificateChain"] = certificate_chain
    for key, value in (
        ("notBefore", not_before),
        ("beginRefreshAt", begin_refresh_at),
        ("notAfter", not_after),
    ):
        if value is not None:
            status[key] = value
    return status


def version_of(obj: Mapping[str, Any]) -> str:
    api_version = str(obj.get("apiVersion", f"{GROUP}/v1"))
    return api_version.rpartition("/")[2]


def as_version(obj: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The object as the API server converts it to `version`: v1 has no pkixPublicKey and
    proofOfPossession (a v1beta1 request read through v1 loses its key)."""
    converted = copy.deepcopy(dict(obj))
    converted["apiVersion"] = f"{GROUP}/{version}"
    if version == "v1":
        for key in ("pkixPublicKey", "proofOfPossession"):
            converted.get("spec", {}).pop(key, None)
    elif "spec" in converted:
        converted["spec"].setdefault("pkixPublicKey", None)
        converted["spec"].setdefault("proofOfPossession", None)
    return converted


def admission_review(
    obj: dict[str, Any] | None,
    old: Mapping[str, Any] | None,
    operation: str,
    subresource: str,
    caller: Mapping[str, Any],
    *,
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The AdmissionReview of `operation` on a PodCertificateRequest: the CSR envelope with the
    PCR's kind, resource (in the object's version) and namespace."""
    review = reviews.admission_review(
        obj, old, operation, subresource, caller, dry_run=dry_run, options=options
    )
    either = obj if obj is not None else old or {}
    version = version_of(either)
    kind = {"group": GROUP, "version": version, "kind": KIND}
    resource = {"group": GROUP, "version": version, "resource": RESOURCE}
    request = review["request"]
    request.update(
        kind=kind,
        resource=resource,
        requestKind=dict(kind),
        requestResource=dict(resource),
        namespace=either.get("metadata", {}).get("namespace", ""),
    )
    return review


def create_review(
    sent: Mapping[str, Any],
    caller: Mapping[str, Any],
    *,
    now: str | None = None,
    manager: str = "",
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A CREATE as the validating webhook sees it."""
    obj = created_pcr(sent, now=now, manager=manager)
    return admission_review(obj, None, "CREATE", "", caller, dry_run=dry_run, options=options)


def mutating_create_review(
    sent: Mapping[str, Any],
    caller: Mapping[str, Any],
    *,
    now: str | None = None,
    manager: str = "",
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A CREATE as the mutating webhook sees it: the object as sent (no uid, no
    creationTimestamp, no name made from generateName yet) and its managedFields."""
    obj = copy.deepcopy(dict(sent))
    track_create(obj, manager, now or reviews.now_rfc3339())
    return admission_review(obj, None, "CREATE", "", caller, dry_run=dry_run, options=options)


def status_review(
    old: Mapping[str, Any],
    status: Mapping[str, Any],
    caller: Mapping[str, Any],
    *,
    version: str | None = None,
    now: str | None = None,
    manager: str = "",
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """PUT /status with `status`: spec and metadata are the stored ones (StatusStrategy
    PrepareForUpdate), the status as written, the writer's managedFields entry. `version`:
    the version it is written through (default the stored object's); both objects are
    converted to it."""
    version = version or version_of(old)
    stored = as_version(old, version)
    new = copy.deepcopy(stored)
    new["status"] = copy.deepcopy(dict(status))
    track_status(stored, new, manager, now or reviews.now_rfc3339())
    return admission_review(
        new, stored, "UPDATE", "status", caller, dry_run=dry_run, options=options
    )
