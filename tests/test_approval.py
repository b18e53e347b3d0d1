"""The approval gate on UPDATE of /approval for signers with a policy (SPEC §3.9).

Who may add Approved or Denied (`approval.approvers`), self-approval, and the recheck that
evaluates the CSR again, as on CREATE, with the requester identity from `spec` (reference §2.3:
on /approval the caller is the approver, `object.spec.username` the original requester).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import build_csr
from tests.conftest import MakeApp
from tests.reviews import user_info
from tests.update_reviews import (
    approval_update,
    approved,
    audited_codes,
    codes,
    condition,
    denied,
    stored_csr,
    validate,
)

SIGNER_NAME = "example.com/apps"
USAGES = ["digital signature", "server auth"]
REQUESTER_GROUPS = ["web-team", "system:authenticated"]

CAROL = user_info("carol", ["csr-approvers", "system:authenticated"])
DAVE = user_info("dave", ["system:authenticated"])
CONTROLLER_SA = user_info(
    "system:serviceaccount:kube-system:certificate-controller",
    ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
)
OTHER_SA = user_info(
    "system:serviceaccount:default:certificate-controller",
    ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
)
KCM = user_info("system:kube-controller-manager", ["system:authenticated"])
# the requester herself, also an approver
ALICE_APPROVER = user_info("alice", ["csr-approvers", *REQUESTER_GROUPS])


def policy(
    *,
    approval: dict[str, Any] | None = None,
    enforcement: str = "Deny",
    requester_groups: Sequence[str] = ("web-team",),
) -> dict[str, str]:
    document: dict[str, Any] = {
        "apiVersion": "policy.csr-webhook.io/v1alpha1",
        "kind": "SignerPolicy",
        "metadata": {"name": "apps"},
        "spec": {
            "signerNames": [SIGNER_NAME],
            "enforcement": enforcement,
            "deny": {"dnsNames": ["**.internal.example.com"]},
            "rules": [
                {
                    "name": "web",
                    "requesters": {"groups": list(requester_groups)},
                    "allowed": {
                        "subject": {"commonName": {"values": ["${username}"], "required": True}},
                        "dnsNames": {"values": ["*.apps.example.com", "*.internal.example.com"]},
                        "usages": USAGES,
                    },
                }
            ],
        },
    }
    if approval is not None:
        document["spec"]["approval"] = approval
    return {"apps.yaml": json.dumps(document, indent=2)}


def app(make_app: MakeApp, **kwargs: Any) -> FlaskClient:
    return make_app(policy(**kwargs), unmatched_signers="allow").test_client()


def pending(
    *,
    common_name: str = "alice",
    dns_names: Sequence[str] = ("www.apps.example.com",),
    requester: str = "alice",
    groups: Sequence[str] = REQUESTER_GROUPS,
    signer_name: str = SIGNER_NAME,
    conditions: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A stored CSR from `requester`, not yet approved or denied."""
    pem = build_csr(common_name=common_name, dns_names=list(dns_names))
    return stored_csr(
        pem,
        signer_name=signer_name,
        usages=USAGES,
        username=requester,
        groups=list(groups),
        conditions=conditions,
    )


def approve(client: FlaskClient, old: dict[str, Any], caller: dict[str, Any]) -> dict[str, Any]:
    kept = list(old["status"].get("conditions", []))
    return validate(client, approval_update(old, [*kept, approved()], caller))


def deny(client: FlaskClient, old: dict[str, Any], caller: dict[str, Any]) -> dict[str, Any]:
    kept = list(old["status"].get("conditions", []))
    return validate(client, approval_update(old, [*kept, denied()], caller))


ACTIONS = [pytest.param(approve, id="approve"), pytest.param(deny, id="deny")]


# ---- approvers -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(
    ("approvers", "caller"),
    [
        pytest.param({"users": ["carol"]}, CAROL, id="users"),
        pytest.param({"users": ["car*"]}, CAROL, id="users-pattern"),
        pytest.param({"groups": ["csr-approvers"]}, CAROL, id="groups"),
        pytest.param(
            {"serviceAccounts": ["kube-system/certificate-controller"]}, CONTROLLER_SA, id="sa"
        ),
        pytest.param({"serviceAccounts": ["kube-system/*"]}, CONTROLLER_SA, id="sa-pattern"),
    ],
)
def test_allows_approver_to_add_approved_or_denied(
    make_app: MakeApp, action: Any, approvers: dict[str, Any], caller: dict[str, Any]
) -> None:
    client = app(make_app, approval={"approvers": approvers})
    response = action(client, pending(), caller)
    assert response["allowed"] is True, codes(response)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(
    ("approvers", "caller"),
    [
        pytest.param({"users": ["carol"]}, DAVE, id="users"),
        pytest.param({"groups": ["csr-approvers"]}, DAVE, id="groups"),
        pytest.param(
            {"serviceAccounts": ["kube-system/certificate-controller"]}, OTHER_SA, id="sa"
        ),
        pytest.param(
            {"serviceAccounts": ["kube-system/certificate-controller"]},
            # a user whose *name* only resembles the service account's namespace/name
            user_info("kube-system/certificate-controller", ["system:authenticated"]),
            id="sa-lookalike-user",
        ),
    ],
)
def test_denies_non_approver_adding_approved_or_denied(
    make_app: MakeApp, action: Any, approvers: dict[str, Any], caller: dict[str, Any]
) -> None:
    client = app(make_app, approval={"approvers": approvers})
    assert codes(action(client, pending(), caller)) == ["approval.not_approver"]


@pytest.mark.parametrize("action", ACTIONS)
def test_allows_anyone_rbac_allows_when_approvers_omitted(make_app: MakeApp, action: Any) -> None:
    client = app(make_app, approval={"selfApproval": "Deny"})
    assert action(client, pending(), DAVE)["allowed"] is True


@pytest.mark.parametrize("caller", [KCM, CONTROLLER_SA], ids=["kcm-user", "controller-sa"])
def test_approvers_listing_a_user_and_a_service_account_admit_both(
    make_app: MakeApp, caller: dict[str, Any]
) -> None:
    # SPEC §8: default approvers must include both identities of the in-tree approver, "or
    # kubelet client auto-approval stops"; the shipped policies list them as users +
    # serviceAccounts, so the lists are alternatives here
    approvers = {
        "users": ["system:kube-controller-manager"],
        "serviceAccounts": ["kube-system/certificate-controller"],
    }
    client = app(make_app, approval={"approvers": approvers})
    response = approve(client, pending(), caller)
    assert response["allowed"] is True, codes(response)


def test_approvers_listing_groups_and_a_service_account_admit_both(make_app: MakeApp) -> None:
    # the SPEC §3 example: {groups: [csr-approvers], serviceAccounts: [kube-system/...]}
    approvers = {
        "groups": ["csr-approvers"],
        "serviceAccounts": ["kube-system/certificate-controller"],
    }
    client = app(make_app, approval={"approvers": approvers})
    assert approve(client, pending(), CAROL)["allowed"] is True
    assert approve(client, pending(), CONTROLLER_SA)["allowed"] is True
    assert codes(approve(client, pending(), DAVE)) == ["approval.not_approver"]


def test_allows_non_approver_approval_update_that_adds_no_decision(make_app: MakeApp) -> None:
    # only adding Approved or Denied needs an approver; a custom condition does not
    client = app(make_app, approval={"approvers": {"users": ["carol"]}})
    old = pending(conditions=[approved()])
    kept = list(old["status"]["conditions"])
    review = approval_update(old, [*kept, condition("Reviewed")], DAVE)
    assert validate(client, review)["allowed"] is True


def test_has_no_approval_gate_for_a_signer_without_policy(make_app: MakeApp) -> None:
    client = app(make_app, approval={"approvers": {"users": ["carol"]}})
    old = pending(signer_name="example.com/unmatched", dns_names=["anything.example.org"])
    # anyone, the requester herself included, and no recheck of the request
    alice = user_info("alice", REQUESTER_GROUPS)
    assert approve(client, old, DAVE)["allowed"] is True
    assert approve(client, old, alice)["allowed"] is True


def shipped_policies() -> dict[str, str]:
    directory = Path(__file__).resolve().parent.parent / "policies"
    return {p.name: p.read_text() for p in sorted(directory.glob("*.yaml"))}


@pytest.mark.parametrize("caller", [KCM, CONTROLLER_SA], ids=["kcm-user", "controller-sa"])
def test_shipped_kubelet_client_policy_lets_the_in_tree_approver_approve(
    make_app: MakeApp, caller: dict[str, Any]
) -> None:
    # SPEC §8: the csrapproving controller auto-approves kubelet client CSRs as one of these two
    # identities; if the shipped policy refuses it, kubelet bootstrap stops cluster-wide
    client = make_app(shipped_policies()).test_client()
    pem = build_csr(common_name="system:node:worker-1", organization=["system:nodes"])
    old = stored_csr(
        pem,
        signer_name="kubernetes.io/kube-apiserver-client-kubelet",
        usages=["digital signature", "client auth"],
        expiration_seconds=86400,
        username="system:bootstrap:abcdef",
        groups=["system:bootstrappers", "system:authenticated"],
    )
    response = validate(client, approval_update(old, [approved("AutoApproved")], caller))
    assert response["allowed"] is True, codes(response)


# ---- self-approval ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "approval",
    [
        pytest.param({"approvers": {"groups": ["csr-approvers"]}}, id="default"),
        pytest.param(
            {"approvers": {"groups": ["csr-approvers"]}, "selfApproval": "Deny"}, id="Deny"
        ),
    ],
)
def test_denies_requester_approving_own_csr(make_app: MakeApp, approval: dict[str, Any]) -> None:
    client = app(make_app, approval=approval)
    assert codes(approve(client, pending(), ALICE_APPROVER)) == ["approval.self_approval"]


def test_denies_self_approval_without_any_approval_section(make_app: MakeApp) -> None:
    # selfApproval defaults to Deny even when the policy has no `approval` at all
    client = app(make_app)
    alice = user_info("alice", REQUESTER_GROUPS)
    assert codes(approve(client, pending(), alice)) == ["approval.self_approval"]


def test_allows_self_approval_when_policy_allows_it(make_app: MakeApp) -> None:
    client = app(
        make_app, approval={"approvers": {"groups": ["csr-approvers"]}, "selfApproval": "Allow"}
    )
    assert approve(client, pending(), ALICE_APPROVER)["allowed"] is True


def test_allows_requester_denying_own_csr(make_app: MakeApp) -> None:
    client = app(make_app, approval={"approvers": {"groups": ["csr-approvers"]}})
    assert deny(client, pending(), ALICE_APPROVER)["allowed"] is True


def test_allows_approval_by_another_member_of_the_requesters_groups(make_app: MakeApp) -> None:
    # self-approval is about the identity (spec.username), not shared group membership
    client = app(make_app, approval={"approvers": {"groups": ["csr-approvers"]}})
    bob = user_info("bob", ["csr-approvers", *REQUESTER_GROUPS])
    assert approve(client, pending(), bob)["allowed"] is True


def test_reports_both_non_approver_and_self_approval(make_app: MakeApp) -> None:
    client = app(make_app, approval={"approvers": {"users": ["carol"]}})
    alice = user_info("alice", REQUESTER_GROUPS)
    assert codes(approve(client, pending(), alice)) == [
        "approval.not_approver",
        "approval.self_approval",
    ]


# ---- recheck ---------------------------------------------------------------------------------


def test_allows_approving_csr_the_current_policy_permits(make_app: MakeApp) -> None:
    client = app(make_app)
    assert approve(client, pending(), CAROL)["allowed"] is True


def test_recheck_uses_requester_identity_from_spec_not_the_approver(make_app: MakeApp) -> None:
    # CN must be ${username} and the rule is for group web-team: true for alice (spec), false
    # for carol (the caller)
    client = app(make_app)
    old = pending(common_name="alice", requester="alice", groups=REQUESTER_GROUPS)
    assert approve(client, old, CAROL)["allowed"] is True
    impostor = pending(common_name="carol", requester="alice", groups=REQUESTER_GROUPS)
    response = approve(client, impostor, CAROL)
    assert codes(response) == ["approval.recheck_failed", "subject.not_allowed"]


def test_denies_approving_csr_admitted_while_webhook_failed_open(make_app: MakeApp) -> None:
    client = app(make_app)
    old = pending(dns_names=["www.elsewhere.example.org"])
    assert codes(approve(client, old, CAROL)) == ["approval.recheck_failed", "dns.not_allowed"]


def test_denies_approval_after_policy_tightened_requesters(make_app: MakeApp) -> None:
    # alice was in the rule's requesters when she asked; the rule now admits ops-team only
    client = app(make_app, requester_groups=["ops-team"])
    assert codes(approve(client, pending(), CAROL)) == [
        "approval.recheck_failed",
        "requester.not_permitted",
    ]


def test_applies_deny_lists_at_recheck(make_app: MakeApp) -> None:
    client = app(make_app)
    old = pending(dns_names=["db.internal.example.com"])  # allowed by the rule, denied by deny
    assert codes(approve(client, old, CAROL)) == ["approval.recheck_failed", "deny.dns"]


def test_recheck_fails_closed_on_a_request_that_does_not_parse(make_app: MakeApp) -> None:
    client = app(make_app)
    old = pending()
    old["spec"]["request"] = "bm90IGEgQ1NS"  # base64 of "not a CSR"
    found = codes(approve(client, old, CAROL))
    assert "approval.recheck_failed" in found
    assert all(c.startswith(("approval.", "csr.")) for c in found), found


def test_skips_recheck_when_disabled(make_app: MakeApp) -> None:
    client = app(make_app, approval={"recheck": False})
    old = pending(dns_names=["www.elsewhere.example.org"])
    assert approve(client, old, CAROL)["allowed"] is True


def test_recheck_does_not_stop_denial(make_app: MakeApp) -> None:
    client = app(make_app)
    old = pending(dns_names=["www.elsewhere.example.org"])
    assert deny(client, old, CAROL)["allowed"] is True


# ---- enforcement -----------------------------------------------------------------------------


def test_warn_policy_lets_non_approver_through_with_a_warning(make_app: MakeApp) -> None:
    client = app(make_app, approval={"approvers": {"users": ["carol"]}}, enforcement="Warn")
    response = approve(client, pending(), DAVE)
    assert response["allowed"] is True
    assert response["auditAnnotations"]["decision"] == "warned"
    assert audited_codes(response) == ["approval.not_approver"]
    assert len(response["warnings"]) >= 1


def test_audit_policy_records_failed_recheck_silently(make_app: MakeApp) -> None:
    client = app(make_app, enforcement="Audit")
    response = approve(client, pending(dns_names=["www.elsewhere.example.org"]), CAROL)
    assert response["allowed"] is True
    assert "warnings" not in response
    assert response["auditAnnotations"]["decision"] == "audited"
    assert audited_codes(response) == ["approval.recheck_failed", "dns.not_allowed"]


@pytest.mark.parametrize("enforcement", ["Warn", "Audit"])
def test_transition_violation_on_approval_denies_whatever_the_enforcement(
    make_app: MakeApp, enforcement: str
) -> None:
    client = app(make_app, enforcement=enforcement)
    old = pending(conditions=[denied()])
    response = approve(client, old, CAROL)
    assert response["allowed"] is False
    assert codes(response) == ["transition.approved_and_denied"]


# ---- the gate judges the stored spec ----------------------------------------------------------


@pytest.mark.parametrize("enforcement", ["Deny", "Warn", "Audit"])
def test_denies_self_approval_laundered_by_rewriting_spec_username(
    make_app: MakeApp, enforcement: str
) -> None:
    # alice approves her own CSR and, in the same update, names bob as its requester: the
    # self-approval check must read the stored spec.username (recheck off, so only it can stop
    # this), and the rewrite itself is a transition violation, denied whatever the enforcement
    client = app(
        make_app,
        enforcement=enforcement,
        approval={"approvers": {"groups": ["csr-approvers"]}, "recheck": False},
    )
    old = pending()
    review = approval_update(old, [approved()], ALICE_APPROVER)
    review["request"]["object"]["spec"]["username"] = "bob"
    response = validate(client, review)
    assert response["allowed"] is False
    assert codes(response) == ["approval.self_approval", "transition.spec_changed"]


def test_recheck_judges_the_stored_spec_not_a_rewritten_one(make_app: MakeApp) -> None:
    # the stored CSR's requester (mallory) is not in the rule's group; the update claims the
    # web-team group for it, which would make the recheck pass
    client = app(make_app, approval={"approvers": {"groups": ["csr-approvers"]}})
    old = pending(common_name="mallory", requester="mallory", groups=["outsiders"])
    review = approval_update(old, [approved()], CAROL)
    review["request"]["object"]["spec"]["groups"] = REQUESTER_GROUPS
    response = validate(client, review)
    assert response["allowed"] is False
    assert "requester.not_permitted" in codes(response)
    assert "transition.spec_changed" in codes(response)
