"""What a person reads in a denial: whole values (up to 256 characters), the pattern with the
requester's template filled in, causes never cut, "denied" said once (by the API server), and
policy-wide violations attributed to the policy, not to a rule. End to end through the Flask
test client, `csr-webhook eval -o json`, and real CSRs and certificates."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from tests.builders import build_csr
from tests.conftest import MakeApp, write_policies
from tests.issuance_builders import sign_csr
from tests.reviews import create_review, user_info
from tests.update_reviews import (
    SIGNER,
    approval_update,
    approved,
    denied,
    status_update,
    stored_csr,
    validate,
)
from webhook.admission import parse_csr_object
from webhook.cli import main
from webhook.engine import EngineOptions, evaluate_create
from webhook.matching.variables import Requester
from webhook.policy.loader import load_policies
from webhook.response import MAX_CAUSE_TEXT, build_causes
from webhook.serving.app import create_app
from webhook.serving.metrics import ReviewMetrics
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings

SPIFFE = "spiffe.example.com/workload"
WORKLOADS = """
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: workloads}
spec:
  signerNames: ["spiffe.example.com/workload"]
  deny:
    uris: ["spiffe://cluster.local/ns/${sa.namespace}/sa/default"]
  rules:
    - name: svid
      requesters: {serviceAccounts: ["*/*"]}
      allowed:
        uris:
          values: ["spiffe://cluster.local/ns/${sa.namespace}/sa/${sa.name}"]
          required: true
        usages: ["digital signature", "client auth"]
  approval:
    approvers: {groups: ["spiffe-approvers"]}
  issuance:
    issuers: {users: ["signer-bot"]}
"""
NODES = """
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: nodes}
spec:
  signerNames: ["example.com/nodes"]
  rules:
    - name: node
      allowed:
        dnsNames: {values: ["${node}.nodes.example.internal"]}
        usages: ["digital signature", "server auth"]
"""
WEB = "system:serviceaccount:shop:web"
WEB_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"]
# The value, cut at 64 characters before: longer than 64, shorter than 256.
LONG_SVID = (
    "spiffe://cluster.local/ns/payments-production/sa/checkout-frontend-"
    "canary-eu-west-1-blue-green-rollout"
)
EXPANDED = "'spiffe://cluster.local/ns/${sa.namespace}/sa/${sa.name}' (here 'spiffe://cluster.local/ns/shop/sa/web')"
USAGES = ["digital signature", "client auth"]


@pytest.fixture
def client(make_app: MakeApp) -> FlaskClient:
    return make_app({"workloads.yaml": WORKLOADS, "nodes.yaml": NODES}).test_client()


def spiffe_create(client: FlaskClient, *uris: str) -> dict[str, Any]:
    review = create_review(
        build_csr(uris=list(uris)),
        signer_name=SPIFFE,
        usages=USAGES,
        requester=WEB,
        groups=WEB_GROUPS,
    )
    answer = client.post("/validate", json=review)
    assert answer.status_code == 200
    response: dict[str, Any] = answer.get_json()["response"]
    assert response["allowed"] is False
    return response


def causes(response: dict[str, Any]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = response["status"]["details"]["causes"]
    return found


def test_denial_shows_the_whole_value_and_the_expanded_template(client: FlaskClient) -> None:
    response = spiffe_create(client, LONG_SVID)
    [cause] = causes(response)
    expected = f"URI {LONG_SVID!r} matches none of [{EXPANDED}]"
    assert (cause["reason"], cause["field"], cause["message"]) == (
        "uri.not_allowed",
        "spec.request.uris[0]",
        expected,
    )
    assert response["status"]["message"] == (
        f"policy 'workloads', rule 'svid': spec.request.uris[0]: {expected}"
    )


def test_values_are_whole_up_to_256_characters_and_cut_with_their_length_past_that(
    client: FlaskClient,
) -> None:
    prefix = "spiffe://cluster.local/ns/shop/sa/"
    exact = prefix + "w" * (256 - len(prefix))
    longer = prefix + "w" * (300 - len(prefix))
    response = spiffe_create(client, exact, longer)
    shown, cut = (c["message"] for c in causes(response))
    assert f"URI {exact!r} matches none of" in shown
    assert f"URI {longer[:256]!r}… (300 characters) matches none of" in cut
    assert len(shown) > 256  # the old cut of cause messages at 256 characters is gone


def test_an_undefined_template_variable_says_so(client: FlaskClient) -> None:
    review = create_review(
        build_csr(dns_names=["worker-1.nodes.example.internal"]),
        signer_name="example.com/nodes",
        usages=["digital signature", "server auth"],
        requester="alice",
    )
    [cause] = causes(client.post("/validate", json=review).get_json()["response"])
    assert cause["message"] == (
        "DNS name 'worker-1.nodes.example.internal' matches none of "
        "['${node}.nodes.example.internal' (matches nothing here: ${node} undefined for this "
        "requester)]"
    )


def test_causes_carry_the_whole_message_of_the_longest_violation(tmp_path: Path) -> None:
    """Eight 200-character templates expanded with a 200-character service account name and a
    300-character value: the message is bounded below MAX_CAUSE_TEXT by construction (values
    and list cut in webhook/text.py), so build_causes never cuts it."""
    values = [f"spiffe://{chr(97 + i) * 180}/${{sa.namespace}}/${{sa.name}}" for i in range(8)]
    policy = yaml.safe_load(WORKLOADS)
    policy["spec"]["rules"][0]["allowed"]["uris"]["values"] = values
    (tmp_path / "p.yaml").write_text(json.dumps(policy))
    policies = load_policies([tmp_path]).policy_set
    assert policies is not None
    requester = Requester(f"system:serviceaccount:shop:{'n' * 200}", ())
    pem = build_csr(uris=["spiffe://x/" + "v" * 300])
    obj = parse_csr_object(
        {
            "metadata": {"name": "long"},
            "spec": {
                "signerName": SPIFFE,
                "request": base64.b64encode(pem).decode(),
                "usages": USAGES,
                "username": requester.username,
            },
            "status": {},
        }
    )
    decision = evaluate_create(obj, requester, policies, EngineOptions())
    [violation] = decision.violations
    assert len(violation.message) <= MAX_CAUSE_TEXT
    assert "… 6 more]" in violation.message or "… 7 more]" in violation.message
    [cause] = build_causes(decision)
    assert cause["message"] == violation.message


def test_eval_json_carries_the_whole_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "workloads.yaml").write_text(WORKLOADS)
    manifest = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "checkout"},
        "spec": {
            "signerName": SPIFFE,
            "request": base64.b64encode(build_csr(uris=[LONG_SVID])).decode(),
            "usages": USAGES,
            "username": WEB,
            "groups": WEB_GROUPS,
        },
    }
    (tmp_path / "csr.yaml").write_text(yaml.safe_dump(manifest))
    csr = str(tmp_path / "csr.yaml")
    code = main(["eval", "--policies", str(policies), "-f", csr, "-o", "json"])
    out, _ = capsys.readouterr()
    assert code == 1
    [result] = json.loads(out)
    assert result["violations"] == [
        {
            "code": "uri.not_allowed",
            "field": "spec.request.uris[0]",
            "message": f"URI {LONG_SVID!r} matches none of [{EXPANDED}]",
        }
    ]


def _says_denied(message: str) -> bool:
    # "Denied", the condition type, is a name; the verdict word is the API server's to say.
    return re.search(r"\bdenied\b", message) is not None


def test_policy_wide_violations_are_the_policys_and_the_message_never_says_denied(
    client: FlaskClient,
) -> None:
    response = spiffe_create(client, "spiffe://cluster.local/ns/shop/sa/default")
    message = response["status"]["message"]
    guardrail = (
        "spec.request.uris[0]: URI 'spiffe://cluster.local/ns/shop/sa/default' matches guardrail "
        "'spiffe://cluster.local/ns/${sa.namespace}/sa/default' (here "
        "'spiffe://cluster.local/ns/shop/sa/default') of deny.uris"
    )
    assert message.startswith(f"policy 'workloads': {guardrail}; rule 'svid': ")
    assert [c["reason"] for c in causes(response)] == ["deny.uri", "uri.not_allowed"]
    assert not _says_denied(message)
    assert all(not _says_denied(c["message"]) for c in causes(response))


def test_approval_violations_are_the_policys_and_the_recheck_keeps_its_rule(
    client: FlaskClient,
) -> None:
    old = stored_csr(
        build_csr(uris=["spiffe://cluster.local/ns/shop/sa/admin"]),
        signer_name=SPIFFE,
        usages=USAGES,
        username=WEB,
        groups=WEB_GROUPS,
    )
    response = validate(client, approval_update(old, [approved()]))
    message = response["status"]["message"]
    assert [c["reason"] for c in causes(response)] == [
        "approval.not_approver",
        "approval.recheck_failed",
        "uri.not_allowed",
    ]
    assert message.startswith(
        "policy 'workloads': status.conditions: 'carol' may not add Approved for signer "
        f"'{SPIFFE}': not an approver of policy 'workloads'; spec.request: the CSR no longer "
        "passes policy 'workloads' (1 violation(s) follow); rule 'svid': spec.request.uris[0]: "
    )
    assert not _says_denied(message)


def test_issuance_violations_are_the_policys_not_the_permitting_rules(
    client: FlaskClient,
) -> None:
    pem = build_csr(uris=["spiffe://cluster.local/ns/shop/sa/web"])
    old = stored_csr(
        pem,
        signer_name=SPIFFE,
        usages=USAGES,
        username=WEB,
        groups=WEB_GROUPS,
        conditions=[approved()],
    )
    certificate = sign_csr(pem, usages=USAGES, extra_dns=["extra.example.com"])
    dave = user_info("dave", ["system:authenticated"])
    response = validate(client, status_update(old, certificate=certificate, caller=dave))
    assert [c["reason"] for c in causes(response)] == [
        "issuance.not_issuer",
        "issuance.san_not_requested",
    ]
    message = response["status"]["message"]
    assert message.startswith("policy 'workloads': status.certificate: 'dave' may not issue")
    assert "rule" not in message
    assert response["auditAnnotations"]["rule"] == "svid"  # the rule that permits the CSR
    response = validate(client, status_update(old, certificate=certificate, caller=SIGNER))
    assert response["status"]["message"] == (
        "policy 'workloads': status.certificate: DNS SAN 'extra.example.com' is not in the CSR"
    )


def test_a_transition_message_does_not_say_denied(client: FlaskClient) -> None:
    pem = build_csr(uris=["spiffe://cluster.local/ns/shop/sa/web"])
    old = stored_csr(
        pem,
        signer_name=SPIFFE,
        usages=USAGES,
        username=WEB,
        groups=WEB_GROUPS,
        conditions=[approved()],
        certificate=sign_csr(pem, usages=USAGES),
    )
    approver = user_info("carol", ["spiffe-approvers", "system:authenticated"])
    response = validate(client, approval_update(old, [approved(), denied()], caller=approver))
    reasons = [c["reason"] for c in causes(response)]
    assert "transition.denied_after_issue" in reasons
    assert not _says_denied(response["status"]["message"])


def test_violation_metrics_name_the_reporting_rule_and_none_for_the_policys_own(
    tmp_path: Path,
) -> None:
    """The dashboard's violations by rule: a guardrail hit and an issuance problem are the
    policy's (`rule="none"`), even when a rule permits the CSR or also found something."""
    directory = write_policies(tmp_path / "policies", **{"workloads.yaml": WORKLOADS})
    policies = load_policies([directory]).policy_set
    assert policies is not None
    registry = CollectorRegistry()
    app = create_app(
        Settings(policies=directory), PolicyStore(directory, policies), ReviewMetrics(registry)
    )
    client = app.test_client()
    spiffe_create(client, "spiffe://cluster.local/ns/shop/sa/default")
    pem = build_csr(uris=["spiffe://cluster.local/ns/shop/sa/web"])
    old = stored_csr(
        pem,
        signer_name=SPIFFE,
        usages=USAGES,
        username=WEB,
        groups=WEB_GROUPS,
        conditions=[approved()],
    )
    certificate = sign_csr(pem, usages=USAGES, extra_dns=["extra.example.com"])
    validate(client, status_update(old, certificate=certificate, caller=SIGNER))

    def count(rule: str, code: str) -> float | None:
        labels = {"policy": "workloads", "rule": rule, "code": code}
        return registry.get_sample_value("csr_webhook_violations_total", labels)

    assert count("none", "deny.uri") == 1
    assert count("svid", "uri.not_allowed") == 1
    assert count("none", "issuance.san_not_requested") == 1
    assert count("svid", "deny.uri") is None
    assert count("svid", "issuance.san_not_requested") is None
