"""A PodCertificateRequest's JSON from an AdmissionReview as a typed PCRObject.

Part of the one reader of the review's JSON (webhook.admission calls it): wrong JSON types
raise ReviewError naming the field; content we cannot interpret (bad base64) is None for the
checks to deny. Field names from k8s.io/api certificates/v1 and v1beta1 types.go.
"""

from __future__ import annotations

from typing import Any

from webhook.errors import ReviewError
from webhook.resource import PCRObject
from webhook.review_fields import (
    SpecValues,
    base64_at,
    conditions_at,
    dict_at,
    integer_at,
    optional_string_at,
    shown,
    string_at,
)

GROUP = "certificates.k8s.io"
VERSIONS = ("v1", "v1beta1")


def parse_pcr_object(
    obj: dict[str, Any], version: str, namespace: str, where: str = "request.object"
) -> PCRObject:
    """`version` is request.resource.version (the object's must agree); `namespace` is
    request.namespace, which the API server makes the object's (a different one is a broken
    review)."""
    api_version = obj.get("apiVersion")
    if api_version is not None and api_version != f"{GROUP}/{version}":
        raise ReviewError(
            f"{where}.apiVersion is {shown(api_version)}; request.resource says {GROUP}/{version}"
        )
    metadata = dict_at(obj, "metadata", where)
    spec = dict_at(obj, "spec", where)
    status = dict_at(obj, "status", where)
    object_namespace = string_at(metadata, "namespace", f"{where}.metadata")
    if namespace and object_namespace and object_namespace != namespace:
        raise ReviewError(
            f"{where}.metadata.namespace is {shown(object_namespace)}; request.namespace is "
            f"{shown(namespace)}"
        )
    spec_where, status_where = f"{where}.spec", f"{where}.status"
    annotations = dict_at(spec, "unverifiedUserAnnotations", spec_where)
    if not all(isinstance(v, str) for v in annotations.values()):
        raise ReviewError(f"{spec_where}.unverifiedUserAnnotations must map strings to strings")
    legacy = version == "v1beta1"  # pkixPublicKey and proofOfPossession are no v1 fields
    return PCRObject(
        api_version=version,
        namespace=namespace or object_namespace,
        name=string_at(metadata, "name", f"{where}.metadata"),
        signer_name=string_at(spec, "signerName", spec_where),
        pod_name=string_at(spec, "podName", spec_where),
        pod_uid=string_at(spec, "podUID", spec_where),
        service_account_name=string_at(spec, "serviceAccountName", spec_where),
        service_account_uid=string_at(spec, "serviceAccountUID", spec_where),
        node_name=string_at(spec, "nodeName", spec_where),
        node_uid=string_at(spec, "nodeUID", spec_where),
        max_expiration_seconds=integer_at(spec, "maxExpirationSeconds", spec_where),
        stub_request=base64_at(spec, "stubPKCS10Request", spec_where),
        pkix_public_key=base64_at(spec, "pkixPublicKey", spec_where) if legacy else b"",
        proof_of_possession=base64_at(spec, "proofOfPossession", spec_where) if legacy else b"",
        annotations=dict(annotations),
        conditions=conditions_at(status, status_where),
        certificate_chain=string_at(status, "certificateChain", status_where),
        not_before=optional_string_at(status, "notBefore", status_where),
        begin_refresh_at=optional_string_at(status, "beginRefreshAt", status_where),
        not_after=optional_string_at(status, "notAfter", status_where),
        spec=SpecValues(spec, spec_where),
    )
