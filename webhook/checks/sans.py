"""allowed.dnsNames/ipAddresses/uris/emailAddresses and constraints.requireAnySAN
(docs/policy-reference.md §3.5).

Codes per kind (dns., ip., uri., email.): <kind>.not_allowed (kind not listed, or a value
matching no pattern), <kind>.required, <kind>.too_many; dns.wildcard_not_allowed; and
csr.san_required when requireAnySAN is set and the CSR has no SAN.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.matching.shown import show_patterns
from webhook.policy.model import ValueRule
from webhook.sankinds import SAN_KINDS
from webhook.text import show

CODES = frozenset(
    {
        "dns.not_allowed",
        "dns.required",
        "dns.too_many",
        "dns.wildcard_not_allowed",
        "ip.not_allowed",
        "ip.required",
        "ip.too_many",
        "uri.not_allowed",
        "uri.required",
        "uri.too_many",
        "email.not_allowed",
        "email.required",
        "email.too_many",
        "csr.san_required",
    }
)


def check(ctx: CreateContext) -> Iterator[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    total = 0
    for kind in SAN_KINDS:
        key, family, label = kind.key, kind.family, kind.label
        values: tuple[str, ...] = getattr(ctx.csr, kind.attribute)
        total += len(values)
        spec: ValueRule | None = getattr(rule.allowed, kind.attribute)
        for index, value in enumerate(values):
            if spec is None:
                yield Violation(
                    code=f"{family}.not_allowed",
                    field=f"spec.request.{key}[{index}]",
                    message=f"{label} {show(value)} is not allowed: rule {rule.name!r} "
                    f"permits no {label} SANs",
                )
                continue
            if kind.wildcards and value.startswith("*.") and not spec.allow_wildcard_names:
                yield Violation(
                    code="dns.wildcard_not_allowed",  # only DNS names have wildcards
                    field=f"spec.request.{key}[{index}]",
                    message=f"wildcard {label} {show(value)} is not allowed "
                    "(allowWildcardNames is false)",
                )
            if spec.matcher.first(value, ctx.variables) is None:
                yield Violation(
                    code=f"{family}.not_allowed",
                    field=f"spec.request.{key}[{index}]",
                    message=f"{label} {show(value)} matches none of "
                    f"{show_patterns(spec.values, ctx.variables)}",
                )
        if spec is None:
            continue
        if spec.required and not values:
            yield Violation(
                code=f"{family}.required",
                field=f"spec.request.{key}",
                message=f"a {label} SAN is required "
                f"(one of {show_patterns(spec.values, ctx.variables)})",
            )
        if spec.max_items is not None and len(values) > spec.max_items:
            yield Violation(
                code=f"{family}.too_many",
                field=f"spec.request.{key}",
                message=f"{len(values)} {label} SANs; at most {spec.max_items} allowed",
            )
    if rule.constraints.require_any_san and total == 0:
        yield Violation(
            code="csr.san_required",
            field="spec.request",
            message=f"rule {rule.name!r} requires at least one subject alternative name",
        )
