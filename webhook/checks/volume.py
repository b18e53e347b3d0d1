"""Refuse a CSR with more SANs of one kind, or more subject attributes, than any policy could
allow (webhook.limits), before any per-entry check runs: one violation per kind, never one
per entry, so a hostile request costs no more than its parse.

Codes: dns.too_many, ip.too_many, uri.too_many, email.too_many, subject.too_many.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.limits import MAX_SANS_PER_KIND, MAX_SUBJECT_ATTRIBUTES
from webhook.sankinds import SAN_KINDS
from webhook.x509.csr import ParsedCSR

CODES = frozenset(
    {
        "dns.too_many",
        "ip.too_many",
        "uri.too_many",
        "email.too_many",
        "subject.too_many",
    }
)


def check(ctx: CreateContext) -> Iterable[Violation]:
    csr = ctx.csr
    if len(csr.subject) > MAX_SUBJECT_ATTRIBUTES:
        return _violations(csr)
    for kind in SAN_KINDS:
        if len(getattr(csr, kind.attribute)) > MAX_SANS_PER_KIND:
            return _violations(csr)
    return ()  # within every bound: no generator


def _violations(csr: ParsedCSR) -> Iterator[Violation]:
    for kind in SAN_KINDS:
        family, key, label = kind.family, kind.key, kind.label
        values: tuple[str, ...] = getattr(csr, kind.attribute)
        if len(values) > MAX_SANS_PER_KIND:
            yield Violation(
                code=f"{family}.too_many",
                field=f"spec.request.{key}",
                message=f"{len(values)} {label} SANs; no policy may allow more than "
                f"{MAX_SANS_PER_KIND}",
            )
    if len(csr.subject) > MAX_SUBJECT_ATTRIBUTES:
        yield Violation(
            code="subject.too_many",
            field="spec.request.subject",
            message=f"{len(csr.subject)} subject attributes; no policy may allow more than "
            f"{MAX_SUBJECT_ATTRIBUTES}",
        )
