"""The test cluster's PKI, made with cryptography into a per-session temporary directory.

One cluster CA is the API server's client CA and kube-controller-manager's signing CA (so the
certificates csrsigning issues authenticate), a second CA signs the webhook's serving
certificate (the caBundle we register). Keys are written 0600 under the session's tmp dir only.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_SANS: list[x509.GeneralName] = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
]


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterPKI:
    ca: Pair
    apiserver: Pair
    admin: Pair
    controller_manager: Pair
    service_account: Pair  # key = private (signing), cert = public key PEM
    webhook_ca: Pair
    webhook: Pair

    def ca_pem(self) -> bytes:
        return self.ca.cert.read_bytes()


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def _ca(
    directory: Path, stem: str, common_name: str
) -> tuple[Pair, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pair = Pair(directory / f"{stem}.crt", directory / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)
    return pair, key, cert


def _leaf(
    directory: Path,
    stem: str,
    subject: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    server: bool,
) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(LOOPBACK_SANS), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    pair = Pair(directory / f"{stem}.crt", directory / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)
    return pair


def build_pki(directory: Path) -> ClusterPKI:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key, ca_cert = _ca(directory, "cluster-ca", "e2e cluster CA")
    webhook_ca, webhook_ca_key, webhook_ca_cert = _ca(directory, "webhook-ca", "e2e webhook CA")
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    service_account = Pair(directory / "sa.pub", directory / "sa.key")
    service_account.cert.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    _write_key(service_account.key, sa_key)
    return ClusterPKI(
        ca=ca,
        apiserver=_leaf(
            directory, "apiserver", _name("kube-apiserver"), ca_key, ca_cert, server=True
        ),
        admin=_leaf(
            directory, "admin", _name("e2e-admin", "system:masters"), ca_key, ca_cert, server=False
        ),
        controller_manager=_leaf(
            directory,
            "controller-manager",
            _name("system:kube-controller-manager"),
            ca_key,
            ca_cert,
            server=False,
        ),
        service_account=service_account,
        webhook_ca=webhook_ca,
        webhook=_leaf(
            directory,
            "webhook",
            _name("csr-webhook e2e"),
            webhook_ca_key,
            webhook_ca_cert,
            server=True,
        ),
    )
