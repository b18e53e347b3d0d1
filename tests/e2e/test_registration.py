"""The webhook configurations in force are the ones manifests/base ships, but for clientConfig."""

from __future__ import annotations

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.webhook import Webhook, rendered_webhook_configurations, stored_webhooks

pytestmark = pytest.mark.e2e

SERVER_DEFAULTED = {"namespaceSelector", "objectSelector"}  # {} filled in by the API server


def test_registered_configurations_are_the_shipped_ones_but_for_client_config(
    cluster: Cluster, webhook: Webhook
) -> None:
    shipped = {c["kind"]: c for c in rendered_webhook_configurations(cluster)}
    for stored in stored_webhooks(cluster):
        original = shipped[stored["kind"]]
        assert stored["metadata"]["labels"] == original["metadata"]["labels"]
        assert len(stored["webhooks"]) == len(original["webhooks"]) == 1
        live, sent = stored["webhooks"][0], original["webhooks"][0]
        path = sent["clientConfig"]["service"]["path"]
        assert live["clientConfig"]["url"] == f"https://127.0.0.1:{webhook.proxy.port}{path}"
        assert "service" not in live["clientConfig"]
        for key, value in sent.items():
            if key != "clientConfig":
                assert live[key] == value, key
        assert set(live) - set(sent) <= SERVER_DEFAULTED
