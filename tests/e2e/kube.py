"""Reading what the API server stored and running the kubelet-certs client (e2e/cmd/kubelet-certs)."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.cluster import Cluster, child_environment, wait_for, write_kubeconfig
from tests.e2e.recorder import Exchange


def csr_request(obj: dict[str, Any]) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(base64.b64decode(obj["spec"]["request"]))


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def stored_csrs(cluster: Cluster) -> list[dict[str, Any]]:
    return list(cluster.get_json("certificatesigningrequests")["items"])


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}


def issued(obj: dict[str, Any]) -> x509.Certificate | None:
    certificate = obj.get("status", {}).get("certificate")
    if not certificate:
        return None
    return x509.load_pem_x509_certificate(base64.b64decode(certificate))


def wait_for_csr(
    cluster: Cluster, what: str, predicate: Callable[[dict[str, Any]], bool], deadline: float = 60
) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def probe() -> bool:
        found[:] = [obj for obj in stored_csrs(cluster) if predicate(obj)]
        return bool(found)

    wait_for(what, probe, deadline, *cluster.processes)
    return found[0]


def reviews_of(exchanges: list[Exchange], csr_name: str) -> list[Exchange]:
    """The reviews the API server sent about one CSR (by name; the mutating CREATE of a CSR
    with generateName has no name yet and is matched by the caller)."""
    return [e for e in exchanges if e.request.get("request", {}).get("name") == csr_name]


def review_cn(exchange: Exchange) -> str:
    obj = exchange.request.get("request", {}).get("object") or {}
    if "request" not in obj.get("spec", {}):
        return ""
    return common_name(csr_request(obj).subject)


@dataclass
class KubeletRun:
    returncode: int
    result: dict[str, Any]
    log: str


def kubelet_certs(cluster: Cluster, command: str, *args: str, timeout: float = 180) -> KubeletRun:
    done = subprocess.run(
        [str(cluster.bin_dir / "kubelet-certs"), command, *args],
        capture_output=True,
        text=True,
        env=child_environment(),
        timeout=timeout,
        check=False,
    )
    return KubeletRun(done.returncode, _last_json(done.stdout), done.stderr)


def start_kubelet_certs(cluster: Cluster, command: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(cluster.bin_dir / "kubelet-certs"), command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )


def finish(process: subprocess.Popen[str], timeout: float = 180) -> KubeletRun:
    stdout, stderr = process.communicate(timeout=timeout)
    return KubeletRun(process.returncode, _last_json(stdout), stderr)


def _last_json(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {}


def cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules,
    }


def role_binding(name: str, role: str, subjects: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}
            for kind, subject in subjects
        ],
    }


def approver_rules(signer: str) -> list[dict[str, Any]]:
    """What RBAC asks of anyone who approves or denies CSRs of `signer`."""
    return [
        {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests/approval"],
            "verbs": ["get", "update", "patch"],
        },
        {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["signers"],
            "resourceNames": [signer],
            "verbs": ["approve"],
        },
    ]


def kubeconfig_for_bootstrap(cluster: Cluster, path: Path, token: str) -> Path:
    return write_kubeconfig(path, cluster.server, cluster.pki.ca.cert, {"token": token})


REQUESTER = ("--as", "alice", "--as-group", "e2e-requesters")


def client_csr(
    name: str, common_name: str, *, dns_names: list[str] | None = None
) -> tuple[dict[str, Any], ec.EllipticCurvePrivateKey]:
    """A kubernetes.io/kube-apiserver-client CSR manifest and its key (memory only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    manifest = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["digital signature", "client auth"],
        },
    }
    return manifest, key


def create_as_requester(
    cluster: Cluster, manifest: dict[str, Any], *extra: str
) -> subprocess.CompletedProcess[str]:
    """`kubectl create -f -` as alice (impersonated by the admin)."""
    return cluster.kubectl("create", "-f", "-", *REQUESTER, *extra, input=json.dumps(manifest))
