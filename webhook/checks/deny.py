"""Guardrail deny lists (SPEC §3.1b): any SAN or subject value matching one denies the CSR,
whatever the rules permit, for every requester and again at approval recheck.

Codes: deny.dns, deny.ip, deny.uri, deny.email, deny.subject.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.matching import first_match, show_pattern
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
    kinds = (
        ("dns", "dnsNames", csr.dns_names, deny.dns_names, "DNS name"),
        ("ip", "ipAddresses", csr.ip_addresses, deny.ip_addresses, "IP address"),
        ("uri", "uris", csr.uris, deny.uris, "URI"),
        ("email", "emailAddresses", csr.email_addresses, deny.email_addresses, "email address"),
    )
    for family, key, values, patterns, label in kinds:
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
