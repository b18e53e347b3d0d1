"""The API server's own view of our latency (apiserver_admission_webhook_admission_duration_seconds).

For this test the webhook configurations point straight at csr-webhook (no recording proxy in
between), so the figures are the product's alone; the whole run's figures (through the proxy)
are printed in the summary at the end of `make e2e`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.conftest import SUMMARY
from tests.e2e.kube import client_csr, create_as_requester
from tests.e2e.latency import OUR_WEBHOOKS, scrape_histograms, summarize
from tests.e2e.webhook import Webhook, register

pytestmark = pytest.mark.e2e
SAMPLES = 30  # CSR creations, each one call of each webhook


@pytest.fixture
def direct(cluster: Cluster, webhook: Webhook) -> Iterator[None]:
    register(cluster, webhook, port=webhook.port)
    try:
        yield
    finally:
        register(cluster, webhook)


def test_apiserver_measures_both_of_our_webhooks_directly(
    cluster: Cluster, webhook: Webhook, requester_rbac: None, direct: None
) -> None:
    # The API server picks the changed configurations up through its informer: wait until a
    # (dry-run) creation no longer passes through the recording proxy.
    def bypasses_proxy() -> bool:
        mark = webhook.recorder.mark()
        probe, _ = client_csr("e2e-latency-probe", "latency-probe")
        assert create_as_requester(cluster, probe, "--dry-run=server").returncode == 0
        return webhook.recorder.mark() == mark

    wait_for("the API server calling csr-webhook directly", bypasses_proxy, 30, webhook.process)

    before = scrape_histograms(cluster)
    for index in range(SAMPLES):
        manifest, _ = client_csr(f"e2e-latency-{index}", f"latency-{index}")
        assert create_as_requester(cluster, manifest).returncode == 0
    after = scrape_histograms(cluster)
    rows = summarize(
        {
            name: after[name].minus(before.get(name, after[name].minus(after[name])))
            for name in after
        },
        label=f"{SAMPLES} CSR creations, direct",
    )
    assert {row.webhook for row in rows} == set(OUR_WEBHOOKS)
    for row in rows:
        assert row.count == SAMPLES
        assert 0 < row.p50_bucket <= row.p99_bucket
    SUMMARY["direct"] = rows
    assert all(
        cluster.kubectl("get", "csr", f"e2e-latency-{index}").returncode == 0
        for index in range(SAMPLES)
    )
