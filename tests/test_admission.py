"""The AdmissionReview contract through the Flask test client (docs/server.md §3, docs/policy-reference.md §5.7)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import build_csr
from tests.conftest import MakeApp
from tests.reviews import (
    admission_review,
    create_review,
    csr_object,
    mutating_create_review,
    user_info,
)
from webhook.admission import parse_review
from webhook.errors import ReviewError
from webhook.resource import Condition, CSRObject, SpecValue

VALID_CSR = build_csr(common_name="alice")


def post(client: FlaskClient, review: dict[str, Any], path: str = "/validate") -> dict[str, Any]:
    answer = client.post(path, json=review)
    assert answer.status_code == 200, answer.get_json()
    response: dict[str, Any] = answer.get_json()["response"]
    return response


def test_allows_conforming_csr_and_echoes_uid(client: FlaskClient) -> None:
    review = create_review(VALID_CSR, signer_name="example.com/signer")
    response = post(client, review)
    assert response["allowed"] is True
    assert response["uid"] == review["request"]["uid"]
    assert response["auditAnnotations"] == {
        "policy": "example",
        "rule": "clients",
        "decision": "allowed",
    }


def test_denies_garbage_pem_with_csr_violation(client: FlaskClient) -> None:
    review = create_review(b"not a certificate request", signer_name="example.com/signer")
    response = post(client, review)
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    causes = response["status"]["details"]["causes"]
    assert [c["reason"] for c in causes] == ["csr.pem_missing"]
    assert causes[0]["field"] == "spec.request"
    assert "policy 'example'" in response["status"]["message"]


def test_denies_request_field_that_is_not_base64(client: FlaskClient) -> None:
    review = create_review(VALID_CSR, signer_name="example.com/signer")
    review["request"]["object"]["spec"]["request"] = "%%% not base64 %%%"
    response = post(client, review)
    assert response["allowed"] is False
    assert [c["reason"] for c in response["status"]["details"]["causes"]] == ["csr.encoding"]


def test_denies_signer_without_policy_by_default(client: FlaskClient) -> None:
    response = post(client, create_review(VALID_CSR, signer_name="other.example/x"))
    assert response["allowed"] is False
    assert [c["reason"] for c in response["status"]["details"]["causes"]] == ["signer.unmatched"]
    assert response["auditAnnotations"]["policy"] == "unmatched"


def test_allows_signer_without_policy_when_configured(make_app: MakeApp) -> None:
    client = make_app(unmatched_signers="allow").test_client()
    response = post(client, create_review(VALID_CSR, signer_name="other.example/x"))
    assert response["allowed"] is True
    assert response["auditAnnotations"]["policy"] == "unmatched"


def test_denies_requester_no_rule_applies_to(client: FlaskClient) -> None:
    review = create_review(VALID_CSR, signer_name="example.com/signer", groups=["other"])
    response = post(client, review)
    assert response["allowed"] is False
    causes = response["status"]["details"]["causes"]
    assert [c["reason"] for c in causes] == ["requester.not_permitted"]
    assert (
        "'alice' may not request certificates from signer 'example.com/signer'"
        in (response["status"]["message"])
    )


def test_validating_endpoint_takes_identity_from_spec_not_caller(client: FlaskClient) -> None:
    review = create_review(VALID_CSR, signer_name="example.com/signer", groups=["other"])
    review["request"]["userInfo"] = user_info("alice", ["system:authenticated"])
    assert post(client, review)["allowed"] is False


@pytest.mark.parametrize("enforcement", ["Warn", "Audit"])
def test_non_deny_enforcement_allows_and_reports(make_app: MakeApp, enforcement: str) -> None:
    policy = f"""
    apiVersion: policy.csr-webhook.io/v1alpha1
    kind: SignerPolicy
    metadata: {{name: soft}}
    spec:
      signerNames: ["example.com/*"]
      enforcement: {enforcement}
      rules:
        - name: only-admins
          requesters: {{groups: ["admins"]}}
          allowed: {{usages: ["client auth"]}}
    """
    client = make_app({"soft.yaml": policy}).test_client()
    response = post(client, create_review(VALID_CSR, signer_name="example.com/signer"))
    assert response["allowed"] is True
    if enforcement == "Warn":
        assert response["warnings"] == [
            "requester.not_permitted: spec.username: requester 'alice' may not request "
            "certificates from signer 'example.com/signer'"
        ]
        assert response["auditAnnotations"]["decision"] == "warned"
    else:
        assert "warnings" not in response
        assert response["auditAnnotations"]["decision"] == "audited"
        assert response["auditAnnotations"]["violations"] == "requester.not_permitted"


def test_mutate_answers_without_patch_when_nothing_to_change(client: FlaskClient) -> None:
    review = mutating_create_review(VALID_CSR, signer_name="example.com/signer")
    response = post(client, review, "/mutate")
    assert response["allowed"] is True
    assert "patch" not in response


def test_ignores_other_resources_with_a_warning(client: FlaskClient) -> None:
    review = admission_review(
        {"metadata": {"name": "p"}},
        kind={"group": "", "version": "v1", "kind": "Pod"},
        resource={"group": "", "version": "v1", "resource": "pods"},
    )
    response = post(client, review)
    assert response["allowed"] is True
    assert "only certificatesigningrequests" in response["warnings"][0]


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_allows_delete_and_connect(client: FlaskClient, operation: str) -> None:
    old = csr_object(VALID_CSR, signer_name="other.example/x")
    review = admission_review(None, operation=operation, old_object=old)
    assert post(client, review)["allowed"] is True


def test_allows_metadata_only_update(client: FlaskClient) -> None:
    obj = csr_object(VALID_CSR, signer_name="example.com/signer")
    review = admission_review(obj, operation="UPDATE", old_object=obj)
    assert post(client, review)["allowed"] is True


def _broken_reviews() -> list[tuple[str, Any]]:
    good = create_review(VALID_CSR, signer_name="example.com/signer")

    def altered(change: Any) -> bytes:
        review = json.loads(json.dumps(good))
        change(review)
        return json.dumps(review).encode()

    return [
        ("not json", b"{not json"),
        ("not an object", b"[1, 2]"),
        ("not utf-8", b'{"a": "\xff"}'),
        ("v1beta1", altered(lambda r: r.update(apiVersion="admission.k8s.io/v1beta1"))),
        ("wrong kind", altered(lambda r: r.update(kind="Review"))),
        ("no request", altered(lambda r: r.pop("request"))),
        ("missing uid", altered(lambda r: r["request"].pop("uid"))),
        ("uid not string", altered(lambda r: r["request"].update(uid=5))),
        ("uid longer than 128", altered(lambda r: r["request"].update(uid="x" * 129))),
        ("operation not string", altered(lambda r: r["request"].update(operation=["CREATE"]))),
        ("object not object", altered(lambda r: r["request"].update(object="x"))),
        ("groups not list", altered(lambda r: r["request"]["userInfo"].update(groups="g"))),
        ("dryRun not bool", altered(lambda r: r["request"].update(dryRun="yes"))),
        ("usages not list", altered(lambda r: r["request"]["object"]["spec"].update(usages="x"))),
        (
            "expirationSeconds not int",
            altered(lambda r: r["request"]["object"]["spec"].update(expirationSeconds="1h")),
        ),
        ("deeply nested", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ]


@pytest.mark.parametrize(
    ("case", "body"), _broken_reviews(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_rejects_malformed_review_with_400(client: FlaskClient, case: str, body: bytes) -> None:
    answer = client.post("/validate", data=body, content_type="application/json")
    assert answer.status_code == 400, case
    assert answer.get_json()["error"].startswith("malformed AdmissionReview")


def test_a_uid_of_128_characters_is_echoed_and_a_longer_one_named(client: FlaskClient) -> None:
    review = create_review(VALID_CSR, signer_name="example.com/signer")
    review["request"]["uid"] = "u" * 128
    assert post(client, review)["uid"] == "u" * 128
    review["request"]["uid"] = "u" * 65_536
    answer = client.post("/validate", json=review)
    assert answer.status_code == 400
    assert "request.uid must be at most 128 characters, got 65536" in answer.get_json()["error"]


def test_rejects_non_json_content_type_with_415(client: FlaskClient) -> None:
    review = json.dumps(create_review(VALID_CSR)).encode()
    answer = client.post("/validate", data=review, content_type="text/plain")
    assert answer.status_code == 415


def test_rejects_declared_oversized_body_without_reading_it(client: FlaskClient) -> None:
    class Unreadable(io.BytesIO):
        def read(self, *_: Any) -> bytes:
            raise AssertionError("the body was read")

    answer = client.post(
        "/validate",
        input_stream=Unreadable(),
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(3 * 1024 * 1024 + 1)},
    )
    assert answer.status_code == 413
    assert "exceeds the limit" in answer.get_json()["error"]


def test_accepts_body_just_under_the_limit(client: FlaskClient) -> None:
    review = create_review(VALID_CSR, signer_name="example.com/signer")
    review["padding"] = "x" * (3 * 1024 * 1024 - len(json.dumps(review)) - 20)
    assert post(client, review)["allowed"] is True


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["policies"] == 1
    assert len(body["policySetHash"]) == 64
    assert body["lastReloadError"] is None


# ---- parse_review: the one reader of the review's JSON ---------------------------------------


def _body(review: dict[str, Any]) -> bytes:
    return json.dumps(review).encode()


def test_an_update_without_old_object_is_a_400_naming_the_field(client: FlaskClient) -> None:
    obj = csr_object(VALID_CSR, signer_name="example.com/signer")
    review = admission_review(obj, operation="UPDATE", sub_resource="approval")
    answer = client.post("/validate", json=review)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == (
        "malformed AdmissionReview: request.oldObject is required for UPDATE"
    )
    with pytest.raises(ReviewError, match=r"^request\.oldObject is required for UPDATE$"):
        parse_review(_body(review))


def test_parse_review_returns_typed_csr_objects_old_and_new() -> None:
    old = csr_object(VALID_CSR, signer_name="example.com/signer", expiration_seconds=3600)
    new = json.loads(json.dumps(old))
    new["status"] = {
        "conditions": [{"type": "Approved", "status": "True", "reason": "ok"}],
        "certificate": base64.b64encode(b"not yet a certificate").decode(),
    }
    request = parse_review(
        _body(admission_review(new, operation="UPDATE", sub_resource="status", old_object=old))
    )
    assert isinstance(request.object, CSRObject) and isinstance(request.old_object, CSRObject)
    assert request.old_object.conditions == ()
    assert request.object.conditions == (Condition(type="Approved", status="True", reason="ok"),)
    assert request.object.certificate == b"not yet a certificate"
    assert request.object.request == VALID_CSR
    assert request.object.expiration_seconds == 3600
    assert request.object.spec["signerName"] == SpecValue(
        canonical='"example.com/signer"', shown="'example.com/signer'"
    )


def test_spec_values_keep_every_key_and_compare_by_json_type() -> None:
    """A spec's SpecValues are built on first read (only an update compares them): every key
    is there, scalars and objects encode as before, true is not 1 and 1 is not 1.0."""
    obj = csr_object(VALID_CSR, signer_name="example.com/signer")
    obj["spec"].update({"extra": {"b": ["2"], "a": ["1"]}, "flag": True, "one": 1, "real": 1.0})
    request = parse_review(_body(admission_review(obj)))
    assert request.object is not None
    spec = request.object.spec
    assert list(spec) == list(obj["spec"]) and len(spec) == len(obj["spec"])
    assert "extra" in spec and "absent" not in spec and spec.get("absent") is None
    assert spec["extra"] == SpecValue(canonical='{"a":["1"],"b":["2"]}', shown="an object")
    assert [spec[k].canonical for k in ("flag", "one", "real")] == ["true", "1", "1.0"]
    assert spec["usages"].shown == "a list"
    with pytest.raises(KeyError):
        spec["absent"]


def test_a_malformed_old_object_is_a_400_naming_its_path() -> None:
    old = csr_object(VALID_CSR, signer_name="example.com/signer")
    old["spec"]["usages"] = "client auth"
    review = admission_review(old, operation="UPDATE", old_object=old)
    review["request"]["object"] = csr_object(VALID_CSR, signer_name="example.com/signer")
    with pytest.raises(ReviewError, match=r"^request\.oldObject\.spec\.usages must be a list$"):
        parse_review(_body(review))


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_other_operations_leave_their_objects_unread(operation: str) -> None:
    broken = {"spec": {"usages": "not a list"}}
    request = parse_review(_body(admission_review(broken, operation=operation, old_object=broken)))
    assert request.object is None and request.old_object is None


def test_objects_of_other_resources_are_not_read_as_csrs() -> None:
    review = admission_review(
        {"spec": {"request": 7}}, resource={"group": "", "version": "v1", "resource": "pods"}
    )
    request = parse_review(_body(review))
    assert not request.is_csr and request.object is None
