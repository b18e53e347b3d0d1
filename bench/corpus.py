"""The benchmark corpus: distinct CSRs wrapped in AdmissionReviews as kube-apiserver sends them,
all allowed by bench/policies/bench.yaml, so the real server runs every check on every review.

Keys live only in memory; the reviews are written to a temporary directory as JSON Lines (one
compact body per line, read by bench/wrk.lua and by the Python load generator).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

POLICY_DIR = Path(__file__).parent / "policies"
SIGNER = "bench.example/signer"
NAMESPACE = "bench"
USAGES = ["digital signature", "key encipherment", "server auth", "client auth"]
CSR_KIND = {"group": "certificates.k8s.io", "version": "v1", "kind": "CertificateSigningRequest"}
CSR_RESOURCE = {
    "group": "certificates.k8s.io",
    "version": "v1",
    "resource": "certificatesigningrequests",
}
# RSA key generation costs ~0.1 s a key: RSA CSRs share a small pool of keys (their CSRs still
# differ in every name); every ECDSA CSR gets a key of its own.
RSA_POOL = 8
DEFAULT_MIX = "ecdsa-p256=0.8,rsa-2048=0.2"


def parse_mix(text: str) -> list[tuple[str, float]]:
    """'ecdsa-p256=0.8,rsa-2048=0.2' -> [(kind, share), ...]; shares are normalised."""
    pairs = []
    for part in text.split(","):
        kind, _, share = part.partition("=")
        if kind.strip() not in ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"):
            raise ValueError(f"unknown key kind {kind!r}")
        pairs.append((kind.strip(), float(share or 1)))
    total = sum(share for _, share in pairs)
    return [(kind, share / total) for kind, share in pairs]


@dataclass
class Corpus:
    reviews: list[dict[str, Any]]
    kinds: list[str]  # key kind of each review's CSR

    def bodies(self) -> list[bytes]:
        return [json.dumps(r, separators=(",", ":")).encode() for r in self.reviews]

    def write(self, directory: Path) -> Path:
        """One compact JSON body per line; returns the file."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "reviews.jsonl"
        path.write_bytes(b"".join(body + b"\n" for body in self.bodies()))
        return path


class _Keys:
    def __init__(self) -> None:
        self.pools: dict[str, list[Any]] = {}

    def get(self, kind: str, index: int) -> Any:
        family, _, size = kind.partition("-")
        if family == "ecdsa":
            curve = ec.SECP256R1() if size == "p256" else ec.SECP384R1()
            return ec.generate_private_key(curve)
        pool = self.pools.setdefault(kind, [])
        if len(pool) < RSA_POOL:
            pool.append(rsa.generate_private_key(public_exponent=65537, key_size=int(size)))
        return pool[index % len(pool)]


def build_csr_pem(key: Any, name: str, index: int) -> bytes:
    """cert-manager-like serving/client CSR: CN, O, 3 DNS and 2 IP SANs, KU and EKU."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.bench.example"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bench"),
        ]
    )
    sans: list[x509.GeneralName] = [
        x509.DNSName(f"{name}.bench.example"),
        x509.DNSName(f"api.{name}.svc.bench.example"),
        x509.DNSName(f"web.{name}.svc.bench.example"),
        x509.IPAddress(
            ipaddress.ip_address(f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}")
        ),
        x509.IPAddress(ipaddress.ip_address(f"fd00::{index:x}")),
    ]
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(usage, critical=True)
        .add_extension(eku, critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def build_review(request_pem: bytes, name: str, rng: random.Random) -> dict[str, Any]:
    """A validating CREATE review: spec identity = the authenticated service account."""
    username = f"system:serviceaccount:{NAMESPACE}:{name}"
    groups = [
        "system:serviceaccounts",
        f"system:serviceaccounts:{NAMESPACE}",
        "system:authenticated",
    ]
    user_uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    obj = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {
            "name": f"{name}-tls",
            "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "creationTimestamp": "2026-11-28T07:00:00Z",
        },
        "spec": {
            "request": base64.b64encode(request_pem).decode(),
            "signerName": SIGNER,
            "usages": list(USAGES),
            "expirationSeconds": 86400,
            "username": username,
            "uid": user_uid,
            "groups": groups,
        },
        "status": {},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "kind": CSR_KIND,
            "resource": CSR_RESOURCE,
            "requestKind": CSR_KIND,
            "requestResource": CSR_RESOURCE,
            "name": f"{name}-tls",
            "operation": "CREATE",
            "userInfo": {"username": username, "uid": user_uid, "groups": groups},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def build_corpus(count: int, mix: Sequence[tuple[str, float]], seed: int = 1) -> Corpus:
    rng = random.Random(seed)
    keys = _Keys()
    kinds: list[str] = []
    for kind, share in mix:
        kinds += [kind] * round(share * count)
    kinds = (kinds + [mix[0][0]] * count)[:count]
    rng.shuffle(kinds)
    reviews = []
    for index, kind in enumerate(kinds):
        name = f"svc-{index:05d}"
        pem = build_csr_pem(keys.get(kind, index), name, index)
        reviews.append(build_review(pem, name, rng))
    return Corpus(reviews=reviews, kinds=kinds)


def check_all_allowed(corpus: Corpus) -> None:
    """Evaluate every review in-process; raise unless the bench policy allows all of them."""
    from webhook.admission import parse_review  # noqa: PLC0415 - keeps `import bench` light
    from webhook.engine import EngineOptions, evaluate  # noqa: PLC0415
    from webhook.policy.loader import load_policies  # noqa: PLC0415

    policies = load_policies([POLICY_DIR]).policy_set
    assert policies is not None
    for body in corpus.bodies():
        decision = evaluate(parse_review(body), policies, EngineOptions())
        if not decision.allowed or decision.violations:
            codes = [v.code for v in decision.violations]
            raise AssertionError(f"bench policy does not allow a corpus review: {codes}")
