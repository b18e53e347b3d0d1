"""The kubelet-serving corpus (tests/e2e/serving_corpus.py) through the real API server: its
Nodes created, each CSR sent as its node, judged by csr-webhook with the shipped policies and
cluster facts, and the admitted ones approved by `csr-webhook approve` and signed by
kube-controller-manager. Each case must get the outcome it records (`ours`); the side-by-side
in docs/kubelet-csr-approver.md is this test's column."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.e2e.approver import (
    Approver,
    lease_holder,
    serving_csr,
    shipped_rbac,
    start_approver,
    token_kubeconfig,
)
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.kube import conditions, issued, wait_for_csr
from tests.e2e.recorder import Exchange, Recorder
from tests.e2e.serving_corpus import CASES, NODES, ServingCase
from tests.e2e.webhook import Webhook
from webhook.addresses import comparable_ip

pytestmark = pytest.mark.e2e

LABEL = "csr-webhook.e2e/corpus=serving"
DENIED_BY_US = 'admission webhook "validate.csr-webhook.io" denied the request: '
ONE_YEAR = 8760 * 3600  # the shipped lifetime default and clamp
IDENTITY = "e2e-corpus-approver"


def _csr_name(case: ServingCase) -> str:
    return f"corpus-{case.id}"


def _create_nodes(cluster: Cluster) -> None:
    for node in NODES:
        manifest = node.manifest()
        cluster.kubectl_ok("create", "-f", "-", input=json.dumps(manifest))
        stored = cluster.get_json("node", node.name)["status"].get("addresses", [])
        if [(a["type"], a["address"]) for a in stored] != list(node.addresses):
            cluster.kubectl_ok(
                "patch",
                "node",
                node.name,
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps({"status": manifest["status"]}),
            )


def _node_known(cluster: Cluster, node: str) -> bool:
    """A server-side dry run of the node's own Hostname CSR is allowed: the webhook's Node
    cache has the Node (a dry run stores nothing and counts toward no quota)."""
    probe = serving_csr(f"corpus-probe-{node}", node)
    done = cluster.kubectl(
        "create",
        "--dry-run=server",
        "-f",
        "-",
        "--as",
        f"system:node:{node}",
        "--as-group",
        "system:nodes",
        input=json.dumps(probe),
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def corpus(
    cluster: Cluster,
    webhook: Webhook,
    requester_rbac: None,
    e2e_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Approver]:
    """The corpus Nodes, seen by the webhook, and one more approver replica."""
    cluster.apply(shipped_rbac(cluster))
    _create_nodes(cluster)
    approver: Approver | None = None
    try:
        for name in [node.name for node in NODES]:
            wait_for(
                f"the webhook's cache to know Node {name}",
                functools.partial(_node_known, cluster, name),
                30,
                webhook.process,
            )
        home = tmp_path_factory.mktemp("corpus-approver")
        kubeconfig = token_kubeconfig(cluster, home / "approver.kubeconfig")
        approver = start_approver(
            e2e_root, IDENTITY, webhook.policies, kubeconfig, *cluster.processes
        )
        # Another module's approver replica may hold the Lease: any holder approves the same.
        wait_for("a holder of the approver Lease", lambda: lease_holder(cluster) != "", 60)
        yield approver
    finally:
        if approver is not None:
            approver.process.stop()
        cluster.kubectl("delete", "csr", "-l", LABEL, "--wait=false")
        cluster.kubectl("delete", "node", "-l", LABEL, "--wait=false")


def _validating_creates(exchanges: list[Exchange], name: str) -> list[Exchange]:
    return [
        e
        for e in exchanges
        if e.path == "/validate"
        and e.request["request"].get("name") == name
        and e.request["request"]["operation"] == "CREATE"
        and not e.request["request"].get("dryRun")
    ]


def _sans(signed: x509.Certificate | x509.CertificateSigningRequest) -> tuple[Any, Any]:
    """DNS and IP SANs; an IPv4-mapped IPv6 address as IPv4 (Go's signer writes it so)."""
    names = signed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        sorted(names.get_values_for_type(x509.DNSName)),
        sorted(comparable_ip(str(ip)) for ip in names.get_values_for_type(x509.IPAddress)),
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_corpus_case_gets_csr_webhooks_recorded_outcome(
    case: ServingCase, corpus: Approver, cluster: Cluster, recorder: Recorder
) -> None:
    name = _csr_name(case)
    mark = recorder.mark()
    done = cluster.kubectl(
        "create", "-f", "-", *case.impersonation(), input=json.dumps(case.manifest(name))
    )
    exchanges = recorder.since(mark)
    reviews = _validating_creates(exchanges, name)
    if case.ours.refused_by:
        assert case.ours.refused_by == "NodeRestriction"
        assert done.returncode != 0, done.stdout
        assert f"can only create a node CSR with CN=system:node:{case.requester}" in done.stderr
        assert [e for e in exchanges if e.request["request"].get("name") == name] == []
        return
    [review] = reviews
    response = review.response["response"] if review.response else {}
    if case.ours.codes:
        assert done.returncode != 0, done.stdout
        lines = [line for line in done.stderr.splitlines() if DENIED_BY_US in line]
        assert len(lines) == 1, done.stderr
        assert "policy 'kubelet-serving'" in lines[0]
        assert response["allowed"] is False
        codes = response["auditAnnotations"]["violations"].split(",")
        assert tuple(sorted(set(codes))) == case.ours.codes, (codes, lines[0])
        assert cluster.kubectl("get", "csr", name).returncode != 0
        return
    assert done.returncode == 0, done.stderr
    assert response["allowed"] is True
    # Wait for this one before the next case: the shipped policy allows 3 pending per node.
    stored = wait_for_csr(
        cluster,
        f"{name} approved and signed",
        lambda c: c["metadata"]["name"] == name and issued(c) is not None,
        60,
    )
    found = conditions(stored)
    assert set(found) == {"Approved"}, found
    assert found["Approved"]["reason"] == "AutoApproved"
    assert "policy 'kubelet-serving' rule 'node-serving'" in found["Approved"]["message"]
    assert stored["spec"]["expirationSeconds"] == ONE_YEAR
    certificate = issued(stored)
    assert certificate is not None
    requested = x509.load_pem_x509_csr(case.request_pem())
    assert _sans(certificate) == _sans(requested)
