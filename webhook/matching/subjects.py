"""Subjects: who a list of user, group and service-account patterns names (`requesters`,
`approval.approvers`, `issuance.issuers`)."""

from __future__ import annotations

from dataclasses import dataclass

from webhook.matching.patterns import Pattern, first_match
from webhook.matching.variables import Requester


@dataclass(frozen=True, slots=True, kw_only=True)
class Subjects:
    """Who: used by `requesters`, `approval.approvers` and `issuance.issuers`."""

    users: tuple[Pattern, ...] | None = None
    groups: tuple[Pattern, ...] | None = None
    service_accounts: tuple[Pattern, ...] | None = None

    def includes(self, requester: Requester) -> bool:
        """True when the requester matches any list given: approvers and issuers name
        alternative identities (the approvers of docs/policy-reference.md §3.8 and the deployment
        manifests list a user and a service account that must both be admitted; no single identity
        can match both)."""
        users = self.users or ()
        groups = self.groups or ()
        accounts = self.service_accounts or ()
        return (
            any(p.matches(requester.username) for p in users)
            or any(p.matches(group) for p in groups for group in requester.groups)
            or any(p.matches(requester.username) for p in accounts)
        )

    def admits(self, requester: Requester) -> bool:
        """True when the requester matches every list given (docs/policy-reference.md §5.2,
        `requesters`)."""
        username = requester.username
        if self.users is not None and first_match(self.users, username) is None:
            return False
        if self.groups is not None:
            for group in requester.groups:
                if first_match(self.groups, group) is not None:
                    break
            else:
                return False
        return (
            self.service_accounts is None
            or first_match(self.service_accounts, username) is not None
        )
