"""Guardrail deny lists (docs/policy-reference.md §3.3): any SAN or subject value matching one
denies the CSR, whatever the rules permit, for every requester and again at approval recheck.

Codes: deny.dns, deny.ip, deny.uri, deny.email, deny.subject.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.matching.shown import show_pattern
from webhook.sankinds import SAN_KINDS
from webhook.text import show

CODES = frozenset(
    {
        "deny.dns",
        "deny.ip",
        "deny.uri",
        "deny.email",
        "deny.subject",
    }
)


def check(ctx: CreateContext) -> Iterator[Violation]:
    csr, deny, variables = ctx.csr, ctx.policy.deny, ctx.variables
    for kind in SAN_KINDS:
        values: tuple[str, ...] = getattr(csr, kind.attribute)
        matcher = deny.san_matchers[kind.attribute]
        if not values or not matcher.patterns:
            continue
        family, key, label = kind.family, kind.key, kind.label
        for index, value in enumerate(values):
            hit = matcher.first(value, variables)
            if hit is not None:
                yield Violation(
                    code=f"deny.{family}",
                    field=f"spec.request.{key}[{index}]",
                    message=f"{label} {show(value)} matches guardrail "
                    f"{show_pattern(hit, variables)} of deny.{key}",
                )
    subject = deny.subject_matchers
    if not subject:
        return
    for attribute in csr.subject:
        named = subject.get(attribute.name or "")
        hit = named.first(attribute.value, variables) if named is not None else None
        if hit is not None:
            yield Violation(
                code="deny.subject",
                field=f"spec.request.subject.{attribute.name}",
                message=f"{attribute.name} {show(attribute.value)} matches guardrail "
                f"{show_pattern(hit, variables)} of deny.subject.{attribute.name}",
            )
