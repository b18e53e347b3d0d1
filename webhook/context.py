"""What a CREATE check sees: the parsed CSR, the request fields, the rule and the requester.

Shared by the engine and every check module (checks never import each other).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from webhook.matching import Requester
from webhook.policy.model import Rule, SignerPolicy
from webhook.resource import CSRObject
from webhook.x509.csr import ParsedCSR


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateContext:
    csr: ParsedCSR
    obj: CSRObject
    requester: Requester
    variables: Mapping[str, str]
    policy: SignerPolicy
    rule: Rule


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateContext:
    """An UPDATE of a CSR: `caller` is request.userInfo (approver on /approval, signer on
    /status). Every gate judges the stored spec, `old`'s (a spec change is a transition
    violation); `new` contributes only its status. The requester is `old.username`. `rule` is
    the rule that permits the CSR for its requester now (None when no rule does or there is no
    policy)."""

    sub_resource: str
    old: CSRObject
    new: CSRObject
    caller: Requester
    policy: SignerPolicy | None
    rule: Rule | None = None
    csr: ParsedCSR | None = None

    @property
    def requester(self) -> Requester:
        """Who asked for the certificate, from the stored spec."""
        return Requester(self.old.username, self.old.groups)

    def added(self, kind: str) -> bool:
        """True when the update adds a condition of this type."""
        before = sum(c.type == kind for c in self.old.conditions)
        return sum(c.type == kind for c in self.new.conditions) > before
