"""kubectl against the real API server: a client CSR with a forbidden SAN, forged certificates
written through /status, and a server-side dry run of manifests/base."""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
from collections.abc import Iterator

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.cluster import Cluster, Process
from tests.e2e.kube import (
    client_csr,
    cluster_role,
    conditions,
    create_as_requester,
    csr_request,
    issued,
    role_binding,
    wait_for_csr,
)
from tests.e2e.webhook import REPO, Webhook

pytestmark = pytest.mark.e2e

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
WEBHOOK_KINDS = {
    "validatingwebhookconfiguration.admissionregistration.k8s.io",
    "mutatingwebhookconfiguration.admissionregistration.k8s.io",
}
EXPECTED_KINDS = {
    "namespace",
    "serviceaccount",
    "service",
    "deployment.apps",
    "poddisruptionbudget.policy",
    "configmap",
    "clusterrole.rbac.authorization.k8s.io",
    "clusterrolebinding.rbac.authorization.k8s.io",
    "role.rbac.authorization.k8s.io",
    "rolebinding.rbac.authorization.k8s.io",
    *WEBHOOK_KINDS,
}
DENIED_BY_US = 'admission webhook "validate.csr-webhook.io" denied the request: '


def test_client_csr_with_forbidden_san_is_refused_with_our_one_line_message(
    cluster: Cluster, webhook: Webhook, requester_rbac: None
) -> None:
    manifest, _ = client_csr("e2e-forbidden-san", "alice", dns_names=["evil.example.com"])
    done = create_as_requester(cluster, manifest)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if DENIED_BY_US in line]
    assert len(lines) == 1, done.stderr
    assert "evil.example.com" in lines[0]
    assert "kube-apiserver-client" in lines[0]
    assert cluster.kubectl("get", "csr", "e2e-forbidden-san").returncode != 0


def _forged_certificate(
    csr: x509.CertificateSigningRequest, public_key: ec.EllipticCurvePublicKey
) -> bytes:
    """A plausible client certificate for the CSR's subject, from an attacker's own CA."""
    attacker = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker CA")]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(attacker, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def signer_paused(cluster: Cluster) -> Iterator[Process]:
    """kube-controller-manager stopped (SIGSTOP by PID) so that an approved CSR stays unsigned
    while the forgeries are tried; resumed afterwards."""
    manager = next(p for p in cluster.processes if p.name == "kube-controller-manager")
    os.kill(manager.pid, signal.SIGSTOP)
    try:
        yield manager
    finally:
        os.kill(manager.pid, signal.SIGCONT)


def _write_certificate(cluster: Cluster, name: str, pem: bytes, *identity: str) -> str:
    """PUT /status with the certificate set, as a signer does (`kubectl replace
    --subresource=status`; unlike patch it needs no `get` on the subresource)."""
    obj = cluster.get_json("csr", name)
    obj["status"]["certificate"] = base64.b64encode(pem).decode()
    done = cluster.kubectl(
        "replace", "--subresource=status", "-f", "-", *identity, input=json.dumps(obj)
    )
    assert done.returncode != 0, f"the forged certificate was accepted: {done.stdout}"
    return done.stderr


def test_forged_certificates_written_through_status_are_refused(
    cluster: Cluster, webhook: Webhook, requester_rbac: None, signer_paused: Process
) -> None:
    manifest, key = client_csr("e2e-forgery-target", "forgery-target")
    done = create_as_requester(cluster, manifest)
    assert done.returncode == 0, done.stderr
    approve = cluster.kubectl("certificate", "approve", "e2e-forgery-target")
    assert approve.returncode == 0, approve.stderr
    stored = cluster.get_json("csr", "e2e-forgery-target")
    assert "Approved" in conditions(stored)
    request = csr_request(stored)

    # RBAC lets mallory write status and sign for this signer: the refusal must be ours.
    cluster.apply(
        [
            cluster_role(
                "e2e-client-signer",
                [
                    {
                        "apiGroups": ["certificates.k8s.io"],
                        "resources": ["certificatesigningrequests/status"],
                        "verbs": ["update"],
                    },
                    {
                        "apiGroups": ["certificates.k8s.io"],
                        "resources": ["certificatesigningrequests"],
                        "verbs": ["get"],
                    },
                    {
                        "apiGroups": ["certificates.k8s.io"],
                        "resources": ["signers"],
                        "resourceNames": [CLIENT_SIGNER],
                        "verbs": ["sign"],
                    },
                ],
            ),
            role_binding("e2e-client-signer", "e2e-client-signer", [("User", "mallory-signer")]),
        ]
    )
    right_key = _forged_certificate(request, key.public_key())
    refused = _write_certificate(cluster, "e2e-forgery-target", right_key, "--as", "mallory-signer")
    assert DENIED_BY_US in refused
    assert "'mallory-signer' may not issue or fail CSRs" in refused

    other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    wrong_key = _forged_certificate(request, other_key)
    issuer = "system:serviceaccount:kube-system:certificate-controller"
    refused = _write_certificate(
        cluster,
        "e2e-forgery-target",
        wrong_key,
        "--as",
        issuer,
        "--as-group",
        "system:serviceaccounts",
        "--as-group",
        "system:serviceaccounts:kube-system",
    )
    assert DENIED_BY_US in refused
    assert "the certificate's public key is not the CSR's" in refused
    assert issued(cluster.get_json("csr", "e2e-forgery-target")) is None

    # The real signer, resumed, issues the genuine certificate through the same gate.
    os.kill(signer_paused.pid, signal.SIGCONT)
    signed = wait_for_csr(
        cluster,
        "the genuine certificate",
        lambda c: c["metadata"]["name"] == "e2e-forgery-target" and issued(c) is not None,
    )
    genuine = issued(signed)
    assert genuine is not None
    assert genuine.public_key() == key.public_key()


def test_manifests_base_pass_a_server_side_dry_run(cluster: Cluster, webhook: Webhook) -> None:
    """`kubectl apply --dry-run=server -k manifests/base`: every object of the base is valid for
    the real API server; only the deliberately invalid caBundle placeholder of the two webhook
    configurations is refused (docs/deploy.md), and with the CA put in (the documented step)
    everything passes."""
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "csr-webhook"}})
    as_shipped = cluster.kubectl(
        "apply", "--dry-run=server", "-k", str(REPO / "manifests" / "base")
    )
    errors = as_shipped.stderr.split("Error from server")[1:]
    assert as_shipped.returncode != 0
    assert len(errors) == 2, as_shipped.stderr
    for error in errors:
        assert "webhookconfigurations" in error
        assert "illegal base64 data" in error
    shipped_kinds = {
        line.split("/")[0] for line in as_shipped.stdout.splitlines() if "(server dry run)" in line
    }
    assert shipped_kinds == EXPECTED_KINDS - WEBHOOK_KINDS, as_shipped.stdout

    rendered = list(
        yaml.safe_load_all(cluster.kubectl_ok("kustomize", str(REPO / "manifests" / "base")))
    )
    ca = base64.b64encode(webhook.pki.webhook_ca.cert.read_bytes()).decode()
    for doc in rendered:
        for hook in doc.get("webhooks", []):
            hook["clientConfig"]["caBundle"] = ca
    with_ca = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(rendered)
    )
    assert with_ca.returncode == 0, with_ca.stderr
    kinds = {
        line.split("/")[0] for line in with_ca.stdout.splitlines() if "(server dry run)" in line
    }
    assert kinds == EXPECTED_KINDS, with_ca.stdout
    # A dry run changes nothing: the loopback registration is still the one in force.
    stored = json.loads(
        cluster.kubectl_ok("get", "validatingwebhookconfiguration", "csr-webhook", "-o", "json")
    )
    assert stored["webhooks"][0]["clientConfig"]["url"].startswith("https://127.0.0.1:")


def test_metadata_only_update_and_a_denial_pass_the_gate(
    cluster: Cluster, webhook: Webhook, requester_rbac: None
) -> None:
    """A label on the main resource (metadata only) and `kubectl certificate deny` by the
    admin are both allowed, and stored as sent."""
    manifest, _ = client_csr("e2e-labelled", "labelled")
    assert create_as_requester(cluster, manifest).returncode == 0
    label = cluster.kubectl("label", "csr", "e2e-labelled", "team=e2e")
    assert label.returncode == 0, label.stderr
    deny = cluster.kubectl("certificate", "deny", "e2e-labelled")
    assert deny.returncode == 0, deny.stderr
    stored = cluster.get_json("csr", "e2e-labelled")
    assert stored["metadata"]["labels"] == {"team": "e2e"}
    assert conditions(stored)["Denied"]["reason"] == "KubectlDeny"
    assert issued(stored) is None
