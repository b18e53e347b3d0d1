"""Generate a self-signed development serving certificate for localhost/127.0.0.1.

Only for `serve` without --tls-cert/--tls-key; the key is written 0600 into a fresh
temporary directory, never into the working tree, and `temporary_dev_certificate` removes that
directory when the server exits.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def generate_dev_certificate(directory: Path | None = None) -> tuple[Path, Path]:
    """Write cert.pem and key.pem; return their paths."""
    target = directory or Path(tempfile.mkdtemp(prefix="csr-webhook-devcert-"))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr-webhook development")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = target / "cert.pem"
    key_path = target / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


@contextmanager
def temporary_dev_certificate() -> Iterator[tuple[Path, Path]]:
    """cert.pem and key.pem in a fresh temporary directory, removed (key included) on leaving
    the block, by the process that made it only: a gunicorn worker is forked inside the block
    and leaves it too, by SystemExit, while the master still serves the certificate."""
    directory = Path(tempfile.mkdtemp(prefix="csr-webhook-devcert-"))
    owner = os.getpid()
    try:
        yield generate_dev_certificate(directory)
    finally:
        if os.getpid() == owner:
            shutil.rmtree(directory, ignore_errors=True)
