"""The subject alternative name kinds a policy governs, one row each: every module that names a
SAN kind (schema, builder, lint, checks, the PolicyTest generator) reads it from here.

Pure data with no project imports, so that any layer may read it; a row names the field
that holds its values (`getattr(parsed_csr, kind.attribute)`). Adding a kind is one row
here, plus its parser in webhook.x509.csr and its pattern kind in webhook.matching.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class SanKind:
    key: str  # YAML key (allowed.*, deny.*, PolicyTest) and CSR field: spec.request.<key>
    attribute: str  # the field of ParsedCSR, policy.model.Allowed and policy.model.DenyLists
    family: str  # violation codes <family>.not_allowed ..., deny.<family>
    label: str  # one value in a message: "DNS name 'x' is not allowed"
    name: str  # the kind in a list of kinds: "only DNS, IP, URI and email SANs are"
    pattern: str  # the webhook.matching.patterns.PatternKind value its patterns compile as
    description: str  # of allowed.<key> in the JSON Schema
    wildcards: bool = False  # a requested `*` left-most label exists (allowWildcardNames)


DNS = SanKind(
    key="dnsNames",
    attribute="dns_names",
    family="dns",
    label="DNS name",
    name="DNS",
    pattern="dns",
    description="DNS SAN patterns",
    wildcards=True,
)
IP = SanKind(
    key="ipAddresses",
    attribute="ip_addresses",
    family="ip",
    label="IP address",
    name="IP",
    pattern="ip",
    description="IP SAN addresses or CIDRs",
)
URI = SanKind(
    key="uris",
    attribute="uris",
    family="uri",
    label="URI",
    name="URI",
    pattern="uri",
    description="URI SAN patterns",
)
EMAIL = SanKind(
    key="emailAddresses",
    attribute="email_addresses",
    family="email",
    label="email address",
    name="email",
    pattern="email",
    description="email SAN patterns",
)

SAN_KINDS: tuple[SanKind, ...] = (DNS, IP, URI, EMAIL)
BY_KEY: dict[str, SanKind] = {kind.key: kind for kind in SAN_KINDS}


def names() -> str:
    """The kinds for a sentence: "DNS, IP, URI and email"."""
    *most, last = (kind.name for kind in SAN_KINDS)
    return f"{', '.join(most)} and {last}"
