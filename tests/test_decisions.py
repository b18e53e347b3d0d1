"""Combination, enforcement, messages and mutation through the Flask test client (docs/policy-reference.md §5.2 to §5.7)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import build_csr
from tests.conftest import MakeApp
from tests.issuance_builders import sign_csr
from tests.reviews import create_review, mutating_create_review
from tests.update_reviews import approved, status_update, stored_csr
from tests.update_reviews import validate as validate_update
from webhook import parse_cache

POLICY = """
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: apps}
spec:
  signerNames: ["example.com/apps"]
  enforcement: %(enforcement)s
  deny:
    dnsNames: ["**.internal.example.com"]
  rules:
    - name: web
      requesters: {groups: ["web-team"]}
      allowed:
        subject:
          commonName: {values: ["${username}"], required: true}
        dnsNames: {values: ["*.apps.example.com"], maxItems: 3}
        usages: ["digital signature", "server auth"]
      constraints:
        requiredUsages: ["server auth"]
        lifetime: {min: 1h, max: 24h, default: 12h, onExceed: Clamp}
    - name: batch
      requesters: {groups: ["batch-team"]}
      allowed:
        subject:
          commonName: {values: ["batch-*"]}
        usages: ["client auth"]
      constraints:
        lifetime: {max: 1h}
"""


def app_for(make_app: MakeApp, enforcement: str = "Deny") -> FlaskClient:
    return make_app({"apps.yaml": POLICY % {"enforcement": enforcement}}).test_client()


def validate(client: FlaskClient, pem: bytes, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("signer_name", "example.com/apps")
    kwargs.setdefault("usages", ["digital signature", "server auth"])
    kwargs.setdefault("groups", ["web-team"])
    answer = client.post("/validate", json=create_review(pem, **kwargs))
    assert answer.status_code == 200
    response: dict[str, Any] = answer.get_json()["response"]
    return response


def codes(response: dict[str, Any]) -> list[str]:
    return [c["reason"] for c in response["status"]["details"]["causes"]]


def test_allows_request_one_rule_permits(make_app: MakeApp) -> None:
    pem = build_csr(common_name="alice", dns_names=["shop.apps.example.com"])
    response = validate(app_for(make_app), pem, requester="alice", expiration_seconds=3600)
    assert response["allowed"] is True
    assert response["auditAnnotations"]["rule"] == "web"


def test_denial_message_names_policy_rule_field_value_and_allowed(make_app: MakeApp) -> None:
    pem = build_csr(common_name="alice", dns_names=["a.b.apps.example.com"])
    response = validate(app_for(make_app), pem, requester="alice", expiration_seconds=3600)
    assert response["allowed"] is False
    assert codes(response) == ["dns.not_allowed"]
    message = response["status"]["message"]
    # kubectl prefixes `admission webhook "..." denied the request: `; the line says who and what
    assert message == (
        "policy 'apps', rule 'web': spec.request.dnsNames[0]: "
        "DNS name 'a.b.apps.example.com' matches none of ['*.apps.example.com']"
    )


def test_collects_every_violation_of_every_applicable_rule(make_app: MakeApp) -> None:
    pem = build_csr(common_name="mallory", dns_names=["x.internal.example.com"])
    response = validate(
        app_for(make_app),
        pem,
        requester="alice",
        groups=["web-team", "batch-team"],
        usages=["digital signature", "server auth", "code signing"],
        expiration_seconds=7 * 86400,
    )
    assert response["allowed"] is False
    assert sorted(codes(response)) == sorted(
        [
            "deny.dns",
            # web
            "subject.not_allowed",
            "dns.not_allowed",
            "usages.not_allowed",
            "lifetime.too_long",
            # batch
            "subject.not_allowed",
            "dns.not_allowed",
            "usages.not_allowed",
            "usages.not_allowed",
            "usages.not_allowed",
            "lifetime.too_long",
        ]
    )
    assert response["auditAnnotations"]["rule"] == "web,batch"
    # the guardrail hit is the policy's; each rule's violations follow under its name
    message = response["status"]["message"]
    assert message.startswith(
        "policy 'apps': spec.request.dnsNames[0]: DNS name 'x.internal.example.com' matches "
        "guardrail '**.internal.example.com' of deny.dnsNames; rule 'web': "
        "spec.request.subject.commonName: commonName 'mallory' matches none of "
        "['${username}' (here 'alice')]; "
    )
    assert "; rule 'batch': spec.request.subject.commonName: commonName 'mallory' matches " in (
        message
    )


def test_deny_list_wins_over_a_permitting_rule(make_app: MakeApp) -> None:
    policy = POLICY.replace('"*.apps.example.com"', '"**.example.com"')
    client = make_app({"apps.yaml": policy % {"enforcement": "Deny"}}).test_client()
    pem = build_csr(common_name="alice", dns_names=["db.internal.example.com"])
    response = validate(client, pem, requester="alice", expiration_seconds=3600)
    assert codes(response) == ["deny.dns"]


def test_long_denial_is_truncated_with_count_of_the_rest(make_app: MakeApp) -> None:
    names = [f"host-{i}-{'x' * 40}.elsewhere.example.org" for i in range(40)]
    pem = build_csr(common_name="alice", dns_names=names)
    response = validate(app_for(make_app), pem, requester="alice", expiration_seconds=3600)
    message = response["status"]["message"]
    assert len(message) <= 1024
    assert message.endswith("more")
    assert " … and " in message
    assert len(codes(response)) == 41  # 40 names + too_many


def test_warn_enforcement_gives_one_printable_warning_per_violation(make_app: MakeApp) -> None:
    pem = build_csr(common_name="bob\x01", dns_names=["a.b.apps.example.com", "x" * 300 + ".org"])
    response = validate(app_for(make_app, "Warn"), pem, requester="alice", expiration_seconds=3600)
    assert response["allowed"] is True
    assert response["auditAnnotations"]["decision"] == "warned"
    violations = response["auditAnnotations"]["violations"].split(",")
    assert len(response["warnings"]) >= len(violations)
    assert all(len(w) <= 256 and w.isprintable() for w in response["warnings"])


def test_audit_enforcement_allows_and_records_in_annotations_and_log(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    pem = build_csr(common_name="mallory", dns_names=["shop.apps.example.com"])
    with caplog.at_level(logging.INFO, logger="csr_webhook.decisions"):
        response = validate(
            app_for(make_app, "Audit"), pem, requester="alice", expiration_seconds=3600
        )
    assert response["allowed"] is True
    assert "warnings" not in response
    assert response["auditAnnotations"] == {
        "policy": "apps",
        "rule": "web",
        "decision": "audited",
        "violations": "subject.not_allowed",
    }
    [record] = [json.loads(r.getMessage()) for r in caplog.records]
    assert record["decision"] == "audited"
    assert record["violations"] == ["subject.not_allowed"]
    assert record["uid"]
    assert "BEGIN" not in caplog.text and pem.decode().splitlines()[1] not in caplog.text


def mutate(client: FlaskClient, pem: bytes, **kwargs: Any) -> list[dict[str, Any]] | None:
    kwargs.setdefault("signer_name", "example.com/apps")
    kwargs.setdefault("usages", ["digital signature", "server auth"])
    kwargs.setdefault("groups", ["web-team"])
    answer = client.post("/mutate", json=mutating_create_review(pem, **kwargs))
    response = answer.get_json()["response"]
    assert response["allowed"] is True
    if "patch" not in response:
        return None
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


def test_mutation_adds_default_lifetime_when_absent(make_app: MakeApp) -> None:
    pem = build_csr(common_name="alice", dns_names=["shop.apps.example.com"])
    patch = mutate(app_for(make_app), pem, requester="alice")
    assert patch == [{"op": "add", "path": "/spec/expirationSeconds", "value": 43200}]


def test_mutation_clamps_excessive_lifetime_and_is_idempotent(make_app: MakeApp) -> None:
    client = app_for(make_app)
    pem = build_csr(common_name="alice", dns_names=["shop.apps.example.com"])
    patch = mutate(client, pem, requester="alice", expiration_seconds=10 * 86400)
    assert patch == [{"op": "replace", "path": "/spec/expirationSeconds", "value": 86400}]
    assert mutate(client, pem, requester="alice", expiration_seconds=86400) is None


def test_mutation_uses_caller_identity_and_skips_rules_that_would_not_permit(
    make_app: MakeApp,
) -> None:
    client = app_for(make_app)
    pem = build_csr(common_name="alice", dns_names=["shop.apps.example.com"])
    # CN must equal ${username}: as "bob" the web rule would not permit, so no patch.
    assert mutate(client, pem, requester="bob") is None
    # batch rule has max 1h and no Clamp: nothing to default, nothing to clamp.
    batch = build_csr(common_name="batch-1")
    assert (
        mutate(client, batch, requester="x", groups=["batch-team"], usages=["client auth"]) is None
    )


def test_mutation_never_denies_garbage(make_app: MakeApp) -> None:
    assert mutate(app_for(make_app), b"garbage", requester="alice") is None


REVIEW_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spec=st.dictionaries(
        st.sampled_from(
            ["request", "signerName", "usages", "expirationSeconds", "username", "groups"]
        ),
        REVIEW_TEXT,
    ),
    operation=st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT", "PATCH", ""]),
    path=st.sampled_from(["/validate", "/mutate"]),
)
def test_evaluator_never_fails_on_hostile_reviews(
    make_app: MakeApp, spec: dict[str, Any], operation: str, path: str
) -> None:
    client = app_for(make_app)
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/apps")
    review["request"]["operation"] = operation
    review["request"]["object"]["spec"].update(spec)
    answer = client.post(path, json=review)  # the contract client checks the answer
    assert answer.status_code in (200, 400), answer.get_json()
    if answer.status_code == 200 and path == "/validate" and operation == "CREATE":
        request = spec.get("request", review["request"]["object"]["spec"]["request"])
        if (
            not isinstance(request, str)
            or request != review["request"]["object"]["spec"]["request"]
        ):
            assert answer.get_json()["response"]["allowed"] is False


def test_the_same_request_is_parsed_and_verified_only_once(make_app: MakeApp) -> None:
    parse_cache.PARSE_CACHE.clear()
    pem = build_csr(common_name="alice", dns_names=["shop.apps.example.com"])
    client = app_for(make_app)
    validate(client, pem, requester="alice", expiration_seconds=3600)
    validate(client, pem, requester="alice", expiration_seconds=3600)
    assert (parse_cache.PARSE_CACHE.misses, parse_cache.PARSE_CACHE.hits) == (1, 1)


def test_issuing_for_a_stored_request_that_does_not_parse_is_refused(make_app: MakeApp) -> None:
    """Fail closed: a CSR that got in while the webhook was bypassed, with a spec.request that
    is no CSR, gets no certificate (the issued one cannot be compared with what was asked)."""
    old = stored_csr(
        b"not a certificate request",
        signer_name="example.com/apps",
        usages=["digital signature", "server auth"],
        groups=["web-team"],
        conditions=[approved()],
    )
    certificate = sign_csr(build_csr(common_name="alice"), usages=["server auth"])
    response = validate_update(app_for(make_app), status_update(old, certificate=certificate))
    assert response["allowed"] is False
    assert codes(response) == ["issuance.request_unparseable"]
