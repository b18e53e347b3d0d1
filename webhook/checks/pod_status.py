"""What a signer may write into a PodCertificateRequest's /status (`podCertificates.issued`,
`issuers`, `caBundle`): who writes, and when Issued is set, whether the chain is readable and
its leaf is for the stub's key, names only what the expanded `issued` patterns allow (SANs and
subject attributes), is no CA, has only `issued.usages`, lives within `issued.lifetime` and
maxExpirationSeconds, agrees with status.notBefore/notAfter (beginRefreshAt between them) and
verifies to the caBundle.

Every certificate is read by webhook.x509.certificate.read_certificates; this module only
compares. Codes: pod.issuer_not_permitted, pod.chain_invalid, pod.key_mismatch,
pod.san_not_allowed, pod.subject_not_allowed, pod.ca_not_allowed, pod.usage_not_allowed,
lifetime.too_long, lifetime.too_short, pod.times_mismatch, pod.refresh_out_of_range,
pod.chain_untrusted.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

from cryptography import x509

from webhook.decision import Violation
from webhook.errors import CertificateFormatError
from webhook.limits import MAX_SANS_PER_KIND, MAX_SUBJECT_ATTRIBUTES
from webhook.matching.patterns import Pattern, first_match
from webhook.matching.shown import show_patterns
from webhook.pod_context import (
    DEFAULT_MAX_EXPIRATION_SECONDS,
    MAX_CHAIN_BYTES,
    MAX_CHAIN_CERTIFICATES,
    PodUpdateContext,
)
from webhook.policy.model import PodCertificates, PodIssued
from webhook.sankinds import SAN_KINDS
from webhook.text import show
from webhook.x509.certificate import CertificateInfo, read_certificates
from webhook.x509.chain import chains_to
from webhook.x509.oids import EKU_USAGE_NAMES, SUBJECT_NAMES, USAGE_SYNONYMS
from webhook.x509.pem import decode_pem_blocks

CODES = frozenset(
    {
        "pod.issuer_not_permitted",
        "pod.chain_invalid",
        "pod.key_mismatch",
        "pod.san_not_allowed",
        "pod.subject_not_allowed",
        "pod.ca_not_allowed",
        "pod.usage_not_allowed",
        "lifetime.too_long",
        "lifetime.too_short",
        "pod.times_mismatch",
        "pod.refresh_out_of_range",
        "pod.chain_untrusted",
    }
)

_CHAIN = "status.certificateChain"
_BEGIN = b"-----BEGIN"
# RFC 3339 as metav1.Time writes it is 20 characters; a longer value is no time of ours.
_MAX_TIME_TEXT = 64


def _chain_violation(message: str) -> Violation:
    return Violation(code="pod.chain_invalid", field=_CHAIN, message=message)


def _read_chain(text: str) -> list[CertificateInfo] | Violation:
    """Every certificate of the chain, leaf first, or the violation that stops reading it:
    bounded in bytes and in PEM blocks before any is parsed, one certificate per block (Go's
    x509.ParseCertificate of each block, as the API server reads it)."""
    data = text.encode("utf-8", "surrogatepass")
    if not data:
        return _chain_violation("an Issued request needs a certificate chain; it is empty")
    if len(data) > MAX_CHAIN_BYTES:
        return _chain_violation(f"{len(data)} bytes; at most {MAX_CHAIN_BYTES} (the API server's)")
    begins = data.count(_BEGIN)
    if begins > MAX_CHAIN_CERTIFICATES:
        return _chain_violation(
            f"{begins} PEM blocks; a chain has at most {MAX_CHAIN_CERTIFICATES} certificates"
        )
    try:
        read = read_certificates(data)
    except CertificateFormatError as exc:
        return _chain_violation(str(exc))
    if len(read) != len(decode_pem_blocks(data)):
        return _chain_violation("a PEM block holds more than one certificate")
    chain: list[CertificateInfo] = []
    for index, certificate in enumerate(read):
        problems = [certificate] if isinstance(certificate, Violation) else certificate.problems
        if problems:
            where = "the leaf" if index == 0 else f"certificate {index + 1}"
            return _chain_violation(f"{where} cannot be read: {problems[0].message}")
        assert isinstance(certificate, CertificateInfo)
        chain.append(certificate)
    return chain


# A leaf's SAN kinds are named as the SAN table names them (webhook.sankinds).
_SAN_KINDS_BY_NAME = {kind.name: kind for kind in SAN_KINDS}


def _sans(
    leaf: CertificateInfo, issued: PodIssued, variables: Mapping[str, str]
) -> Iterator[Violation]:
    # As a CSR's volume check: past the ceiling no SAN is matched one by one (a 100 KiB chain
    # holds thousands, each matched against every pattern).
    counts = Counter(kind for kind, _ in leaf.sans)
    over = [(kind, count) for kind, count in counts.items() if count > MAX_SANS_PER_KIND]
    for kind, count in over:
        yield Violation(
            code="pod.san_not_allowed",
            field=_CHAIN,
            message=f"the leaf has {count} {kind} SANs; no policy may allow more than "
            f"{MAX_SANS_PER_KIND}",
        )
    if over:
        return
    shown: dict[str, str] = {}  # the patterns as expanded, once per kind
    for kind, value in leaf.sans:
        san_kind = _SAN_KINDS_BY_NAME.get(kind)
        if san_kind is None:
            yield Violation(
                code="pod.san_not_allowed",
                field=_CHAIN,
                message=f"the leaf has a {kind} SAN {show(value)}; only DNS, IP, URI and email "
                "SANs can be allowed",
            )
            continue
        key = san_kind.key
        patterns: tuple[Pattern, ...] = getattr(issued, san_kind.attribute)
        if first_match(patterns, value, variables) is None:
            if key not in shown:
                shown[key] = (
                    f"matches none of issued.{key} {show_patterns(patterns, variables)}"
                    if patterns
                    else f"is not allowed: issued.{key} lists none"
                )
            allowed = shown[key]
            yield Violation(
                code="pod.san_not_allowed",
                field=_CHAIN,
                message=f"the leaf's {kind} SAN {show(value)} {allowed}",
            )


def _subject(
    leaf: CertificateInfo, issued: PodIssued, variables: Mapping[str, str]
) -> Iterator[Violation]:
    """Every value of every attribute, in every RDN, must match a pattern of its attribute in
    issued.subject: a CA trusted for client certificates somewhere (kube-apiserver's client CA)
    reads the subject as the identity (O=system:masters is cluster-admin)."""
    if len(leaf.subject) > MAX_SUBJECT_ATTRIBUTES:
        # As for SANs: past the ceiling no attribute is matched one by one.
        yield Violation(
            code="pod.subject_not_allowed",
            field=_CHAIN,
            message=f"the leaf's subject has {len(leaf.subject)} attributes; no policy may "
            f"allow more than {MAX_SUBJECT_ATTRIBUTES}",
        )
        return
    shown: dict[str, str] = {}  # the patterns as expanded, once per attribute
    for oid, value in leaf.subject:
        name = SUBJECT_NAMES.get(oid)
        if name is None:
            yield Violation(
                code="pod.subject_not_allowed",
                field=_CHAIN,
                message=f"the leaf's subject attribute {oid} = "
                f"{'(not a string)' if value is None else show(value)} is not one of "
                f"{', '.join(SUBJECT_NAMES.values())}; none other can be allowed",
            )
            continue
        patterns = issued.subject.get(name, ())
        if value is None:
            yield Violation(
                code="pod.subject_not_allowed",
                field=_CHAIN,
                message=f"the leaf's subject {name} has a value that is not a string",
            )
            continue
        if first_match(patterns, value, variables) is None:
            if name not in shown:
                shown[name] = (
                    f"matches none of issued.subject.{name} {show_patterns(patterns, variables)}"
                    if patterns
                    else f"is not allowed: issued.subject lists no {name}"
                )
            yield Violation(
                code="pod.subject_not_allowed",
                field=_CHAIN,
                message=f"the leaf's subject {name} {show(value)} {shown[name]}",
            )


def _ca_and_usages(leaf: CertificateInfo, issued: PodIssued) -> Iterator[Violation]:
    if leaf.is_ca:
        yield Violation(
            code="pod.ca_not_allowed",
            field=_CHAIN,
            message="the leaf is a CA (basicConstraints CA:TRUE); a pod certificate may not be",
        )
    usages = {USAGE_SYNONYMS.get(u, u) for u in issued.usages}
    allowed = ", ".join(sorted(usages)) or "none"
    for bit in sorted(leaf.key_usage - usages):
        yield Violation(
            code="pod.usage_not_allowed",
            field=_CHAIN,
            message=f"the leaf's key usage {bit!r} is not in issued.usages ({allowed})",
        )
    if not leaf.extended_key_usage and "any" not in usages:
        # RFC 5280 4.2.1.12: without the extension the key may serve any purpose, and Go's
        # x509 Verify accepts such a leaf for every extended key usage asked of it.
        yield Violation(
            code="pod.usage_not_allowed",
            field=_CHAIN,
            message="the leaf has no extended key usage extension, so it serves every purpose "
            f"('any'); issued.usages allows only {allowed}",
        )
    for oid in leaf.extended_key_usage:
        name = EKU_USAGE_NAMES.get(oid)
        if name is None or name not in usages:
            yield Violation(
                code="pod.usage_not_allowed",
                field=_CHAIN,
                message=f"the leaf's extended key usage {name or oid!r} is not in issued.usages "
                f"({allowed})",
            )


def _lifetime(
    ctx: PodUpdateContext, leaf: CertificateInfo, issued: PodIssued
) -> Iterator[Violation]:
    seconds = leaf.lifetime_seconds
    bound = issued.lifetime
    asked = ctx.old.max_expiration_seconds
    spec_max = DEFAULT_MAX_EXPIRATION_SECONDS if asked is None else asked
    if bound.max is not None and seconds > bound.max:
        yield Violation(
            code="lifetime.too_long",
            field=_CHAIN,
            message=f"the leaf is valid for {int(seconds)}s; issued.lifetime.max is {bound.max}s",
        )
    if seconds > spec_max:
        yield Violation(
            code="lifetime.too_long",
            field=_CHAIN,
            message=f"the leaf is valid for {int(seconds)}s; spec.maxExpirationSeconds is "
            f"{spec_max}s",
        )
    if bound.min is not None and seconds < bound.min:
        yield Violation(
            code="lifetime.too_short",
            field=_CHAIN,
            message=f"the leaf is valid for {int(seconds)}s; issued.lifetime.min is {bound.min}s",
        )


def _time(text: str | None) -> datetime.datetime | None:
    if text is None or len(text) > _MAX_TIME_TEXT:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _times(ctx: PodUpdateContext, leaf: CertificateInfo) -> Iterator[Violation]:
    new = ctx.new
    certificate = leaf.certificate
    leaf_times = {
        "notBefore": (new.not_before, certificate.not_valid_before_utc),
        "notAfter": (new.not_after, certificate.not_valid_after_utc),
    }
    for name, (text, expected) in leaf_times.items():
        if _time(text) != expected:
            shown = "absent" if text is None else show(text, 64)
            yield Violation(
                code="pod.times_mismatch",
                field=f"status.{name}",
                message=f"status.{name} is {shown}; the leaf's is {expected.isoformat()}",
            )
    start = _time(new.not_before) or certificate.not_valid_before_utc
    end = _time(new.not_after) or certificate.not_valid_after_utc
    refresh = _time(new.begin_refresh_at)
    if refresh is None or not start <= refresh <= end:
        shown = "absent" if new.begin_refresh_at is None else show(new.begin_refresh_at, 64)
        yield Violation(
            code="pod.refresh_out_of_range",
            field="status.beginRefreshAt",
            message=f"status.beginRefreshAt is {shown}; it must be a time between notBefore "
            f"{start.isoformat()} and notAfter {end.isoformat()}",
        )


def _trust(
    leaf: CertificateInfo, rest: Sequence[CertificateInfo], pods: PodCertificates
) -> Iterator[Violation]:
    if not pods.ca_certificates_der:
        return
    roots = [x509.load_der_x509_certificate(d) for d in pods.ca_certificates_der]
    if not chains_to(leaf, rest, roots):
        yield Violation(
            code="pod.chain_untrusted",
            field=_CHAIN,
            message="the leaf is not signed by the policy's caBundle, directly or through the "
            "intermediates that follow it",
        )


def _issued(ctx: PodUpdateContext, pods: PodCertificates) -> Iterator[Violation]:
    chain = _read_chain(ctx.new.certificate_chain)
    if isinstance(chain, Violation):
        yield chain
        return
    leaf, rest = chain[0], chain[1:]
    key = ctx.key
    if key is None or key.problem is not None:
        why = key.problem.message if key is not None and key.problem is not None else "absent"
        yield Violation(
            code="pod.key_mismatch",
            field=_CHAIN,
            message=f"the stored request's key cannot be read ({why}), so no leaf can match it",
        )
    elif leaf.public_key_der != key.public_key_der:
        yield Violation(
            code="pod.key_mismatch",
            field=_CHAIN,
            message=f"the leaf's public key is not the one of {key.field}",
        )
    yield from _sans(leaf, pods.issued, ctx.variables or {})
    yield from _subject(leaf, pods.issued, ctx.variables or {})
    yield from _ca_and_usages(leaf, pods.issued)
    yield from _lifetime(ctx, leaf, pods.issued)
    yield from _times(ctx, leaf)
    yield from _trust(leaf, rest, pods)


def check(ctx: PodUpdateContext) -> Iterator[Violation]:
    pods = ctx.pods
    if pods is None or ctx.sub_resource != "status":
        return
    if pods.issuers is not None and not pods.issuers.includes(ctx.writer):
        yield Violation(
            code="pod.issuer_not_permitted",
            field="status",
            message=f"{show(ctx.writer.username)} may not write the status of "
            f"PodCertificateRequests for signer {show(ctx.old.signer_name)}: not in "
            "podCertificates.issuers",
        )
    if any(c.type == "Issued" for c in ctx.new.conditions):
        yield from _issued(ctx, pods)
