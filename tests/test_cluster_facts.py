"""webhook.cluster.facts: WatchedFacts over a list/watch server (tests/fake_apiserver.py)
through the real kubernetes client, and the credentials connect() accepts or refuses.
Facts are Unknown until a cache syncs and again once it has lost the API server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from tests.builders import build_csr
from tests.fake_apiserver import CSRS, NODES, Collection, serving, write_kubeconfig
from tests.test_operations import wait_for
from webhook.cluster.client import connect
from webhook.cluster.facts import (
    MAX_NODE_ADDRESSES,
    ClaimIndex,
    PendingIndex,
    WatchedFacts,
    keep_csr_state,
    keep_node_addresses,
    watch_cluster,
)
from webhook.cluster.informer import Informer
from webhook.errors import CredentialsError
from webhook.facts import NodeAddress, Unknown

SIGNER = "example.com/signer"


def node(*addresses: tuple[str, str]) -> dict[str, Any]:
    return {
        "kind": "Node",
        "spec": {"podCIDR": "10.0.0.0/24"},
        "status": {"addresses": [{"type": kind, "address": value} for kind, value in addresses]},
    }


def csr(username: str, *conditions: str, signer: str = SIGNER) -> dict[str, Any]:
    import base64  # noqa: PLC0415

    request = base64.b64encode(build_csr(common_name=username)).decode()
    return {
        "kind": "CertificateSigningRequest",
        "spec": {"request": request, "signerName": signer, "username": username, "usages": []},
        "status": {"conditions": [{"type": kind, "status": "True"} for kind in conditions]},
    }


@contextmanager
def watched(
    nodes: Collection, csrs: Collection, *, list_status: list[int] | None = None
) -> Iterator[WatchedFacts]:
    nodes.list_status.extend(list_status or [])
    with serving({NODES: nodes, CSRS: csrs}) as url:
        api: Any = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url))
        facts = watch_cluster(api)
        facts.start()
        try:
            yield facts
        finally:
            facts.stop()
            api.close()


def test_node_addresses_and_pending_counts_follow_the_api() -> None:
    nodes, csrs = Collection(), Collection()
    nodes.put("worker-1", node(("InternalIP", "10.0.0.5"), ("Hostname", "worker-1")), notify=False)
    csrs.put("csr-a", csr("system:node:worker-1"), notify=False)
    csrs.put("csr-b", csr("system:node:worker-1", "Approved"), notify=False)
    with watched(nodes, csrs) as facts:
        assert facts.wait_synced(10)
        assert facts.node_addresses("worker-1") == (
            NodeAddress("InternalIP", "10.0.0.5"),
            NodeAddress("Hostname", "worker-1"),
        )
        assert facts.node_addresses("worker-2") is None
        user = "system:node:worker-1"
        assert facts.pending_csrs(SIGNER, user, excluding="") == 1
        assert facts.pending_csrs(SIGNER, user, excluding="csr-a") == 0
        assert facts.pending_csrs("other.example/signer", user, excluding="") == 0

        nodes.put("worker-2", node(("InternalIP", "10.0.0.6")))
        nodes.put("worker-1", node(("InternalIP", "10.0.0.9")))
        csrs.put("csr-c", csr(user))
        wait_for(lambda: facts.pending_csrs(SIGNER, user, excluding="") == 2)
        wait_for(
            lambda: facts.node_addresses("worker-2") == (NodeAddress("InternalIP", "10.0.0.6"),)
        )
        assert facts.node_addresses("worker-1") == (NodeAddress("InternalIP", "10.0.0.9"),)

        csrs.put("csr-a", csr(user, "Denied"))
        csrs.delete("csr-c")
        nodes.delete("worker-2")
        wait_for(lambda: facts.pending_csrs(SIGNER, user, excluding="") == 0)
        wait_for(lambda: facts.node_addresses("worker-2") is None)
        assert [cache.unknown for cache in facts.caches()] == ["", ""]


def test_the_nodes_listing_an_address_follow_the_api() -> None:
    nodes, csrs = Collection(), Collection()
    nodes.put("worker-1", node(("InternalIP", "10.0.0.5"), ("Hostname", "worker-1")), notify=False)
    nodes.put("worker-2", node(("InternalIP", "10.0.0.6"), ("Hostname", "Worker-2.")), notify=False)
    with watched(nodes, csrs) as facts:
        assert facts.wait_synced(10)
        # Complete as soon as the cache is synced: no window where nobody claims anything.
        assert facts.nodes_with_address("ip:10.0.0.5") == ("worker-1",)
        assert facts.nodes_with_address("dns:worker-2") == ("worker-2",)  # comparable form
        assert facts.nodes_with_address("ip:10.0.0.7") == ()

        # worker-2 adds worker-1's address, as ExternalIP: any type claims it.
        nodes.put("worker-2", node(("InternalIP", "10.0.0.6"), ("ExternalIP", "10.0.0.5")))
        wait_for(lambda: facts.nodes_with_address("ip:10.0.0.5") == ("worker-1", "worker-2"))
        assert facts.nodes_with_address("dns:worker-2") == ()  # its Hostname is gone

        # A third Node with the same address; then worker-1 changes its own.
        nodes.put("worker-0", node(("InternalIP", "::ffff:10.0.0.5")))
        three = ("worker-0", "worker-1", "worker-2")
        wait_for(lambda: facts.nodes_with_address("ip:10.0.0.5") == three)
        nodes.put("worker-1", node(("InternalIP", "10.0.0.9")))
        wait_for(lambda: facts.nodes_with_address("ip:10.0.0.9") == ("worker-1",))
        assert facts.nodes_with_address("ip:10.0.0.5") == ("worker-0", "worker-2")

        # The address leaves one Node, then the other Node is deleted.
        nodes.put("worker-2", node(("InternalIP", "10.0.0.6")))
        wait_for(lambda: facts.nodes_with_address("ip:10.0.0.5") == ("worker-0",))
        nodes.delete("worker-0")
        wait_for(lambda: facts.nodes_with_address("ip:10.0.0.5") == ())
        assert facts.nodes_with_address("ip:10.0.0.6") == ("worker-2",)
        assert facts.claims.claimants("ip:10.0.0.5") == ()


def test_the_claim_index_holds_only_the_nodes_current_addresses() -> None:
    index = ClaimIndex()
    index.update("a", (NodeAddress("InternalIP", "10.0.0.5"), NodeAddress("Hostname", "a")))
    index.update("b", (NodeAddress("Hostname", "A."), NodeAddress("InternalIP", "10.0.0.5")))
    assert index.claimants("ip:10.0.0.5") == ("a", "b")
    assert index.claimants("dns:a") == ("a", "b")
    index.update("a", (NodeAddress("InternalIP", "10.0.0.5"),) * 3)  # the same value thrice
    assert index.claimants("dns:a") == ("b",)
    index.update("b", None)
    index.update("a", ())
    assert (index.claimants("ip:10.0.0.5"), index.claimants("dns:a")) == ((), ())
    assert (index._claimants, index._keys_of) == ({}, {})  # nothing left behind


def test_facts_are_unknown_until_the_caches_sync_and_say_why() -> None:
    nodes, csrs = Collection(), Collection()
    nodes.put("worker-1", node(("InternalIP", "10.0.0.5")), notify=False)
    with watched(nodes, csrs, list_status=[403] * 1000) as facts:
        wait_for(lambda: facts.caches()[0].error != "")
        answer = facts.node_addresses("worker-1")
        assert isinstance(answer, Unknown)
        assert "the Node cache has not synced since csr-webhook started" in answer.reason
        assert "HTTP 403" in answer.reason
        assert isinstance(facts.nodes_with_address("ip:10.0.0.5"), Unknown)
        wait_for(lambda: facts.csrs.synced)
        assert facts.pending_csrs(SIGNER, "alice", excluding="") == 0  # its own cache synced
        [nodes_state, csrs_state] = facts.caches()
        assert (nodes_state.synced, csrs_state.synced) == (False, True)
        assert nodes_state.unknown and not csrs_state.unknown


def test_facts_become_unknown_when_the_api_server_is_gone_too_long() -> None:
    nodes, csrs = Collection(), Collection()
    nodes.put("worker-1", node(("InternalIP", "10.0.0.5")), notify=False)
    with serving({NODES: nodes, CSRS: csrs}) as url:
        api: Any = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url))
        pending = PendingIndex()
        claims = ClaimIndex()
        v1 = kubernetes.client.CoreV1Api(api)
        certificates = kubernetes.client.CertificatesV1Api(api)
        facts = WatchedFacts(
            nodes=Informer(
                name="nodes",
                list_call=v1.list_node,
                keep=keep_node_addresses,
                on_change=claims.update,
            ),
            claims=claims,
            csrs=Informer(
                name="certificatesigningrequests",
                list_call=certificates.list_certificate_signing_request,
                keep=keep_csr_state,
                on_change=pending.update,
            ),
            pending=pending,
            stale_after=1.0,
        )
        facts.start()
        assert facts.wait_synced(10)
        assert facts.node_addresses("worker-1") == (NodeAddress("InternalIP", "10.0.0.5"),)
    # The server is gone: its watches ended, and every new request is refused.
    try:
        wait_for(lambda: isinstance(facts.node_addresses("worker-1"), Unknown))
        answer = facts.node_addresses("worker-1")
        assert isinstance(answer, Unknown)
        assert "the Node cache has had no contact with the API server since" in answer.reason
        assert "over its 1s bound" in answer.reason
        claimed = facts.nodes_with_address("ip:10.0.0.5")
        assert isinstance(claimed, Unknown) and claimed.reason == answer.reason
        # The CSR cache lost its server at about the same time; its own silence is timed.
        wait_for(lambda: isinstance(facts.pending_csrs(SIGNER, "alice", excluding=""), Unknown))
    finally:
        facts.stop()
        api.close()


def test_keep_stores_only_addresses_bounded_and_typed() -> None:
    many = [("InternalIP", f"10.0.{i // 250}.{i % 250}") for i in range(MAX_NODE_ADDRESSES + 8)]
    raw = node(*many)
    raw["status"]["addresses"].insert(0, {"type": "InternalIP", "address": 7})
    raw["status"]["addresses"].insert(0, {"type": "Hostname", "address": "x" * 300})
    kept = keep_node_addresses(raw)
    assert len(kept) == MAX_NODE_ADDRESSES - 2
    assert all(isinstance(a.address, str) and len(a.address) < 300 for a in kept)
    assert keep_node_addresses({"status": "broken"}) == ()


def test_a_csr_is_pending_until_approved_denied_or_failed() -> None:
    for finished in ("Approved", "Denied", "Failed"):
        assert not keep_csr_state(csr("alice", finished)).pending
    assert keep_csr_state(csr("alice")).pending
    assert keep_csr_state(csr("alice", "SomethingElse")).pending
    with pytest.raises(ValueError, match="signerName"):
        keep_csr_state({"spec": {"username": "alice"}})


# ---- connect(): which credentials ------------------------------------------------------------


def test_connect_with_a_kubeconfig_reaches_its_server(tmp_path: Path) -> None:
    nodes = Collection()
    nodes.put("worker-1", node(("InternalIP", "10.0.0.5")), notify=False)
    with serving({NODES: nodes}) as url:
        api = connect(str(write_kubeconfig(tmp_path / "kubeconfig", url)))
        core: Any = kubernetes.client.CoreV1Api(api)
        answer = core.list_node(_preload_content=False)
        assert b"worker-1" in answer.data
        api.close()


def test_connect_names_a_kubeconfig_it_cannot_use(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(CredentialsError, match=f"cannot read kubeconfig {missing}: No such file"):
        connect(str(missing))
    garbage = tmp_path / "garbage"
    garbage.write_text("apiVersion: v1\nclusters: [[[\n")
    with pytest.raises(CredentialsError, match=f"kubeconfig {garbage} cannot be used"):
        connect(str(garbage))
    empty = tmp_path / "empty"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(CredentialsError, match=f"kubeconfig {empty} cannot be used"):
        connect(str(empty))


def test_connect_without_kubeconfig_needs_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(CredentialsError, match="give --kubeconfig FILE, or run in a pod"):
        connect(None)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    if Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
        pytest.skip("this machine has a service account")
    with pytest.raises(CredentialsError, match=r"in-cluster credentials .* cannot be used"):
        connect(None)
