"""spec.usages against allowed.usages and requiredUsages, and the CSR's own keyUsage and
extendedKeyUsage extensions against spec.usages (docs/policy-reference.md §3.5, §3.6, §6).

Signers differ in which of the two they honour (the in-tree signer uses only spec.usages), so
both must say the same. Codes: usages.not_allowed, usages.required, usages.extension_mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.policy.model import Rule
from webhook.text import show, show_list
from webhook.x509.oids import EKU_USAGE_NAMES, USAGE_SYNONYMS

CODES = frozenset({"usages.not_allowed", "usages.required", "usages.extension_mismatch"})


def _canonical(usages: tuple[str, ...]) -> set[str]:
    return {USAGE_SYNONYMS.get(u, u) for u in usages}


def check(ctx: CreateContext) -> Iterable[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    usages = ctx.obj.usages
    if rule.allowed.usages.issuperset(usages) and rule.constraints.required_usages.issubset(usages):
        requested = _canonical(usages)
        if requested.issuperset(ctx.csr.key_usage or ()):
            for oid in ctx.csr.extended_key_usage or ():
                name = EKU_USAGE_NAMES.get(oid)
                if name is None or name not in requested:
                    return _violations(ctx, rule)
            return ()  # nothing to report: no generator
    return _violations(ctx, rule)


def _violations(ctx: CreateContext, rule: Rule) -> Iterator[Violation]:
    allowed = rule.allowed.usages
    usages = ctx.obj.usages
    for index, usage in enumerate(usages):
        if usage not in allowed:
            yield Violation(
                code="usages.not_allowed",
                field=f"spec.usages[{index}]",
                message=f"usage {show(usage)} is not allowed "
                f"(allowed: {show_list(sorted(allowed))})",
            )
    required = rule.constraints.required_usages
    for usage in sorted(required) if not required.issubset(usages) else ():
        if usage not in usages:
            yield Violation(
                code="usages.required",
                field="spec.usages",
                message=f"usage {show(usage)} is required",
            )
    requested = _canonical(usages)
    bits = ctx.csr.key_usage or ()
    for bit in sorted(bits) if not requested.issuperset(bits) else ():
        if bit not in requested:
            yield Violation(
                code="usages.extension_mismatch",
                field="spec.request.keyUsage",
                message=f"the CSR's keyUsage asks for {show(bit)}, which spec.usages "
                f"{show_list(usages)} does not",
            )
    for oid in ctx.csr.extended_key_usage or ():
        name = EKU_USAGE_NAMES.get(oid)
        if name is None or name not in requested:
            what = show(name) if name else f"unknown OID {oid}"
            yield Violation(
                code="usages.extension_mismatch",
                field="spec.request.extendedKeyUsage",
                message=f"the CSR's extendedKeyUsage asks for {what}, which spec.usages "
                f"{show_list(usages)} does not",
            )
