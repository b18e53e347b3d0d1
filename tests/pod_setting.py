"""PodCertificateRequest test setting: stub CSRs, v1beta1 proofs, PCR objects and the
AdmissionReviews kube-apiserver sends for them, signed chains, and policies built from the
model (so these tests do not wait for the YAML builder). Shared by the core, authoring and
e2e tests. Keys live in memory only (tests/builders.private_key).

A review is shaped as kube-apiserver 1.37 sends it: admission.k8s.io/v1, request.kind /
resource / requestKind / requestResource for certificates.k8s.io <version>
podcertificaterequests, request.namespace, the object with apiVersion, metadata.namespace,
spec.stubPKCS10Request the base64 of a DER CSR, status set only through /status.
"""

from __future__ import annotations

import base64
import copy
import datetime
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from flask import Flask

from tests.builders import private_key
from tests.conftest import ContractClient
from tests.issuance_builders import EXT_KEY_USAGES, KEY_USAGE_BITS, TestCA, _key_usage, root_ca
from webhook.authoring import pod_keys, pod_reviews
from webhook.authoring.generate import PrivateKey as GeneratedKey
from webhook.matching.patterns import PatternKind, compile_pattern
from webhook.matching.subjects import Subjects
from webhook.policy.model import (
    Approval,
    DenyLists,
    Enforcement,
    Issuance,
    KeyRules,
    Lifetime,
    PodCertificates,
    PodIssued,
    PolicySet,
    SignerPolicy,
)
from webhook.serving.app import create_app
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings

SIGNER = "mesh.example.com/spiffe"
NAMESPACE = "team-a"
POD = "web-0"
POD_UID = "6f1d0c2e-2f4b-4c4e-9a57-0b8f7d2c1a11"
SERVICE_ACCOUNT = "web"
NODE = "worker-1"
NODE_USER = f"system:node:{NODE}"
NODE_GROUPS = ("system:nodes", "system:authenticated")
ISSUER = "system:serviceaccount:mesh-system:signer"
SPIFFE = "spiffe://cluster.local/ns/${pod.namespace}/sa/${pod.serviceAccountName}"
USAGES = ("digital signature", "client auth", "server auth")
GROUP = "certificates.k8s.io"
RESOURCE = "podcertificaterequests"


# ---- keys, stubs and proofs --------------------------------------------------------------------


def stub_csr(key: str = "ecdsa-p256") -> bytes:
    """The DER stub CSR kubelet makes: an empty subject, signed with the pod's key (one per
    key kind and run, so that equal inputs make equal reviews)."""
    return _stub(key)


@cache
def _stub(key: str) -> bytes:
    return pod_keys.stub_der(_pod_key(key))


def _pod_key(key: str) -> GeneratedKey:
    """A builders key of a type a PodCertificateRequest can carry (the simulator's keys)."""
    signer = private_key(key)
    if not isinstance(
        signer, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError(f"no PodCertificateRequest key of kind {key!r}")
    return signer


def pkix_public_key(key: str) -> bytes:
    return pod_keys.pkix_der(_pod_key(key))


def proof_of_possession(key: str, pod_uid: str = POD_UID) -> bytes:
    """The signature kubelet (v1beta1) makes over the pod UID: Ed25519 over its bytes, ECDSA
    ASN.1 and RSA-PSS over their SHA-256 (webhook/authoring/pod_keys.py)."""
    return pod_keys.sign_proof(_pod_key(key), pod_uid)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- objects and reviews -----------------------------------------------------------------------


def pcr_object(
    *,
    version: str = "v1",
    key: str = "ecdsa-p256",
    name: str = "web-0-abcde",
    namespace: str = NAMESPACE,
    status: Mapping[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A PCR as kubelet creates it (after the API server defaulted maxExpirationSeconds);
    keyword spec fields replace the defaults (None removes one)."""
    fields: dict[str, Any] = {
        "signerName": SIGNER,
        "podName": POD,
        "podUID": POD_UID,
        "serviceAccountName": SERVICE_ACCOUNT,
        "serviceAccountUID": "0d8f7b7e-5d0c-4c0e-8d59-6c1a1b7e2f00",
        "nodeName": NODE,
        "nodeUID": "a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e11",
        "maxExpirationSeconds": 86400,
        "stubPKCS10Request": b64(stub_csr(key)),
    }
    for field, value in spec.items():
        if value is None:
            fields.pop(field, None)
        else:
            fields[field] = value
    obj: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "PodCertificateRequest",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{namespace}/{name}")),
            "creationTimestamp": "2026-12-01T10:00:00Z",
        },
        "spec": fields,
    }
    if status is not None:
        obj["status"] = dict(status)
    return obj


def legacy_pcr_object(key: str, *, proof: bytes | None = None, **spec: Any) -> dict[str, Any]:
    """A v1beta1 PCR with the deprecated pkixPublicKey + proofOfPossession, no stub."""
    fields: dict[str, Any] = {
        "stubPKCS10Request": None,
        "pkixPublicKey": b64(pkix_public_key(key)),
        "proofOfPossession": b64(proof if proof is not None else proof_of_possession(key)),
    }
    return pcr_object(version="v1beta1", **{**fields, **spec})


def user(username: str, groups: Sequence[str] = ("system:authenticated",)) -> dict[str, Any]:
    return {
        "username": username,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, username)),
        "groups": list(groups),
    }


NODE_CALLER = user(NODE_USER, NODE_GROUPS)
ISSUER_CALLER = user(ISSUER, ("system:serviceaccounts", "system:serviceaccounts:mesh-system"))


def pcr_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    sub_resource: str = "",
    caller: Mapping[str, Any] = NODE_CALLER,
    old: dict[str, Any] | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """The AdmissionReview kube-apiserver sends for this PCR operation (the simulator's
    envelope, webhook/authoring/pod_reviews.py); `version` overrides the kind's and resource's
    version, and an object without a namespace is reviewed in NAMESPACE."""
    review = pod_reviews.admission_review(copy.deepcopy(obj), old, operation, sub_resource, caller)
    request = review["request"]
    request["name"] = (obj or old or {}).get("metadata", {}).get("name", "")
    request["namespace"] = request["namespace"] or NAMESPACE
    if version is not None:
        for key in ("kind", "resource", "requestKind", "requestResource"):
            request[key]["version"] = version
    return review


def status_review(
    stored: dict[str, Any], status: Mapping[str, Any], *, caller: Mapping[str, Any] = ISSUER_CALLER
) -> dict[str, Any]:
    """An UPDATE of /status: the stored object with this status (the strategy keeps the spec)."""
    updated = copy.deepcopy(stored)
    updated["status"] = dict(status)
    return pcr_review(updated, operation="UPDATE", sub_resource="status", caller=caller, old=stored)


# ---- chains ------------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def leaf_pem(
    key: str = "ecdsa-p256",
    *,
    ca: TestCA | None = None,
    uris: Sequence[str] = (f"spiffe://cluster.local/ns/{NAMESPACE}/sa/{SERVICE_ACCOUNT}",),
    dns_names: Sequence[str] = (),
    lifetime: datetime.timedelta = datetime.timedelta(hours=12),
    is_ca: bool = False,
    key_usage: Sequence[str] = ("digital signature",),
    extended_key_usage: Sequence[str] = ("client auth", "server auth"),
    chain: Sequence[TestCA] = (),
    subject: Sequence[tuple[x509.ObjectIdentifier, str]] = (),
) -> bytes:
    """A leaf for `key` (a builders key kind) issued by `ca` (default: the test root), its
    subject empty unless `subject` gives (OID, value) attributes, one RDN each."""
    ca = ca or root_ca()
    start = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]))
        .issuer_name(ca.certificate.subject)
        .public_key(private_key(key).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    sans += [x509.DNSName(n) for n in dns_names]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=True)
    if key_usage:
        bits = {KEY_USAGE_BITS[u] for u in key_usage}
        builder = builder.add_extension(_key_usage(bits), critical=True)
    if extended_key_usage:
        ekus = [EXT_KEY_USAGES[u] for u in extended_key_usage]
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    leaf = builder.sign(ca.key, hashes.SHA256())
    return leaf.public_bytes(serialization.Encoding.PEM) + b"".join(c.pem for c in chain)


def issued_status(
    chain_pem: bytes,
    *,
    not_before: str | None = "leaf",
    not_after: str | None = "leaf",
    begin_refresh_at: str | None = "middle",
) -> dict[str, Any]:
    """An Issued status for this chain, its times the leaf's unless given ("leaf"), refresh
    half way through ("middle"); None leaves a time out."""
    leaf = x509.load_pem_x509_certificate(chain_pem)
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    status: dict[str, Any] = {
        "conditions": [
            {
                "type": "Issued",
                "status": "True",
                "reason": "Issued",
                "message": "issued by the mesh signer",
                "lastTransitionTime": rfc3339(_now()),
            }
        ],
        "certificateChain": chain_pem.decode(),
    }
    times = {
        "notBefore": rfc3339(start) if not_before == "leaf" else not_before,
        "notAfter": rfc3339(end) if not_after == "leaf" else not_after,
        "beginRefreshAt": (
            rfc3339(start + (end - start) / 2) if begin_refresh_at == "middle" else begin_refresh_at
        ),
    }
    status.update({k: v for k, v in times.items() if v is not None})
    return status


def condition_status(kind: str, reason: str = "Because", status: str = "True") -> dict[str, Any]:
    return {
        "conditions": [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": f"{kind} by the mesh signer",
                "lastTransitionTime": rfc3339(_now()),
            }
        ]
    }


# ---- policies ----------------------------------------------------------------------------------


def _patterns(kind: PatternKind, texts: Sequence[str]) -> tuple[Any, ...]:
    return tuple(compile_pattern(kind, t) for t in texts)


def subjects(
    *,
    users: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    service_accounts: Sequence[str] | None = None,
) -> Subjects:
    return Subjects(
        users=None if users is None else _patterns(PatternKind.GLOB, users),
        groups=None if groups is None else _patterns(PatternKind.GLOB, groups),
        service_accounts=(
            None
            if service_accounts is None
            else _patterns(PatternKind.SERVICE_ACCOUNT, service_accounts)
        ),
    )


ALL_KEYS = KeyRules(
    rsa=(3072, 4096), ecdsa_curves=frozenset({"P-256", "P-384", "P-521"}), ed25519=True, ed448=False
)


DAY_AT_MOST = Lifetime(min=3600, max=86400, clamp=False)
MESH_SIGNER = subjects(service_accounts=["mesh-system/signer"])


def pod_certificates(
    *,
    requesters: Subjects | None = None,
    nodes_only: bool = True,
    namespaces: Sequence[str] | None = ("team-*",),
    service_accounts: Sequence[str] | None = ("team-*/*",),
    keys: KeyRules = ALL_KEYS,
    max_expiration_seconds: int | None = 86400,
    annotations: Mapping[str, Sequence[str]] | None = None,
    uris: Sequence[str] = (SPIFFE,),
    dns_names: Sequence[str] = (),
    subject: Mapping[str, Sequence[str]] | None = None,
    usages: Sequence[str] = USAGES,
    lifetime: Lifetime = DAY_AT_MOST,
    issuers: Subjects | None = MESH_SIGNER,
    ca_bundle: Sequence[TestCA] | None = None,
) -> PodCertificates:
    """`podCertificates` as the design's example has it; the CA bundle is the test root."""
    return PodCertificates(
        requesters=requesters or subjects(users=["system:node:*"]),
        nodes_only=nodes_only,
        namespaces=None if namespaces is None else _patterns(PatternKind.GLOB, namespaces),
        service_accounts=(
            None
            if service_accounts is None
            else _patterns(PatternKind.SERVICE_ACCOUNT, service_accounts)
        ),
        keys=keys,
        max_expiration_seconds=max_expiration_seconds,
        annotations={
            k: _patterns(PatternKind.GLOB, v)
            for k, v in (annotations or {"example.com/audience": ["api", "db"]}).items()
        },
        issued=PodIssued(
            uris=_patterns(PatternKind.URI, uris),
            dns_names=_patterns(PatternKind.DNS, dns_names),
            subject={k: _patterns(PatternKind.GLOB, v) for k, v in (subject or {}).items()},
            usages=frozenset(usages),
            lifetime=lifetime,
        ),
        issuers=issuers,
        ca_certificates_der=tuple(
            c.der for c in (ca_bundle if ca_bundle is not None else [root_ca()])
        ),
    )


def pod_policy(
    pods: PodCertificates | None = None,
    *,
    name: str = "mesh",
    signer: str = SIGNER,
    enforcement: Enforcement = Enforcement.DENY,
    governed: bool = True,
) -> SignerPolicy:
    """A policy without rules for `signer`, governing its PCRs with `pods` (default: the
    example) unless `governed` is False."""
    return SignerPolicy(
        name=name,
        signer_names=(compile_pattern(PatternKind.SIGNER, signer),),
        rules=(),
        enforcement=enforcement,
        deny=DenyLists(),
        approval=Approval(self_approval=True, recheck=False),
        issuance=Issuance(),
        pod_certificates=(pods or pod_certificates()) if governed else None,
    )


def pod_app(directory: Path, *policies: SignerPolicy, **settings: Any) -> Flask:
    """The webhook serving exactly these policies (the directory stays empty)."""
    directory.mkdir(parents=True, exist_ok=True)
    policy_set = PolicySet(policies=tuple(policies) or (pod_policy(),), digest="pod-test")
    app = create_app(Settings(policies=directory, **settings), PolicyStore(directory, policy_set))
    app.test_client_class = ContractClient
    return app
