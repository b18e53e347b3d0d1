"""Typed, immutable SignerPolicy values and the PolicySet that selects a policy per signer.

Built only by `build`, which has already validated every field and passes each one: a field
with a policy default has none here, the default is the schema's (`schema.default_at`). What
remains below is absence (None, empty). Nothing here does I/O. Durations are whole seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from webhook.matching import subjects
from webhook.matching.lists import PatternList
from webhook.matching.patterns import Pattern
from webhook.sankinds import SAN_KINDS


class Enforcement(StrEnum):
    DENY = "Deny"
    WARN = "Warn"
    AUDIT = "Audit"


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueRule:
    """`{values, required, maxItems}` for one subject attribute or SAN kind."""

    values: tuple[Pattern, ...] = ()
    required: bool
    max_items: int | None = None
    allow_wildcard_names: bool
    # `values` compiled for matching (webhook.matching.lists.PatternList), once at load.
    matcher: PatternList = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", PatternList(self.values))


# Who (`requesters`, `approval.approvers`, `issuance.issuers`) is matched by the matcher, so
# the engine's requester test never returns here; the name stays the policy model's.
Subjects = subjects.Subjects


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowed:
    subject: Mapping[str, ValueRule] = field(default_factory=dict)
    dns_names: ValueRule | None = None
    ip_addresses: ValueRule | None = None
    uris: ValueRule | None = None
    email_addresses: ValueRule | None = None
    usages: frozenset[str] = frozenset()
    is_ca: bool
    extensions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Lifetime:
    min: int | None = None
    max: int | None = None
    default: int | None = None
    clamp: bool  # onExceed: Clamp


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRules:
    """Accepted key types; None for a type means that type is refused."""

    rsa: tuple[int, int] | None
    ecdsa_curves: frozenset[str] | None
    ed25519: bool
    ed448: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBinding:
    """`constraints.node`: the Node named ${node} must exist (`must_exist`), and with
    `sans_from_addresses` every DNS and IP SAN must be one of its addresses of those types and,
    unless `allow_shared`, an address of no other Node (a node writes its own addresses)."""

    must_exist: bool
    sans_from_addresses: frozenset[str] = frozenset()
    allow_shared: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraints:
    required_usages: frozenset[str] = frozenset()
    require_any_san: bool
    lifetime: Lifetime
    keys: KeyRules
    signature_algorithms: frozenset[str] | None = None
    node: NodeBinding | None = None
    # `maxPending`: CSRs of this signer the requester may have pending when it creates another.
    max_pending: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    requesters: Subjects | None = None
    allowed: Allowed
    constraints: Constraints


@dataclass(frozen=True, slots=True, kw_only=True)
class DenyLists:
    dns_names: tuple[Pattern, ...] = ()
    ip_addresses: tuple[Pattern, ...] = ()
    uris: tuple[Pattern, ...] = ()
    email_addresses: tuple[Pattern, ...] = ()
    subject: Mapping[str, tuple[Pattern, ...]] = field(default_factory=dict)
    # Each list compiled for matching (webhook.matching.lists.PatternList), once at load: by SAN
    # attribute (dns_names, ...) and by subject attribute name.
    san_matchers: Mapping[str, PatternList] = field(init=False, repr=False, compare=False)
    subject_matchers: Mapping[str, PatternList] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sans = {k.attribute: PatternList(getattr(self, k.attribute)) for k in SAN_KINDS}
        subject = {name: PatternList(patterns) for name, patterns in self.subject.items()}
        object.__setattr__(self, "san_matchers", sans)
        object.__setattr__(self, "subject_matchers", subject)


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoApproval:
    """`approval.auto`: what `csr-webhook approve` does with a pending CSR of the signer:
    approve it when the policy allows it, deny it when not (each only when set)."""

    approve: bool
    deny: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    approvers: Subjects | None = None
    self_approval: bool  # selfApproval: Allow
    recheck: bool
    auto: AutoApproval | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuance:
    issuers: Subjects | None = None
    ca_certificates_der: tuple[bytes, ...] = ()
    max_lifetime: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PodIssued:
    """`podCertificates.issued`: what a signer may write into a PodCertificateRequest's
    /status. Every leaf SAN must match a pattern of its kind (a kind with no patterns admits
    none); patterns use the pod templates (${pod.namespace}, ${pod.name}, ${pod.uid},
    ${pod.serviceAccountName}, ${node}); so must every subject attribute value of the leaf
    match a pattern of its attribute in `subject`. Key usages and EKUs of the leaf must be in
    `usages`; its lifetime within `lifetime` (only min and max are meaningful here)."""

    dns_names: tuple[Pattern, ...] = ()
    ip_addresses: tuple[Pattern, ...] = ()
    uris: tuple[Pattern, ...] = ()
    email_addresses: tuple[Pattern, ...] = ()
    # Subject attribute name (schema.SUBJECT_ATTRIBUTES) -> glob patterns, pod templates
    # allowed: every value of every attribute of the leaf's subject must match one pattern of
    # its attribute; an attribute absent here (or outside the table) is refused, so an empty
    # mapping admits only an empty subject.
    subject: Mapping[str, tuple[Pattern, ...]] = field(default_factory=dict)
    usages: frozenset[str] = frozenset()
    lifetime: Lifetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PodCertificates:
    """`spec.podCertificates`: how the policy governs PodCertificateRequests of its signers.

    `requesters`: who may create one (every list given must match, as for rule requesters).
    `nodes_only`: `requesters` admits only `system:node:*` users, so a stored request was
    created by the node in its spec.nodeName and ${node} is defined when judging /status.
    `namespaces` (glob patterns) and `service_accounts` (namespace/name patterns) restrict the
    pod; None means any. `annotations`: allowed unverifiedUserAnnotations keys, each with the
    glob patterns its value must match (a key absent here is refused). `issuers`: who may write
    /status (None: whoever RBAC lets `sign`). `ca_certificates_der`: the chain must verify to
    one of them (empty: not checked)."""

    requesters: Subjects
    nodes_only: bool
    namespaces: tuple[Pattern, ...] | None = None
    service_accounts: tuple[Pattern, ...] | None = None
    keys: KeyRules
    max_expiration_seconds: int | None = None
    annotations: Mapping[str, tuple[Pattern, ...]] = field(default_factory=dict)
    issued: PodIssued
    issuers: Subjects | None = None
    ca_certificates_der: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SignerPolicy:
    name: str
    signer_names: tuple[Pattern, ...]
    rules: tuple[Rule, ...]
    enforcement: Enforcement
    deny: DenyLists
    approval: Approval
    issuance: Issuance
    source: str = ""
    # None: the policy governs no PodCertificateRequest (one for its signer is denied).
    pod_certificates: PodCertificates | None = None


@dataclass(frozen=True, slots=True)
class PolicySet:
    """All loaded policies; `select` finds the one policy governing a signer."""

    policies: tuple[SignerPolicy, ...] = ()
    digest: str = field(default="")

    def select(self, signer_name: str) -> SignerPolicy | None:
        best: SignerPolicy | None = None
        best_rank = (-1, -1)
        for policy in self.policies:
            for pattern in policy.signer_names:
                if pattern.matches(signer_name):
                    # Exact names beat patterns; among patterns, more literal characters win.
                    rank = (1 if pattern.is_literal else 0, pattern.literal_chars)
                    if rank > best_rank:
                        best, best_rank = policy, rank
        return best
