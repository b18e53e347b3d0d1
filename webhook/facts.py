"""The cluster's facts a policy may depend on, as the decision core reads them.

A Node's addresses (`constraints.node`) and a requester's pending CSRs (`constraints.maxPending`)
live in the cluster, not in the review. The engine asks a ClusterFacts for them; each answer is
known, absent, or Unknown (the watch has not synced, or there is no cluster connection), and a
rule that needs an Unknown fact fails closed. webhook.cluster answers from watch-backed caches;
StaticFacts answers from fixed values (policy test suites, `csr-webhook eval`, tests). Pure:
this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """One entry of Node.status.addresses: its type (InternalIP, Hostname, ...) and value."""

    type: str
    address: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """A fact that cannot be told now; `reason` says why, for the violation and /readyz."""

    reason: str


# A Node's addresses; None when no Node of that name exists.
NodeAnswer = tuple[NodeAddress, ...] | None | Unknown
PendingAnswer = int | Unknown


class ClusterFacts(Protocol):
    def node_addresses(self, name: str) -> NodeAnswer:
        """The addresses of Node `name`, None when there is no such Node."""
        ...

    def pending_csrs(self, signer_name: str, username: str, *, excluding: str) -> PendingAnswer:
        """How many CSRs of `signer_name` requested by `username` have no Approved, Denied or
        Failed condition, not counting the CSR named `excluding` (the one being judged)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticFacts:
    """Fixed facts. `nodes` None: Node facts are Unknown (with `reason`); a Mapping: exactly
    these Nodes exist. `pending` None: pending counts are Unknown; a Mapping from
    (signer name, username) to the names of that requester's pending CSRs."""

    nodes: Mapping[str, tuple[NodeAddress, ...]] | None = None
    pending: Mapping[tuple[str, str], tuple[str, ...]] | None = None
    reason: str = "no cluster connection"
    _unknown: Unknown = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_unknown", Unknown(self.reason))

    def node_addresses(self, name: str) -> NodeAnswer:
        if self.nodes is None:
            return self._unknown
        return self.nodes.get(name)

    def pending_csrs(self, signer_name: str, username: str, *, excluding: str) -> PendingAnswer:
        if self.pending is None:
            return self._unknown
        names = self.pending.get((signer_name, username), ())
        return sum(1 for name in names if name != excluding)


# What the engine sees when no cluster is connected: every fact Unknown, so a rule that needs
# one denies (node.unknown) rather than allows.
NO_CLUSTER = StaticFacts(
    reason="csr-webhook has no cluster connection (serve --kubeconfig, or run in a cluster)"
)
