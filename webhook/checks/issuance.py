"""The issuance gate on /status for signers with a policy (SPEC §3.9): who may write the
certificate or Failed, and whether the issued leaf is what the CSR asked for and the policy
allows. cryptography parses certificate extensions lazily: every access is guarded and a
failure is a violation. Codes: issuance.not_issuer, .public_key_mismatch,
.subject_not_requested, .san_not_requested, .lifetime_too_long, .ca_not_allowed,
.usage_not_requested, .untrusted_issuer, .request_unparseable, .certificate_unparseable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from webhook.certificate import CertificateFormatError, parse_certificates
from webhook.context import UpdateContext
from webhook.decision import Violation
from webhook.oids import EKU_USAGE_NAMES, KEY_USAGE_BITS, SUBJECT_NAMES, USAGE_SYNONYMS
from webhook.text import show

_FIELD = "status.certificate"
# The in-tree signer backdates notBefore by 5 minutes (pkg/controller/certificates/signer).
BACKDATE_SECONDS = 300
_LAZY_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension, UserWarning)


def _violation(code: str, message: str) -> Violation:
    return Violation(code=code, field=_FIELD, message=message)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _leaf_sans(cert: x509.Certificate) -> list[tuple[str, str]]:
    san = _extension(cert, x509.SubjectAlternativeName)
    if not isinstance(san, x509.SubjectAlternativeName):
        return []
    names: list[tuple[str, str]] = []
    for name in san:
        if isinstance(name, x509.DNSName):
            names.append(("DNS", name.value.lower()))
        elif isinstance(name, x509.IPAddress):
            names.append(("IP", str(name.value)))
        elif isinstance(name, x509.UniformResourceIdentifier):
            names.append(("URI", name.value))
        elif isinstance(name, x509.RFC822Name):
            names.append(("email", name.value))
        else:
            names.append((type(name).__name__, str(name.value)))
    return names


def _csr_sans(ctx: UpdateContext) -> set[tuple[str, str]]:
    assert ctx.csr is not None
    csr = ctx.csr
    ips = {str(ipaddress.ip_address(ip)) for ip in csr.ip_addresses}
    return (
        {("DNS", d.lower()) for d in csr.dns_names}
        | {("IP", ip) for ip in ips}
        | {("URI", u) for u in csr.uris}
        | {("email", e) for e in csr.email_addresses}
    )


def _lifetime_limit(ctx: UpdateContext) -> int | None:
    assert ctx.policy is not None
    limits = []
    policy_max = ctx.policy.issuance.max_lifetime
    if policy_max is None and ctx.rule is not None:
        policy_max = ctx.rule.constraints.lifetime.max
    if policy_max is not None:
        limits.append(policy_max)
    if ctx.new.expiration_seconds is not None:
        limits.append(ctx.new.expiration_seconds)
    return min(limits) if limits else None


def _leaf(ctx: UpdateContext, cert: x509.Certificate) -> Iterator[Violation]:
    assert ctx.csr is not None
    key = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if key != ctx.csr.public_key_der:
        yield _violation(
            "issuance.public_key_mismatch", "the certificate's public key is not the CSR's"
        )
    requested = {(a.oid, a.value) for a in ctx.csr.subject}
    for attribute in cert.subject:
        value = attribute.value if isinstance(attribute.value, str) else repr(attribute.value)
        if (attribute.oid.dotted_string, value) not in requested:
            name = SUBJECT_NAMES.get(attribute.oid.dotted_string, attribute.oid.dotted_string)
            yield _violation(
                "issuance.subject_not_requested",
                f"subject {name} {show(value)} is not in the CSR's subject",
            )
    asked = _csr_sans(ctx)
    for kind, value in _leaf_sans(cert):
        if (kind, value) not in asked:
            yield _violation(
                "issuance.san_not_requested", f"{kind} SAN {show(value)} is not in the CSR"
            )
    limit = _lifetime_limit(ctx)
    lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    if limit is not None and lifetime > limit + BACKDATE_SECONDS:
        yield _violation(
            "issuance.lifetime_too_long",
            f"the certificate is valid for {int(lifetime)}s; at most {limit}s "
            f"(+{BACKDATE_SECONDS}s backdate) is allowed",
        )
    yield from _ca_and_usages(ctx, cert)


def _ca_and_usages(ctx: UpdateContext, cert: x509.Certificate) -> Iterator[Violation]:
    constraints = _extension(cert, x509.BasicConstraints)
    key_usage = _extension(cert, x509.KeyUsage)
    bits: set[str] = set()
    if isinstance(key_usage, x509.KeyUsage):
        bits = {name for attribute, name in KEY_USAGE_BITS if getattr(key_usage, attribute)}
    is_ca = isinstance(constraints, x509.BasicConstraints) and constraints.ca
    may_be_ca = ctx.rule is not None and ctx.rule.allowed.is_ca
    if (is_ca or bits & {"cert sign", "crl sign"}) and not may_be_ca:
        yield _violation("issuance.ca_not_allowed", "the certificate is a CA; isCA is not allowed")
    usages = {USAGE_SYNONYMS.get(u, u) for u in ctx.new.usages}
    for bit in sorted(bits - usages):
        yield _violation("issuance.usage_not_requested", f"key usage {bit!r} is not in spec.usages")
    eku = _extension(cert, x509.ExtendedKeyUsage)
    for oid in eku if isinstance(eku, x509.ExtendedKeyUsage) else ():
        name = EKU_USAGE_NAMES.get(oid.dotted_string)
        if name is None or name not in usages:
            yield _violation(
                "issuance.usage_not_requested",
                f"extended key usage {name or oid.dotted_string!r} is not in spec.usages",
            )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    return isinstance(constraints, x509.BasicConstraints) and constraints.ca


def chains_to(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
) -> bool:
    """Signature verification up to one of `roots`, through the given intermediates."""
    current, unused = leaf, list(intermediates)
    while True:
        if any(_issued_by(current, root) for root in roots):
            return True
        parent = next((c for c in unused if _is_ca(c) and _issued_by(current, c)), None)
        if parent is None:
            return False
        unused.remove(parent)
        current = parent


def check(ctx: UpdateContext) -> Iterator[Violation]:
    if ctx.policy is None or ctx.sub_resource != "status":
        return
    issuance = ctx.policy.issuance
    new_certificate = ctx.new.certificate and ctx.new.certificate != (ctx.old.certificate or b"")
    if not new_certificate and not ctx.added("Failed"):
        return
    if issuance.issuers is not None and not issuance.issuers.includes(ctx.caller):
        yield _violation(
            "issuance.not_issuer",
            f"{ctx.caller.username!r} may not issue or fail CSRs for signer "
            f"{ctx.new.signer_name!r}: not an issuer of policy {ctx.policy.name!r}",
        )
    if not new_certificate or ctx.new.certificate is None:
        return
    try:
        chain = parse_certificates(ctx.new.certificate)
    except CertificateFormatError:
        return  # the transition check reports the format
    if ctx.csr is None:
        yield _violation("issuance.request_unparseable", "the CSR's own request does not parse")
        return
    try:
        yield from _leaf(ctx, chain[0])
        if issuance.ca_certificates_der:
            roots = [x509.load_der_x509_certificate(d) for d in issuance.ca_certificates_der]
            if not chains_to(chain[0], chain[1:], roots):
                yield _violation(
                    "issuance.untrusted_issuer",
                    "the certificate is not signed by the policy's CA bundle, directly or "
                    "through the intermediates that follow it",
                )
    except _LAZY_ERRORS as exc:
        yield _violation("issuance.certificate_unparseable", f"cannot read the certificate: {exc}")
