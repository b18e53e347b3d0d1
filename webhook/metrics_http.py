"""Serve /metrics (and a process's health endpoints) over plain HTTP with bounded cost: at most
MAX_CONNECTIONS served at once (others are closed at once) and each connection read within
READ_TIMEOUT seconds. prometheus_client's own server gives every connection a thread for as
long as the client keeps it open, so idle connections to the metrics port would pile up
threads. Shared by `serve` (the master's /metrics) and `approve` (/metrics, /healthz, /readyz).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

MAX_CONNECTIONS = 32
READ_TIMEOUT_SECONDS = 10.0


class _Handler(WSGIRequestHandler):
    timeout = READ_TIMEOUT_SECONDS  # StreamRequestHandler: a socket timeout for each read

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


class _BoundedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily) -> None:
        self.address_family = family
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


# A health endpoint: () -> (HTTP status, one line of text saying why).
Probe = Callable[[], tuple[int, str]]


def _with_probes(app: Any, probes: Mapping[str, Probe]) -> Any:
    def routed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        probe = probes.get(environ.get("PATH_INFO", ""))
        if probe is None:
            return app(environ, start_response)  # type: ignore[no-any-return]
        status, text = probe()
        body = f"{text}\n".encode()
        reason = "OK" if status == 200 else "Service Unavailable"
        start_response(
            f"{status} {reason}",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return routed


def start_metrics_http(
    host: str, port: int, registry: CollectorRegistry, probes: Mapping[str, Probe] | None = None
) -> _BoundedServer:
    """Listen on host:port in a daemon thread and return the server; `probes` maps paths
    (/healthz, /readyz) to their answers, every other path is the exposition."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    server = _BoundedServer((str(address[0]), int(address[1])), family)
    server.set_app(_with_probes(make_wsgi_app(registry), probes or {}))
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return server
