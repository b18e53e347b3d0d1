"""Certificates for PolicyTest `issue` cases, issued as kube-controller-manager's csrsigning does.

pkg/controller/certificates/authority: notBefore = now - 5m, subject and SANs copied from the
CSR (an IPv4-mapped IPv6 address as IPv4, as Go writes it), BasicConstraints CA:false,
KeyUsage/ExtKeyUsage from spec.usages. A case's knobs depart from that on purpose (lifetime,
extra SANs, CA bit, usages, another key, a rogue CA). Keys of generated CAs live in memory only;
a CA given as files is read, never written.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.authoring.generate import DEFAULT_KEY, KeyCache, general_name
from webhook.errors import SpecError
from webhook.policy.build import parse_duration
from webhook.policy.source import PathKey
from webhook.x509.oids import EKU_USAGE_NAMES, USAGE_SYNONYMS

BACKDATE = datetime.timedelta(minutes=5)
DEFAULT_LIFETIME = 8760 * 3600  # kube-controller-manager --cluster-signing-duration
MAX_LIFETIME = 36500 * 86400  # a hundred years: far past any bound, well inside X.509 dates
MAX_CA_FILE = 64 * 1024
_KEY_USAGE_BITS = {
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
_EKUS: dict[str, x509.ObjectIdentifier] = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    **{name: x509.ObjectIdentifier(oid) for oid, name in EKU_USAGE_NAMES.items()},
}
_CA_KEYS = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateSpec:
    """A validated `certificate:` block of an issue case; holds no key material."""

    signed_by: str = "ca"  # ca | rogue
    lifetime: int | None = None
    extra_sans: tuple[x509.GeneralName, ...] = ()
    is_ca: bool = False
    usages: tuple[str, ...] | None = None
    key: str = "same"  # same | other
    # Not in the PolicyTest format (the test vectors set them): the whole subject instead of the
    # CSR's, another backdate, and key usages / extended key usages instead of those `usages`
    # imply (with isCA no `cert sign` is added to an explicit key_usage).
    subject: x509.Name | None = None
    backdate: datetime.timedelta = BACKDATE
    key_usage: tuple[str, ...] | None = None
    extended_key_usage: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SigningCA:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def parse_certificate_spec(raw: Mapping[str, Any], path: PathKey) -> CertificateSpec:
    """Check a shape-validated `certificate:` block; raises SpecError naming the field."""
    lifetime = None
    if "lifetime" in raw:
        try:
            lifetime = parse_duration(raw["lifetime"])
        except ValueError as exc:
            raise SpecError((*path, "lifetime"), str(exc)) from exc
        if not 1 <= lifetime <= MAX_LIFETIME:
            raise SpecError(
                (*path, "lifetime"),
                f"a certificate lifetime must be between 1s and 36500d, got {raw['lifetime']!r}",
            )
    sans: list[x509.GeneralName] = []
    for kind, values in (raw.get("extraSANs") or {}).items():
        for index, value in enumerate(values):
            try:
                sans.append(general_name(kind, value))
            except ValueError as exc:
                raise SpecError((*path, "extraSANs", kind, index), str(exc)) from exc
    usages = raw.get("usages")
    return CertificateSpec(
        signed_by=str(raw.get("signedBy", "ca")),
        lifetime=lifetime,
        extra_sans=tuple(sans),
        is_ca=bool(raw.get("isCA", False)),
        usages=tuple(usages) if usages is not None else None,
        key=str(raw.get("key", "same")),
    )


def generate_ca(name: str) -> SigningCA:
    """A self-signed ECDSA P-256 CA, valid for a day around now; its key stays in memory."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage({"key_cert_sign", "crl_sign"}), critical=True)
        .sign(key, hashes.SHA256())
    )
    return SigningCA(certificate, key)


def load_ca(certificate_file: Path, key_file: Path) -> SigningCA:
    """A CA from a PEM certificate and a PEM private key (RSA or ECDSA, unencrypted); raises
    SpecError with the field that names the file."""
    try:
        certificate = x509.load_pem_x509_certificate(_read(certificate_file, "certificateFile"))
    except ValueError as exc:
        raise SpecError(("certificateFile",), f"{str(certificate_file)!r}: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(_read(key_file, "keyFile"), password=None)
    except (ValueError, TypeError) as exc:
        raise SpecError(("keyFile",), f"{str(key_file)!r}: {exc}") from exc
    if not isinstance(key, _CA_KEYS):
        raise SpecError(("keyFile",), f"{str(key_file)!r}: an RSA or ECDSA key is needed")
    if key.public_key() != certificate.public_key():
        raise SpecError(
            ("keyFile",), f"{str(key_file)!r} is not the key of {str(certificate_file)!r}"
        )
    return SigningCA(certificate, key)


def _read(file: Path, field: str) -> bytes:
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_CA_FILE + 1)
    except OSError as exc:
        raise SpecError((field,), f"cannot read {str(file)!r}: {exc.strerror}") from exc
    if len(data) > MAX_CA_FILE:
        raise SpecError((field,), f"{str(file)!r} is over {MAX_CA_FILE} bytes")
    return data


def issue_certificate(  # noqa: PLR0917 - what the signer reads, and the knobs
    csr: x509.CertificateSigningRequest,
    spec: CertificateSpec,
    usages: Sequence[str],
    expiration_seconds: int | None,
    ca: SigningCA,
    other_keys: KeyCache,
) -> bytes:
    """The PEM certificate the signer writes to status.certificate for this CSR; `other_keys`
    holds keys that no CSR of the run was made with."""
    public_key = csr.public_key()
    if spec.key == "other":
        public_key = other_keys.get(_key_type(csr)).public_key()
    # The in-tree signer issues for min(expirationSeconds, --cluster-signing-duration).
    lifetime = spec.lifetime or min(expiration_seconds or DEFAULT_LIFETIME, DEFAULT_LIFETIME)
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject if spec.subject is not None else csr.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - spec.backdate)
        .not_valid_after(now + datetime.timedelta(seconds=lifetime))
        .add_extension(x509.BasicConstraints(ca=spec.is_ca, path_length=None), critical=True)
    )
    wanted = {USAGE_SYNONYMS.get(u, u) for u in (spec.usages or usages)}
    bits = {_KEY_USAGE_BITS[u] for u in wanted if u in _KEY_USAGE_BITS}
    if spec.is_ca:
        bits.add("key_cert_sign")
    if spec.key_usage is not None:
        bits = {_KEY_USAGE_BITS[USAGE_SYNONYMS.get(u, u)] for u in spec.key_usage}
    if bits:
        builder = builder.add_extension(_key_usage(bits), critical=True)
    if spec.extended_key_usage is not None:
        wanted = {USAGE_SYNONYMS.get(u, u) for u in spec.extended_key_usage}
    ekus = [_EKUS[u] for u in sorted(wanted) if u in _EKUS]
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    sans = [*_csr_sans(csr), *spec.extra_sans]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _csr_sans(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [_as_go_writes(name) for name in extension.value]


def _as_go_writes(name: x509.GeneralName) -> x509.GeneralName:
    """Go's crypto/x509 (marshalSANs) writes an IPv4-mapped IPv6 address as its 4 bytes."""
    if isinstance(name, x509.IPAddress) and isinstance(name.value, ipaddress.IPv6Address):
        mapped = name.value.ipv4_mapped
        if mapped is not None:
            return x509.IPAddress(mapped)
    return name


def _key_type(csr: x509.CertificateSigningRequest) -> str:
    """The PolicyTest key type of the CSR's key, so that `key: other` differs only in value."""
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size in (2048, 3072, 4096):
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}.get(
            key.curve.name, DEFAULT_KEY
        )
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "ed25519"
    return DEFAULT_KEY


def _key_usage(bits: set[str]) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    flags = {name: name in bits for name in names}
    if not flags["key_agreement"]:
        flags["encipher_only"] = flags["decipher_only"] = False
    return x509.KeyUsage(**flags)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)
