"""The cluster's facts a policy may depend on, as the decision core reads them.

A Node's addresses and the Nodes that claim an address (`constraints.node`) and a requester's
pending CSRs (`constraints.maxPending`) live in the cluster, not in the review. The engine asks
a ClusterFacts for them; each answer is known, absent, or Unknown (the watch has not synced, or
there is no cluster connection), and a rule that needs an Unknown fact fails closed.
webhook.cluster answers from watch-backed caches; StaticFacts answers from fixed values (policy
test suites, `csr-webhook eval`, tests). Pure: this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
# The names of the Nodes whose addresses carry a value, sorted; () when none does.
ClaimAnswer = tuple[str, ...] | Unknown
PendingAnswer = int | Unknown


class ClusterFacts(Protocol):
    def node_addresses(self, name: str) -> NodeAnswer:
        """The addresses of Node `name`, None when there is no such Node."""
        ...

    def nodes_with_address(self, key: str) -> ClaimAnswer:
        """The Nodes one of whose status.addresses, of any type, has the comparable form `key`
        (webhook.addresses.comparable)."""
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
    _claims: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_unknown", Unknown(self.reason))
        object.__setattr__(self, "_claims", claims_of(self.nodes or {}))

    def node_addresses(self, name: str) -> NodeAnswer:
        if self.nodes is None:
            return self._unknown
        return self.nodes.get(name)

    def nodes_with_address(self, key: str) -> ClaimAnswer:
        if self.nodes is None:
            return self._unknown
        return self._claims.get(key, ())

    def pending_csrs(self, signer_name: str, username: str, *, excluding: str) -> PendingAnswer:
        if self.pending is None:
            return self._unknown
        names = self.pending.get((signer_name, username), ())
        return sum(1 for name in names if name != excluding)


def claims_of(nodes: Mapping[str, tuple[NodeAddress, ...]]) -> dict[str, tuple[str, ...]]:
    """Comparable address -> the sorted names of the Nodes that list it, of any type."""
    claims: dict[str, set[str]] = {}
    for name, addresses in nodes.items():
        for address in addresses:
            claims.setdefault(comparable(address.address), set()).add(name)
    return {key: tuple(sorted(names)) for key, names in claims.items()}


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
    requester's Node (None when not needed or absent), its pending CSRs of the signer (None
    when not needed), and for each SAN that is one of the Node's addresses, by comparable
    form, the Nodes that list it (asked only when a rule refuses shared addresses)."""

    node: NodeLookup = None
    pending: PendingAnswer | None = None
    claims: Mapping[str, ClaimAnswer] = field(default_factory=dict)


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
    san_keys: Iterable[str] = (),
) -> ReviewFacts:
    """`node` is the requester's ${node}, None when it is no node (then it has no Node).
    `san_keys` are the comparable forms of the SANs whose claimants a rule needs: each that
    is one of the Node's addresses is asked once (the others are no address of it anyway)."""
    found: NodeLookup = None
    claims: dict[str, ClaimAnswer] = {}
    if need_node and node is not None:
        answer = facts.node_addresses(node)
        found = index_node(node, answer) if isinstance(answer, tuple) else answer
        if isinstance(found, NodeIndex):
            for key in san_keys:
                if key in found.types and key not in claims:
                    claims[key] = facts.nodes_with_address(key)
    pending = (
        facts.pending_csrs(signer_name, username, excluding=excluding) if need_pending else None
    )
    return ReviewFacts(found, pending, claims)


# What the engine sees when no cluster is connected: every fact Unknown, so a rule that needs
# one denies (node.unknown) rather than allows.
NO_CLUSTER = StaticFacts(
    reason="csr-webhook has no cluster connection (serve --kubeconfig, or run in a cluster)"
)
