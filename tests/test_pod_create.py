"""CREATE of PodCertificateRequests through the Flask test client: who creates, which pod, the
stub's key (and v1beta1 pkixPublicKey + proofOfPossession), maxExpirationSeconds, annotations,
unmatched and ungoverned signers, enforcement and the mutating endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests import pod_setting as ps
from webhook.policy.model import Enforcement, KeyRules, PodCertificates


def validate(app: Flask, review: dict[str, Any], endpoint: str = "/validate") -> dict[str, Any]:
    answer = app.test_client().post(endpoint, json=review)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    response: dict[str, Any] = answer.get_json()["response"]
    return response


def codes(response: dict[str, Any]) -> list[str]:
    if response["allowed"] and "status" not in response:
        return []
    return [c["reason"] for c in response["status"]["details"]["causes"]]


def app_with(tmp_path: Path, pods: PodCertificates | None = None, **kwargs: Any) -> Flask:
    return ps.pod_app(tmp_path / "policies", ps.pod_policy(pods, **kwargs))


def test_allows_the_node_creating_a_request_for_its_own_pod(tmp_path: Path) -> None:
    response = validate(app_with(tmp_path), ps.pcr_review(ps.pcr_object()))
    assert response["allowed"] is True
    assert codes(response) == []
    assert response["auditAnnotations"]["policy"] == "mesh"


@pytest.mark.parametrize("key", ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-3072"])
def test_allows_every_key_type_the_policy_accepts(tmp_path: Path, key: str) -> None:
    response = validate(app_with(tmp_path), ps.pcr_review(ps.pcr_object(key=key)))
    assert codes(response) == []


def test_refuses_a_creator_requesters_do_not_admit(tmp_path: Path) -> None:
    caller = ps.user("alice")
    response = validate(app_with(tmp_path), ps.pcr_review(ps.pcr_object(), caller=caller))
    assert response["allowed"] is False
    assert codes(response) == ["pod.requester_not_permitted"]
    assert "'alice' may not create" in response["status"]["message"]


def test_refuses_a_node_asking_for_a_pod_on_another_node(tmp_path: Path) -> None:
    caller = ps.user("system:node:worker-2", ps.NODE_GROUPS)
    response = validate(app_with(tmp_path), ps.pcr_review(ps.pcr_object(), caller=caller))
    assert codes(response) == ["pod.node_mismatch"]
    assert (
        "node 'worker-2' may not ask for a pod on node 'worker-1'"
        in (response["status"]["message"])
    )


def test_a_node_name_outside_the_nodes_group_is_still_held_to_its_own_node(
    tmp_path: Path,
) -> None:
    """`users: [system:node:*]` alone makes ${node} the creator at /status (nodes_only): a
    `system:node:` name without the group (an impersonated or hand-made identity) must not ask
    for a pod on another node, or a signer would issue it that node's name."""
    pods = ps.pod_certificates(requesters=ps.subjects(users=["system:node:*"]))
    caller = ps.user("system:node:worker-2", ("system:authenticated",))
    response = validate(app_with(tmp_path, pods), ps.pcr_review(ps.pcr_object(), caller=caller))
    assert codes(response) == ["pod.node_mismatch"]


def test_refuses_a_namespace_and_service_account_outside_pods(tmp_path: Path) -> None:
    obj = ps.pcr_object(namespace="payments")
    response = validate(app_with(tmp_path), ps.pcr_review(obj))
    assert codes(response) == ["pod.namespace_not_allowed", "pod.service_account_not_allowed"]
    message = response["status"]["message"]
    assert "namespace 'payments' matches none of" in message
    assert "'payments/web'" in message


def test_refuses_a_service_account_outside_pods_in_an_allowed_namespace(tmp_path: Path) -> None:
    pods = ps.pod_certificates(service_accounts=["team-a/api"])
    response = validate(app_with(tmp_path, pods), ps.pcr_review(ps.pcr_object()))
    assert codes(response) == ["pod.service_account_not_allowed"]


@pytest.mark.parametrize(
    ("keys", "key", "expected"),
    [
        (KeyRules(rsa=None, ecdsa_curves=frozenset({"P-256"}), ed25519=False, ed448=False),
         "ed25519", "key.type_not_allowed"),
        (KeyRules(rsa=(4096, 4096), ecdsa_curves=None, ed25519=False, ed448=False),
         "rsa-3072", "key.rsa_size"),
        (KeyRules(rsa=None, ecdsa_curves=frozenset({"P-256"}), ed25519=False, ed448=False),
         "ecdsa-p384", "key.curve_not_allowed"),
    ],
)  # fmt: skip
def test_refuses_a_stub_key_the_policy_does_not_accept(
    tmp_path: Path, keys: KeyRules, key: str, expected: str
) -> None:
    pods = ps.pod_certificates(keys=keys)
    response = validate(app_with(tmp_path, pods), ps.pcr_review(ps.pcr_object(key=key)))
    assert codes(response) == [expected]
    assert response["status"]["details"]["causes"][0]["field"] == "spec.stubPKCS10Request"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"stubPKCS10Request": "not base64!"}, "not valid base64"),
        ({"stubPKCS10Request": None}, "spec.stubPKCS10Request must be set"),
        ({"stubPKCS10Request": ps.b64(b"\x30\x03\x02\x01\x00")}, "not a usable PKCS#10"),
        ({"stubPKCS10Request": ps.b64(b"\x30" * (10 * 1024 + 1))}, "at most 10240"),
    ],
)
def test_refuses_a_stub_that_is_no_signed_request(
    tmp_path: Path, spec: dict[str, Any], message: str
) -> None:
    response = validate(app_with(tmp_path), ps.pcr_review(ps.pcr_object(**spec)))
    assert codes(response) == ["pod.stub_invalid"]
    assert message in response["status"]["message"]


def test_refuses_a_stub_whose_signature_does_not_verify(tmp_path: Path) -> None:
    stub = bytearray(ps.stub_csr())
    stub[-1] ^= 0x01  # the last byte of the signature
    obj = ps.pcr_object(stubPKCS10Request=ps.b64(bytes(stub)))
    response = validate(app_with(tmp_path), ps.pcr_review(obj))
    assert codes(response) == ["pod.stub_invalid"]
    assert "csr.signature_invalid" in response["status"]["message"]


@pytest.mark.parametrize("key", ["ed25519", "ecdsa-p256", "rsa-3072"])
def test_allows_a_v1beta1_public_key_with_a_good_proof(tmp_path: Path, key: str) -> None:
    review = ps.pcr_review(ps.legacy_pcr_object(key))
    assert review["request"]["resource"]["version"] == "v1beta1"
    assert codes(validate(app_with(tmp_path), review)) == []


@pytest.mark.parametrize("key", ["ed25519", "ecdsa-p256", "rsa-3072"])
def test_refuses_a_v1beta1_proof_over_another_pod_uid(tmp_path: Path, key: str) -> None:
    obj = ps.legacy_pcr_object(key, proof=ps.proof_of_possession(key, "another-pod-uid"))
    response = validate(app_with(tmp_path), ps.pcr_review(obj))
    assert codes(response) == ["pod.proof_invalid"]
    assert response["status"]["details"]["causes"][0]["field"] == "spec.proofOfPossession"


def test_refuses_a_v1beta1_proof_over_a_pod_uid_with_a_lone_surrogate(tmp_path: Path) -> None:
    """JSON's "\\ud800" is a str UTF-8 cannot encode (the API server never sends one, and a
    socket client must get a refusal, not a 500)."""
    obj = ps.legacy_pcr_object("ed25519", podUID="\ud800")
    response = validate(app_with(tmp_path), ps.pcr_review(obj))
    assert codes(response) == ["pod.proof_invalid"]
    assert response["status"]["details"]["causes"][0]["field"] == "spec.proofOfPossession"


def test_refuses_a_v1beta1_public_key_that_does_not_parse(tmp_path: Path) -> None:
    obj = ps.legacy_pcr_object("ed25519", pkixPublicKey=ps.b64(b"\x30\x00"))
    response = validate(app_with(tmp_path), ps.pcr_review(obj))
    assert codes(response) == ["pod.proof_invalid"]
    assert response["status"]["details"]["causes"][0]["field"] == "spec.pkixPublicKey"


def test_refuses_a_v1beta1_request_with_both_stub_and_public_key(tmp_path: Path) -> None:
    obj = ps.legacy_pcr_object("ed25519", stubPKCS10Request=ps.b64(ps.stub_csr("ed25519")))
    response = validate(app_with(tmp_path), ps.pcr_review(obj))
    assert codes(response) == ["pod.stub_invalid"]
    assert "exactly one of" in response["status"]["message"]


def test_judges_the_v1beta1_public_key_by_the_key_rules(tmp_path: Path) -> None:
    pods = ps.pod_certificates(
        keys=KeyRules(rsa=None, ecdsa_curves=frozenset({"P-256"}), ed25519=False, ed448=False)
    )
    response = validate(app_with(tmp_path, pods), ps.pcr_review(ps.legacy_pcr_object("rsa-3072")))
    assert codes(response) == ["key.type_not_allowed"]
    assert response["status"]["details"]["causes"][0]["field"] == "spec.pkixPublicKey"


def test_refuses_max_expiration_above_the_cap(tmp_path: Path) -> None:
    pods = ps.pod_certificates(max_expiration_seconds=3600)
    response = validate(app_with(tmp_path, pods), ps.pcr_review(ps.pcr_object()))
    assert codes(response) == ["lifetime.too_long"]
    assert (
        "86400s; podCertificates.maxExpirationSeconds allows at most 3600s"
        in (response["status"]["message"])
    )


def test_an_absent_max_expiration_is_judged_as_the_api_server_default(tmp_path: Path) -> None:
    pods = ps.pod_certificates(max_expiration_seconds=7200)
    obj = ps.pcr_object(maxExpirationSeconds=None)
    response = validate(app_with(tmp_path, pods), ps.pcr_review(obj))
    assert codes(response) == ["lifetime.too_long"]
    assert "the API server's default" in response["status"]["message"]


def test_annotations_are_allowed_only_by_key_and_value(tmp_path: Path) -> None:
    good = ps.pcr_object(unverifiedUserAnnotations={"example.com/audience": "api"})
    assert codes(validate(app_with(tmp_path), ps.pcr_review(good))) == []
    bad = ps.pcr_object(
        unverifiedUserAnnotations={"example.com/audience": "vault", "example.com/ttl": "1h"}
    )
    response = validate(app_with(tmp_path), ps.pcr_review(bad))
    assert codes(response) == ["pod.annotation_value_not_allowed", "pod.annotation_not_allowed"]
    message = response["status"]["message"]
    assert "value 'vault' of 'example.com/audience' matches none of ['api', 'db']" in message
    assert "annotation key 'example.com/ttl' is not allowed" in message


def test_reports_every_violation_at_once(tmp_path: Path) -> None:
    obj = ps.pcr_object(
        namespace="payments", key="ecdsa-p521", unverifiedUserAnnotations={"x.io/a": "b"}
    )
    pods = ps.pod_certificates(
        max_expiration_seconds=3600,
        keys=KeyRules(rsa=None, ecdsa_curves=frozenset({"P-256"}), ed25519=False, ed448=False),
    )
    caller = ps.user("system:node:worker-9", ps.NODE_GROUPS)
    response = validate(app_with(tmp_path, pods), ps.pcr_review(obj, caller=caller))
    assert codes(response) == [
        "pod.node_mismatch",
        "pod.namespace_not_allowed",
        "pod.service_account_not_allowed",
        "lifetime.too_long",
        "pod.annotation_not_allowed",
        "key.curve_not_allowed",
    ]


def test_a_policy_without_pod_certificates_governs_no_request(tmp_path: Path) -> None:
    response = validate(app_with(tmp_path, governed=False), ps.pcr_review(ps.pcr_object()))
    assert codes(response) == ["pod.not_governed"]


def test_a_signer_no_policy_governs_is_unmatched(tmp_path: Path) -> None:
    obj = ps.pcr_object(signerName="other.example.com/signer")
    response = validate(app_with(tmp_path), ps.pcr_review(obj))
    assert codes(response) == ["signer.unmatched"]
    allowing = ps.pod_app(tmp_path / "p2", ps.pod_policy(), unmatched_signers="allow")
    assert validate(allowing, ps.pcr_review(obj))["allowed"] is True


@pytest.mark.parametrize(
    ("enforcement", "warned"), [(Enforcement.WARN, True), (Enforcement.AUDIT, False)]
)
def test_warn_and_audit_admit_with_a_record(
    tmp_path: Path, enforcement: Enforcement, warned: bool
) -> None:
    app = app_with(tmp_path, enforcement=enforcement)
    response = validate(app, ps.pcr_review(ps.pcr_object(namespace="payments")))
    assert response["allowed"] is True
    assert bool(response.get("warnings")) is warned
    assert "pod.namespace_not_allowed" in response["auditAnnotations"]["violations"]


def test_the_mutating_endpoint_allows_every_request_unpatched(tmp_path: Path) -> None:
    review = ps.pcr_review(ps.pcr_object(namespace="payments"), caller=ps.user("alice"))
    response = validate(app_with(tmp_path), review, "/mutate")
    assert response["allowed"] is True
    assert "patch" not in response
    stored = ps.pcr_object()
    update = ps.pcr_review(ps.pcr_object(podName="other"), operation="UPDATE", old=stored)
    assert validate(app_with(tmp_path), update, "/mutate")["allowed"] is True
    assert validate(app_with(tmp_path), update)["allowed"] is False


def test_delete_is_allowed_unread(tmp_path: Path) -> None:
    review = ps.pcr_review(None, operation="DELETE", old=ps.pcr_object())
    assert validate(app_with(tmp_path), review)["allowed"] is True
