"""Guardrail deny lists (docs/policy-reference.md §3.3): any SAN or subject value matching one
denies the CSR, whatever the rules permit, for every requester and again at approval recheck.

Codes: deny.dns, deny.ip, deny.uri, deny.email, deny.subject.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.matching import Pattern, first_match, show_pattern
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
        family, key, label = kind.family, kind.key, kind.label
        patterns: tuple[Pattern, ...] = getattr(deny, kind.attribute)
        values: tuple[str, ...] = getattr(csr, kind.attribute)
        for index, value in enumerate(values):
            hit = first_match(patterns, value, variables)
            if hit is not None:
                yield Violation(
                    code=f"deny.{family}",
                    field=f"spec.request.{key}[{index}]",
                    message=f"{label} {show(value)} matches guardrail "
                    f"{show_pattern(hit, variables)} of deny.{key}",
                )
    for attribute in csr.subject:
        patterns = deny.subject.get(attribute.name or "", ())
        hit = first_match(patterns, attribute.value, variables)
        if hit is not None:
            yield Violation(
                code="deny.subject",
                field=f"spec.request.subject.{attribute.name}",
                message=f"{attribute.name} {show(attribute.value)} matches guardrail "
                f"{show_pattern(hit, variables)} of deny.subject.{attribute.name}",
            )
