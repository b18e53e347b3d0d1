"""Guardrail deny lists (SPEC §3.1b): any SAN or subject value matching one denies the CSR,
whatever the rules permit, for every requester and again at approval recheck.

Codes: deny.dns, deny.ip, deny.uri, deny.email, deny.subject.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from webhook.decision import Violation
from webhook.matching import Pattern, show_pattern
from webhook.policy.model import DenyLists
from webhook.sankinds import SAN_KINDS
from webhook.text import show
from webhook.x509.csr import ParsedCSR


def _first_match(
    patterns: tuple[Pattern, ...], value: str, variables: Mapping[str, str]
) -> Pattern | None:
    return next((p for p in patterns if p.matches(value, variables)), None)


def check(csr: ParsedCSR, deny: DenyLists, variables: Mapping[str, str]) -> Iterator[Violation]:
    for kind in SAN_KINDS:
        family, key, label = kind.family, kind.key, kind.label
        patterns: tuple[Pattern, ...] = getattr(deny, kind.attribute)
        for index, value in enumerate(kind.csr_values(csr)):
            hit = _first_match(patterns, value, variables)
            if hit is not None:
                yield Violation(
                    code=f"deny.{family}",
                    field=f"spec.request.{key}[{index}]",
                    message=f"{label} {show(value)} matches guardrail "
                    f"{show_pattern(hit, variables)} of deny.{key}",
                )
    for attribute in csr.subject:
        patterns = deny.subject.get(attribute.name or "", ())
        hit = _first_match(patterns, attribute.value, variables)
        if hit is not None:
            yield Violation(
                code="deny.subject",
                field=f"spec.request.subject.{attribute.name}",
                message=f"{attribute.name} {show(attribute.value)} matches guardrail "
                f"{show_pattern(hit, variables)} of deny.subject.{attribute.name}",
            )
