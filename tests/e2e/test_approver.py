"""`csr-webhook approve` against the real control plane under policy overlays without the node
binding (the controller's own behaviour): two replicas with the shipped RBAC, leader election
on a real Lease, approvals through the webhook's approval gate, certificates signed by
kube-controller-manager, a denial with approval.auto.deny. The shipped node-bound policy, the
quota and a leader killed with SIGKILL are in test_serving_nodes.py."""

from __future__ import annotations

import pytest

from tests.e2e.approver import (
    USERNAME,
    Approvers,
    create_as_node,
    serving_csr,
    wait_condition,
)
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.kube import conditions, issued, stored_csrs, wait_for_csr
from tests.e2e.recorder import Recorder
from tests.e2e.webhook import Webhook

pytestmark = pytest.mark.e2e

NODE = "e2e-approver-node"


def test_an_allowed_serving_csr_is_approved_through_the_gate_and_signed(
    cluster: Cluster, approvers: Approvers, recorder: Recorder, webhook: Webhook
) -> None:
    mark = recorder.mark()
    with webhook.overlay("approver-unbound"):
        create_as_node(cluster, serving_csr("e2e-approver-allowed", NODE), NODE)
        stored = wait_condition(cluster, "e2e-approver-allowed", "Approved")
    approved = conditions(stored)["Approved"]
    assert approved["status"] == "True"
    assert approved["reason"] == "AutoApproved"
    assert "policy 'kubelet-serving' rule 'node-serving'" in approved["message"]
    signed = wait_for_csr(
        cluster,
        "the certificate of e2e-approver-allowed",
        lambda c: c["metadata"]["name"] == "e2e-approver-allowed" and issued(c) is not None,
    )
    certificate = issued(signed)
    assert certificate is not None
    assert certificate.subject.rfc4514_string() == f"CN=system:node:{NODE},O=system:nodes"
    # The webhook's approval gate saw the controller's identity and allowed it.
    gate = [
        e
        for e in recorder.since(mark)
        if e.request["request"].get("subResource") == "approval"
        and e.request["request"]["name"] == "e2e-approver-allowed"
    ]
    assert [e.request["request"]["userInfo"]["username"] for e in gate] == [USERNAME]
    assert [(e.response or {}).get("response", {}).get("allowed") for e in gate] == [True]
    leader = approvers.leader(cluster)
    assert leader.metric("csr_webhook_approver_leader") == 1.0
    assert (
        leader.metric(
            "csr_webhook_approver_decisions_total", 'policy="kubelet-serving",result="approved"'
        )
        >= 1
    )
    standby = next(a for a in approvers.replicas.values() if a is not leader)
    assert standby.metric("csr_webhook_approver_leader") == 0.0
    assert standby.metric("csr_webhook_approver_decisions_total") == 0.0


def test_a_csr_the_policy_denies_is_left_pending_and_with_auto_deny_denied(
    cluster: Cluster, approvers: Approvers, webhook: Webhook
) -> None:
    """Created while an overlay allowed its extra name (and set no approval.auto), the CSR
    fails the shipped policy (no such Node, and a name that is none of its addresses): left
    pending with deny: false; denied with deny: true."""
    name = "e2e-approver-wide"
    with webhook.overlay("approver-wide"):
        create_as_node(
            cluster, serving_csr(name, NODE, dns_names=[NODE, "x.wide.e2e.example"]), NODE
        )
    leader = approvers.leader(cluster)
    wait_for(
        f"{name} judged under the shipped policy",
        lambda: (
            leader.metric(
                "csr_webhook_approver_decisions_total",
                'policy="kubelet-serving",result="left_pending"',
            )
            >= 1
        ),
        60,
        leader.process,
    )
    [pending] = [c for c in stored_csrs(cluster) if c["metadata"]["name"] == name]
    assert conditions(pending) == {}
    with webhook.overlay("approver-deny"):
        stored = wait_condition(cluster, name, "Denied")
    denied = conditions(stored)["Denied"]
    assert denied["reason"] == "PolicyViolation"
    assert "dns.not_allowed" in denied["message"]
    assert "x.wide.e2e.example" in denied["message"]
    assert "Approved" not in conditions(stored)
