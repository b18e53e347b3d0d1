"""The `resource` of a review in its metrics and its decision log line (docs/server.md §4, §5):
CSR and PodCertificateRequest decisions are told apart, and any other resource name a review
carries is counted as `other`, never as itself. Read from the real exposition text."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import admission_review, create_review, user_info
from webhook.policy.loader import load_policies
from webhook.serving.app import create_app
from webhook.serving.metrics import ReviewMetrics
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings

PCR_RESOURCE = {
    "group": "certificates.k8s.io",
    "version": "v1",
    "resource": "podcertificaterequests",
}
PCR_KIND = {"group": "certificates.k8s.io", "version": "v1", "kind": "PodCertificateRequest"}
NODE = user_info("system:node:worker-1", ["system:nodes", "system:authenticated"])


def pod_certificate_request() -> dict[str, Any]:
    """A PodCertificateRequest as the API server stores it on CREATE (v1, every required
    field), its stub a real DER CSR carrying only the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    stub = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "PodCertificateRequest",
        "metadata": {
            "name": "web-0-abcde",
            "namespace": "team-a",
            "uid": "6b1a2f4e-0000-4000-8000-000000000001",
            "creationTimestamp": "2026-11-28T07:00:00Z",
        },
        "spec": {
            "signerName": "example.com/mesh",
            "podName": "web-0",
            "podUID": "6b1a2f4e-0000-4000-8000-000000000002",
            "serviceAccountName": "web",
            "serviceAccountUID": "6b1a2f4e-0000-4000-8000-000000000003",
            "nodeName": "worker-1",
            "nodeUID": "6b1a2f4e-0000-4000-8000-000000000004",
            "maxExpirationSeconds": 86400,
            "stubPKCS10Request": base64.b64encode(stub).decode(),
        },
        "status": {},
    }


def pcr_create_review() -> dict[str, Any]:
    review = admission_review(
        pod_certificate_request(), caller=NODE, kind=PCR_KIND, resource=PCR_RESOURCE
    )
    review["request"]["namespace"] = "team-a"
    review["request"]["name"] = "web-0-abcde"
    return review


@pytest.fixture
def counted(tmp_path: Path) -> tuple[FlaskClient, CollectorRegistry]:
    directory = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    result = load_policies([directory])
    assert result.policy_set is not None
    registry = CollectorRegistry()
    app = create_app(
        Settings(policies=directory),
        PolicyStore(directory, result.policy_set),
        ReviewMetrics(registry),
    )
    return app.test_client(), registry


def requests_by_resource(registry: CollectorRegistry) -> dict[str, float]:
    """csr_webhook_admission_requests_total summed by `resource`, parsed from the exposition."""
    out: dict[str, float] = {}
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "csr_webhook_admission_requests_total":
                resource = sample.labels["resource"]
                out[resource] = out.get(resource, 0.0) + sample.value
    return out


def test_csr_reviews_count_as_certificatesigningrequests(
    counted: tuple[FlaskClient, CollectorRegistry],
) -> None:
    client, registry = counted
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    assert client.post("/validate", json=review).status_code == 200
    assert client.post("/mutate", json=review).status_code == 200
    assert requests_by_resource(registry) == {"certificatesigningrequests": 2.0}
    samples = [
        s
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name == "csr_webhook_admission_requests_total" and s.labels["webhook"] == "validate"
    ]
    assert [s.labels for s in samples] == [
        {
            "webhook": "validate",
            "resource": "certificatesigningrequests",
            "operation": "CREATE",
            "subresource": "",
            "policy": "example",
            "decision": "allowed",
        }
    ]


def test_pod_certificate_request_reviews_count_as_podcertificaterequests(
    counted: tuple[FlaskClient, CollectorRegistry],
) -> None:
    """Whatever the decision (no policy governs example.com/mesh here), the review counts under
    its own resource."""
    client, registry = counted
    client.post("/validate", json=pcr_create_review())
    client.post("/mutate", json=pcr_create_review())
    assert requests_by_resource(registry) == {"podcertificaterequests": 2.0}


@pytest.mark.parametrize(
    "resource",
    [
        {"group": "", "version": "v1", "resource": "pods"},
        {"group": "certificates.k8s.io", "version": "v1", "resource": "certificatesigningrequest"},
        {"group": "certificates.k8s.io", "version": "v1", "resource": "x" * 300},
    ],
)
def test_any_other_resource_counts_as_other(
    counted: tuple[FlaskClient, CollectorRegistry], resource: dict[str, str]
) -> None:
    client, registry = counted
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    review["request"]["resource"] = review["request"]["requestResource"] = resource
    assert client.post("/validate", json=review).status_code == 200
    assert requests_by_resource(registry) == {"other": 1.0}


def test_a_broken_review_counts_as_other(counted: tuple[FlaskClient, CollectorRegistry]) -> None:
    client, registry = counted
    assert client.post("/validate", data=b"{", content_type="application/json").status_code == 400
    assert requests_by_resource(registry) == {"other": 1.0}


def _logged(client: FlaskClient, caplog: pytest.LogCaptureFixture, review: Any) -> dict[str, Any]:
    with caplog.at_level(logging.INFO, logger="csr_webhook.decisions"):
        client.post("/validate", json=review)
    [line] = [r.getMessage() for r in caplog.records if r.name == "csr_webhook.decisions"]
    record: dict[str, Any] = json.loads(line)
    return record


def test_decision_log_names_the_resource_of_a_csr(
    counted: tuple[FlaskClient, CollectorRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = counted
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    record = _logged(client, caplog, review)
    assert (record["resource"], record["namespace"], record["signer"]) == (
        "certificatesigningrequests",
        "",
        "example.com/signer",
    )


def test_decision_log_names_the_resource_of_a_pod_certificate_request(
    counted: tuple[FlaskClient, CollectorRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = counted
    record = _logged(client, caplog, pcr_create_review())
    assert (record["resource"], record["name"]) == ("podcertificaterequests", "web-0-abcde")


def test_decision_log_names_the_namespace_and_signer_of_a_pod_certificate_request(
    counted: tuple[FlaskClient, CollectorRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = counted
    record = _logged(client, caplog, pcr_create_review())
    assert (record["namespace"], record["signer"]) == ("team-a", "example.com/mesh")
