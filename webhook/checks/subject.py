"""allowed.subject (docs/policy-reference.md §3.5): every attribute occurrence, in every RDN, must
match a pattern.

Codes: subject.unknown_attribute (an OID outside the nine policy attributes), subject.not_allowed
(an attribute the rule does not list, or a value matching none of its patterns),
subject.required, subject.too_many.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.matching.shown import show_patterns
from webhook.text import show

CODES = frozenset(
    {
        "subject.unknown_attribute",
        "subject.not_allowed",
        "subject.required",
        "subject.too_many",
    }
)

_FIELD = "spec.request.subject"


def check(ctx: CreateContext) -> Iterator[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    allowed = rule.allowed.subject
    seen: dict[str, int] = {}
    for attribute in ctx.csr.subject:
        if attribute.name is None:
            yield Violation(
                code="subject.unknown_attribute",
                field=f"{_FIELD}.{attribute.oid}",
                message=f"subject attribute {attribute.oid} = {show(attribute.value)} is not "
                "one of commonName, organization, organizationalUnit, country, locality, "
                "province, streetAddress, postalCode, serialNumber",
            )
            continue
        seen[attribute.name] = seen.get(attribute.name, 0) + 1
        spec = allowed.get(attribute.name)
        field = f"{_FIELD}.{attribute.name}"
        if spec is None:
            yield Violation(
                code="subject.not_allowed",
                field=field,
                message=f"{attribute.name} {show(attribute.value)} is not allowed: "
                f"rule {rule.name!r} permits no {attribute.name}",
            )
        elif spec.matcher.first(attribute.value, ctx.variables) is None:
            yield Violation(
                code="subject.not_allowed",
                field=field,
                message=f"{attribute.name} {show(attribute.value)} matches none of "
                f"{show_patterns(spec.values, ctx.variables)}",
            )
    for name, spec in allowed.items():
        count = seen.get(name, 0)
        if spec.required and count == 0:
            yield Violation(
                code="subject.required",
                field=f"{_FIELD}.{name}",
                message=f"{name} is required (one of {show_patterns(spec.values, ctx.variables)})",
            )
        if spec.max_items is not None and count > spec.max_items:
            yield Violation(
                code="subject.too_many",
                field=f"{_FIELD}.{name}",
                message=f"{count} {name} values; at most {spec.max_items} allowed",
            )
