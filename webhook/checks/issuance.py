"""The issuance gate on /status for signers with a policy (docs/policy-reference.md §5.6): who may
write the certificate or Failed, and whether the issued leaf is what the stored CSR asked for and
the policy allows. Every certificate is read by webhook.x509.certificate.read_certificates, which
makes all of cryptography's lazy accesses; this module only compares. Codes: issuance.not_issuer,
.requester_not_permitted, .public_key_mismatch, .subject_not_requested, .san_not_requested,
.lifetime_too_long, .ca_not_allowed, .usage_not_requested, .untrusted_issuer, .request_unparseable,
.certificate_unparseable, .extension_unparseable, .node_binding_failed (then the node. violations).
"""

from __future__ import annotations

from collections.abc import Iterator

from cryptography import x509

from webhook import sankinds
from webhook.addresses import comparable_ip
from webhook.context import UpdateContext
from webhook.decision import Violation
from webhook.errors import CertificateFormatError
from webhook.policy.model import Rule
from webhook.sankinds import SAN_KINDS, SanKind
from webhook.text import show
from webhook.x509.certificate import CertificateInfo, read_certificates
from webhook.x509.chain import chains_to
from webhook.x509.oids import EKU_USAGE_NAMES, SUBJECT_NAMES, USAGE_SYNONYMS

CODES = frozenset(
    {
        "issuance.not_issuer",
        "issuance.requester_not_permitted",
        "issuance.public_key_mismatch",
        "issuance.subject_not_requested",
        "issuance.san_not_requested",
        "issuance.lifetime_too_long",
        "issuance.ca_not_allowed",
        "issuance.usage_not_requested",
        "issuance.untrusted_issuer",
        "issuance.request_unparseable",
        "issuance.certificate_unparseable",
        "issuance.extension_unparseable",
        "issuance.node_binding_failed",
    }
)

_FIELD = "status.certificate"
# The in-tree signer backdates notBefore by 5 minutes (pkg/controller/certificates/signer).
BACKDATE_SECONDS = 300


def _violation(code: str, message: str) -> Violation:
    return Violation(code=code, field=_FIELD, message=message)


def _csr_sans(ctx: UpdateContext) -> set[tuple[str, str]]:
    assert ctx.csr is not None
    found: set[tuple[str, str]] = set()
    for kind in SAN_KINDS:
        values: tuple[str, ...] = getattr(ctx.csr, kind.attribute)
        found.update((kind.name, _comparable(kind, value)) for value in values)
    return found


def _comparable(kind: SanKind, value: str) -> str:
    """A SAN as the certificate's is compared with it: DNS names in lower case, addresses in
    their canonical text, an IPv4-mapped IPv6 address as its IPv4 address (Go's crypto/x509
    writes one as 4 bytes, so kube-controller-manager signs ::ffff:10.0.0.5 as 10.0.0.5; the
    node binding compares it so too)."""
    if kind is sankinds.DNS:
        return value.lower()
    if kind is sankinds.IP:
        return comparable_ip(value) or value
    return value


def _leaf_comparable(kind_name: str, value: str) -> str:
    kind = next((k for k in SAN_KINDS if k.name == kind_name), None)
    return value if kind is None else _comparable(kind, value)


def _applicable(ctx: UpdateContext) -> list[Rule]:
    assert ctx.policy is not None
    requester = ctx.requester
    return [r for r in ctx.policy.rules if r.requesters is None or r.requesters.admits(requester)]


def _rule_bound(ctx: UpdateContext) -> int | None:
    """The permitting rule's lifetime.max. When no rule permits the CSR (it got in while the
    webhook was bypassed, or under Warn/Audit), the strictest lifetime.max of the rules that
    apply to its requester, or of all the policy's rules when none applies."""
    assert ctx.policy is not None
    if ctx.rule is not None:
        return ctx.rule.constraints.lifetime.max
    rules = _applicable(ctx) or ctx.policy.rules
    bounds = [r.constraints.lifetime.max for r in rules if r.constraints.lifetime.max is not None]
    return min(bounds, default=None)


def _lifetime_limit(ctx: UpdateContext) -> int | None:
    assert ctx.policy is not None
    limits = []
    policy_max = ctx.policy.issuance.max_lifetime
    if policy_max is None:
        policy_max = _rule_bound(ctx)
    if policy_max is not None:
        limits.append(policy_max)
    if ctx.old.expiration_seconds is not None:
        limits.append(ctx.old.expiration_seconds)
    return min(limits) if limits else None


def _may_be_ca(ctx: UpdateContext) -> bool:
    if ctx.rule is not None:
        return ctx.rule.allowed.is_ca
    applicable = _applicable(ctx)
    return bool(applicable) and all(r.allowed.is_ca for r in applicable)


def _leaf(ctx: UpdateContext, leaf: CertificateInfo) -> Iterator[Violation]:
    assert ctx.csr is not None
    if leaf.public_key_der != ctx.csr.public_key_der:
        yield _violation(
            "issuance.public_key_mismatch", "the certificate's public key is not the CSR's"
        )
    requested = {(a.oid, a.value) for a in ctx.csr.subject}
    for oid, value in leaf.subject:
        if value is None or (oid, value) not in requested:
            name = SUBJECT_NAMES.get(oid, oid)
            shown = "with a value that is not a string" if value is None else show(value)
            yield _violation(
                "issuance.subject_not_requested",
                f"subject {name} {shown} is not in the CSR's subject",
            )
    asked = _csr_sans(ctx)
    for kind, value in leaf.sans:
        if (kind, _leaf_comparable(kind, value)) not in asked:
            yield _violation(
                "issuance.san_not_requested", f"{kind} SAN {show(value)} is not in the CSR"
            )
    limit = _lifetime_limit(ctx)
    lifetime = leaf.lifetime_seconds
    if limit is not None and lifetime > limit + BACKDATE_SECONDS:
        yield _violation(
            "issuance.lifetime_too_long",
            f"the certificate is valid for {int(lifetime)}s; at most {limit}s "
            f"(+{BACKDATE_SECONDS}s backdate) is allowed",
        )
    yield from _ca_and_usages(ctx, leaf)


_EKU_NAMES = frozenset(EKU_USAGE_NAMES.values())


def _ca_and_usages(ctx: UpdateContext, leaf: CertificateInfo) -> Iterator[Violation]:
    bits = leaf.key_usage
    if (leaf.is_ca or bits & {"cert sign", "crl sign"}) and not _may_be_ca(ctx):
        yield _violation("issuance.ca_not_allowed", "the certificate is a CA; isCA is not allowed")
    usages = {USAGE_SYNONYMS.get(u, u) for u in ctx.old.usages}
    for bit in sorted(bits - usages):
        yield _violation("issuance.usage_not_requested", f"key usage {bit!r} is not in spec.usages")
    asked = sorted(usages & _EKU_NAMES)
    if asked and not leaf.extended_key_usage and "any" not in usages:
        # RFC 5280 4.2.1.12: without the extension the key may serve any purpose (Go's Verify
        # accepts such a leaf for every extended key usage): more than the CSR asked for.
        yield _violation(
            "issuance.usage_not_requested",
            "the certificate has no extended key usage extension, so it serves every purpose "
            f"('any'); spec.usages asks only for {', '.join(map(repr, asked))}",
        )
    for oid in leaf.extended_key_usage:
        name = EKU_USAGE_NAMES.get(oid)
        if name is None or name not in usages:
            yield _violation(
                "issuance.usage_not_requested",
                f"extended key usage {name or oid!r} is not in spec.usages",
            )


def _node_binding(ctx: UpdateContext) -> Iterator[Violation]:
    """No rule permits the CSR now and the node binding is (part of) why: refused, not judged
    by the strictest limits. A Node that is gone, or addresses it no longer has, make a
    certificate no rule would give: the limits' fallback is for CSRs that got in while the
    webhook was bypassed, and a node binding is no limit a certificate can be held to."""
    evaluation = ctx.recheck
    if ctx.rule is not None or evaluation is None or ctx.policy is None:
        return
    failed = [v for v in evaluation.violations if v.code.startswith("node.")]
    if not failed:
        return
    yield Violation(
        code="issuance.node_binding_failed",
        field="spec.username",
        message=f"no rule of policy {ctx.policy.name!r} permits the CSR now: its node binding "
        f"fails ({len(failed)} violation(s) follow)",
    )
    yield from failed


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
            f"{ctx.old.signer_name!r}: not an issuer of policy {ctx.policy.name!r}",
        )
    if not new_certificate or ctx.new.certificate is None:
        return
    if not _applicable(ctx):
        # Fail closed: no rule ever let this requester have a certificate of this signer.
        yield Violation(
            code="issuance.requester_not_permitted",
            field="spec.username",
            message=f"no rule of policy {ctx.policy.name!r} applies to requester "
            f"{ctx.old.username!r}; a certificate may not be issued to it",
        )
    yield from _node_binding(ctx)
    try:
        chain = read_certificates(ctx.new.certificate)
    except CertificateFormatError:
        return  # the transition check reports the format
    for certificate in chain:
        if isinstance(certificate, Violation):
            yield certificate
        else:
            yield from certificate.problems
    if ctx.csr is None:
        yield _violation("issuance.request_unparseable", "the CSR's own request does not parse")
        return
    leaf, rest = chain[0], [c for c in chain[1:] if isinstance(c, CertificateInfo)]
    if isinstance(leaf, Violation):
        return
    yield from _leaf(ctx, leaf)
    if issuance.ca_certificates_der:
        roots = [x509.load_der_x509_certificate(d) for d in issuance.ca_certificates_der]
        if not chains_to(leaf, rest, roots):
            yield _violation(
                "issuance.untrusted_issuer",
                "the certificate is not signed by the policy's CA bundle, directly or "
                "through the intermediates that follow it",
            )
