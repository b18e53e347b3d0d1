"""`csr-webhook approve` as the cluster meets it: processes with a ServiceAccount token bound by
the RBAC rendered from manifests/base (so the shipped RBAC is what is proven sufficient)."""

from __future__ import annotations

import base64
import json
import signal
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.cluster import Cluster, Process, wait_for, write_kubeconfig
from tests.e2e.webhook import CLI, REPO
from tests.server import free_port

NAMESPACE = "csr-webhook"
ACCOUNT = "csr-webhook-approver"
LEASE = "csr-webhook-approver"
USERNAME = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
# Short, so that a takeover is measured in seconds; the rule the flags check holds.
LEASE_DURATION = 6.0
RENEW_DEADLINE = 4.0
RETRY_PERIOD = 1.0
# The identity objects of the controller as manifests/base ships them.
RBAC_OBJECTS = {
    ("Namespace", NAMESPACE),
    ("ServiceAccount", ACCOUNT),
    ("ClusterRole", ACCOUNT),
    ("ClusterRoleBinding", ACCOUNT),
    ("Role", "csr-webhook-approver-lease"),
    ("RoleBinding", "csr-webhook-approver-lease"),
}


def shipped_rbac(cluster: Cluster) -> list[dict[str, Any]]:
    rendered = cluster.kubectl_ok("kustomize", str(REPO / "manifests" / "base"))
    return [
        doc
        for doc in yaml.safe_load_all(rendered)
        if doc and (doc["kind"], doc["metadata"]["name"]) in RBAC_OBJECTS
    ]


def token_kubeconfig(cluster: Cluster, path: Path) -> Path:
    """A kubeconfig for the controller's ServiceAccount (a TokenRequest token)."""
    token = cluster.kubectl_ok("create", "token", ACCOUNT, "-n", NAMESPACE, "--duration=2h").strip()
    return write_kubeconfig(path, cluster.server, cluster.pki.ca.cert, {"token": token})


@dataclass
class Approver:
    identity: str
    process: Process
    metrics_port: int

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return str(answer.read().decode())

    def metric(self, name: str, labels: str = "") -> float:
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name) and (not labels or labels in line):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.metrics_port}/readyz"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return bool(answer.status == 200)

    def kill(self) -> None:
        """kill -9: no release, no goodbye."""
        popen = self.process.popen
        assert popen is not None
        popen.send_signal(signal.SIGKILL)
        popen.wait(10)


def start_approver(
    root: Path, identity: str, policies: Path, kubeconfig: Path, *processes: Process
) -> Approver:
    port = free_port()
    process = Process(
        f"csr-webhook approve ({identity})",
        [
            str(CLI),
            "approve",
            f"--policies={policies}",
            f"--kubeconfig={kubeconfig}",
            f"--lease-namespace={NAMESPACE}",
            f"--lease-name={LEASE}",
            f"--identity={identity}",
            f"--metrics-bind=127.0.0.1:{port}",
            f"--lease-duration={LEASE_DURATION}",
            f"--renew-deadline={RENEW_DEADLINE}",
            f"--retry-period={RETRY_PERIOD}",
            "--reload-interval=0.5",
        ],
        root / "logs" / f"approver-{identity}.log",
    )
    approver = Approver(identity, process.start(), port)
    wait_for(f"{identity} /readyz", approver.ready, 60, process, *processes)
    return approver


def lease_holder(cluster: Cluster) -> str:
    done = cluster.kubectl("get", "lease", "-n", NAMESPACE, LEASE, "-o", "json")
    if done.returncode != 0:
        return ""
    return str(json.loads(done.stdout).get("spec", {}).get("holderIdentity", ""))


def serving_csr(name: str, node: str, *, dns_names: list[str] | None = None) -> dict[str, Any]:
    """A kubelet-serving CSR manifest as node `node`'s kubelet makes one (key in memory only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = dns_names if dns_names is not None else [node]
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
                ]
            )
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    )
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": SERVING_SIGNER,
            "usages": ["digital signature", "server auth"],
        },
    }


def create_as_node(cluster: Cluster, manifest: dict[str, Any], node: str) -> None:
    cluster.kubectl_ok(
        "create",
        "-f",
        "-",
        "--as",
        f"system:node:{node}",
        "--as-group",
        "system:nodes",
        input=json.dumps(manifest),
    )
