"""Metrics (docs/server.md §5): exact counts across workers, bounded labels, buckets, server facts,
and the shipped dashboard and alerts referring only to metrics that exist."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, MakeApp, write_policies
from tests.reviews import create_review
from tests.server import RunningServer, review_over, running_server, worker_pids
from webhook import __version__
from webhook.policy.loader import load_policies
from webhook.serving.app import create_app
from webhook.serving.metrics import ReviewMetrics, ServerState, build_master_registry
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings

REPO = Path(__file__).resolve().parent.parent
ALLOWED = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")


def scrape(server: RunningServer) -> dict[str, list[tuple[dict[str, str], float]]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(k) == v for k, v in labels.items())
    )


def fresh_connection_review(server: RunningServer, review: dict[str, object]) -> int:
    connection = server.connection()
    try:
        return int(review_over(connection, review)["status"])
    finally:
        connection.close()


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})


@pytest.mark.server
def test_counts_are_exact_across_two_workers_and_survive_a_killed_worker(
    tmp_path: Path, policies: Path
) -> None:
    with running_server(tmp_path, policies, "--workers", "2") as server:
        for _ in range(40):
            assert fresh_connection_review(server, ALLOWED) == 200
        samples = scrape(server)
        assert total(samples, "csr_webhook_admission_requests_total", webhook="validate") == 40
        assert (
            total(samples, "csr_webhook_admission_duration_seconds_count", webhook="validate") == 40
        )
        workers = worker_pids(server)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            alive = worker_pids(server)
            if len(alive) == 2 and workers[0] not in alive:
                break
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
        for _ in range(10):
            assert fresh_connection_review(server, ALLOWED) == 200
        samples = scrape(server)
    assert total(samples, "csr_webhook_admission_requests_total", decision="allowed") == 50


@pytest.mark.server
def test_server_facts_and_bounded_labels(tmp_path: Path, policies: Path) -> None:
    secrets = [f"signer-{uuid.uuid4().hex}.example/x" for _ in range(5)]
    users = [f"user-{uuid.uuid4().hex}" for _ in range(5)]
    resources = [f"resource-{uuid.uuid4().hex}" for _ in range(5)]
    with running_server(tmp_path, policies) as server:
        for signer, user, resource in zip(secrets, users, resources, strict=True):
            misregistered = create_review(build_csr(common_name=user), signer_name=signer)
            misregistered["request"]["resource"]["resource"] = resource
            fresh_connection_review(server, misregistered)
            review = create_review(build_csr(common_name=user), signer_name=signer, requester=user)
            review["request"]["operation"] = f"OP-{user}"
            fresh_connection_review(server, review)
            fresh_connection_review(
                server, create_review(b"garbage", signer_name=signer, requester=user)
            )
        connection = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
        connection.request("GET", "/metrics")
        exposition = connection.getresponse().read().decode()
        samples = scrape(server)
        certificate = x509.load_pem_x509_certificate(server.ca_file.read_bytes())
    for secret in secrets + users + resources:
        assert secret not in exposition
    assert total(samples, "csr_webhook_admission_requests_total", resource="other") == 5
    assert (
        total(
            samples, "csr_webhook_admission_requests_total", policy="unmatched", decision="denied"
        )
        == 5
    )
    assert total(samples, "csr_webhook_admission_requests_total", operation="other") == 5
    assert total(samples, "csr_webhook_violations_total", code="signer.unmatched") == 5
    buckets = {
        labels["le"] for labels, _ in samples["csr_webhook_admission_duration_seconds_bucket"]
    }
    assert {"0.0005", "0.005", "0.025", "0.1", "0.5", "1.0", "2.5", "+Inf"} <= buckets
    assert samples["csr_webhook_build_info"] == [({"version": __version__}, 1.0)]
    assert samples["csr_webhook_policies"] == [({}, 1.0)]
    assert total(samples, "csr_webhook_policy_reloads_total", result="failure") == 0
    [(_, not_after)] = samples["csr_webhook_tls_certificate_not_after_timestamp_seconds"]
    assert not_after == certificate.not_valid_after_utc.timestamp()
    [(_, reloaded)] = samples["csr_webhook_policy_last_reload_success_timestamp_seconds"]
    assert time.time() - 120 < reloaded <= time.time()


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.parent / f".{path.name}.tmp"
    temporary.write_text(text)
    os.replace(temporary, path)


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


@pytest.mark.server
def test_policy_directory_pending_stays_1_while_refused_content_stays(
    tmp_path: Path, policies: Path
) -> None:
    """The failure counter moves once per change, so an alert on its increase clears while
    the broken ConfigMap stays; the gauge stays 1 until the directory is in force again."""
    interval = 0.2
    file = policies / "example.yaml"

    def pending(server: RunningServer) -> float:
        [(_, value)] = scrape(server)["csr_webhook_policy_directory_pending"]
        return value

    def failures(server: RunningServer) -> float:
        return total(scrape(server), "csr_webhook_policy_reloads_total", result="failure")

    with running_server(tmp_path, policies, "--reload-interval", str(interval)) as server:
        assert pending(server) == 0
        _write_atomically(file, BASIC_POLICY + "  enforcement: [\n")
        _wait_for(lambda: failures(server) == 1)
        seen = []
        for _ in range(10):  # 10 scrapes over at least 10 polls of the unchanged directory
            seen.append(pending(server))
            time.sleep(interval)
        assert seen == [1.0] * 10
        assert failures(server) == 1  # counted once: what the old alert keyed on

        # Valid YAML, still refused: it would leave example.com/signer without its policy.
        _write_atomically(file, BASIC_POLICY.replace("example.com/signer", "example.com/other"))
        _wait_for(lambda: failures(server) == 2)
        assert pending(server) == 1

        _write_atomically(file, BASIC_POLICY)  # back to the content in force
        _wait_for(lambda: pending(server) == 0)
        successes = total(scrape(server), "csr_webhook_policy_reloads_total", result="success")
        assert (successes, failures(server)) == (1, 2)

        wider = BASIC_POLICY.replace(
            '["example.com/signer"]', '["example.com/signer", "example.com/other"]'
        )
        _write_atomically(file, BASIC_POLICY + "  enforcement: [\n")
        _wait_for(lambda: pending(server) == 1)
        _write_atomically(file, wider)  # fixed by a new valid set
        _wait_for(lambda: pending(server) == 0)
        samples = scrape(server)
    assert total(samples, "csr_webhook_policy_reloads_total", result="success") == 2
    assert total(samples, "csr_webhook_policy_reloads_total", result="failure") == 3


@pytest.mark.server
def test_decision_log_is_one_json_line_per_review_without_key_material(
    tmp_path: Path, policies: Path
) -> None:
    pem = build_csr(common_name="alice")
    review = create_review(pem, signer_name="example.com/signer")
    with running_server(tmp_path, policies) as server:
        connection = server.connection()
        for _ in range(3):
            review_over(connection, review)
        review_over(connection, create_review(b"garbage", signer_name="example.com/signer"))
        connection.close()
        time.sleep(0.3)
        log = server.log()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(records) == 4
    assert {r["uid"] for r in records} == {review["request"]["uid"]} | {records[3]["uid"]}
    assert [r["decision"] for r in records] == ["allowed", "allowed", "allowed", "denied"]
    for key in (
        "time",
        "uid",
        "name",
        "signer",
        "operation",
        "subresource",
        "requester",
        "decision",
        "policy",
        "rule",
        "violations",
        "durationMs",
    ):
        assert key in records[0]
    assert records[3]["violations"] == ["csr.pem_missing"]
    body = review["request"]["object"]["spec"]["request"]
    assert "BEGIN" not in log and body[:40] not in log and pem.decode().splitlines()[1] not in log


def test_review_metrics_count_each_outcome(make_app: MakeApp) -> None:
    registry = CollectorRegistry()
    directory = write_policies(Path(make_app().extensions["csr_webhook.settings"].policies))
    result = load_policies([directory])
    assert result.policy_set is not None
    app = create_app(
        Settings(policies=directory),
        PolicyStore(directory, result.policy_set),
        ReviewMetrics(registry),
    )
    client = app.test_client()
    client.post("/validate", json=ALLOWED)
    client.post("/validate", json=create_review(b"junk", signer_name="example.com/signer"))
    client.post("/validate", data=b"{", content_type="application/json")
    value = registry.get_sample_value
    labels = {
        "webhook": "validate",
        "resource": "certificatesigningrequests",
        "operation": "CREATE",
        "subresource": "",
        "policy": "example",
    }
    assert value("csr_webhook_admission_requests_total", {**labels, "decision": "allowed"}) == 1
    assert value("csr_webhook_admission_requests_total", {**labels, "decision": "denied"}) == 1
    assert (
        value(
            "csr_webhook_admission_requests_total",
            {
                "webhook": "validate",
                "resource": "other",
                "operation": "other",
                "subresource": "other",
                "policy": "none",
                "decision": "error",
            },
        )
        == 1
    )
    assert (
        value(
            "csr_webhook_violations_total",
            {"policy": "example", "rule": "none", "code": "csr.pem_missing"},
        )
        == 1
    )
    assert b"csr_webhook_admission_duration_seconds_bucket" in generate_latest(registry)


def _metric_names_in(expression: str) -> set[str]:
    return set(re.findall(r"\bcsr_webhook_[a-z0-9_]+", expression))


@pytest.mark.server
def test_dashboard_and_alerts_use_only_metrics_the_server_exports(
    tmp_path: Path, policies: Path
) -> None:
    monitoring = REPO / "manifests" / "monitoring"
    dashboard = json.loads((monitoring / "dashboard.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((monitoring / "prometheusrule.yaml").read_text())
    alerts = [r for group in rules["spec"]["groups"] for r in group["rules"]]
    expressions += [r["expr"] for r in alerts]
    used = set().union(*(_metric_names_in(e) for e in expressions))
    assert len(used) >= 8
    with running_server(tmp_path, policies) as server:
        fresh_connection_review(server, ALLOWED)
        fresh_connection_review(server, create_review(b"garbage", signer_name="example.com/signer"))
        samples = scrape(server)
    missing = used - set(samples)
    assert not missing, f"dashboard/alerts use metrics the server does not export: {missing}"
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Decisions by policy and decision",
        "Top violation codes (1h)",
        "Admission latency p50 / p99",
        "Policy reloads",
        "Policy directory in force",
        "Serving certificate expires in",
    } <= titles
    [reload_alert] = [a for a in alerts if a["alert"] == "CSRWebhookPolicyReloadFailing"]
    # Firing for as long as the refused content stays, not for a window after the change.
    assert _metric_names_in(reload_alert["expr"]) == {"csr_webhook_policy_directory_pending"}
    assert {a["alert"] for a in alerts} == {
        "CSRWebhookErrors",
        "CSRWebhookPolicyReloadFailing",
        "CSRWebhookCertificateExpiringSoon",
        "CSRWebhookLatencyHigh",
        "CSRWebhookDenialSpike",
    }


def test_a_worker_metrics_file_still_being_created_does_not_fail_the_scrape(
    tmp_path: Path,
) -> None:
    """A worker creates its multiprocess file empty and sizes it a moment later; a master scrape
    in that instant failed to unpack it and answered 500 (seen under `make test-min` on a
    loaded machine). An empty file has no values yet: the scrape passes it over."""
    directory = tmp_path / "multiprocess"
    directory.mkdir()
    (directory / "counter_4242.db").write_bytes(b"")
    (directory / "histogram_4242.db").write_bytes(b"\0" * 3)
    registry = build_master_registry(ServerState(), str(directory))
    exposition = generate_latest(registry).decode()
    names = {family.name for family in text_string_to_metric_families(exposition)}
    assert "csr_webhook_build_info" in names
