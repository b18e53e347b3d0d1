"""webhook.facts.ClusterFacts answered from two informers: Nodes and CertificateSigningRequests.

Each answer is O(1): a Node's addresses are looked up by name; the Nodes claiming an address
and a requester's pending CSRs come from indexes kept by the informers' on_change (ClaimIndex,
PendingIndex). A cache that has not synced, or has heard nothing from the API server for longer
than its staleness bound, answers Unknown with a reason saying which cache, what and since
when. Only what the checks need is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kubernetes.client

from webhook.addresses import comparable
from webhook.cluster.informer import Informer
from webhook.facts import ClaimAnswer, NodeAddress, NodeAnswer, PendingAnswer, Unknown

# A Node reports a handful of addresses (InternalIP, ExternalIP, Hostname, one per family);
# more than this, or longer values, are not stored (a rule needing them then denies).
MAX_NODE_ADDRESSES = 32
MAX_ADDRESS_LENGTH = 256
# CSR conditions that end a request's pending state (the API's own three).
FINISHED_CONDITIONS = frozenset({"Approved", "Denied", "Failed"})
# The webhook's watches: ended by the API server after this long, so a cache that hears
# nothing for WATCH_SECONDS + informer.READ_GRACE_SECONDS is cut off (its staleness bound).
WATCH_SECONDS = 60


def keep_node_addresses(raw: dict[str, Any]) -> tuple[NodeAddress, ...]:
    """status.addresses of a raw Node, the only part of it that is stored."""
    status = raw.get("status")
    addresses = status.get("addresses") if isinstance(status, dict) else None
    if not isinstance(addresses, list):
        return ()
    kept: list[NodeAddress] = []
    for entry in addresses[:MAX_NODE_ADDRESSES]:
        if not isinstance(entry, dict):
            continue
        kind, address = entry.get("type"), entry.get("address")
        if not isinstance(kind, str) or not isinstance(address, str):
            continue
        if len(kind) <= MAX_ADDRESS_LENGTH and len(address) <= MAX_ADDRESS_LENGTH:
            kept.append(NodeAddress(kind, address))
    return tuple(kept)


class ClaimIndex:
    """Comparable address (webhook.addresses) -> sorted names of the Nodes that list it, of any
    type; fed by the Node informer's on_change. Its size is that of the Node cache: at most
    MAX_NODE_ADDRESSES entries per Node."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claimants: dict[str, tuple[str, ...]] = {}
        self._keys_of: dict[str, frozenset[str]] = {}

    def update(self, name: str, addresses: tuple[NodeAddress, ...] | None) -> None:
        keys = frozenset(comparable(a.address) for a in addresses or ())
        with self._lock:
            previous = self._keys_of.pop(name, frozenset())
            if keys:
                self._keys_of[name] = keys
            # A key's tuple is rebuilt only when its claimants change (a Node's status is
            # written often; its addresses rarely), so an answer is a dictionary look-up.
            for key in previous - keys:
                left = tuple(n for n in self._claimants[key] if n != name)
                if left:
                    self._claimants[key] = left
                else:
                    del self._claimants[key]
            for key in keys - previous:
                self._claimants[key] = tuple(sorted((*self._claimants.get(key, ()), name)))

    def claimants(self, key: str) -> tuple[str, ...]:
        with self._lock:
            return self._claimants.get(key, ())


@dataclass(frozen=True, slots=True)
class CSRState:
    """What is stored of a CSR: whose it is, for which signer, and whether it still waits."""

    signer_name: str
    username: str
    pending: bool


def keep_csr_state(raw: dict[str, Any]) -> CSRState:
    spec = raw.get("spec")
    if not isinstance(spec, dict):
        raise ValueError("no spec")
    signer, username = spec.get("signerName"), spec.get("username")
    if not isinstance(signer, str) or not isinstance(username, str):
        raise ValueError("no spec.signerName or spec.username")
    status = raw.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    finished = isinstance(conditions, list) and any(
        isinstance(condition, dict) and condition.get("type") in FINISHED_CONDITIONS
        for condition in conditions
    )
    return CSRState(signer, username, not finished)


class PendingIndex:
    """(signer name, username) -> names of that requester's pending CSRs; fed by on_change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_requester: dict[tuple[str, str], set[str]] = {}
        self._requester_of: dict[str, tuple[str, str]] = {}

    def update(self, name: str, state: CSRState | None) -> None:
        with self._lock:
            previous = self._requester_of.pop(name, None)
            if previous is not None:
                names = self._by_requester[previous]
                names.discard(name)
                if not names:
                    del self._by_requester[previous]
            if state is not None and state.pending:
                requester = (state.signer_name, state.username)
                self._requester_of[name] = requester
                self._by_requester.setdefault(requester, set()).add(name)

    def count(self, signer_name: str, username: str, *, excluding: str) -> int:
        with self._lock:
            names = self._by_requester.get((signer_name, username))
            if not names:
                return 0
            return len(names) - (excluding in names)


@dataclass(frozen=True, slots=True)
class CacheState:
    """One cache as /readyz and the metrics show it."""

    name: str
    synced: bool
    age: float | None  # seconds since the last contact with the API server; None: never
    error: str
    unknown: str  # why its facts are Unknown now, "" when they are known


class WatchedFacts:
    """ClusterFacts from a Node informer (with its ClaimIndex) and a CSR informer (with its
    PendingIndex).

    A cache's facts are Unknown until its first full list, and again whenever it has had no
    contact for longer than `stale_after` seconds (default: the informer's quiet_bound, the
    longest a healthy watch stays silent), until contact resumes.
    """

    def __init__(
        self,
        *,
        nodes: Informer[tuple[NodeAddress, ...]],
        claims: ClaimIndex,
        csrs: Informer[CSRState],
        pending: PendingIndex,
        stale_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nodes = nodes
        self.claims = claims
        self.csrs = csrs
        self.pending = pending
        self._stale_after = stale_after
        self._clock = clock
        self._started = clock()
        self._started_wall = time.time()

    def start(self) -> None:
        self.nodes.start()
        self.csrs.start()

    def stop(self) -> None:
        self.nodes.stop()
        self.csrs.stop()

    def wait_synced(self, timeout: float) -> bool:
        deadline = self._clock() + timeout
        return self.nodes.wait_synced(timeout) and self.csrs.wait_synced(
            max(0.0, deadline - self._clock())
        )

    @property
    def synced(self) -> bool:
        return self.nodes.synced and self.csrs.synced

    def node_addresses(self, name: str) -> NodeAnswer:
        unknown = self._unknown(self.nodes, "Node")
        if unknown:
            return Unknown(unknown)
        return self.nodes.get(name)

    def nodes_with_address(self, key: str) -> ClaimAnswer:
        unknown = self._unknown(self.nodes, "Node")
        if unknown:
            return Unknown(unknown)
        return self.claims.claimants(key)

    def pending_csrs(self, signer_name: str, username: str, *, excluding: str) -> PendingAnswer:
        unknown = self._unknown(self.csrs, "CertificateSigningRequest")
        if unknown:
            return Unknown(unknown)
        return self.pending.count(signer_name, username, excluding=excluding)

    def caches(self) -> list[CacheState]:
        states = []
        for informer, kind in ((self.nodes, "Node"), (self.csrs, "CertificateSigningRequest")):
            contact = informer.last_contact
            states.append(
                CacheState(
                    name=informer.name,
                    synced=informer.synced,
                    age=None if contact is None else max(0.0, self._clock() - contact),
                    error=informer.error,
                    unknown=self._unknown(informer, kind),
                )
            )
        return states

    def _unknown(self, informer: Informer[Any], kind: str) -> str:
        """Why `informer`'s facts cannot be told now; "" when they can."""
        error = informer.error
        because = f" (last error: {error})" if error else ""
        if not informer.synced:
            return (
                f"the {kind} cache has not synced since csr-webhook started "
                f"{_wall(self._started_wall)}{because}"
            )
        contact = informer.last_contact
        bound = self._stale_after if self._stale_after is not None else informer.quiet_bound
        silent = self._clock() - contact if contact is not None else float("inf")
        if silent > bound:
            since = _wall(time.time() - silent)
            return (
                f"the {kind} cache has had no contact with the API server since {since} "
                f"({silent:.0f}s, over its {bound:.0f}s bound){because}"
            )
        return ""


def _wall(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def watch_cluster(
    api: Any,
    *,
    watch_seconds: int = WATCH_SECONDS,
    on_node_change: Callable[[str, tuple[NodeAddress, ...] | None], None] | None = None,
    on_csr_change: Callable[[str, CSRState | None], None] | None = None,
) -> WatchedFacts:
    """WatchedFacts over the API `api` (a kubernetes.client.ApiClient), not yet started. The
    webhook and the approval controller both watch through it; the controller's `on_*_change`
    hear every change after the facts' own indexes have taken it in."""
    pending = PendingIndex()
    claims = ClaimIndex()

    def node_changed(name: str, addresses: tuple[NodeAddress, ...] | None) -> None:
        claims.update(name, addresses)
        if on_node_change is not None:
            on_node_change(name, addresses)

    def csr_changed(name: str, state: CSRState | None) -> None:
        pending.update(name, state)
        if on_csr_change is not None:
            on_csr_change(name, state)

    nodes: Informer[tuple[NodeAddress, ...]] = Informer(
        name="nodes",
        list_call=kubernetes.client.CoreV1Api(api).list_node,
        keep=keep_node_addresses,
        on_change=node_changed,
        watch_seconds=watch_seconds,
    )
    csrs: Informer[CSRState] = Informer(
        name="certificatesigningrequests",
        list_call=kubernetes.client.CertificatesV1Api(api).list_certificate_signing_request,
        keep=keep_csr_state,
        on_change=csr_changed,
        watch_seconds=watch_seconds,
    )
    return WatchedFacts(nodes=nodes, claims=claims, csrs=csrs, pending=pending)
