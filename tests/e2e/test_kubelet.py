"""The kubelet's own certificate code against the real control plane and csr-webhook.

TLS bootstrap (pkg/kubelet/certificate/bootstrap), client renewal and the serving certificate
(pkg/kubelet/certificate on client-go's certificate manager), run by e2e/cmd/kubelet-certs.
Each test checks what the API server stored, what the kubelet code ended with, and which
reviews reached csr-webhook.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from tests.e2e.cluster import Cluster
from tests.e2e.kube import (
    KubeletRun,
    approver_rules,
    cluster_role,
    common_name,
    conditions,
    csr_request,
    finish,
    issued,
    kubeconfig_for_bootstrap,
    kubelet_certs,
    review_cn,
    reviews_of,
    role_binding,
    start_kubelet_certs,
    stored_csrs,
    wait_for_csr,
)
from tests.e2e.nodes import E2ENode
from tests.e2e.recorder import Exchange, Recorder
from tests.e2e.webhook import Webhook

pytestmark = pytest.mark.e2e

NODE = "e2e-node-a"
OTHER_NODE = "e2e-node-b"
NODE_IP = "192.0.2.10"  # TEST-NET-1: only ever a SAN in a certificate, never a destination
ONE_YEAR = 8760 * 3600  # the shipped kubelet policies' lifetime.default


@dataclass
class Kubelet:
    kubeconfig: Path
    cert_dir: Path
    token_id: str
    run: KubeletRun
    exchanges: list[Exchange]


@pytest.fixture(scope="module")
def kubelet(
    cluster: Cluster,
    bootstrap_token: str,
    recorder: Recorder,
    tmp_path_factory: pytest.TempPathFactory,
    serving_nodes: tuple[E2ENode, ...],
) -> Kubelet:
    """One TLS bootstrap of NODE, as a kubelet does it on its first start, with the webhook
    running (serving_nodes needs it) and the Node objects of NODE and OTHER_NODE created with
    the addresses the serving tests name."""
    assert {(n.name, n.internal_ip) for n in serving_nodes} >= {(NODE, NODE_IP)}
    home = tmp_path_factory.mktemp("kubelet")
    bootstrap = kubeconfig_for_bootstrap(cluster, home / "bootstrap.kubeconfig", bootstrap_token)
    mark = recorder.mark()
    recorder.scenario = "kubelet_tls_bootstrap"
    run = kubelet_certs(
        cluster,
        "bootstrap",
        f"--bootstrap-kubeconfig={bootstrap}",
        f"--kubeconfig={home / 'kubelet.kubeconfig'}",
        f"--cert-dir={home / 'pki'}",
        f"--node={NODE}",
        f"--address={NODE_IP}",
    )
    return Kubelet(
        home / "kubelet.kubeconfig",
        home / "pki",
        bootstrap_token.split(".", maxsplit=1)[0],
        run,
        recorder.since(mark),
    )


def _operation(exchange: Exchange) -> tuple[str, str, str, str]:
    request = exchange.request["request"]
    return (
        exchange.path,
        request["operation"],
        request.get("subResource", ""),
        request["userInfo"]["username"],
    )


def _allowed(exchange: Exchange) -> bool:
    return bool((exchange.response or {}).get("response", {}).get("allowed"))


def test_kubelet_tls_bootstrap_is_mutated_approved_signed_and_accepted(
    kubelet: Kubelet, cluster: Cluster
) -> None:
    assert kubelet.run.returncode == 0, kubelet.run.log
    # What the kubelet code ended with: a client certificate the API server accepts.
    assert kubelet.run.result["subject"] == f"CN=system:node:{NODE},O=system:nodes"
    assert kubelet.run.result["user"] == f"system:node:{NODE}"
    assert "system:nodes" in kubelet.run.result["groups"]
    assert kubelet.run.result["node"] == NODE

    # What the API server stored.
    requester = f"system:bootstrap:{kubelet.token_id}"
    stored = [c for c in stored_csrs(cluster) if c["spec"]["username"] == requester]
    assert len(stored) == 1
    csr = stored[0]
    assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert csr["spec"]["expirationSeconds"] == ONE_YEAR  # absent in the kubelet's CSR: our patch
    assert conditions(csr)["Approved"]["reason"] == "AutoApproved"
    certificate = issued(csr)
    assert certificate is not None
    assert certificate.public_key() == csr_request(csr).public_key()
    assert common_name(certificate.subject) == f"system:node:{NODE}"
    assert kubelet.run.result["certificate"].strip() == _pem(certificate).strip()

    # Which reviews reached us, in order: mutate and validate the CREATE (as the bootstrap
    # user), the approval gate (the csrapproving controller), the issuance gate (csrsigning).
    name = csr["metadata"]["name"]
    creates = [e for e in kubelet.exchanges if review_cn(e) == f"system:node:{NODE}"]
    mutate = [e for e in creates if e.path == "/mutate"]
    assert len(mutate) == 1
    assert mutate[0].request["request"]["userInfo"]["username"] == requester
    assert mutate[0].response is not None
    assert mutate[0].response["response"]["patchType"] == "JSONPatch"
    controller = "system:serviceaccount:kube-system:certificate-controller"
    seen = [_operation(e) for e in reviews_of(kubelet.exchanges, name)]
    assert ("/validate", "CREATE", "", requester) in seen
    assert ("/validate", "UPDATE", "approval", controller) in seen
    assert ("/validate", "UPDATE", "status", controller) in seen
    assert all(_allowed(e) for e in reviews_of(kubelet.exchanges, name))


def test_kubelet_client_renewal_is_bound_to_its_node(
    kubelet: Kubelet, cluster: Cluster, recorder: Recorder
) -> None:
    assert kubelet.run.returncode == 0, kubelet.run.log
    before = kubelet.run.result["certificate"]
    mark = recorder.mark()
    run = kubelet_certs(
        cluster,
        "renew-client",
        f"--kubeconfig={kubelet.kubeconfig}",
        f"--cert-dir={kubelet.cert_dir}",
        f"--node={NODE}",
    )
    assert run.returncode == 0, run.log
    assert run.result["subject"] == f"CN=system:node:{NODE},O=system:nodes"
    assert run.result["certificate"] != before

    requester = f"system:node:{NODE}"
    renewal = [
        c
        for c in stored_csrs(cluster)
        if c["spec"]["username"] == requester
        and c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    ]
    assert len(renewal) == 1
    assert conditions(renewal[0])["Approved"]["reason"] == "AutoApproved"
    assert renewal[0]["spec"]["expirationSeconds"] == ONE_YEAR
    certificate = issued(renewal[0])
    assert certificate is not None
    assert run.result["certificate"].strip() == _pem(certificate).strip()
    validated = [
        e
        for e in reviews_of(recorder.since(mark), renewal[0]["metadata"]["name"])
        if e.request["request"]["operation"] == "CREATE"
    ]
    assert [e.request["request"]["userInfo"]["username"] for e in validated] == [requester]
    assert all(_allowed(e) for e in validated)


def test_kubelet_client_renewal_for_another_node_is_refused_by_node_restriction(
    kubelet: Kubelet, cluster: Cluster, recorder: Recorder
) -> None:
    """NodeRestriction refuses this one, in the mutating admission phase, before any webhook:
    csr-webhook never sees it (its node-renewal rule would deny it too, CN is bound to
    ${node}, but here the built-in plugin is the layer that refuses)."""
    assert kubelet.run.returncode == 0, kubelet.run.log
    mark = recorder.mark()
    run = kubelet_certs(
        cluster,
        "renew-client",
        f"--kubeconfig={kubelet.kubeconfig}",
        f"--cert-dir={kubelet.cert_dir}",
        f"--node={OTHER_NODE}",
        "--timeout=60s",
    )
    assert run.returncode != 0
    assert "did not obtain a certificate" in run.result["error"]
    assert f"can only create a node CSR with CN=system:node:{NODE}" in run.log
    assert not [
        c
        for c in stored_csrs(cluster)
        if common_name(csr_request(c).subject) == f"system:node:{OTHER_NODE}"
    ]
    assert not [e for e in recorder.since(mark) if review_cn(e) == f"system:node:{OTHER_NODE}"]


SERVING_SIGNER = "kubernetes.io/kubelet-serving"
DENIED_BY_US = 'admission webhook "validate.csr-webhook.io" denied the request: '


def test_kubelet_serving_csr_naming_another_node_is_refused_by_us(
    kubelet: Kubelet, cluster: Cluster, recorder: Recorder, tmp_path: Path
) -> None:
    """A node whose serving CSR names another node: NodeRestriction checks only the CN of a
    node's CSR, so here csr-webhook is the layer that refuses (every SAN must be an address
    of the requester's own Node: OTHER_NODE is not one of NODE's)."""
    assert kubelet.run.returncode == 0, kubelet.run.log
    mark = recorder.mark()
    run = kubelet_certs(
        cluster,
        "serving",
        f"--kubeconfig={kubelet.kubeconfig}",
        f"--cert-dir={tmp_path}",
        f"--node={NODE}",
        f"--hostname={OTHER_NODE}",
        f"--address={NODE_IP}",
        "--timeout=60s",
    )
    assert run.returncode != 0
    assert "did not obtain a certificate" in run.result["error"]
    seen = run.log.replace('\\"', '"')  # klog quotes the API server's error: err="..."
    assert DENIED_BY_US in seen
    assert OTHER_NODE in seen, seen
    for csr in stored_csrs(cluster):
        request = csr_request(csr)
        try:
            sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            continue
        assert OTHER_NODE not in sans.get_values_for_type(x509.DNSName)
    refused = [
        e
        for e in recorder.since(mark)
        if e.path == "/validate" and e.request["request"]["operation"] == "CREATE"
    ]
    assert len(refused) == 1
    assert refused[0].request["request"]["userInfo"]["username"] == f"system:node:{NODE}"
    assert review_cn(refused[0]) == f"system:node:{NODE}"
    assert not _allowed(refused[0])


@pytest.fixture(scope="module")
def serving_rbac(cluster: Cluster) -> None:
    """RBAC lets all three callers approve kubelet-serving CSRs, so that what refuses the
    requester and the non-approver is csr-webhook, not RBAC."""
    cluster.apply(
        [
            cluster_role("e2e-kubelet-serving-approver", approver_rules(SERVING_SIGNER)),
            role_binding(
                "e2e-kubelet-serving-approver",
                "e2e-kubelet-serving-approver",
                [
                    ("Group", "csr-approvers"),
                    ("Group", "e2e-not-approvers"),
                    ("User", f"system:node:{NODE}"),
                ],
            ),
        ]
    )


def test_kubelet_serving_certificate_needs_an_approver_who_is_not_the_requester(
    kubelet: Kubelet, cluster: Cluster, webhook: Webhook, recorder: Recorder, serving_rbac: None
) -> None:
    assert kubelet.run.returncode == 0, kubelet.run.log
    requester = f"system:node:{NODE}"
    process = start_kubelet_certs(
        cluster,
        "serving",
        f"--kubeconfig={kubelet.kubeconfig}",
        f"--cert-dir={kubelet.cert_dir}",
        f"--node={NODE}",
        f"--address={NODE_IP}",
        "--timeout=150s",
    )
    try:
        pending = wait_for_csr(
            cluster,
            "the kubelet's serving CSR",
            lambda c: (
                c["spec"]["signerName"] == SERVING_SIGNER and c["spec"]["username"] == requester
            ),
        )
        name = pending["metadata"]["name"]
        assert not conditions(pending)
        assert pending["spec"]["expirationSeconds"] == ONE_YEAR
        request = csr_request(pending)
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == [NODE]
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [NODE_IP]
        organization = request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        assert [o.value for o in organization] == ["system:nodes"]

        # The shipped policy names the controller and system:masters; the overlay adds
        # csr-approvers (no controller runs in this module).
        with webhook.overlay("serving-approvers", probe=lambda: _approval_refused(cluster, name)):
            self_approval = cluster.kubectl(
                "certificate", "approve", name, "--as", requester, "--as-group", "system:nodes"
            )
            assert self_approval.returncode != 0
            assert DENIED_BY_US in self_approval.stderr
            assert f"'{requester}' may not approve its own CSR" in self_approval.stderr
            non_approver = cluster.kubectl(
                "certificate", "approve", name, "--as", "mallory", "--as-group", "e2e-not-approvers"
            )
            assert non_approver.returncode != 0
            assert DENIED_BY_US in non_approver.stderr
            assert "'mallory' may not add Approved for signer" in non_approver.stderr
            assert not conditions(cluster.get_json("csr", name))

            approve = cluster.kubectl(
                "certificate", "approve", name, "--as", "carol", "--as-group", "csr-approvers"
            )
            assert approve.returncode == 0, approve.stderr
            run = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert run.returncode == 0, run.log
    assert run.result["subject"] == f"CN=system:node:{NODE},O=system:nodes"
    assert run.result["dnsNames"] == [NODE]
    assert run.result["ipAddresses"] == [NODE_IP]

    stored = cluster.get_json("csr", name)
    approved = conditions(stored)["Approved"]
    assert approved["status"] == "True"
    certificate = issued(stored)
    assert certificate is not None
    assert run.result["certificate"].strip() == _pem(certificate).strip()
    approvals = [
        (e.request["request"]["userInfo"]["username"], _allowed(e))
        for e in reviews_of(recorder.exchanges, name)
        if e.request["request"].get("subResource") == "approval"
        and not e.request["request"]["dryRun"]
    ]
    assert approvals == [(requester, False), ("mallory", False), ("carol", True)]


def _approval_refused(cluster: Cluster, name: str) -> bool:
    """A server-side dry run of mallory's approval: refused once the overlay is in force."""
    patch = {
        "status": {
            "conditions": [
                {"type": "Approved", "status": "True", "reason": "Probe", "message": "dry run"}
            ]
        }
    }
    done = cluster.kubectl(
        "patch",
        "csr",
        name,
        "--subresource=approval",
        "--type=merge",
        "-p",
        json.dumps(patch),
        "--dry-run=server",
        "--as",
        "mallory",
        "--as-group",
        "e2e-not-approvers",
    )
    return done.returncode != 0 and "'mallory' may not add Approved" in done.stderr


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
