"""`csr-webhook approve` against the real control plane: two replicas with the shipped RBAC,
leader election on a real Lease, approvals through the webhook's approval gate, certificates
signed by kube-controller-manager, a leader killed with SIGKILL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.approver import (
    LEASE_DURATION,
    RETRY_PERIOD,
    SERVING_SIGNER,
    USERNAME,
    Approver,
    create_as_node,
    lease_holder,
    serving_csr,
    shipped_rbac,
    start_approver,
    token_kubeconfig,
)
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.kube import conditions, issued, stored_csrs, wait_for_csr
from tests.e2e.recorder import Recorder
from tests.e2e.webhook import Webhook

pytestmark = pytest.mark.e2e

NODE = "e2e-approver-node"
# client-go's jitter: an acquire attempt waits up to (1 + 1.2) retry periods.
MAX_ATTEMPT_WAIT = 2.2 * RETRY_PERIOD


@dataclass
class Approvers:
    replicas: dict[str, Approver]
    kubeconfig: Path
    root: Path

    def leader(self, cluster: Cluster) -> Approver:
        holder: list[str] = []

        def known() -> bool:
            holder[:] = [lease_holder(cluster)]
            return holder[0] in self.replicas

        wait_for("a leader of the approver Lease", known, 60)
        return self.replicas[holder[0]]


@pytest.fixture(scope="module")
def approvers(
    cluster: Cluster, webhook: Webhook, e2e_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Approvers]:
    cluster.apply(shipped_rbac(cluster))
    home = tmp_path_factory.mktemp("approver")
    kubeconfig = token_kubeconfig(cluster, home / "approver.kubeconfig")
    started: dict[str, Approver] = {}
    try:
        for identity in ("e2e-approver-a", "e2e-approver-b"):
            started[identity] = start_approver(
                e2e_root, identity, webhook.policies, kubeconfig, *cluster.processes
            )
        yield Approvers(started, kubeconfig, e2e_root)
    finally:
        for approver in started.values():
            approver.process.stop()


def _wait_condition(cluster: Cluster, name: str, kind: str, deadline: float = 60) -> dict[str, Any]:
    return wait_for_csr(
        cluster,
        f"{kind} on {name}",
        lambda c: c["metadata"]["name"] == name and kind in conditions(c),
        deadline,
    )


def _condition_counts(cluster: Cluster) -> dict[str, list[str]]:
    return {
        c["metadata"]["name"]: [x["type"] for x in c.get("status", {}).get("conditions", [])]
        for c in stored_csrs(cluster)
        if c["spec"]["signerName"] == SERVING_SIGNER
    }


def test_an_allowed_serving_csr_is_approved_through_the_gate_and_signed(
    cluster: Cluster, approvers: Approvers, recorder: Recorder, webhook: Webhook
) -> None:
    mark = recorder.mark()
    with webhook.overlay("approver-unbound"):
        create_as_node(cluster, serving_csr("e2e-approver-allowed", NODE), NODE)
        stored = _wait_condition(cluster, "e2e-approver-allowed", "Approved")
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
        stored = _wait_condition(cluster, name, "Denied")
    denied = conditions(stored)["Denied"]
    assert denied["reason"] == "PolicyViolation"
    assert "dns.not_allowed" in denied["message"]
    assert "x.wide.e2e.example" in denied["message"]
    assert "Approved" not in conditions(stored)


def test_killing_the_leader_hands_over_within_the_lease_duration_and_nothing_is_approved_twice(
    cluster: Cluster, approvers: Approvers, webhook: Webhook
) -> None:
    with webhook.overlay("approver-unbound"):
        _kill_the_leader(cluster, approvers)


def _kill_the_leader(cluster: Cluster, approvers: Approvers) -> None:
    leader = approvers.leader(cluster)
    standby = next(a for a in approvers.replicas.values() if a is not leader)
    before = [f"e2e-approver-before-{i}" for i in range(4)]
    for name in before:
        create_as_node(cluster, serving_csr(name, NODE), NODE)
    leader.kill()
    killed_at = time.monotonic()
    wait_for(
        f"{standby.identity} to take the Lease",
        lambda: lease_holder(cluster) == standby.identity,
        LEASE_DURATION * 4,
        standby.process,
    )
    took = time.monotonic() - killed_at
    # The standby waits out the record it last saw for the lease duration (it may have seen
    # the last renewal up to one attempt late, and notices the expiry at its next attempt).
    assert LEASE_DURATION - 2 * RETRY_PERIOD <= took <= LEASE_DURATION + 2 * MAX_ATTEMPT_WAIT + 1, (
        took
    )
    print(f"approver takeover after kill -9: {took:.2f}s (lease duration {LEASE_DURATION}s)")
    after = [f"e2e-approver-after-{i}" for i in range(4)]
    for name in after:
        create_as_node(cluster, serving_csr(name, NODE), NODE)
    for name in before + after:
        stored = _wait_condition(cluster, name, "Approved")
        assert conditions(stored)["Approved"]["reason"] == "AutoApproved"
    assert standby.metric("csr_webhook_approver_leader") == 1.0
    # Restart the killed one: it stays a standby and acts on nothing already decided.
    leader.process.start()
    wait_for(f"{leader.identity} /readyz again", leader.ready, 60, leader.process)
    time.sleep(2 * RETRY_PERIOD)
    assert lease_holder(cluster) == standby.identity
    counts = _condition_counts(cluster)
    twice = {name: kinds for name, kinds in counts.items() if kinds.count("Approved") > 1}
    assert twice == {}
    assert all(counts[name] == ["Approved"] for name in before + after), counts
