"""Latency of one review while N clients that asked for `Connection: close` keep their
sockets open after the answer (gunicorn then lingers up to 2 s per connection before closing).

Run against a server with one worker:
    .venv/bin/csr-webhook serve --workers 1 --bind 127.0.0.1:18443 ... &
    .venv/bin/python -m bench.lingering_clients --port 18443 --clients 10
"""

from __future__ import annotations

import argparse
import http.client
import socket
import ssl
import time
from collections.abc import Sequence

from bench.corpus import build_corpus, parse_mix


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lingering_clients", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args(argv)
    body = build_corpus(1, parse_mix("ecdsa-p256=1")).bodies()[0]
    request = (
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    held = []
    for _ in range(args.clients):
        raw = socket.create_connection(("127.0.0.1", args.port), timeout=30)
        tls = context.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(request)
        held.append(tls)
    time.sleep(0.3)
    started = time.monotonic()
    connection = http.client.HTTPSConnection("127.0.0.1", args.port, context=context, timeout=90)
    connection.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
    status = connection.getresponse().status
    took = time.monotonic() - started
    connection.close()
    print(f"one review with {args.clients} lingering clients: HTTP {status} in {took:.2f} s")
    for tls in held:
        tls.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
