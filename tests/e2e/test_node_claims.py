"""A node may write any address into its own Node, and the real API server lets it: node b,
with its own credentials (impersonated: system:node:b in system:nodes), patches its status to
add node a's InternalIP. The session webhook (cluster facts on, the shipped kubelet-serving
policy, sharedAddresses: Deny) then refuses a serving CSR naming that IP to b and to a alike
(node.address_shared), and lets a have it again once b has dropped it."""

from __future__ import annotations

import base64
import ipaddress
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.kube import cluster_role, reviews_of, role_binding
from tests.e2e.recorder import Recorder
from tests.e2e.webhook import Webhook
from webhook.cluster.client import connect

pytestmark = pytest.mark.e2e

NODE_A, NODE_B = "e2e-claims-a", "e2e-claims-b"
IP_A, IP_B = "198.51.100.21", "198.51.100.22"  # TEST-NET-2: only ever SANs, never dialled
SHARED = "node.address_shared"
DENIED_BY_US = 'admission webhook "validate.csr-webhook.io" denied the request: '
# Both webhook workers keep their own caches: a verdict counts once this many answers in a
# row agree (either worker may answer any of them).
AGREEING_ANSWERS = 6


def _as_node(name: str) -> tuple[str, ...]:
    return ("--as", f"system:node:{name}", "--as-group", "system:nodes")


def _addresses(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"type": kind, "address": value} for kind, value in pairs]


def _node(name: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"e2e": "node-claims"}},
        "status": {"addresses": _addresses(("InternalIP", ip), ("Hostname", name))},
    }


def _serving_csr(name: str, node: str, ip: str) -> dict[str, Any]:
    """A kubelet-serving CSR as a kubelet makes it: its name and one IP (key in memory only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
        ]
    )
    sans = x509.SubjectAlternativeName(
        [x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(ip))]
    )
    pem = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(sans, critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": "kubernetes.io/kubelet-serving",
            "usages": ["digital signature", "server auth"],
            "expirationSeconds": 86400,
        },
    }


@pytest.fixture(scope="module")
def claim_nodes(cluster: Cluster, webhook: Webhook) -> Iterator[None]:
    """Nodes a and b, made by the admin with their addresses; RBAC lets exactly these two node
    users create CSRs (so what refuses them is csr-webhook, not RBAC)."""
    role = "e2e-node-claims-csr-creator"
    cluster.apply(
        [
            cluster_role(
                role,
                [
                    {
                        "apiGroups": ["certificates.k8s.io"],
                        "resources": ["certificatesigningrequests"],
                        "verbs": ["create", "get"],
                    }
                ],
            ),
            role_binding(role, role, [("User", f"system:node:{n}") for n in (NODE_A, NODE_B)]),
        ]
    )
    for name, ip in ((NODE_A, IP_A), (NODE_B, IP_B)):
        cluster.kubectl_ok("create", "-f", "-", input=json.dumps(_node(name, ip)))
    try:
        yield
    finally:
        cluster.kubectl("delete", "node", NODE_A, NODE_B, "--wait=false")
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", role)


@dataclass(frozen=True)
class Answer:
    admitted: bool
    codes: list[str]  # of our /validate response (its causes' reasons), as recorded
    stderr: str


class Requests:
    """Serving CSRs created as a node, named uniquely; any that is admitted is deleted again.
    A probe creates with --dry-run=server: the same admission, nothing stored (so the probes
    that wait for the caches count against no maxPending)."""

    def __init__(self, cluster: Cluster, recorder: Recorder) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.count = 0

    def create(self, node: str, ip: str, *, probe: bool = False) -> Answer:
        self.count += 1
        name = f"e2e-claims-{node[-1]}-{self.count}"
        mark = self.recorder.mark()
        dry_run = ("--dry-run=server",) if probe else ()
        done = self.cluster.kubectl(
            "create", "-f", "-", *dry_run, *_as_node(node),
            input=json.dumps(_serving_csr(name, node, ip)),
        )  # fmt: skip
        if done.returncode == 0 and not probe:
            self.cluster.kubectl("delete", "csr", name, "--wait=false")
        [validated] = [
            e for e in reviews_of(self.recorder.since(mark), name) if e.path == "/validate"
        ]
        response = (validated.response or {}).get("response", {})
        causes = response.get("status", {}).get("details", {}).get("causes", [])
        assert response.get("allowed") == (done.returncode == 0), done.stderr
        return Answer(done.returncode == 0, [c["reason"] for c in causes], done.stderr)

    def probe(self, node: str, ip: str) -> Answer:
        return self.create(node, ip, probe=True)


def _agree(probe: Callable[[], bool], what: str, cluster: Cluster, deadline: float = 60) -> None:
    """`probe()` holds AGREEING_ANSWERS times in a row before the deadline."""
    streak = 0

    def held() -> bool:
        nonlocal streak
        streak = streak + 1 if probe() else 0
        if streak < AGREEING_ANSWERS:
            time.sleep(0.1)
        return streak >= AGREEING_ANSWERS

    wait_for(what, held, deadline, *cluster.processes)


def _patch_addresses(cluster: Cluster, node: str, *pairs: tuple[str, str]) -> None:
    """As the node itself (the admin impersonating it, as kubectl --as does): a merge PATCH of
    its own Node's status.addresses. Not `kubectl patch`, which GETs nodes/status first, a
    read the Node authorizer does not grant; a kubelet only PATCHes."""
    api: Any = connect(str(cluster.admin_kubeconfig))
    try:
        kubernetes.client.CoreV1Api(api).patch_node_status(
            node,
            {"status": {"addresses": _addresses(*pairs)}},
            _content_type="application/merge-patch+json",
            _headers={
                "Impersonate-User": f"system:node:{node}",
                "Impersonate-Group": "system:nodes",
            },
        )
    finally:
        api.close()


def test_a_node_that_claims_another_nodes_ip_gets_no_certificate_for_it(
    cluster: Cluster, webhook: Webhook, recorder: Recorder, claim_nodes: None
) -> None:
    requests = Requests(cluster, recorder)
    # Before any claim a's IP is a's alone: its CSR is admitted (both workers agree); b's CSR
    # for it names no address of b.
    _agree(lambda: requests.probe(NODE_A, IP_A).admitted, "a's CSR for its IP admitted", cluster)
    before = requests.create(NODE_B, IP_A)
    assert (before.admitted, before.codes) == (False, ["node.san_not_an_address"])

    # Node b writes a's InternalIP into its own Node's status, and the API server accepts it:
    # NodeRestriction lets a node update its own Node, and nothing checks the addresses.
    _patch_addresses(
        cluster, NODE_B, ("InternalIP", IP_B), ("InternalIP", IP_A), ("Hostname", NODE_B)
    )
    stored = cluster.get_json("node", NODE_B)["status"]["addresses"]
    assert {"type": "InternalIP", "address": IP_A} in stored

    _agree(
        lambda: requests.probe(NODE_B, IP_A).codes == [SHARED],
        "b's CSR for a's IP refused as shared",
        cluster,
    )
    theirs = requests.create(NODE_B, IP_A)
    assert (theirs.admitted, theirs.codes) == (False, [SHARED])
    assert DENIED_BY_US in theirs.stderr
    assert (
        f"spec.request.ipAddresses[0]: IP address '{IP_A}' is an address of Node '{NODE_B}' "
        f"and also of Node '{NODE_A}'" in theirs.stderr
    )
    # Which of the two wrote the truth cannot be told: a's own CSR for it is refused too.
    ours = requests.create(NODE_A, IP_A)
    assert (ours.admitted, ours.codes) == (False, [SHARED])
    assert f"is an address of Node '{NODE_A}' and also of Node '{NODE_B}'" in ours.stderr
    # b's own, unshared IP is still b's.
    own = requests.create(NODE_B, IP_B)
    assert (own.admitted, own.codes) == (True, []), own.stderr

    # b drops the claim: the address is a's alone again.
    _patch_addresses(cluster, NODE_B, ("InternalIP", IP_B), ("Hostname", NODE_B))
    _agree(
        lambda: requests.probe(NODE_A, IP_A).admitted,
        "a's CSR for its IP admitted once b dropped it",
        cluster,
    )
