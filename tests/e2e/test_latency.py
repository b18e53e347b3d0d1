"""The API server's own view of our latency (apiserver_admission_webhook_admission_duration_seconds);
the whole run's figures are printed in the summary at the end of `make e2e`."""

from __future__ import annotations

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.kube import client_csr, create_as_requester
from tests.e2e.latency import OUR_WEBHOOKS, scrape_latency
from tests.e2e.webhook import Webhook

pytestmark = pytest.mark.e2e


def test_apiserver_measures_both_of_our_webhooks(
    cluster: Cluster, webhook: Webhook, requester_rbac: None
) -> None:
    manifest, _ = client_csr("e2e-latency", "latency")
    assert create_as_requester(cluster, manifest).returncode == 0
    rows = {row.webhook: row for row in scrape_latency(cluster)}
    assert set(rows) == set(OUR_WEBHOOKS)
    for row in rows.values():
        assert row.count >= 1
        assert 0 < row.p50_bucket <= row.p99_bucket
        print(row.line())
