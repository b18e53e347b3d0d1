"""Run the Flask app under gunicorn: TLS, threaded workers, HTTP/1.1 keep-alive.

Owns gunicorn configuration and hooks only; policies are loaded and validated by the
caller before the master starts, so an invalid set never reaches a worker.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from webhook.app import create_app
from webhook.metrics import build_registry, start_metrics_server
from webhook.policy.model import PolicySet
from webhook.reload import PolicyStore
from webhook.settings import Settings

KEEPALIVE_SECONDS = 75  # longer than the API server's idle pool timeout keeps connections warm
GRACEFUL_TIMEOUT_SECONDS = 30


def _ssl_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class WebhookServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, policy_set: PolicySet) -> None:
        self.settings = settings
        self.policy_set = policy_set
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
        start_metrics_server(self.settings.metrics_bind, build_registry())

    def load(self) -> Any:
        return create_app(self.settings, PolicyStore(self.settings.policies, self.policy_set))


def run_server(settings: Settings, policy_set: PolicySet) -> None:
    WebhookServer(settings, policy_set).run()
