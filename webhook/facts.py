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

from webhook.addresses import comparable


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


@dataclass(frozen=True, slots=True)
class NodeIndex:
    """One Node's addresses, indexed once per review for `constraints.node`: `types` maps the
    comparable form of each value (webhook.addresses) to the address types that carry it, so
    a SAN costs one lookup whatever the number of addresses."""

    name: str
    addresses: tuple[NodeAddress, ...]
    types: Mapping[str, frozenset[str]]


def index_node(name: str, addresses: tuple[NodeAddress, ...]) -> NodeIndex:
    """Linear in the addresses."""
    types: dict[str, set[str]] = {}
    for address in addresses:
        types.setdefault(comparable(address.address), set()).add(address.type)
    return NodeIndex(name, addresses, {k: frozenset(v) for k, v in types.items()})


# The Node a review is bound to, as the engine looked it up: indexed, absent (no such Node, or
# no ${node}: the requester is no node), or Unknown.
NodeLookup = NodeIndex | None | Unknown


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    """What one review needs of the cluster, asked once whatever the number of rules: the
    requester's Node (None when not needed or absent) and its pending CSRs of the signer
    (None when not needed)."""

    node: NodeLookup = None
    pending: PendingAnswer | None = None


NO_FACTS_NEEDED = ReviewFacts()


def gather(
    facts: ClusterFacts,
    node: str | None,
    signer_name: str,
    username: str,
    excluding: str,
    *,
    need_node: bool,
    need_pending: bool,
) -> ReviewFacts:
    """`node` is the requester's ${node}, None when it is no node (then it has no Node)."""
    found: NodeLookup = None
    if need_node and node is not None:
        answer = facts.node_addresses(node)
        found = index_node(node, answer) if isinstance(answer, tuple) else answer
    pending = (
        facts.pending_csrs(signer_name, username, excluding=excluding) if need_pending else None
    )
    return ReviewFacts(found, pending)


# What the engine sees when no cluster is connected: every fact Unknown, so a rule that needs
# one denies (node.unknown) rather than allows.
NO_CLUSTER = StaticFacts(
    reason="csr-webhook has no cluster connection (serve --kubeconfig, or run in a cluster)"
)
