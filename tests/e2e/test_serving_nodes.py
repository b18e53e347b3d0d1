"""Issue 15 point 5 under the SHIPPED kubelet-serving policy (node binding, maxPending 3,
approval.auto) with `csr-webhook approve` running: a kubelet's serving manager asking for
its own Node's addresses is approved by the controller and signed; CSRs naming what the Node
lacks, or from no Node, are denied at admission and never approved; the 4th pending CSR of a
node is denied; a leader killed with SIGKILL is replaced within the lease duration (plus the
bound docs/approver.md states), and no CSR is ever approved twice."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.e2e.approver import (
    LEASE_DURATION,
    RETRY_PERIOD,
    USERNAME,
    Approvers,
    condition_counts,
    create_as_node,
    lease_spec,
    serving_csr,
    wait_condition,
)
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.kube import (
    conditions,
    issued,
    kubeconfig_for_bootstrap,
    kubelet_certs,
    reviews_of,
    stored_csrs,
)
from tests.e2e.nodes import NODES, E2ENode
from tests.e2e.recorder import Recorder

pytestmark = pytest.mark.e2e

NODE, QUOTA_NODE = NODES[2], NODES[3]
PEER = NODES[0]
DENIED_BY_US = 'admission webhook "validate.csr-webhook.io" denied the request: '
# What a takeover may take beyond the lease duration after a kill (docs/approver.md, Leader
# election): one standby read (a quarter retry period), plus two API round trips and process
# scheduling on this loaded machine, allowed 1 s.
TAKEOVER_SLACK = RETRY_PERIOD / 4 + 1.0


def _create(cluster: Cluster, manifest: dict[str, Any], node: str, *flags: str) -> tuple[int, str]:
    done = cluster.kubectl(
        "create",
        "-f",
        "-",
        *flags,
        "--as",
        f"system:node:{node}",
        "--as-group",
        "system:nodes",
        input=json.dumps(manifest),
    )
    return done.returncode, done.stderr


def _admitted(cluster: Cluster, manifest: dict[str, Any], node: str) -> bool:
    return _create(cluster, manifest, node)[0] == 0


def _quota_full_everywhere(cluster: Cluster, manifest: dict[str, Any], node: str) -> bool:
    """A server-side dry run refused for the quota four times in a row (each may reach another
    worker, each counting from its own watch)."""
    for _ in range(4):
        code, stderr = _create(cluster, manifest, node, "--dry-run=server")
        if code == 0 or "(maxPending)" not in stderr:
            return False
    return True


def _causes(recorder: Recorder, mark: int, name: str) -> list[str]:
    """The violation codes of our CREATE reviews of CSR `name` since `mark`."""
    return [
        cause["reason"]
        for e in reviews_of(recorder.since(mark), name)
        if e.path == "/validate"
        and e.request["request"]["operation"] == "CREATE"
        and not e.request["request"]["dryRun"]
        for cause in (e.response or {})["response"]["status"]["details"]["causes"]
    ]


def _pending(cluster: Cluster, node: E2ENode) -> list[str]:
    return sorted(
        c["metadata"]["name"]
        for c in stored_csrs(cluster)
        if c["spec"]["username"] == f"system:node:{node.name}" and not conditions(c)
    )


def test_the_fourth_pending_serving_csr_of_a_node_is_denied_until_one_is_decided(
    cluster: Cluster, serving_nodes: tuple[E2ENode, ...], recorder: Recorder
) -> None:
    """No controller runs yet in this module (the first test to ask for `approvers` starts
    them), so the CSRs stay pending; an admin's denial of one frees a place."""
    mark = recorder.mark()
    node = QUOTA_NODE.name
    for i in range(3):
        create_as_node(
            cluster, serving_csr(f"e2e-quota-{i}", node, ips=[QUOTA_NODE.internal_ip]), node
        )
    assert _pending(cluster, QUOTA_NODE) == ["e2e-quota-0", "e2e-quota-1", "e2e-quota-2"]
    fourth = serving_csr("e2e-quota-3", node, ips=[QUOTA_NODE.internal_ip])
    wait_for(
        "every worker to count 3 pending CSRs of the node",
        partial(_quota_full_everywhere, cluster, fourth, node),
        60,
    )
    code, stderr = _create(cluster, fourth, node)
    assert code != 0
    assert DENIED_BY_US in stderr
    assert f"requester 'system:node:{node}' has 3 pending CSR(s) of signer" in stderr, stderr
    assert "allows at most 3 (maxPending)" in stderr
    assert _causes(recorder, mark, "e2e-quota-3") == ["requester.too_many_pending"]

    cluster.kubectl_ok("certificate", "deny", "e2e-quota-0")
    wait_for(  # each worker counts from its own watch, which sees the denial a moment later
        "e2e-quota-3 admitted once e2e-quota-0 is denied",
        partial(_admitted, cluster, fourth, node),
        60,
    )
    assert _pending(cluster, QUOTA_NODE) == ["e2e-quota-1", "e2e-quota-2", "e2e-quota-3"]
    for name in ("e2e-quota-1", "e2e-quota-2", "e2e-quota-3"):
        cluster.kubectl_ok("certificate", "deny", name)  # the controller must not see them


@pytest.fixture(scope="module")
def node_kubeconfig(
    cluster: Cluster,
    bootstrap_token: str,
    serving_nodes: tuple[E2ENode, ...],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """NODE's kubelet client credentials, by TLS bootstrap (its Node object exists)."""
    assert NODE in serving_nodes
    home = tmp_path_factory.mktemp("serving-node")
    bootstrap = kubeconfig_for_bootstrap(cluster, home / "bootstrap.kubeconfig", bootstrap_token)
    run = kubelet_certs(
        cluster,
        "bootstrap",
        f"--bootstrap-kubeconfig={bootstrap}",
        f"--kubeconfig={home / 'kubelet.kubeconfig'}",
        f"--cert-dir={home / 'pki'}",
        f"--node={NODE.name}",
        f"--address={NODE.internal_ip}",
    )
    assert run.returncode == 0, run.log
    return home / "kubelet.kubeconfig"


def test_the_kubelet_serving_manager_is_approved_by_the_controller_and_signed(
    cluster: Cluster,
    approvers: Approvers,
    node_kubeconfig: Path,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    mark = recorder.mark()
    run = kubelet_certs(
        cluster,
        "serving",
        f"--kubeconfig={node_kubeconfig}",
        f"--cert-dir={tmp_path}",
        f"--node={NODE.name}",
        f"--address={NODE.internal_ip}",
        "--timeout=150s",
    )
    assert run.returncode == 0, run.log
    assert run.result["subject"] == f"CN=system:node:{NODE.name},O=system:nodes"
    assert run.result["dnsNames"] == [NODE.name]  # its Hostname address
    assert run.result["ipAddresses"] == [NODE.internal_ip]  # its InternalIP address
    [stored] = [
        c
        for c in stored_csrs(cluster)
        if c["spec"]["username"] == f"system:node:{NODE.name}"
        and c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
    ]
    name = stored["metadata"]["name"]
    approved = conditions(stored)["Approved"]
    assert approved["reason"] == "AutoApproved"
    assert "policy 'kubelet-serving' rule 'node-serving'" in approved["message"]
    certificate = issued(stored)
    assert certificate is not None
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    assert run.result["certificate"].strip() == pem.strip()  # the kubelet code ended with it
    gate = [
        e
        for e in reviews_of(recorder.since(mark), name)
        if e.request["request"].get("subResource") == "approval"
    ]
    assert [e.request["request"]["userInfo"]["username"] for e in gate] == [USERNAME]
    assert [(e.response or {}).get("response", {}).get("allowed") for e in gate] == [True]
    assert condition_counts(cluster)[name] == ["Approved"]


@dataclass(frozen=True)
class Refused:
    case: str
    requester: str
    dns: list[str]
    ips: list[str]
    code: str
    says: str  # in the one-line message kubectl prints


REFUSED = [
    Refused(
        "another-nodes-ip",
        NODE.name,
        [NODE.name],
        [PEER.internal_ip],
        "node.san_not_an_address",
        f"IP address '{PEER.internal_ip}' is not an address of Node '{NODE.name}'",
    ),
    Refused(
        "an-address-it-lacks",
        NODE.name,
        [NODE.name],
        ["192.0.2.99"],
        "node.san_not_an_address",
        f"IP address '192.0.2.99' is not an address of Node '{NODE.name}'",
    ),
    Refused(
        "kubernetes-default-svc",
        NODE.name,
        [NODE.name, "KUBERNETES.default.svc"],
        [NODE.internal_ip],
        "deny.dns",
        "'KUBERNETES.default.svc' matches guardrail",
    ),
    Refused(
        "no-such-node",
        "e2e-node-ghost",
        ["e2e-node-ghost"],
        ["192.0.2.50"],
        "node.not_found",
        "rule 'node-serving' requires Node 'e2e-node-ghost' to exist; there is none",
    ),
]


@pytest.mark.parametrize("refused", REFUSED, ids=[r.case for r in REFUSED])
def test_serving_csrs_naming_what_the_node_lacks_are_denied_at_admission_and_never_approved(
    cluster: Cluster,
    approvers: Approvers,
    serving_nodes: tuple[E2ENode, ...],
    recorder: Recorder,
    refused: Refused,
) -> None:
    name = f"e2e-serving-{refused.case}"
    mark = recorder.mark()
    manifest = serving_csr(name, refused.requester, dns_names=refused.dns, ips=refused.ips)
    status, stderr = _create(cluster, manifest, refused.requester)
    assert status != 0
    assert DENIED_BY_US in stderr
    assert refused.says in stderr, stderr
    assert refused.code in _causes(recorder, mark, name)
    assert name not in {c["metadata"]["name"] for c in stored_csrs(cluster)}
    assert not [
        e
        for e in reviews_of(recorder.since(mark), name)
        if e.request["request"].get("subResource") == "approval"
    ]


def _acquired_at(spec: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(spec["acquireTime"]).replace("Z", "+00:00")).timestamp()


def test_killing_the_leader_hands_over_within_the_lease_duration_and_nothing_is_approved_twice(
    cluster: Cluster, approvers: Approvers, serving_nodes: tuple[E2ENode, ...]
) -> None:
    leader = approvers.leader(cluster)
    standby = next(a for a in approvers.replicas.values() if a is not leader)
    ips = [NODE.internal_ip]
    before = [f"e2e-kill-before-{i}" for i in range(3)]  # maxPending 3 per node
    for name in before:
        create_as_node(cluster, serving_csr(name, NODE.name, ips=ips), NODE.name)
    leader.kill()
    killed_at = time.time()  # the same clock as the new holder's acquireTime (one machine)
    wait_for(
        f"{standby.identity} to take the Lease",
        lambda: lease_spec(cluster).get("holderIdentity") == standby.identity,
        LEASE_DURATION * 4,
        standby.process,
    )
    took = _acquired_at(lease_spec(cluster)) - killed_at
    print(f"approver takeover after kill -9: {took:.2f}s (lease duration {LEASE_DURATION}s)")
    # Not before the lease duration since the last renewal (at most a retry period and a
    # round trip before the kill), not later than the stated slack after it.
    assert LEASE_DURATION - RETRY_PERIOD - 0.5 <= took <= LEASE_DURATION + TAKEOVER_SLACK, took
    for name in before:
        assert conditions(wait_condition(cluster, name, "Approved"))["Approved"]["reason"] == (
            "AutoApproved"
        )
    after = [f"e2e-kill-after-{i}" for i in range(3)]
    for name in after:
        manifest = serving_csr(name, NODE.name, ips=ips)
        wait_for(  # the webhook's pending count may lag the approvals by its watch's delay
            f"{name} admitted",
            partial(_admitted, cluster, manifest, NODE.name),
            60,
        )
    for name in after:
        wait_condition(cluster, name, "Approved")
    assert standby.metric("csr_webhook_approver_leader") == 1.0
    # Restart the killed one: it stays a standby and acts on nothing already decided.
    leader.process.start()
    wait_for(f"{leader.identity} /readyz again", leader.ready, 60, leader.process)
    wait_for(
        f"{leader.identity} standing by",
        lambda: leader.metric("csr_webhook_approver_leader") == 0.0,
        30,
        leader.process,
    )
    assert lease_spec(cluster).get("holderIdentity") == standby.identity
    counts = condition_counts(cluster)
    assert {n: kinds for n, kinds in counts.items() if kinds.count("Approved") > 1} == {}
    assert all(counts[name] == ["Approved"] for name in before + after), counts
