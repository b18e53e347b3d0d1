"""Handshakes per second with a per-connection TLS context (gunicorn's default) vs the
cached one of webhook.serving.tls.ServingContext. Client and server share this process on loopback.

Run: .venv/bin/python bench/handshakes.py
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from webhook.serving.devcert import generate_dev_certificate
from webhook.serving.tls import ServingContext

HANDSHAKES = 400


def handshakes_per_second(make_context: Callable[[], ssl.SSLContext], cert: Path) -> float:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(HANDSHAKES):
            connection, _ = listener.accept()
            try:
                tls = make_context().wrap_socket(connection, server_side=True)
                tls.recv(1)
                tls.close()
            except OSError:
                connection.close()

    thread = threading.Thread(target=serve)
    thread.start()
    client = ssl.create_default_context(cafile=str(cert))
    started = time.perf_counter()
    for _ in range(HANDSHAKES):
        raw = socket.create_connection(("127.0.0.1", port))
        with client.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"x")
    thread.join()
    listener.close()
    return HANDSHAKES / (time.perf_counter() - started)


def main() -> None:
    cert, key = generate_dev_certificate(Path(tempfile.mkdtemp(prefix="handshakes-")))
    cached = ServingContext(cert, key)

    def fresh() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        return context

    for round_number in range(3):
        per_connection = handshakes_per_second(fresh, cert)
        reused = handshakes_per_second(cached.get, cert)
        print(
            f"round {round_number}: per-connection {per_connection:.0f}/s, "
            f"cached {reused:.0f}/s, ratio {reused / per_connection:.2f}"
        )
    started = time.perf_counter()
    for _ in range(200):
        fresh()
    print(f"building one context: {(time.perf_counter() - started) / 200 * 1000:.2f} ms")


if __name__ == "__main__":
    main()
