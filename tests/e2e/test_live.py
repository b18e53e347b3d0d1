"""The live system: a hot-reloaded policy is in force for the next CSR, and with
`failurePolicy: Fail` a stopped webhook stops CSR creation until it is back, without
restarting the API server."""

from __future__ import annotations

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.kube import client_csr, create_as_requester
from tests.e2e.webhook import Webhook

pytestmark = pytest.mark.e2e

DENIED_BY_US = 'admission webhook "validate.csr-webhook.io" denied the request: '


def _stored(cluster: Cluster, name: str) -> bool:
    return cluster.kubectl("get", "csr", name).returncode == 0


def _denied_dry_run(cluster: Cluster) -> bool:
    manifest, _ = client_csr("e2e-reload-probe", "reload-probe")
    done = create_as_requester(cluster, manifest, "--dry-run=server")
    return done.returncode != 0 and DENIED_BY_US in done.stderr


def test_tightened_policy_is_in_force_for_the_next_csr(
    cluster: Cluster, webhook: Webhook, requester_rbac: None
) -> None:
    before, _ = client_csr("e2e-reload-before", "reload-before")
    assert create_as_requester(cluster, before).returncode == 0
    assert _stored(cluster, "e2e-reload-before")

    with webhook.overlay("tight-client", probe=lambda: _denied_dry_run(cluster)):
        after, _ = client_csr("e2e-reload-after", "reload-after")
        refused = create_as_requester(cluster, after)
        assert refused.returncode != 0
        assert DENIED_BY_US in refused.stderr
        assert "'reload-after'" in refused.stderr and "team-*" in refused.stderr
        assert not _stored(cluster, "e2e-reload-after")
        team, _ = client_csr("e2e-reload-team", "team-reload")
        allowed = create_as_requester(cluster, team)
        assert allowed.returncode == 0, allowed.stderr

    restored, _ = client_csr("e2e-reload-restored", "reload-restored")
    done = create_as_requester(cluster, restored)
    assert done.returncode == 0, done.stderr


def test_failure_policy_fail_refuses_csrs_while_the_webhook_is_down(
    cluster: Cluster, webhook: Webhook, requester_rbac: None
) -> None:
    apiserver = next(p for p in cluster.processes if p.name == "kube-apiserver")
    pid = apiserver.pid
    webhook.stop()
    try:
        down, _ = client_csr("e2e-webhook-down", "webhook-down")
        refused = create_as_requester(cluster, down)
        assert refused.returncode != 0
        assert 'failed calling webhook "mutate.csr-webhook.io"' in refused.stderr
        assert not _stored(cluster, "e2e-webhook-down")
    finally:
        webhook.start()
    up, _ = client_csr("e2e-webhook-up", "webhook-up")
    done = create_as_requester(cluster, up)
    assert done.returncode == 0, done.stderr
    assert _stored(cluster, "e2e-webhook-up")
    assert apiserver.running() and apiserver.pid == pid
