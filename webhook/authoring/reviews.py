"""The one simulator of kube-apiserver for CSRs: the AdmissionReviews it sends a webhook.

Used by `csr-webhook test`, the test vectors and the unit tests, and checked key by key against
reviews recorded from a real kube-apiserver v1.37.2 (tests/test_apiserver_vectors.py). Sources:
apiserver admission/plugin/webhook/request/admissionreview.go (the review), and
pkg/registry/certificates/certificates/strategy.go (PrepareForCreate, PrepareForUpdate of the
main resource, /approval and /status). Builds wire dicts only; judges nothing.
"""

from __future__ import annotations

import base64
import copy
import datetime
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from webhook.authoring.field_manager import track_create, track_update

KIND = {"group": "certificates.k8s.io", "version": "v1", "kind": "CertificateSigningRequest"}
RESOURCE = {
    "group": "certificates.k8s.io",
    "version": "v1",
    "resource": "certificatesigningrequests",
}
CREATED = "2026-11-28T07:00:00Z"  # creationTimestamp of a CSR a caller does not date
DEFAULT_USAGES = ("digital signature", "client auth")
# apimachinery names.SimpleNameGenerator: generateName + 5 of these (no vowels, no 0/1/3)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DECISIONS = ("Approved", "Denied")  # the types /status may not change (preserveConditionInstances)


def now_rfc3339() -> str:
    """The API server's clock, at the one-second resolution of metav1.Time."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_info(
    username: str,
    groups: Sequence[str] = (),
    *,
    uid: str = "",
    extra: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """authentication/v1 UserInfo: uid, groups and extra are omitempty. Service account tokens
    carry a uid; tokens and client certificates carry extra `.../credential-id`."""
    info: dict[str, Any] = {"username": username}
    if uid:
        info["uid"] = uid
    if groups:
        info["groups"] = list(groups)
    if extra:
        info["extra"] = {key: list(values) for key, values in extra.items()}
    return info


# ---- the object -------------------------------------------------------------------------------


def sent_csr(
    request_pem: bytes,
    *,
    name: str | None = "csr-1",
    generate_name: str | None = None,
    signer_name: str = "example.com/signer",
    usages: Sequence[str] | None = None,
    expiration_seconds: int | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The CSR as a client sends it, with the empty `status: {}` the server's decoding adds."""
    metadata: dict[str, Any] = {}
    if generate_name:
        metadata["generateName"] = generate_name
    if name:
        metadata["name"] = name
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    spec: dict[str, Any] = {
        "request": base64.b64encode(request_pem).decode(),
        "signerName": signer_name,
        "usages": list(usages if usages is not None else DEFAULT_USAGES),
    }
    if expiration_seconds is not None:
        spec["expirationSeconds"] = expiration_seconds
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": metadata,
        "spec": spec,
        "status": {},
    }


def created_csr(
    sent: Mapping[str, Any],
    requester: Mapping[str, Any],
    *,
    now: str | None = None,
    manager: str = "",
) -> dict[str, Any]:
    """The object after PrepareForCreate, as the validating webhook sees it: spec identity is
    the authenticated requester (uid and extra only when it has them: bootstrap tokens and
    client certificates have no uid), status cleared, a name made from generateName, and the
    `manager`'s managedFields entry. No resourceVersion: not stored yet."""
    created = copy.deepcopy(dict(sent))
    metadata = created["metadata"]
    stamp = now or now_rfc3339()
    if "generateName" in metadata and "name" not in metadata:
        suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        metadata["name"] = metadata["generateName"] + suffix
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = stamp
    track_create(created, manager, stamp)
    spec = created["spec"]
    for key in ("username", "uid", "groups", "extra"):
        spec.pop(key, None)
    spec["username"] = requester["username"]
    if requester.get("uid"):
        spec["uid"] = requester["uid"]
    if requester.get("groups"):
        spec["groups"] = list(requester["groups"])
    if requester.get("extra"):
        spec["extra"] = {key: list(values) for key, values in requester["extra"].items()}
    created["status"] = {}
    return created


def stored_csr(
    created: Mapping[str, Any],
    *,
    conditions: Sequence[Mapping[str, Any]] = (),
    certificate: bytes | None = None,
    resource_version: str = "100",
) -> dict[str, Any]:
    """The CSR as it sits in storage with this status (conditions stamped at creation time
    where they carry no timestamps), at `resource_version`."""
    stored = copy.deepcopy(dict(created))
    stored["metadata"]["resourceVersion"] = resource_version
    when = stored["metadata"].get("creationTimestamp", CREATED)
    status: dict[str, Any] = {}
    if conditions:
        status["conditions"] = [
            {"lastUpdateTime": when, "lastTransitionTime": when, **c} for c in conditions
        ]
    if certificate:
        status["certificate"] = base64.b64encode(certificate).decode()
    stored["status"] = status
    return stored


def condition(
    type_: str, status: str = "True", *, reason: str = "", message: str = ""
) -> dict[str, Any]:
    """A condition as a client submits it: no timestamps (the strategy fills them)."""
    result: dict[str, Any] = {"type": type_, "status": status}
    if reason:
        result["reason"] = reason
    if message:
        result["message"] = message
    return result


# ---- CREATE -----------------------------------------------------------------------------------


def mutating_create_review(
    sent: Mapping[str, Any],
    caller: Mapping[str, Any],
    *,
    now: str | None = None,
    manager: str = "",
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A CREATE as the mutating webhook sees it: the object as sent (no spec identity, no
    uid or creationTimestamp yet, no name when generateName is given) and its managedFields."""
    obj = copy.deepcopy(dict(sent))
    track_create(obj, manager, now or now_rfc3339())
    return admission_review(obj, None, "CREATE", "", caller, dry_run=dry_run, options=options)


def create_review(
    sent: Mapping[str, Any],
    caller: Mapping[str, Any],
    *,
    now: str | None = None,
    manager: str = "",
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A CREATE as the validating webhook sees it: the object after PrepareForCreate."""
    obj = created_csr(sent, caller, now=now, manager=manager)
    return admission_review(obj, None, "CREATE", "", caller, dry_run=dry_run, options=options)


# ---- UPDATE (PrepareForUpdate of each endpoint) -------------------------------------------------


def update_review(
    old: Mapping[str, Any],
    caller: Mapping[str, Any],
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    finalizers: Sequence[str] | None = None,
    now: str | None = None,
    manager: str = "",
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """PUT/PATCH of the main resource: spec and status are restored from storage, so only
    these metadata changes survive."""
    new = copy.deepcopy(dict(old))
    metadata = new["metadata"]
    if labels is not None:
        metadata["labels"] = dict(labels)
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    if finalizers is not None:
        metadata["finalizers"] = list(finalizers)
    track_update(old, new, manager, "", now or now_rfc3339())
    return admission_review(new, old, "UPDATE", "", caller, dry_run=dry_run, options=options)


def approval_review(
    old: Mapping[str, Any],
    conditions: Sequence[Mapping[str, Any]],
    caller: Mapping[str, Any],
    *,
    now: str | None = None,
    manager: str = "",
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """PUT /approval with `conditions`: kept as submitted, timestamps filled; spec, metadata
    and the stored certificate restored (a submitted certificate is dropped silently)."""
    stamp = now or now_rfc3339()
    new = copy.deepcopy(dict(old))
    status = new.setdefault("status", {})
    _set_conditions(status, [dict(c) for c in conditions], _conditions(old), stamp)
    track_update(old, new, manager, "approval", stamp)
    return admission_review(
        new, old, "UPDATE", "approval", caller, dry_run=dry_run, options=options
    )


def status_review(
    old: Mapping[str, Any],
    caller: Mapping[str, Any],
    *,
    certificate: bytes | None = None,
    conditions: Sequence[Mapping[str, Any]] | None = None,
    now: str | None = None,
    manager: str = "",
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """PUT /status. `certificate`: None keeps the stored one, b"" clears it, else these bytes.
    `conditions`: None keeps the stored list, else the submitted list, with the stored
    Approved/Denied instances put back when their count did not change."""
    stamp = now or now_rfc3339()
    new = copy.deepcopy(dict(old))
    status = new.setdefault("status", {})
    if conditions is not None:
        submitted = [dict(c) for c in conditions]
        for type_ in _DECISIONS:
            submitted = _preserve_instances(submitted, _conditions(old), type_)
        _set_conditions(status, submitted, _conditions(old), stamp)
    if certificate is not None:
        if certificate:
            status["certificate"] = base64.b64encode(certificate).decode()
        else:
            status.pop("certificate", None)  # []byte with omitempty
    track_update(old, new, manager, "status", stamp)
    return admission_review(new, old, "UPDATE", "status", caller, dry_run=dry_run, options=options)


def raw_update_review(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    subresource: str,
    caller: Mapping[str, Any],
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """An UPDATE with exactly these objects, no strategy applied: what a differently
    configured or future API server could send (defence in depth)."""
    return admission_review(dict(new), old, "UPDATE", subresource, caller, dry_run=dry_run)


def delete_review(old: Mapping[str, Any], caller: Mapping[str, Any]) -> dict[str, Any]:
    return admission_review(None, old, "DELETE", "", caller)


def with_status(
    obj: Mapping[str, Any],
    *,
    conditions: Sequence[Mapping[str, Any]] | None = None,
    certificate: bytes | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """A copy of `obj` with its status replaced as given, timestamps filled (for
    raw_update_review's new object)."""
    new = copy.deepcopy(dict(obj))
    status = new.setdefault("status", {})
    if conditions is not None:
        _set_conditions(status, [dict(c) for c in conditions], _conditions(obj), now)
    if certificate is not None:
        if certificate:
            status["certificate"] = base64.b64encode(certificate).decode()
        else:
            status.pop("certificate", None)
    return new


# ---- the parts --------------------------------------------------------------------------------


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
    """The AdmissionReview of `operation` with exactly these objects (every builder above
    ends here; tests call it directly for reviews no strategy would produce)."""
    name = ((obj or old) or {}).get("metadata", {}).get("name", "")
    kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}.get(operation, "DeleteOptions")
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": dict(KIND),
        "resource": dict(RESOURCE),
        "requestKind": dict(KIND),
        "requestResource": dict(RESOURCE),
        **({"name": name} if name else {}),  # omitempty: generateName has no name yet
        "operation": operation,
        "userInfo": copy.deepcopy(dict(caller)),
        "object": obj,
        "oldObject": copy.deepcopy(dict(old)) if old is not None else None,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": kind, **(options or {})},
    }
    if dry_run:  # the request's DryRun option, as the API server copies it
        request["options"]["dryRun"] = ["All"]
    if subresource:
        request["subResource"] = subresource
        request["requestSubResource"] = subresource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _conditions(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    conditions: list[dict[str, Any]] = obj.get("status", {}).get("conditions", [])
    return conditions


def _set_conditions(
    status: dict[str, Any],
    submitted: list[dict[str, Any]],
    old: list[dict[str, Any]],
    now: str | None,
) -> None:
    """strategy.go populateConditionTimestamps: lastUpdateTime now when unset,
    lastTransitionTime copied from a stored condition of the same type and status, else now."""
    stamp = now or now_rfc3339()
    result = []
    for cond in submitted:
        if not cond.get("lastUpdateTime"):
            cond["lastUpdateTime"] = stamp
        if not cond.get("lastTransitionTime"):
            cond["lastTransitionTime"] = next(
                (
                    o["lastTransitionTime"]
                    for o in old
                    if o.get("type") == cond.get("type")
                    and o.get("status") == cond.get("status")
                    and o.get("lastTransitionTime")
                ),
                stamp,
            )
        result.append(cond)
    if result:
        status["conditions"] = result
    else:
        status.pop("conditions", None)


def _preserve_instances(
    new: list[dict[str, Any]], old: list[dict[str, Any]], type_: str
) -> list[dict[str, Any]]:
    """strategy.go preserveConditionInstances: same count of `type_` -> the stored instances,
    by position."""
    old_of_type = [c for c in old if c.get("type") == type_]
    positions = [i for i, c in enumerate(new) if c.get("type") == type_]
    if len(old_of_type) != len(positions):
        return new
    result = list(new)
    for position, original in zip(positions, old_of_type, strict=True):
        result[position] = copy.deepcopy(original)
    return result
