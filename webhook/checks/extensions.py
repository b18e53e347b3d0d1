"""Extension allow-list, unknown critical extensions and the CA bit (docs/policy-reference.md §3.5,
§6).

Codes: extensions.not_allowed (an OID outside the standard set and allowed.extensions),
extensions.unknown_critical (the same, marked critical), ca.not_allowed (isCA false and the
CSR asks for CA:TRUE, or for `cert sign`/`crl sign` in spec.usages or its keyUsage).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cryptography.x509.oid import ExtensionOID

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.policy.model import Rule

CODES = frozenset({"extensions.not_allowed", "extensions.unknown_critical", "ca.not_allowed"})

STANDARD_EXTENSIONS = frozenset(
    oid.dotted_string
    for oid in (
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    )
)
_CA_USAGES = ("cert sign", "crl sign")
_CA_USAGE_SET = frozenset(_CA_USAGES)


def check(ctx: CreateContext) -> Iterable[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    permitted = rule.allowed.extensions
    for extension in ctx.csr.extensions:
        if extension.oid not in STANDARD_EXTENSIONS and extension.oid not in permitted:
            return _violations(ctx, rule)
    if rule.allowed.is_ca or not (
        ctx.csr.basic_constraints_ca
        or not _CA_USAGE_SET.isdisjoint(ctx.obj.usages)
        or not _CA_USAGE_SET.isdisjoint(ctx.csr.key_usage or ())
    ):
        return ()  # nothing to report: no generator
    return _violations(ctx, rule)


def _violations(ctx: CreateContext, rule: Rule) -> Iterator[Violation]:
    permitted = rule.allowed.extensions
    for index, extension in enumerate(ctx.csr.extensions):
        if extension.oid in STANDARD_EXTENSIONS or extension.oid in permitted:
            continue
        what = f"{extension.oid} ({extension.name})"
        hint = "add its OID to allowed.extensions to permit it"
        if extension.critical:
            code, message = "extensions.unknown_critical", f"critical extension {what}"
        else:
            code, message = "extensions.not_allowed", f"extension {what}"
        yield Violation(
            code=code,
            field=f"spec.request.extensions[{index}]",
            message=f"{message} is not allowed ({hint})",
        )
    if rule.allowed.is_ca:
        return
    if ctx.csr.basic_constraints_ca:
        yield Violation(
            code="ca.not_allowed",
            field="spec.request.basicConstraints",
            message="the CSR asks for a CA certificate (basicConstraints CA:TRUE); "
            f"rule {rule.name!r} does not allow isCA",
        )
    for index, usage in enumerate(ctx.obj.usages):
        if usage in _CA_USAGES:
            yield Violation(
                code="ca.not_allowed",
                field=f"spec.usages[{index}]",
                message=f"usage {usage!r} makes a CA; rule {rule.name!r} does not allow isCA",
            )
    for usage in _CA_USAGES:
        if usage in (ctx.csr.key_usage or ()):
            yield Violation(
                code="ca.not_allowed",
                field="spec.request.keyUsage",
                message=f"the CSR's keyUsage asks for {usage!r}, which makes a CA; "
                f"rule {rule.name!r} does not allow isCA",
            )
