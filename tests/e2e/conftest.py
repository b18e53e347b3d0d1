"""Session fixtures of the end-to-end tier: one real cluster on loopback for the whole run.

PKI (cryptography) → etcd → kube-apiserver → kube-controller-manager (CSR controllers) →
csr-webhook (with a token of the shipped ServiceAccount and RBAC) behind the recording proxy →
the webhook configurations of manifests/base →
bootstrap token and the RBAC of a kubeadm-style cluster. Everything is stopped by PID at the
end; the logs stay in the session's directory (printed in the summary). At the end the API
server's own admission latency for our webhooks is scraped and printed, and the recorded
AdmissionReviews are written out (into tests/vectors/apiserver/<version>/, those of
PodCertificateRequests into tests/vectors/apiserver-pods/<version>/, with
CSR_WEBHOOK_E2E_RECORD=1).
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.approver import (
    Approver,
    Approvers,
    shipped_rbac,
    start_approver,
    token_kubeconfig,
)
from tests.e2e.cluster import Cluster, start_cluster, wait_for
from tests.e2e.kube import cluster_role, role_binding
from tests.e2e.latency import Latency, scrape_latency
from tests.e2e.nodes import NODES, E2ENode, create_nodes
from tests.e2e.pki import build_pki
from tests.e2e.recorder import Recorder
from tests.e2e.vectors import write_vectors
from tests.e2e.webhook import REPO, Webhook, register, start_webhook, webhook_kubeconfig

SUMMARY: dict[str, Any] = {}
TOKEN_ALPHABET = string.ascii_lowercase + string.digits


@pytest.fixture(scope="session")
def e2e_bin() -> Path:
    location = os.environ.get("CSR_WEBHOOK_E2E_BIN", "")
    required = ("etcd", "kube-apiserver", "kube-controller-manager", "kubelet-certs", "version")
    if not location or not all((Path(location) / name).exists() for name in required):
        pytest.fail(
            f"CSR_WEBHOOK_E2E_BIN={location!r} does not hold {', '.join(required)}: "
            "run the end-to-end tier with `make e2e`, which builds them first"
        )
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not on the PATH: the end-to-end tier drives the cluster with it")
    return Path(location)


@pytest.fixture(scope="session")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    SUMMARY["logs"] = root / "logs"
    return root


@pytest.fixture(scope="session")
def cluster(e2e_bin: Path, e2e_root: Path) -> Iterator[Cluster]:
    pki = build_pki(e2e_root / "pki")
    started = start_cluster(e2e_root, e2e_bin, pki)
    try:
        wait_for(
            "kube-controller-manager's certificate-controller service account",
            lambda: (
                started.kubectl(
                    "get", "serviceaccount", "-n", "kube-system", "certificate-controller"
                ).returncode
                == 0
            ),
            120,
            *started.processes,
        )
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def webhook(cluster: Cluster, e2e_root: Path, recorder: Recorder) -> Iterator[Webhook]:
    kubeconfig = webhook_kubeconfig(cluster, e2e_root)
    running = start_webhook(e2e_root, cluster.pki, recorder, kubeconfig)
    try:
        register(cluster, running)
        yield running
        SUMMARY["latency"] = scrape_latency(cluster)
    finally:
        running.stop()
        SUMMARY["vectors"] = write_vectors(
            recorder.exchanges,
            cluster.version,
            e2e_root / "vectors",
            REPO / "tests" / "vectors" if os.environ.get("CSR_WEBHOOK_E2E_RECORD") == "1" else None,
        )


@pytest.fixture(scope="session")
def serving_nodes(cluster: Cluster, webhook: Webhook) -> tuple[E2ENode, ...]:
    """The Nodes (InternalIP and Hostname addresses) whose kubelets ask for serving
    certificates under the node-bound shipped policy, known to every webhook worker."""
    create_nodes(cluster, NODES, webhook.process, *cluster.processes)
    return NODES


@pytest.fixture(scope="module")
def approvers(
    cluster: Cluster, webhook: Webhook, e2e_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Approvers]:
    """Two `csr-webhook approve` replicas with the shipped RBAC, for one test module (stopped
    with SIGTERM at its end: the leader releases the Lease)."""
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


@pytest.fixture(scope="session")
def bootstrap_token(cluster: Cluster, webhook: Webhook) -> str:
    """A kubeadm-style bootstrap token and the RBAC that lets kubelets join and renew."""
    token_id = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(6))
    token_secret = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(16))
    cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
                "type": "bootstrap.kubernetes.io/token",
                "stringData": {
                    "token-id": token_id,
                    "token-secret": token_secret,
                    "usage-bootstrap-authentication": "true",
                },
            },
            _binding("e2e-node-bootstrapper", "system:node-bootstrapper", "system:bootstrappers"),
            _binding(
                "e2e-node-autoapprove-bootstrap",
                "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                "system:bootstrappers",
            ),
            _binding(
                "e2e-node-autoapprove-certificate-rotation",
                "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                "system:nodes",
            ),
        ]
    )
    return f"{token_id}.{token_secret}"


@pytest.fixture(scope="session")
def requester_rbac(cluster: Cluster) -> None:
    """RBAC lets alice (group e2e-requesters) create and read CSRs, as a cluster would let
    the users who may ask for client certificates."""
    cluster.apply(
        [
            cluster_role(
                "e2e-csr-requester",
                [
                    {
                        "apiGroups": ["certificates.k8s.io"],
                        "resources": ["certificatesigningrequests"],
                        "verbs": ["create", "get", "list", "watch"],
                    }
                ],
            ),
            role_binding("e2e-csr-requester", "e2e-csr-requester", [("Group", "e2e-requesters")]),
        ]
    )


def _binding(name: str, role: str, group: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }


@pytest.fixture(autouse=True)
def _label_recordings(request: pytest.FixtureRequest, recorder: Recorder) -> Iterator[None]:
    """Every review the API server sends during a test is labelled with that test's name."""
    recorder.scenario = request.node.name
    yield
    recorder.scenario = "between-tests"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not SUMMARY:
        return
    write = terminalreporter.write_line
    terminalreporter.section("csr-webhook end to end")
    latency: list[Latency] = SUMMARY.get("direct", []) + SUMMARY.get("latency", [])
    for row in latency:
        write(row.line())
    if "vectors" in SUMMARY:
        write(f"recorded AdmissionReviews: {SUMMARY['vectors']}")
    write(f"process logs: {SUMMARY.get('logs')}")
