"""Typed, immutable SignerPolicy values and the PolicySet that selects a policy per signer.

Built only by `loader`, which has already validated every field; nothing here does I/O.
Durations are whole seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from webhook import matching
from webhook.matching import Pattern, PatternKind, compile_pattern


class Enforcement(StrEnum):
    DENY = "Deny"
    WARN = "Warn"
    AUDIT = "Audit"


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueRule:
    """`{values, required, maxItems}` for one subject attribute or SAN kind."""

    values: tuple[Pattern, ...] = ()
    required: bool = False
    max_items: int | None = None
    allow_wildcard_names: bool = False


# Who (`requesters`, `approval.approvers`, `issuance.issuers`) is matched by the matcher, so
# the engine's requester test never returns here; the name stays the policy model's.
Subjects = matching.Subjects


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowed:
    subject: Mapping[str, ValueRule] = field(default_factory=dict)
    dns_names: ValueRule | None = None
    ip_addresses: ValueRule | None = None
    uris: ValueRule | None = None
    email_addresses: ValueRule | None = None
    usages: frozenset[str] = frozenset()
    is_ca: bool = False
    extensions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Lifetime:
    min: int | None = None
    max: int | None = None
    default: int | None = None
    clamp: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRules:
    """Accepted key types; None for a type means that type is refused."""

    rsa: tuple[int, int] | None = (2048, 8192)
    ecdsa_curves: frozenset[str] | None = frozenset({"P-256", "P-384", "P-521"})
    ed25519: bool = True
    ed448: bool = False


DEFAULT_KEYS = KeyRules()


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraints:
    required_usages: frozenset[str] = frozenset()
    require_any_san: bool = False
    lifetime: Lifetime = field(default_factory=Lifetime)
    keys: KeyRules = DEFAULT_KEYS
    signature_algorithms: frozenset[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    requesters: Subjects | None = None
    allowed: Allowed = field(default_factory=Allowed)
    constraints: Constraints = field(default_factory=Constraints)


@dataclass(frozen=True, slots=True, kw_only=True)
class DenyLists:
    dns_names: tuple[Pattern, ...] = ()
    ip_addresses: tuple[Pattern, ...] = ()
    uris: tuple[Pattern, ...] = ()
    email_addresses: tuple[Pattern, ...] = ()
    subject: Mapping[str, tuple[Pattern, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    approvers: Subjects | None = None
    self_approval: bool = False
    recheck: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuance:
    issuers: Subjects | None = None
    ca_certificates_der: tuple[bytes, ...] = ()
    max_lifetime: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignerPolicy:
    name: str
    signer_names: tuple[Pattern, ...]
    rules: tuple[Rule, ...]
    enforcement: Enforcement = Enforcement.DENY
    deny: DenyLists = field(default_factory=DenyLists)
    approval: Approval = field(default_factory=Approval)
    issuance: Issuance = field(default_factory=Issuance)
    source: str = ""


@dataclass(frozen=True, slots=True)
class PolicySet:
    """All loaded policies; `select` finds the one policy governing a signer."""

    policies: tuple[SignerPolicy, ...] = ()
    digest: str = field(default="")

    @classmethod
    def of(cls, policies: tuple[SignerPolicy, ...], content: bytes) -> PolicySet:
        return cls(policies, hashlib.sha256(content).hexdigest())

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


def signer_pattern(text: str) -> Pattern:
    return compile_pattern(PatternKind.SIGNER, text)
