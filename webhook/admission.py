"""The AdmissionReview v1 request: `parse_review(body)` turns untrusted bytes into typed values.

The only code that reads the review's JSON (with its helpers webhook.review_fields and, for
PodCertificateRequests, webhook.pod_review): the request, its user, and the CSR or PCR objects
(old and new, conditions, certificate bytes) come out typed (webhook.resource), so nothing
downstream sees a raw dict. A review that is not a well-formed `admission.k8s.io/v1` AdmissionReview
raises `ReviewError` (HTTP 400 upstream), naming the field; policy outcomes never raise. Rules
from the API server's
`staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/request/admissionreview.go`. The
response is webhook.response's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from webhook.errors import ReviewError
from webhook.pod_review import VERSIONS as PCR_VERSIONS
from webhook.pod_review import parse_pcr_object
from webhook.resource import CSRObject, PCRObject
from webhook.review_fields import (
    SpecValues,
    all_strings,
    base64_at,
    conditions_at,
    dict_at,
    integer_at,
    shown,
    string_at,
    strings_at,
)

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
CSR_GROUP = "certificates.k8s.io"
CSR_RESOURCE = "certificatesigningrequests"
PCR_RESOURCE = "podcertificaterequests"
# Parsed JSON can take 25x its size (a 3 MiB body of `{},{},…` is 75 MiB of dicts): a body
# with more separators and containers than this is refused before json.loads. Counted on the
# raw bytes, strings included, so the bound is conservative; a real review has a few hundred.
# Each is one byte, so a body of at most this many bytes cannot pass the bound: only longer
# ones are counted (a review is ~2 KB; three scans of it cost a quarter of json.loads).
MAX_JSON_SEPARATORS = 200_000
# kube-apiserver sends a 36-character UUID (k8s.io/apimachinery/pkg/types.UID). The answer must
# echo the uid, so an unbounded one would unbound every answer (and break its 64 KiB ceiling).
MAX_UID = 128
# The operations whose CSR objects are read; any other (DELETE, CONNECT) is allowed unread.
EVALUATED_OPERATIONS = ("CREATE", "UPDATE")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionRequest:
    """The parts of `request` we use, type-checked. `object` is the CSR of a CREATE or UPDATE
    of certificatesigningrequests (None for other resources and operations, or when absent);
    `old_object` is the stored CSR, present whenever an UPDATE has `object`. `is_pcr`:
    podcertificaterequests.certificates.k8s.io (v1 or v1beta1, request.resource.version)."""

    uid: str
    group: str
    resource: str
    sub_resource: str
    operation: str
    name: str
    user_info: UserInfo
    is_csr: bool
    object: CSRObject | None
    old_object: CSRObject | None
    dry_run: bool = False
    # request.namespace (PodCertificateRequests are namespaced; "" for a CSR).
    namespace: str = ""
    # A PodCertificateRequest of a CREATE or UPDATE: `pod_request` the object sent,
    # `old_pod_request` the stored one (present whenever an UPDATE has `pod_request`).
    is_pcr: bool = False
    pod_request: PCRObject | None = None
    old_pod_request: PCRObject | None = None


def parse_review(body: bytes) -> AdmissionRequest:
    """Decode and type-check an AdmissionReview v1 request body."""
    if len(body) > MAX_JSON_SEPARATORS:
        _bound_separators(body)
    try:
        review = json.loads(body)
    except RecursionError as exc:
        raise ReviewError("body is nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReviewError(f"body is not JSON: {exc}") from exc
    if not isinstance(review, dict):
        raise ReviewError("body is not a JSON object")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise ReviewError(
            f"expected apiVersion {API_VERSION!r} and kind {KIND!r}, got "
            f"{shown(review.get('apiVersion'))} and {shown(review.get('kind'))}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("request must be an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid must be a non-empty string")
    if len(uid) > MAX_UID:
        # The API server sends a UUID; the answer echoes the uid whole, so a long one would
        # let any client choose the size of the answer.
        raise ReviewError(f"request.uid must be at most {MAX_UID} characters, got {len(uid)}")
    resource = _object(request, "resource", required=True) or {}
    user = _object(request, "userInfo") or {}
    groups = user.get("groups", [])
    if groups is None:
        groups = []
    if not isinstance(groups, list) or not all_strings(groups):
        raise ReviewError("request.userInfo.groups must be a list of strings")
    extra = user.get("extra") or {}
    if not isinstance(extra, dict) or not all(
        isinstance(v, list) and all_strings(v) for v in extra.values()
    ):
        raise ReviewError("request.userInfo.extra must map strings to lists of strings")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ReviewError("request.dryRun must be a boolean")
    group = string_at(resource, "group", "request.resource")
    resource_name = string_at(resource, "resource", "request.resource")
    sub_resource = string_at(request, "subResource", "request")
    operation = string_at(request, "operation", "request", required=True)
    name = string_at(request, "name", "request")
    user_info = UserInfo(
        username=string_at(user, "username", "request.userInfo"),
        uid=string_at(user, "uid", "request.userInfo"),
        groups=tuple(groups),
        extra={k: tuple(v) for k, v in extra.items()},
    )
    namespace = string_at(request, "namespace", "request")
    is_csr = group == CSR_GROUP and resource_name == CSR_RESOURCE
    is_pcr = group == CSR_GROUP and resource_name == PCR_RESOURCE
    obj = _object(request, "object")
    old = _object(request, "oldObject")
    evaluated = operation in EVALUATED_OPERATIONS and obj is not None
    if evaluated and operation == "UPDATE" and (is_csr or is_pcr) and old is None:
        raise ReviewError("request.oldObject is required for UPDATE")
    new_csr = old_csr = None
    if is_csr and evaluated and obj is not None:
        new_csr = parse_csr_object(obj)
        if old is not None and operation == "UPDATE":
            old_csr = parse_csr_object(old, "request.oldObject")
    new_pcr = old_pcr = None
    if is_pcr and evaluated and obj is not None:
        version = string_at(resource, "version", "request.resource")
        if version not in PCR_VERSIONS:
            # Fail closed: a version we cannot read is no request we may let through.
            raise ReviewError(
                f"request.resource.version {shown(version)} of {PCR_RESOURCE} is not read; "
                f"expected one of {', '.join(PCR_VERSIONS)} (register them with matchPolicy: "
                "Equivalent)"
            )
        new_pcr = parse_pcr_object(obj, version, namespace)
        if old is not None and operation == "UPDATE":
            old_pcr = parse_pcr_object(old, version, namespace, "request.oldObject")
    return AdmissionRequest(
        uid=uid,
        group=group,
        resource=resource_name,
        sub_resource=sub_resource,
        operation=operation,
        name=name,
        user_info=user_info,
        is_csr=is_csr,
        object=new_csr,
        old_object=old_csr,
        dry_run=dry_run,
        namespace=namespace,
        is_pcr=is_pcr,
        pod_request=new_pcr,
        old_pod_request=old_pcr,
    )


def _bound_separators(body: bytes) -> None:
    separators = body.count(b",") + body.count(b"{") + body.count(b"[")
    if separators > MAX_JSON_SEPARATORS:
        raise ReviewError(
            f"body has {separators} JSON separators and containers; at most "
            f"{MAX_JSON_SEPARATORS} (far beyond any AdmissionReview) are read"
        )


def parse_csr_object(obj: dict[str, Any], where: str = "request.object") -> CSRObject:
    """A CertificateSigningRequest's JSON as typed values. Wrong JSON types raise ReviewError
    naming `where` and the field (the API server never sends them, so the review is broken);
    content we cannot interpret (bad base64) is None, for the checks to deny."""
    metadata = dict_at(obj, "metadata", where)
    spec = dict_at(obj, "spec", where)
    status = dict_at(obj, "status", where)
    spec_where, status_where = f"{where}.spec", f"{where}.status"
    return CSRObject(
        name=string_at(metadata, "name", f"{where}.metadata"),
        signer_name=string_at(spec, "signerName", spec_where),
        request=base64_at(spec, "request", spec_where),
        usages=strings_at(spec, "usages", spec_where),
        expiration_seconds=integer_at(spec, "expirationSeconds", spec_where),
        username=string_at(spec, "username", spec_where),
        groups=strings_at(spec, "groups", spec_where),
        conditions=conditions_at(status, status_where),
        certificate=base64_at(status, "certificate", status_where),
        has_spec=isinstance(obj.get("spec"), dict),
        spec=SpecValues(spec, spec_where),
    )


def _object(parent: dict[str, Any], key: str, *, required: bool = False) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise ReviewError(f"request.{key} must be an object")
    return value
