"""The PodCertificateRequest simulator (webhook/authoring/pod_reviews.py), fed the inputs of each
review recorded from a real kube-apiserver (tests/vectors/apiserver-pods/<version>/, written by
`make e2e`), must build the very same review, key by key, type by type and value by value, but
for the values the server draws at random (the uids). So the reviews `csr-webhook test` sends
for PodCertificateRequest cases are the ones a cluster sends.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from webhook.authoring import pod_reviews

RECORDED = Path(__file__).resolve().parent / "vectors" / "apiserver-pods"
VECTORS = sorted(RECORDED.glob("*/*.json"))
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _normalised(review: dict[str, Any]) -> str:
    copied = json.loads(json.dumps(review))
    request = copied["request"]
    request["uid"] = "<uid>"
    for key in ("object", "oldObject"):
        metadata = (request.get(key) or {}).get("metadata", {})
        if "uid" in metadata:
            metadata["uid"] = "<uid>"
    return json.dumps(copied, sort_keys=True, indent=1)


def _clock(obj: dict[str, Any]) -> str:
    """The API server's clock: the latest managedFields time (the status times are the
    certificate's, not the clock's), else the creation time."""
    metadata = obj["metadata"]
    stamps = [e["time"] for e in metadata.get("managedFields", []) if _TIME.match(e["time"])]
    return max(stamps) if stamps else str(metadata.get("creationTimestamp"))


def _manager(request: dict[str, Any]) -> str:
    """The client's field-manager name, from the entry it made (or the fieldManager option)."""
    obj, old = request["object"], request.get("oldObject") or {}
    before = old.get("metadata", {}).get("managedFields", [])
    mine = [e for e in obj["metadata"].get("managedFields", []) if e not in before]
    if mine:
        return str(mine[-1]["manager"])
    return str(request["options"].get("fieldManager", ""))


def _bytes(spec: dict[str, Any], key: str) -> bytes | None:
    value = spec.get(key)
    return base64.b64decode(value) if value else None


def _sent(obj: dict[str, Any]) -> dict[str, Any]:
    """The request as its client sent it, from the recorded object's client-chosen fields."""
    spec, metadata = obj["spec"], obj["metadata"]
    return pod_reviews.sent_pcr(
        namespace=metadata["namespace"],
        signer_name=spec["signerName"],
        pod_name=spec["podName"],
        pod_uid=spec["podUID"],
        service_account_name=spec["serviceAccountName"],
        service_account_uid=spec["serviceAccountUID"],
        node_name=spec["nodeName"],
        node_uid=spec["nodeUID"],
        stub=_bytes(spec, "stubPKCS10Request"),
        pkix_public_key=_bytes(spec, "pkixPublicKey"),
        proof_of_possession=_bytes(spec, "proofOfPossession"),
        max_expiration_seconds=spec.get("maxExpirationSeconds"),
        annotations=spec.get("unverifiedUserAnnotations"),
        version=pod_reviews.version_of(obj),
        name=None if "generateName" in metadata else metadata["name"],
        owner_reference="ownerReferences" in metadata,
    )


def _stored(old: dict[str, Any]) -> dict[str, Any]:
    """The stored object of an UPDATE, created by the simulator from the recorded request,
    with its stored status, resourceVersion and managedFields history."""
    metadata = old["metadata"]
    created = pod_reviews.created_pcr(_sent(old), now=metadata["creationTimestamp"])
    stored = pod_reviews.stored_pcr(
        created, old.get("status"), resource_version=metadata["resourceVersion"]
    )
    if "managedFields" in metadata:
        stored["metadata"]["managedFields"] = metadata["managedFields"]
    return stored


def simulated(vector: dict[str, Any]) -> dict[str, Any]:
    request = vector["request"]["request"]
    caller, obj = request["userInfo"], request["object"]
    # kubectl chooses these options; dryRun is the review's own, which the builder copies.
    chosen = ("fieldManager", "fieldValidation")
    options = {k: v for k, v in request["options"].items() if k in chosen}
    common: dict[str, Any] = {
        "now": _clock(obj),
        "manager": _manager(request),
        "dry_run": request["dryRun"],
        "options": options,
    }
    if request["operation"] == "CREATE":
        build = (
            pod_reviews.mutating_create_review
            if vector["path"] == "/mutate"
            else pod_reviews.create_review
        )
        return build(_sent(obj), caller, **common)
    assert request.get("subResource") == "status", "the e2e suite records /status updates"
    return pod_reviews.status_review(
        _stored(request["oldObject"]),
        obj["status"],
        caller,
        version=request["kind"]["version"],
        **common,
    )


def test_recorded_vectors_exist_in_both_versions_and_every_operation() -> None:
    assert VECTORS, f"no recorded PodCertificateRequest reviews under {RECORDED}"
    seen = set()
    for path in VECTORS:
        request = _load(path)["request"]["request"]
        seen.add((request["kind"]["version"], request["operation"], request.get("subResource")))
    assert seen >= {("v1", "CREATE", None), ("v1", "UPDATE", "status")}
    assert seen >= {("v1beta1", "CREATE", None), ("v1beta1", "UPDATE", "status")}


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_simulator_builds_exactly_the_review_the_real_server_sent(path: Path) -> None:
    vector = _load(path)
    assert _normalised(simulated(vector)) == _normalised(vector["request"])


def test_the_comparison_sees_a_changed_value() -> None:
    """The masked values are the uids only: a simulator that drifts anywhere else fails."""
    vector = _load(next(p for p in VECTORS if "update-status" in p.name))
    built = simulated(vector)
    built["request"]["object"]["status"]["notAfter"] = "2000-01-01T00:00:00Z"
    assert _normalised(built) != _normalised(vector["request"])
    built = simulated(vector)
    del built["request"]["namespace"]
    assert _normalised(built) != _normalised(vector["request"])
