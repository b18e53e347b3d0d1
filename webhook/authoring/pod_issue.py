"""What the signer writes into a PodCertificateRequest's /status for a PolicyTest issue case.

By default what a well-behaved signer writes (test/utils/hermeticpodcertificatesigner: notBefore
2 minutes back, notAfter = notBefore + min(maxExpirationSeconds, 24h), the leaf issued to the
stub's key, digital signature + client auth + server auth, one `Issued` condition); each knob
departs from that on purpose (a rogue CA, an intermediate, SANs, a subject, usages, lifetime,
CA bit, another key, status times off the leaf's, beginRefreshAt outside them, Denied/Failed,
a second condition, an already terminal stored status). Keys of generated CAs live in memory
only.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webhook.authoring import pod_reviews
from webhook.authoring.generate import KeyCache, general_name, parse_subject
from webhook.authoring.issue import CertificateSpec, SigningCA, issue_certificate
from webhook.errors import SpecError
from webhook.policy.build import parse_duration
from webhook.policy.source import PathKey
from webhook.sankinds import SAN_KINDS

EMPTY_SUBJECT = x509.Name([])  # kubelet's stub has none, nor has a SPIFFE signer's leaf
DEFAULT_USAGES = ("digital signature", "client auth", "server auth")
SIGNER_BACKDATE = 120  # seconds
DEFAULT_LIFETIME = 86400  # the hermetic signer's cap
MAX_LIFETIME = 36500 * 86400
# A chain no X.509 parser reads: a CERTIFICATE block around text.
MALFORMED_CHAIN = (
    "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodIssueSpec:
    """A validated `issue:` block of a PodCertificateRequest issue case; no key material."""

    signed_by: str = "ca"  # ca | rogue
    via_intermediate: bool = False
    condition: str = "Issued"
    condition_status: str = "True"
    extra_condition: str | None = None
    chain: str | None = None  # issued | none | malformed; None: issued for Issued, else none
    subject: x509.Name = EMPTY_SUBJECT
    sans: tuple[x509.GeneralName, ...] = ()
    usages: tuple[str, ...] = DEFAULT_USAGES
    lifetime: int | None = None
    is_ca: bool = False
    key: str = "same"  # same | other
    times_offset: int = 0
    begin_refresh_at: int | None = None  # seconds after notBefore
    stored: str = "pending"  # pending | issued | denied | failed


def parse_pod_issue_spec(raw: Mapping[str, Any], path: PathKey) -> PodIssueSpec:
    """Check a shape-validated `issue:` block; raises SpecError naming the field."""
    durations: dict[str, int | None] = {}
    for name in ("lifetime", "timesOffset", "beginRefreshAt"):
        durations[name] = None
        if name in raw:
            try:
                durations[name] = parse_duration(raw[name])
            except ValueError as exc:
                raise SpecError((*path, name), str(exc)) from exc
            value = durations[name] or 0
            if name == "lifetime" and not 1 <= value <= MAX_LIFETIME:
                raise SpecError(
                    (*path, name), f"a lifetime must be between 1s and 36500d, got {raw[name]!r}"
                )
            if value > MAX_LIFETIME:
                raise SpecError((*path, name), f"at most 36500d, got {raw[name]!r}")
    sans: list[x509.GeneralName] = []
    for kind in SAN_KINDS:
        for index, value in enumerate(raw.get(kind.key) or []):
            try:
                sans.append(general_name(kind.key, value))
            except ValueError as exc:
                raise SpecError((*path, kind.key, index), str(exc)) from exc
    extra = raw.get("extraCondition")
    return PodIssueSpec(
        signed_by=str(raw.get("signedBy", "ca")),
        via_intermediate=bool(raw.get("viaIntermediate", False)),
        condition=str(raw.get("condition", "Issued")),
        condition_status=str(raw.get("conditionStatus", "True")),
        extra_condition=str(extra) if extra is not None else None,
        chain=str(raw["chain"]) if "chain" in raw else None,
        subject=parse_subject(raw.get("subject") or {}, (*path, "subject")),
        sans=tuple(sans),
        usages=tuple(raw.get("usages", DEFAULT_USAGES)),
        lifetime=durations["lifetime"],
        is_ca=bool(raw.get("isCA", False)),
        key=str(raw.get("key", "same")),
        times_offset=durations["timesOffset"] or 0,
        begin_refresh_at=durations["beginRefreshAt"],
        stored=str(raw.get("stored", "pending")),
    )


def generate_intermediate(ca: SigningCA, name: str) -> SigningCA:
    """An ECDSA P-256 intermediate CA signed by `ca`, valid for a day around now."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .sign(ca.key, hashes.SHA256())
    )
    return SigningCA(certificate, key)


def rfc3339(moment: datetime.datetime) -> str:
    """metav1.Time as JSON: UTC, whole seconds."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _leaf(
    spec: PodIssueSpec,
    stub_der: bytes,
    max_expiration_seconds: int,
    signer: SigningCA,
    other_keys: KeyCache,
) -> tuple[bytes, x509.Certificate]:
    lifetime = spec.lifetime or min(max_expiration_seconds, DEFAULT_LIFETIME)
    backdate = SIGNER_BACKDATE if lifetime > SIGNER_BACKDATE else 0
    certificate_spec = CertificateSpec(
        lifetime=lifetime - backdate,
        extra_sans=spec.sans,
        is_ca=spec.is_ca,
        usages=spec.usages,
        key=spec.key,
        subject=spec.subject,
        backdate=datetime.timedelta(seconds=backdate),
    )
    csr = x509.load_der_x509_csr(stub_der)
    pem = issue_certificate(csr, certificate_spec, spec.usages, None, signer, other_keys)
    return pem, x509.load_pem_x509_certificate(pem)


def issued_status(
    spec: PodIssueSpec,
    stub_der: bytes,
    max_expiration_seconds: int,
    signer: SigningCA,
    other_keys: KeyCache,
) -> dict[str, Any]:
    """The status the signer writes: conditions, and (for `chain: issued|malformed`) the chain
    and the three times. `stub_der` carries the key the leaf is issued to."""
    issuer = signer
    intermediate_pem = b""
    if spec.via_intermediate:
        issuer = generate_intermediate(signer, "csr-webhook policy test intermediate")
        intermediate_pem = issuer.certificate.public_bytes(serialization.Encoding.PEM)
    conditions = [
        pod_reviews.condition(
            spec.condition,
            spec.condition_status,
            reason=f"PolicyTest{spec.condition}",
            message=f"Written by a csr-webhook policy test ({spec.condition}).",
        )
    ]
    if spec.extra_condition is not None:
        conditions.append(
            pod_reviews.condition(spec.extra_condition, reason=f"PolicyTest{spec.extra_condition}")
        )
    chain = spec.chain or ("issued" if spec.condition == "Issued" else "none")
    if chain == "none":
        return pod_reviews.pcr_status(conditions)
    leaf_pem, leaf = _leaf(spec, stub_der, max_expiration_seconds, issuer, other_keys)
    offset = datetime.timedelta(seconds=spec.times_offset)
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    lifetime = (not_after - not_before).total_seconds()
    refresh = spec.begin_refresh_at if spec.begin_refresh_at is not None else lifetime * 3 // 4
    text = (leaf_pem + intermediate_pem).decode() if chain == "issued" else MALFORMED_CHAIN
    return pod_reviews.pcr_status(
        conditions,
        certificate_chain=text,
        not_before=rfc3339(not_before + offset),
        begin_refresh_at=rfc3339(not_before + datetime.timedelta(seconds=refresh)),
        not_after=rfc3339(not_after + offset),
    )


def stored_status(
    stored: str,
    stub_der: bytes,
    max_expiration_seconds: int,
    signer: SigningCA,
    other_keys: KeyCache,
) -> dict[str, Any]:
    """The status already in storage: {} while pending, else a proper terminal one."""
    if stored == "pending":
        return {}
    condition = stored.capitalize()
    return issued_status(
        PodIssueSpec(condition=condition), stub_der, max_expiration_seconds, signer, other_keys
    )
