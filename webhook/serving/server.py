"""Run the Flask app under gunicorn: TLS, threaded workers, HTTP/1.1 keep-alive.

Owns gunicorn configuration and hooks only (the worker class is webhook/serving/worker.py; each
worker listens on a socket of its own, webhook/serving/listeners.py says why). Policies
are validated by the caller before the master starts, so an invalid set never reaches a
worker. Only the master polls the policy directory; each worker serves the master's last good
set (`snapshot`), and polls the certificate files itself. The multiprocess metrics directory
must be set in the environment before this module is imported.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from webhook.policy.loader import Sources
from webhook.policy.model import PolicySet
from webhook.serving.app import create_app
from webhook.serving.cluster import follow_in_metrics, start_cluster_link
from webhook.serving.connection import CONNECTIONS_PER_WORKER
from webhook.serving.gunicorn_internals import BaseApplication
from webhook.serving.listeners import bind_text, per_worker, reserve
from webhook.serving.metrics import (
    ClusterMetrics,
    HandoffMetrics,
    ReviewMetrics,
    ServerState,
    build_master_registry,
    mark_worker_dead,
    start_metrics_server,
)
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings
from webhook.serving.snapshot import SnapshotFollower, SnapshotPublisher, create_runtime_directory
from webhook.serving.tls import ServingContext
from webhook.serving.views import ARRIVAL_KEY
from webhook.serving.worker import WebhookWorker, arrival

KEEPALIVE_SECONDS = 75  # longer than the API server's idle pool timeout keeps connections warm
GRACEFUL_TIMEOUT_SECONDS = 30
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _with_arrival(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ[ARRIVAL_KEY] = getattr(arrival, "value", None)
        return app(environ, start_response)

    return wrapped


class WebhookServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, policy_set: PolicySet, sources: Sources) -> None:
        """In the master, before any worker exists: the policy store, which publishes the
        startup set for the workers at once."""
        assert settings.tls_cert is not None and settings.tls_key is not None
        self.settings = settings
        self.state = ServerState(policies=len(policy_set.policies), last_reload_success=time.time())
        runtime = create_runtime_directory()
        self.publisher = SnapshotPublisher(runtime)
        try:
            self.store = PolicyStore(
                settings.policies, policy_set, sources=sources, publisher=self.publisher
            )
        except OSError as exc:
            self.publisher.remove()
            raise SystemExit(
                f"csr-webhook: cannot hand the policy set to the workers through {runtime}: {exc}"
            ) from None
        self.reserved: list[socket.socket] = []  # the master's hold on the port (listeners.py)
        self.serving = ServingContext(
            settings.tls_cert,
            settings.tls_key,
            settings.client_ca,
            check_interval=settings.reload_interval,
        )
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options: dict[str, Any] = {
            "bind": [s.bind],
            "workers": s.workers,
            "reuse_port": per_worker(s.listeners),
            "worker_class": WebhookWorker,
            "threads": s.threads,
            "worker_connections": CONNECTIONS_PER_WORKER,
            "keepalive": KEEPALIVE_SECONDS,
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
            "timeout": 30,
            "certfile": str(s.tls_cert),
            "keyfile": str(s.tls_key),
            "ssl_context": self._ssl_context,
            "loglevel": s.log_level,
            "accesslog": None,
            "errorlog": "-",
            "proc_name": "csr-webhook",
            "on_starting": self._on_starting,
            "when_ready": self._when_ready,
            "child_exit": self._child_exit,
            "on_exit": lambda arbiter: self.publisher.remove(),
            # gunicorn opens a control socket under $HOME by default: two servers would
            # collide on it, and a read-only root filesystem cannot hold it.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def _ssl_context(self, config: Any, default_factory: Callable[[], ssl.SSLContext]) -> Any:
        return self.serving.get()

    def _on_starting(self, arbiter: Any) -> None:
        """In the master, before gunicorn's sockets and workers: hold the port (each worker
        then binds its own listener to it), or stop with one clear error."""
        if not self.cfg.reuse_port:
            return
        try:
            self.reserved = reserve(self.cfg.address)
        except OSError as exc:
            self.publisher.remove()
            raise SystemExit(
                f"csr-webhook: cannot listen on {self.settings.bind}: {exc.strerror or exc}"
            ) from None
        binds = [bind_text(sock) for sock in self.reserved]
        self.cfg.set("bind", binds)  # port 0 is now the port the master holds
        arbiter.log.info("Listening at: %s, one SO_REUSEPORT listener per worker", ",".join(binds))
        # gunicorn's own "Listening at:" line would name no listener (the master has none).
        arbiter.log.error_log.addFilter(_not_an_empty_listening_line)

    def _when_ready(self, arbiter: Any) -> None:
        """In the master: watch policies (for every worker) and certificates, serve /metrics."""
        store, publisher = self.store, self.publisher

        def record(ok: bool, policy_set: PolicySet | None, error: str | None) -> None:
            count = len(policy_set.policies) if policy_set is not None else 0
            self.state.record_reload(ok, count, time.time())

        store.watch(self.settings.reload_interval, record)
        self.state.policy_directory_pending = lambda: store.pending
        self.state.policy_sets = lambda: [
            ("master", os.getpid(), store.current.digest),
            *(("worker", pid, digest) for pid, digest in publisher.served()),
        ]
        self.serving.listener = lambda ok, error: self.state.record_certificate_reload(ok)
        self.state.certificate_not_after = lambda: self.serving.not_after
        _every(self.settings.reload_interval, self.serving.refresh)
        registry = build_master_registry(self.state, os.environ.get(MULTIPROCESS_ENV))
        start_metrics_server(self.settings.metrics_bind, registry)

    def _child_exit(self, arbiter: Any, worker: Any) -> None:
        self.publisher.forget(worker.pid)
        if os.environ.get(MULTIPROCESS_ENV):
            mark_worker_dead(worker.pid)

    def load(self) -> Any:
        """In each worker (after fork): the master's set, as inherited and then as published
        (taken before serving: a worker forked mid-reload starts no older than the master),
        followed from then on; its own metrics; and its own cluster caches (threads started
        here, after the fork)."""
        handoff = HandoffMetrics(CollectorRegistry())

        def count(ok: bool, error: str | None) -> None:
            if not ok:
                handoff.failures.inc()

        follower = SnapshotFollower(
            self.publisher.directory, self.store.current, pid=os.getpid(), listener=count
        )
        follower.poll()
        follower.watch(self.settings.reload_interval)
        metrics = ReviewMetrics(CollectorRegistry())
        cluster = start_cluster_link(self.settings)
        follow_in_metrics(cluster, ClusterMetrics(CollectorRegistry()).record)
        app = create_app(self.settings, follower, metrics, cluster)
        return _with_arrival(app)


def _every(interval: float, action: Callable[[], object]) -> threading.Thread:
    def loop() -> None:
        while True:
            time.sleep(interval)
            action()

    thread = threading.Thread(target=loop, name="certificate-watcher", daemon=True)
    thread.start()
    return thread


def run_server(settings: Settings, policy_set: PolicySet, sources: Sources) -> None:
    WebhookServer(settings, policy_set, sources).run()


def _not_an_empty_listening_line(record: logging.LogRecord) -> bool:
    args = record.args
    return not (record.msg == "Listening at: %s (%s)" and isinstance(args, tuple) and args[0] == "")
