"""A recording TLS proxy between kube-apiserver and csr-webhook, in the test process.

The webhook configurations point at this proxy; it presents the webhook's own serving
certificate (so the registered caBundle is the webhook's CA), forwards each POST unchanged to
`csr-webhook serve` and keeps the AdmissionReview the API server sent and the answer it got.
The product is untouched. Stopping the proxy closes its port, as a stopped webhook would.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Secrets that must never reach a committed vector: bootstrap tokens and JWTs.
BOOTSTRAP_TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def scrub(value: Any) -> Any:
    """The value with every token-looking string replaced; nothing else changes."""
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return JWT.sub("<token>", BOOTSTRAP_TOKEN.sub("<token>", value))
    return value


@dataclass
class Exchange:
    scenario: str
    overlay: str
    path: str
    query: str
    request: dict[str, Any]
    status: int
    response: dict[str, Any] | None
    files: dict[str, str] = field(default_factory=dict)  # beside the overlay's policies


@dataclass
class Recorder:
    """What the API server sent and got, labelled with the test that caused it."""

    scenario: str = "setup"
    overlay: str = ""
    files: dict[str, str] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def since(self, mark: int) -> list[Exchange]:
        with self.lock:
            return list(self.exchanges[mark:])

    def mark(self) -> int:
        with self.lock:
            return len(self.exchanges)


class RecordingProxy:
    def __init__(
        self,
        port: int,
        *,
        cert: Path,
        key: Path,
        upstream_port: int,
        upstream_ca: Path,
        recorder: Recorder,
    ) -> None:
        self.port = port
        self.recorder = recorder
        self._server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_context.load_cert_chain(str(cert), str(key))
        self._upstream_context = ssl.create_default_context(cafile=str(upstream_ca))
        self._upstream_port = upstream_port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            upstream: list[http.client.HTTPSConnection]  # one kept-alive upstream, per connection
            # Headers and body are written separately: without TCP_NODELAY the body waits for
            # the API server's delayed ACK (about 40 ms) and the harness would be measured.
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                self.upstream = []

            def finish(self) -> None:
                for connection in self.upstream:
                    connection.close()
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                try:
                    status, answer, content_type = proxy.forward(
                        self.upstream, self.path, body, self.headers
                    )
                except OSError:
                    # The webhook is down: answer nothing, as the webhook itself could not.
                    self.close_connection = True
                    return
                path, _, query = self.path.partition("?")
                proxy.record(path, query, body, status, answer)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.socket = self._server_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def forward(
        self, kept: list[http.client.HTTPSConnection], path: str, body: bytes, headers: Any
    ) -> tuple[int, bytes, str]:
        """POST upstream on a kept-alive connection (one per API server connection, as the API
        server keeps its own), reconnecting once if the webhook closed it."""
        for attempt in (1, 2):
            if not kept:
                kept.append(
                    http.client.HTTPSConnection(
                        "127.0.0.1", self._upstream_port, context=self._upstream_context, timeout=10
                    )
                )
            connection = kept[0]
            try:
                connection.request(
                    "POST",
                    path,
                    body=body,
                    headers={"Content-Type": headers.get("Content-Type", "application/json")},
                )
                answer = connection.getresponse()
                return (
                    answer.status,
                    answer.read(),
                    answer.getheader("Content-Type", "application/json"),
                )
            except (OSError, http.client.HTTPException):
                connection.close()
                kept.clear()
                if attempt == 2:
                    raise OSError("the webhook did not answer") from None
        raise AssertionError("unreachable")

    def record(self, path: str, query: str, body: bytes, status: int, answer: bytes) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            return
        try:
            response = json.loads(answer)
        except ValueError:
            response = None
        self.recorder.add(
            Exchange(
                scenario=self.recorder.scenario,
                overlay=self.recorder.overlay,
                path=path,
                query=query,
                request=scrub(request),
                status=status,
                response=scrub(response),
                files=dict(self.recorder.files),
            )
        )
