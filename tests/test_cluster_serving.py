"""The cluster facts in the server: `serve --cluster/--kubeconfig`, /readyz during and after the
caches' sync (bounded by --cluster-sync-grace), the cache metrics, and that a broken API
connection never takes the webhook down. The API is tests/fake_apiserver.py here; the real
control plane is tests/e2e/test_cluster.py."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.fake_apiserver import CSRS, NODES, Collection, serving, write_kubeconfig
from tests.reviews import create_review
from tests.server import RunningServer, free_port, review_over, running_server
from tests.test_operations import readyz, wait_for
from webhook.cli import build_parser, run_serve, settings_from_args
from webhook.cluster.facts import WatchedFacts, watch_cluster
from webhook.errors import UsageError
from webhook.policy.loader import load_policies
from webhook.serving.app import create_app
from webhook.serving.cluster import ClusterLink
from webhook.serving.devcert import generate_dev_certificate
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings


@contextmanager
def fake_cluster(*, node_list_status: list[int] | None = None) -> Iterator[tuple[str, Collection]]:
    nodes, csrs = Collection(), Collection()
    nodes.put(
        "worker-1",
        {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}},
        notify=False,
    )
    nodes.list_status.extend(node_list_status or [])
    with serving({NODES: nodes, CSRS: csrs}) as url:
        yield url, nodes


@contextmanager
def watched_facts(url: str) -> Iterator[WatchedFacts]:
    api: Any = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url))
    facts = watch_cluster(api)
    facts.start()
    try:
        yield facts
    finally:
        facts.stop()
        api.close()


def client_for(tmp_path: Path, link: ClusterLink | None) -> FlaskClient:
    directory = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    result = load_policies([directory])
    assert result.policy_set is not None
    app = create_app(
        Settings(policies=directory), PolicyStore(directory, result.policy_set), None, link
    )
    return app.test_client()


def test_readyz_without_a_cluster_is_ready_and_says_there_is_none(tmp_path: Path) -> None:
    answer = client_for(tmp_path, None).get("/readyz")
    assert answer.status_code == 200
    cluster = answer.get_json()["cluster"]
    assert cluster["connected"] is False
    assert "no cluster connection" in cluster["reason"]


def test_readyz_waits_for_the_caches_within_the_grace_then_serves_unknown_facts(
    tmp_path: Path,
) -> None:
    with fake_cluster(node_list_status=[503] * 1000) as (url, _), watched_facts(url) as facts:
        waiting = client_for(tmp_path / "a", ClusterLink(facts=facts, watched=facts, grace=600))
        wait_for(lambda: facts.csrs.synced and facts.nodes.error != "")
        answer = waiting.get("/readyz")
        assert answer.status_code == 503
        body = answer.get_json()
        assert body["status"] == "waiting for the cluster caches to sync"
        nodes = body["cluster"]["caches"]["nodes"]
        assert nodes["synced"] is False
        assert "HTTP 503" in nodes["error"]
        assert "the Node cache has not synced" in nodes["unknown"]
        assert body["cluster"]["caches"]["certificatesigningrequests"]["synced"] is True

        past_grace = client_for(tmp_path / "b", ClusterLink(facts=facts, watched=facts, grace=0))
        answer = past_grace.get("/readyz")
        assert answer.status_code == 200
        assert (
            "the Node cache has not synced"
            in answer.get_json()["cluster"]["caches"]["nodes"]["unknown"]
        )
        review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
        decided = past_grace.post("/validate", json=review)
        assert decided.status_code == 200  # a rule needing no Node is still decided
        assert decided.get_json()["response"]["allowed"] is True


def test_readyz_is_ready_once_synced_and_shows_each_cache(tmp_path: Path) -> None:
    with fake_cluster() as (url, _), watched_facts(url) as facts:
        assert facts.wait_synced(10)
        answer = client_for(tmp_path, ClusterLink(facts=facts, watched=facts, grace=600)).get(
            "/readyz"
        )
        assert answer.status_code == 200
        caches = answer.get_json()["cluster"]["caches"]
        assert set(caches) == {"nodes", "certificatesigningrequests"}
        for cache in caches.values():
            assert cache["synced"] is True
            assert cache["unknown"] == ""
            assert 0 <= cache["ageSeconds"] < 60


# ---- a real `csr-webhook serve` -------------------------------------------------------------


def _metrics(server: RunningServer) -> dict[tuple[str, str, str], float]:
    connection = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("csr_webhook_cluster_cache"):
                found[(sample.name, sample.labels["cache"], sample.labels["pid"])] = sample.value
    return found


def _status(server: RunningServer) -> int:
    connection = server.connection()
    connection.request("GET", "/readyz")
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer.status


def _synced(server: RunningServer) -> dict[tuple[str, str, str], float]:
    return {k: v for k, v in _metrics(server).items() if k[0] == "csr_webhook_cluster_cache_synced"}


@pytest.mark.server
def test_serve_with_a_kubeconfig_syncs_every_worker_and_exports_it(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    with fake_cluster() as (url, nodes):
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        with running_server(tmp_path, policies, "--kubeconfig", str(kubeconfig)) as server:
            # Two workers, each with its own watches of both kinds, each in the metrics.
            wait_for(lambda: nodes.watch_count() == 2 and len(_synced(server)) == 4)
            wait_for(lambda: set(_synced(server).values()) == {1.0})
            for _ in range(6):  # whichever worker answers
                caches = readyz(server)["cluster"]["caches"]
                assert {name: cache["synced"] for name, cache in caches.items()} == {
                    "nodes": True,
                    "certificatesigningrequests": True,
                }
            samples = _metrics(server)
            ages = [
                v for k, v in samples.items() if k[0] == "csr_webhook_cluster_cache_age_seconds"
            ]
            assert len(ages) == 4 and all(0 <= age < 60 for age in ages)
            review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
            connection = server.connection()
            assert review_over(connection, review)["body"]["response"]["allowed"] is True
            connection.close()


@pytest.mark.server
def test_an_unreachable_api_holds_readyz_for_the_grace_only(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    with running_server(
        tmp_path, policies, "--kubeconfig", str(kubeconfig), "--cluster-sync-grace", "1"
    ) as server:
        # Each worker holds /readyz at 503 for one second after its start, then serves.
        wait_for(lambda: {_status(server) for _ in range(6)} == {200})
        body = readyz(server)
        assert body["status"] == "ready"
        nodes = body["cluster"]["caches"]["nodes"]
        assert nodes["synced"] is False
        assert "the Node cache has not synced" in nodes["unknown"]
        assert nodes["error"]
        review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
        connection = server.connection()
        assert review_over(connection, review)["status"] == 200
        connection.close()
        assert server.process.poll() is None


def _serve_in_process(tmp_path: Path, *args: str) -> None:
    """`csr-webhook serve ARGS` up to where it would start gunicorn: run_serve with TLS files,
    without main()'s process-wide logging set-up or the development certificate's signal
    handler."""
    (tmp_path / "tls").mkdir()
    cert, key = generate_dev_certificate(tmp_path / "tls")
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    run_serve(settings_from_args(build_parser().parse_args(["serve", *tls, *args])))


def test_serve_refuses_a_kubeconfig_it_cannot_read(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    missing = tmp_path / "missing-kubeconfig"
    with pytest.raises(UsageError, match=f"cannot read kubeconfig {missing}: No such file"):
        _serve_in_process(tmp_path, "--policies", str(policies), "--kubeconfig", str(missing))


def test_serve_cluster_on_needs_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("CSR_WEBHOOK_KUBECONFIG", raising=False)
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    with pytest.raises(UsageError, match="no cluster credentials: give --kubeconfig FILE"):
        _serve_in_process(tmp_path, "--policies", str(policies), "--cluster", "on")


def test_readyz_body_is_json_with_the_cluster_block(tmp_path: Path) -> None:
    body = json.loads(client_for(tmp_path, ClusterLink()).get("/readyz").data)
    assert list(body) == ["status", "policies", "policySetHash", "lastReloadError", "cluster"]
