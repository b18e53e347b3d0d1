"""CSRs for PolicyTest cases, as Go's x509.CreateCertificateRequest makes them (the reviews
that carry them are built by the API-server simulator, webhook/authoring/reviews.py).

Private keys are generated at run time, cached in memory for one run and never serialised;
a malformed description raises `SpecError` with the path of the offending field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from webhook import sankinds
from webhook.authoring.suite_schema import TEST_KEY_TYPES
from webhook.errors import SpecError
from webhook.policy.schema import SUBJECT_ATTRIBUTES
from webhook.policy.source import PathKey
from webhook.sankinds import BY_KEY, SAN_KINDS

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
DEFAULT_KEY = "ecdsa-p256"  # the kubelet's default key
_Hash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
_CURVES: dict[str, tuple[ec.EllipticCurve, _Hash]] = {
    "ecdsa-p256": (ec.SECP256R1(), hashes.SHA256()),
    "ecdsa-p384": (ec.SECP384R1(), hashes.SHA384()),
    "ecdsa-p521": (ec.SECP521R1(), hashes.SHA512()),
}
_NAME_OIDS = dict(
    zip(
        SUBJECT_ATTRIBUTES,
        (
            NameOID.COMMON_NAME,
            NameOID.ORGANIZATION_NAME,
            NameOID.ORGANIZATIONAL_UNIT_NAME,
            NameOID.COUNTRY_NAME,
            NameOID.LOCALITY_NAME,
            NameOID.STATE_OR_PROVINCE_NAME,
            NameOID.STREET_ADDRESS,
            NameOID.POSTAL_CODE,
            NameOID.SERIAL_NUMBER,
        ),
        strict=True,
    )
)
MAX_REQUEST_FILE = 65 * 1024  # spec.request may hold 64 KiB; a larger file is a mistake


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A validated description of a CSR to generate; holds no key material."""

    key: str
    subject: x509.Name
    sans: tuple[x509.GeneralName, ...]


class KeyCache:
    """One private key per key type for the length of a run; memory only, never written."""

    def __init__(self) -> None:
        self._keys: dict[str, PrivateKey] = {}

    def get(self, key_type: str) -> PrivateKey:
        if key_type not in self._keys:
            self._keys[key_type] = _generate(key_type)
        return self._keys[key_type]


def _generate(key_type: str) -> PrivateKey:
    if key_type.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type][0])
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r}")


def parse_request_spec(raw: Mapping[str, Any], path: PathKey) -> RequestSpec:
    """Check a shape-validated `request:` description (subject values as lists, commonName a
    string); raises SpecError naming the field cryptography refused."""
    subject = parse_subject(raw.get("subject") or {}, (*path, "subject"))
    sans: list[x509.GeneralName] = []
    for kind in SAN_KINDS:
        for index, value in enumerate(raw.get(kind.key) or []):
            try:
                sans.append(general_name(kind.key, value))
            except ValueError as exc:
                raise SpecError((*path, kind.key, index), str(exc)) from exc
    key = str(raw.get("key", DEFAULT_KEY))
    if key not in TEST_KEY_TYPES:
        raise SpecError((*path, "key"), f"unknown key type {key!r}")
    return RequestSpec(key=key, subject=subject, sans=tuple(sans))


def parse_subject(raw: Mapping[str, Any], path: PathKey) -> x509.Name:
    """The Name of a shape-validated `subject:` block (attribute -> a string or a list, one RDN
    per value, in the order given); raises SpecError naming the value cryptography refused."""
    attributes = []
    for name, values in raw.items():
        listed = [values] if isinstance(values, str) else values
        for index, value in enumerate(listed):
            where = (*path, name, *(() if isinstance(values, str) else (index,)))
            try:
                attributes.append(x509.NameAttribute(_NAME_OIDS[name], value))
            except ValueError as exc:
                raise SpecError(where, str(exc)) from exc
    return x509.Name(attributes)


def read_request_file(file: Path) -> bytes:
    """The bytes of a PEM file as given; judging them is the engine's job (raises SpecError)."""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_REQUEST_FILE + 1)
    except OSError as exc:
        raise SpecError((), f"cannot read {str(file)!r}: {exc.strerror}") from exc
    if len(data) > MAX_REQUEST_FILE:
        raise SpecError((), f"{str(file)!r} is over {MAX_REQUEST_FILE} bytes")
    return data


def listify_subjects(document: dict[str, Any]) -> None:
    """In a PolicyTest document, subject attributes other than commonName may be one string
    (in a CSR's `request:` and a PodCertificateRequest case's `issue:`): make each such string
    a one-item list before the shape is validated."""
    spec = document.get("spec")
    cases = spec.get("cases") if isinstance(spec, dict) else None
    for case in cases if isinstance(cases, list) else []:
        csr = case.get("csr") if isinstance(case, dict) else None
        request = csr.get("request") if isinstance(csr, dict) else None
        issue = case.get("issue") if isinstance(case, dict) else None
        for holder in (request, issue):
            subject = holder.get("subject") if isinstance(holder, dict) else None
            if isinstance(subject, dict):
                for name, item in subject.items():
                    if name != "commonName" and isinstance(item, str):
                        subject[name] = [item]


def general_name(key: str, value: str) -> x509.GeneralName:
    """The GeneralName of an entry under a SAN kind's key (`dnsNames`, `ipAddresses`, ...)."""
    kind = BY_KEY[key]
    if kind is sankinds.DNS:
        return x509.DNSName(value)
    if kind is sankinds.IP:
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
    if kind is sankinds.URI:
        return x509.UniformResourceIdentifier(value)
    if kind is sankinds.EMAIL:
        return x509.RFC822Name(value)
    raise ValueError(f"no GeneralName for SAN kind {key!r}")


def build_request_pem(spec: RequestSpec, keys: KeyCache) -> bytes:
    """Sign the described CSR as Go's x509.CreateCertificateRequest would: subject and a SAN
    extension only (the kubelet adds no key usage extensions)."""
    key = keys.get(spec.key)
    builder = x509.CertificateSigningRequestBuilder().subject_name(spec.subject)
    if spec.sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(spec.sans)), False)
    algorithm: _Hash | None = hashes.SHA256()
    if spec.key in _CURVES:
        algorithm = _CURVES[spec.key][1]
    elif spec.key == "ed25519":
        algorithm = None
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)
