"""Run the Flask app under gunicorn: TLS, threaded workers, HTTP/1.1 keep-alive.

Owns gunicorn configuration and hooks only. Policies are validated by the caller before the
master starts, so an invalid set never reaches a worker; each worker then polls the policy
directory itself, and the master polls it too to keep the reload metrics. The multiprocess
metrics directory must be set in the environment before this module is imported.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from prometheus_client import CollectorRegistry

from webhook.app import create_app
from webhook.metrics import (
    ReviewMetrics,
    ServerState,
    build_master_registry,
    mark_worker_dead,
    start_metrics_server,
)
from webhook.policy.model import PolicySet
from webhook.reload import PolicyStore
from webhook.settings import Settings
from webhook.tls import CertificateExpiry

KEEPALIVE_SECONDS = 75  # longer than the API server's idle pool timeout keeps connections warm
GRACEFUL_TIMEOUT_SECONDS = 30
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _ssl_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class WebhookServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, policy_set: PolicySet) -> None:
        self.settings = settings
        self.policy_set = policy_set
        self.state = ServerState(policies=len(policy_set.policies), last_reload_success=time.time())
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options: dict[str, Any] = {
            "bind": [s.bind],
            "workers": s.workers,
            "worker_class": "gthread",
            "threads": s.threads,
            "keepalive": KEEPALIVE_SECONDS,
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
            "timeout": 30,
            "certfile": str(s.tls_cert),
            "keyfile": str(s.tls_key),
            "ssl_context": _ssl_context,
            "loglevel": s.log_level,
            "accesslog": None,
            "errorlog": "-",
            "proc_name": "csr-webhook",
            "when_ready": self._when_ready,
            "child_exit": self._child_exit,
        }
        if s.client_ca is not None:
            options["ca_certs"] = str(s.client_ca)
            options["cert_reqs"] = ssl.CERT_REQUIRED
        # gunicorn >= 24 opens a control socket under $HOME by default: two servers would
        # collide on it, and a read-only root filesystem cannot hold it.
        if "control_socket_disable" in self.cfg.settings:
            options["control_socket_disable"] = True
        for key, value in options.items():
            self.cfg.set(key, value)

    def _when_ready(self, arbiter: Any) -> None:
        """In the master: watch policies for the reload metrics, then serve /metrics."""
        assert self.settings.tls_cert is not None
        self.state.certificate_not_after = CertificateExpiry(self.settings.tls_cert)
        store = PolicyStore(self.settings.policies, self.policy_set)

        def record(ok: bool, policy_set: PolicySet | None, error: str | None) -> None:
            count = len(policy_set.policies) if policy_set is not None else 0
            self.state.record_reload(ok, count, time.time())

        store.watch(self.settings.reload_interval, record)
        registry = build_master_registry(self.state, os.environ.get(MULTIPROCESS_ENV))
        start_metrics_server(self.settings.metrics_bind, registry)

    def _child_exit(self, arbiter: Any, worker: Any) -> None:
        if os.environ.get(MULTIPROCESS_ENV):
            mark_worker_dead(worker.pid)

    def load(self) -> Any:
        """In each worker (after fork): its own policy store, watcher and metrics."""
        store = PolicyStore(self.settings.policies, self.policy_set)
        store.watch(self.settings.reload_interval)
        metrics = ReviewMetrics(CollectorRegistry())
        return create_app(self.settings, store, metrics)


def run_server(settings: Settings, policy_set: PolicySet) -> None:
    WebhookServer(settings, policy_set).run()
