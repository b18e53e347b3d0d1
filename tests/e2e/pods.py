"""The objects of a pod certificate as the real control plane needs them, and the signer's side.

A Node (no kubelet runs: the test speaks with the node's identity, impersonated by the admin
as the suite does for nodes), ServiceAccounts and Pods bound to the Node that mount a
`podCertificate` projected volume for the test signer (so NodeRestriction's
validateNodePodCertificateSigner admits the node's PodCertificateRequests), the requests
themselves (certificates.k8s.io/v1, a stub PKCS#10 carrying only the key), and a signer CA
whose chains the test writes through /status. Private keys live in memory only.
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.cluster import Cluster
from tests.e2e.kube import cluster_role

SIGNER = "e2e.csr-webhook.io/pod-identity"
NODE = "e2e-pod-node"
AS_NODE = ("--as", f"system:node:{NODE}", "--as-group", "system:nodes")
TEAM_NAMESPACE = "team-pods"  # the policy's pods.namespaces: ["team-*"]
OTHER_NAMESPACE = "other-pods"
WORKLOAD = "workload"  # ServiceAccount and Pod name in each namespace
SIGNER_NAMESPACE = "e2e-pod-signer"
SIGNER_ACCOUNT = "signer"
AS_SIGNER = (
    "--as",
    f"system:serviceaccount:{SIGNER_NAMESPACE}:{SIGNER_ACCOUNT}",
    "--as-group",
    "system:serviceaccounts",
    "--as-group",
    f"system:serviceaccounts:{SIGNER_NAMESPACE}",
    "--as-group",
    "system:authenticated",
)

StubKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class BoundPod:
    """A Pod on NODE and what a kubelet copies from it into a PodCertificateRequest."""

    namespace: str
    name: str
    uid: str
    service_account: str
    service_account_uid: str
    node_uid: str

    def spiffe_id(self) -> str:
        return f"spiffe://cluster.local/ns/{self.namespace}/sa/{self.service_account}"


def _pod_manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": WORKLOAD, "namespace": namespace},
        "spec": {
            "nodeName": NODE,
            "serviceAccountName": WORKLOAD,
            "automountServiceAccountToken": False,
            # Never pulled: no kubelet runs this pod.
            "containers": [
                {
                    "name": "app",
                    "image": "registry.invalid/e2e/app:1",
                    "volumeMounts": [{"name": "identity", "mountPath": "/var/run/identity"}],
                }
            ],
            "volumes": [
                {
                    "name": "identity",
                    "projected": {
                        "sources": [
                            {
                                "podCertificate": {
                                    "signerName": SIGNER,
                                    "keyType": "ECDSAP256",
                                    "credentialBundlePath": "credentialbundle.pem",
                                    "userAnnotations": {"example.com/audience": "api"},
                                }
                            }
                        ]
                    },
                }
            ],
        },
    }


def create_bound_pods(cluster: Cluster) -> dict[str, BoundPod]:
    """NODE, and in TEAM_NAMESPACE and OTHER_NAMESPACE a ServiceAccount and a Pod on NODE
    (idempotent: a second run in the same cluster reuses them)."""
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}}
    objects: list[dict[str, Any]] = [node]
    for namespace in (TEAM_NAMESPACE, OTHER_NAMESPACE):
        objects += [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": WORKLOAD, "namespace": namespace},
            },
            _pod_manifest(namespace),
        ]
    cluster.apply(objects)
    node_uid = cluster.get_json("node", NODE)["metadata"]["uid"]
    pods = {}
    for namespace in (TEAM_NAMESPACE, OTHER_NAMESPACE):
        pod = cluster.get_json("pod", "-n", namespace, WORKLOAD)
        account = cluster.get_json("serviceaccount", "-n", namespace, WORKLOAD)
        pods[namespace] = BoundPod(
            namespace=namespace,
            name=WORKLOAD,
            uid=pod["metadata"]["uid"],
            service_account=WORKLOAD,
            service_account_uid=account["metadata"]["uid"],
            node_uid=node_uid,
        )
    return pods


def signer_rbac() -> list[dict[str, Any]]:
    """The signer's identity and what RBAC asks of anyone who writes PodCertificateRequest
    status for SIGNER (`sign` on signers, checked by the status strategy)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SIGNER_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SIGNER_ACCOUNT, "namespace": SIGNER_NAMESPACE},
        },
        cluster_role(
            "e2e-pod-signer",
            [
                {
                    "apiGroups": ["certificates.k8s.io"],
                    "resources": ["podcertificaterequests"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["certificates.k8s.io"],
                    "resources": ["podcertificaterequests/status"],
                    "verbs": ["get", "update", "patch"],
                },
                {
                    "apiGroups": ["certificates.k8s.io"],
                    "resources": ["signers"],
                    "resourceNames": [SIGNER],
                    "verbs": ["sign"],
                },
            ],
        ),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "e2e-pod-signer"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "e2e-pod-signer",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": SIGNER_ACCOUNT, "namespace": SIGNER_NAMESPACE}
            ],
        },
    ]


def stub_request(key: StubKey) -> bytes:
    """What a kubelet puts in spec.stubPKCS10Request: a DER CSR carrying only the key."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


def pcr_manifest(
    name: str,
    pod: BoundPod,
    key: StubKey,
    *,
    max_expiration_seconds: int = 86400,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "signerName": SIGNER,
        "podName": pod.name,
        "podUID": pod.uid,
        "serviceAccountName": pod.service_account,
        "serviceAccountUID": pod.service_account_uid,
        "nodeName": NODE,
        "nodeUID": pod.node_uid,
        "maxExpirationSeconds": max_expiration_seconds,
        "stubPKCS10Request": base64.b64encode(stub_request(key)).decode(),
    }
    if annotations is not None:
        spec["unverifiedUserAnnotations"] = annotations
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "PodCertificateRequest",
        "metadata": {"name": name, "namespace": pod.namespace},
        "spec": spec,
    }


def legacy_pcr_manifest(name: str, pod: BoundPod, key: StubKey) -> dict[str, Any]:
    """A certificates.k8s.io/v1beta1 request with the deprecated pkixPublicKey and its
    proofOfPossession (the key's signature over the pod UID: Ed25519 over its bytes, ECDSA
    over their SHA-256) instead of a stub CSR."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        proof = key.sign(pod.uid.encode())
    else:
        proof = key.sign(pod.uid.encode(), ec.ECDSA(hashes.SHA256()))
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    manifest = pcr_manifest(name, pod, key, annotations={"example.com/audience": "api"})
    manifest["apiVersion"] = "certificates.k8s.io/v1beta1"
    del manifest["spec"]["stubPKCS10Request"]
    manifest["spec"]["pkixPublicKey"] = base64.b64encode(public).decode()
    manifest["spec"]["proofOfPossession"] = base64.b64encode(proof).decode()
    return manifest


def create_as_node(
    cluster: Cluster, manifest: dict[str, Any], *extra: str
) -> subprocess.CompletedProcess[str]:
    """`kubectl create -f -` as NODE (system:node:e2e-pod-node in system:nodes)."""
    return cluster.kubectl("create", "-f", "-", *AS_NODE, *extra, input=json.dumps(manifest))


def stored_pcr(
    cluster: Cluster, namespace: str, name: str, version: str = "v1"
) -> dict[str, Any] | None:
    """The stored request as certificates.k8s.io/<version> serves it, or None."""
    resource = f"podcertificaterequests.{version}.certificates.k8s.io"
    done = cluster.kubectl("get", resource, "-n", namespace, name, "-o", "json")
    return dict(json.loads(done.stdout)) if done.returncode == 0 else None


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Issued:
    """A chain as a signer writes it, with the status times that go with its leaf."""

    chain_pem: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    begin_refresh_at: datetime.datetime


class SignerCA:
    """A root (the policy's caBundle) and an intermediate that issues the leaves (the chain
    is leaf, intermediate: verifying it to the bundle goes through the chain)."""

    def __init__(self, name: str) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _ca_certificate(f"{name} root", self.root_key, None, None)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _ca_certificate(
            f"{name} intermediate", self.intermediate_key, self.root, self.root_key
        )

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        public_key: ec.EllipticCurvePublicKey,
        *,
        uris: list[str],
        dns_names: list[str] | None = None,
        lifetime: datetime.timedelta = datetime.timedelta(hours=12),
    ) -> Issued:
        # Whole seconds: status times are RFC 3339 seconds and must equal the leaf's; the API
        # server wants notBefore within 5 minutes of its clock.
        not_before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        not_after = not_before + lifetime
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        names += [x509.DNSName(d) for d in dns_names or []]
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=True)
            .sign(self.intermediate_key, hashes.SHA256())
        )
        chain = b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (leaf, self.intermediate)
        )
        return Issued(chain.decode(), not_before, not_after, not_before + lifetime / 2)


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_certificate(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
) -> x509.Certificate:
    # Valid for years: the recorded reviews are replayed by `make test` long after the run
    # (chain verification is by signature, not by the clock).
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, cert_sign=True), critical=True)
        .sign(issuer_key or key, hashes.SHA256())
    )


def write_status(
    cluster: Cluster, namespace: str, name: str, issued: Issued, version: str = "v1"
) -> subprocess.CompletedProcess[str]:
    """The signer (AS_SIGNER) sets Issued with the chain and its times through /status of
    certificates.k8s.io/<version>."""
    stored = stored_pcr(cluster, namespace, name, version)
    assert stored is not None, f"PodCertificateRequest {namespace}/{name} is not stored"
    stored["status"] = {
        "conditions": [
            {
                "type": "Issued",
                "status": "True",
                "reason": "Issued",
                "message": "issued by the e2e signer",
                "lastTransitionTime": rfc3339(issued.not_before),
            }
        ],
        "certificateChain": issued.chain_pem,
        "notBefore": rfc3339(issued.not_before),
        "beginRefreshAt": rfc3339(issued.begin_refresh_at),
        "notAfter": rfc3339(issued.not_after),
    }
    return cluster.kubectl(
        "replace", "--subresource=status", "-f", "-", *AS_SIGNER, input=json.dumps(stored)
    )
