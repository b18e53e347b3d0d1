"""The cluster facts against the real control plane: the webhook's caches sync with the token of
the shipped ServiceAccount under the shipped RBAC (and that RBAC grants no more), /readyz and
/metrics say so, and a Node created, changed and deleted, and a CSR's pending state, are seen
through the API as they happen."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.kube import REQUESTER, client_csr, create_as_requester
from tests.e2e.webhook import Webhook
from webhook.cluster.client import connect
from webhook.cluster.facts import WatchedFacts, watch_cluster
from webhook.facts import NodeAddress

pytestmark = pytest.mark.e2e

ACCOUNT = "system:serviceaccount:csr-webhook:csr-webhook"
CACHES = {"nodes", "certificatesigningrequests"}
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"


@pytest.fixture
def facts(webhook: Webhook) -> Iterator[WatchedFacts]:
    """The caches as a webhook worker runs them, with the webhook's own kubeconfig."""
    assert webhook.kubeconfig is not None
    api: Any = connect(str(webhook.kubeconfig))
    watched = watch_cluster(api)
    watched.start()
    try:
        assert watched.wait_synced(30), [cache.error for cache in watched.caches()]
        yield watched
    finally:
        watched.stop()
        api.close()


def test_every_worker_syncs_its_caches_and_readyz_and_metrics_say_so(
    cluster: Cluster, webhook: Webhook
) -> None:
    for _ in range(8):  # either worker answers
        block = webhook.readyz()["cluster"]
        assert block["connected"] is True
        assert set(block["caches"]) == CACHES
        for cache in block["caches"].values():
            assert (cache["synced"], cache["error"], cache["unknown"]) == (True, "", "")
    wait_for(
        "both workers' caches synced in the metrics",
        lambda: webhook.metric("csr_webhook_cluster_cache_synced") == 4,
        30,
        webhook.process,
    )


def test_the_shipped_rbac_grants_list_and_watch_of_nodes_and_csrs_only(cluster: Cluster) -> None:
    def can(verb: str, resource: str) -> bool:
        done = cluster.kubectl("auth", "can-i", verb, resource, "--as", ACCOUNT)
        return done.stdout.strip() == "yes"

    for resource in ("nodes", "certificatesigningrequests.certificates.k8s.io"):
        assert can("list", resource) and can("watch", resource)
        assert not can("get", resource)
        assert not can("update", resource) and not can("delete", resource)
    assert not can("list", "secrets")
    assert not can("update", "certificatesigningrequests.certificates.k8s.io/approval")


def _node(name: str, address: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"e2e": "cluster-facts"}},
        "status": {"addresses": [{"type": "InternalIP", "address": address}]},
    }


def test_a_node_created_changed_and_deleted_is_seen(cluster: Cluster, facts: WatchedFacts) -> None:
    name = "e2e-facts-node"
    assert facts.node_addresses(name) is None
    # A Node's status may be set when it is created; later only through its status subresource.
    cluster.kubectl_ok("create", "-f", "-", input=json.dumps(_node(name, "10.1.0.5")))
    try:
        wait_for(
            "the new Node in the cache",
            lambda: facts.node_addresses(name) == (NodeAddress("InternalIP", "10.1.0.5"),),
            30,
            *cluster.processes,
        )
        patch = {"status": {"addresses": [{"type": "InternalIP", "address": "10.1.0.9"}]}}
        cluster.kubectl_ok(
            "patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(patch)
        )
        wait_for(
            "the Node's new address in the cache",
            lambda: facts.node_addresses(name) == (NodeAddress("InternalIP", "10.1.0.9"),),
            30,
            *cluster.processes,
        )
    finally:
        cluster.kubectl_ok("delete", "node", name, "--wait=false")
    wait_for("the Node gone from the cache", lambda: facts.node_addresses(name) is None, 30)
    assert [cache.unknown for cache in facts.caches()] == ["", ""]


def test_a_csr_is_pending_until_it_is_approved_or_denied(
    cluster: Cluster, webhook: Webhook, requester_rbac: None, facts: WatchedFacts
) -> None:
    user = "alice"  # the requester kubectl impersonates (REQUESTER)
    assert REQUESTER[1] == user
    before = facts.pending_csrs(CLIENT_SIGNER, user, excluding="")
    assert isinstance(before, int)
    names = ["e2e-facts-pending-1", "e2e-facts-pending-2"]
    for name in names:
        manifest, _ = client_csr(name, f"facts-{name[-1]}")
        done = create_as_requester(cluster, manifest)
        assert done.returncode == 0, done.stderr
    try:
        wait_for(
            "both CSRs pending in the cache",
            lambda: facts.pending_csrs(CLIENT_SIGNER, user, excluding="") == before + 2,
            30,
        )
        assert facts.pending_csrs(CLIENT_SIGNER, user, excluding=names[0]) == before + 1
        assert facts.pending_csrs("example.com/other", user, excluding="") == 0
        cluster.kubectl_ok("certificate", "approve", names[0])
        cluster.kubectl_ok("certificate", "deny", names[1])
        wait_for(
            "neither CSR pending once approved and denied",
            lambda: facts.pending_csrs(CLIENT_SIGNER, user, excluding="") == before,
            30,
        )
    finally:
        cluster.kubectl("delete", "csr", *names)
