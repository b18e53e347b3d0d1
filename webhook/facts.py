"""The cluster's facts a policy may depend on, as the decision core reads them.

A Node's addresses (`constraints.node`) and a requester's pending CSRs (`constraints.maxPending`)
live in the cluster, not in the review. The engine asks a ClusterFacts for them; each answer is
known, absent, or Unknown (the watch has not synced, or there is no cluster connection), and a
rule that needs an Unknown fact fails closed. webhook.cluster answers from watch-backed caches;
StaticFacts answers from fixed values (policy test suites, `csr-webhook eval`, tests). Pure:
this module does no I/O.
"""

from __future__ import annotations

import ipaddress
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


@dataclass(frozen=True, slots=True)
class NodeIndex:
    """One Node's addresses, indexed once per review for `constraints.node`: `types` maps a
    comparable form of each value (see `comparable_name`, `comparable_ip`) to the address
    types that carry it, so a SAN costs one lookup whatever the number of addresses."""

    name: str
    addresses: tuple[NodeAddress, ...]
    types: Mapping[str, frozenset[str]]


def comparable_name(value: str) -> str:
    """A DNS name as compared with a Node's addresses: lower case, one trailing dot dropped."""
    return value.lower().removesuffix(".")


def comparable_ip(value: str) -> str | None:
    """An IP address in canonical text, an IPv4-mapped IPv6 address as its IPv4 address; None
    when `value` is no IP address."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"ip:{address.ipv4_mapped}"
    return f"ip:{address}"


def comparable(value: str) -> str:
    """An address value as an IP (`ip:` prefix) when it is one, else as a DNS name (`dns:`)."""
    ip = comparable_ip(value)
    return ip if ip is not None else f"dns:{comparable_name(value)}"


def index_node(name: str, addresses: tuple[NodeAddress, ...]) -> NodeIndex:
    """Linear in the addresses."""
    types: dict[str, set[str]] = {}
    for address in addresses:
        types.setdefault(comparable(address.address), set()).add(address.type)
    return NodeIndex(name, addresses, {k: frozenset(v) for k, v in types.items()})


# The Node a review is bound to, as the engine looked it up: indexed, absent (no such Node, or
# no ${node}: the requester is no node), or Unknown.
NodeLookup = NodeIndex | None | Unknown


def look_up_node(facts: ClusterFacts, name: str | None) -> NodeLookup:
    """The Node named `name` (the requester's ${node}; None when it is no node), indexed."""
    if name is None:
        return None
    answer = facts.node_addresses(name)
    if answer is None or isinstance(answer, Unknown):
        return answer
    return index_node(name, answer)


# What the engine sees when no cluster is connected: every fact Unknown, so a rule that needs
# one denies (node.unknown) rather than allows.
NO_CLUSTER = StaticFacts(
    reason="csr-webhook has no cluster connection (serve --kubeconfig, or run in a cluster)"
)
