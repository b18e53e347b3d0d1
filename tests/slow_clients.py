"""Hostile clients for a running server, and a stopwatch for the legitimate reviews meanwhile.

Four attacks, each run from one background thread that re-opens every connection the server
closes, so the pressure stays constant for as long as the attack runs:
  * half_handshake: the first 3 bytes of a TLS ClientHello, then silence;
  * slowloris: a complete TLS handshake, then one byte of request headers per second;
  * idle_tcp: a TCP connection that never sends a byte;
  * non_readers: complete reviews with the largest answers a review gets, three pipelined,
    from a client with a 4 KiB receive window that never reads (re-opened every 12 s).
Used by tests/test_slow_clients.py (a few seconds) and bench/slow_clients.py (30 s).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import selectors
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tests.builders import build_csr
from tests.reviews import create_review
from tests.server import RunningServer, review_over

CLIENT_HELLO_START = b"\x16\x03\x01"  # handshake record, TLS 1.0 record version: 3 of ~500 bytes
SLOWLORIS_HEADERS = (
    b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    + b"X-Padding: "
    + b"a" * 4000
)


class Attack:
    """Keeps `count` hostile connections open until stopped; counts how often it re-opened."""

    def __init__(self, server: RunningServer, count: int) -> None:
        self.server = server
        self.count = count
        self.reopened = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, daemon=True)
        self.ready = threading.Event()

    def open(self) -> socket.socket:
        raise NotImplementedError

    def tick(self, sock: socket.socket) -> None:
        """Called about once a second per connection."""

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported by the test: the attacker itself must not die
            self.errors.append(repr(exc))
            self.ready.set()

    def _open_retrying(self) -> socket.socket | None:
        while not self._stop.is_set():
            try:
                return self.open()
            except OSError:
                time.sleep(0.05)
        return None

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for _ in range(self.count):
            sock = self._open_retrying()
            if sock is None:
                return
            selector.register(sock, selectors.EVENT_READ)
        self.ready.set()
        next_tick = time.monotonic() + 1.0
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                readable = key.fileobj
                assert isinstance(readable, socket.socket)
                if self._closed_by_server(readable):
                    selector.unregister(readable)
                    readable.close()
                    fresh = self._open_retrying()
                    if fresh is None:
                        break
                    selector.register(fresh, selectors.EVENT_READ)
                    self.reopened += 1
            if time.monotonic() >= next_tick:
                next_tick += 1.0
                for key in list(selector.get_map().values()):
                    held = key.fileobj
                    assert isinstance(held, socket.socket)
                    with contextlib.suppress(OSError):  # noticed as closed by the selector
                        self.tick(held)
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()

    @staticmethod
    def _closed_by_server(sock: socket.socket) -> bool:
        try:
            sock.setblocking(False)
            data = sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                sock.setblocking(True)
        return not data

    def __enter__(self) -> Attack:
        self._thread.start()
        self.ready.wait(timeout=60)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class HalfHandshake(Attack):
    def open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        sock.sendall(CLIENT_HELLO_START)
        return sock


class Slowloris(Attack):
    """TLS done, then the request headers one byte per second (never finished)."""

    def __init__(self, server: RunningServer, count: int) -> None:
        super().__init__(server, count)
        self._sent: dict[int, int] = {}

    def open(self) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        context = ssl.create_default_context(cafile=str(self.server.ca_file))
        tls = context.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(SLOWLORIS_HEADERS[:1])
        self._sent[id(tls)] = 1
        return tls

    def tick(self, sock: socket.socket) -> None:
        offset = self._sent.get(id(sock), 0)
        sock.sendall(SLOWLORIS_HEADERS[offset : offset + 1])
        self._sent[id(sock)] = offset + 1


class IdleTcp(Attack):
    def open(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.server.port), timeout=10)


@cache
def large_answer_request() -> bytes:
    """A complete review with the largest answer a review can get: 1000 DNS names that no
    rule of example.com/signer's policy permits, so a denial whose causes fill their budget
    (~26 KB). (Before request.uid was capped, a 2 MB uid made a 2 MB answer.)"""
    pem = build_csr(common_name="alice", dns_names=[f"n{i}.x" for i in range(1000)])
    review = create_review(pem, signer_name="example.com/signer")
    body = json.dumps(review).encode()
    return (
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body


class NonReaders(Attack):
    """Complete requests with large answers, never read; each connection lives 12 s (past
    the server's 10 s deadline for a response) and is then replaced."""

    LIFETIME = 12.0

    def __init__(self, server: RunningServer, count: int, pipelined: int = 3) -> None:
        super().__init__(server, count)
        self.requests = large_answer_request() * pipelined

    def open(self) -> socket.socket:
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        raw.settimeout(10)
        raw.connect(("127.0.0.1", self.server.port))
        tls = self.server.tls_context().wrap_socket(raw, server_hostname="localhost")
        threading.Thread(target=self._send, args=(tls,), daemon=True).start()
        return tls

    def _send(self, sock: ssl.SSLSocket) -> None:
        with contextlib.suppress(OSError, ValueError):  # the server stops reading, then closes
            sock.sendall(self.requests)

    def _run(self) -> None:
        opened: list[tuple[float, socket.socket]] = []
        for _ in range(self.count):
            sock = self._open_retrying()
            if sock is None:
                return
            opened.append((time.monotonic(), sock))
        self.ready.set()
        while not self._stop.wait(0.5):
            for index, (since, sock) in enumerate(opened):
                if time.monotonic() - since > self.LIFETIME:
                    sock.close()
                    fresh = self._open_retrying()
                    if fresh is None:
                        break
                    opened[index] = (time.monotonic(), fresh)
                    self.reopened += 1
        for _, sock in opened:
            sock.close()


ATTACKS: dict[str, Callable[[RunningServer], Attack]] = {
    "half-handshake": lambda server: HalfHandshake(server, 24),
    "slowloris": lambda server: Slowloris(server, 24),
    "idle-tcp": lambda server: IdleTcp(server, 2000),
    "non-readers": lambda server: NonReaders(server, 24),
}


@dataclass
class Latencies:
    """Seconds per legitimate review, on fresh and on one kept-alive connection."""

    fresh: list[float] = field(default_factory=list)
    kept_alive: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def all(self) -> list[float]:
        return self.fresh + self.kept_alive

    def summary(self) -> str:
        values = self.all()
        if not values:
            return f"no review completed; failures: {self.failures[:3]}"
        return (
            f"{len(values)} reviews: median {statistics.median(values) * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms (fresh max {max(self.fresh, default=0) * 1000:.1f}"
            f" ms, kept-alive max {max(self.kept_alive, default=0) * 1000:.1f} ms), "
            f"{len(self.failures)} failed"
        )


def legitimate_reviews(
    server: RunningServer, review: dict[str, Any], seconds: float, *, timeout: float = 5.0
) -> Latencies:
    """Reviews one after the other for `seconds`, alternating a fresh connection (TCP + TLS +
    request, all timed) and a connection kept alive across the whole run."""
    result = Latencies()
    kept: http.client.HTTPSConnection | None = None
    end = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < end:
        turn += 1
        fresh = turn % 2 == 1
        started = time.perf_counter()
        try:
            if fresh:
                connection = server.connection()
                connection.timeout = timeout
            else:
                if kept is None:
                    kept = server.connection()
                    kept.timeout = timeout
                    kept.connect()
                    started = time.perf_counter()  # the kept-alive connection is set up once
                connection = kept
            answer = review_over(connection, review)
            elapsed = time.perf_counter() - started
            if answer["status"] != 200 or answer["body"]["response"]["allowed"] is not True:
                result.failures.append(f"unexpected answer {answer['status']}")
            (result.fresh if fresh else result.kept_alive).append(elapsed)
        except Exception as exc:  # a timeout or a reset is exactly what we count
            result.failures.append(f"{'fresh' if fresh else 'kept-alive'}: {exc!r}")
            if not fresh and kept is not None:
                kept.close()
                kept = None
        finally:
            if fresh:
                connection.close()
        time.sleep(0.05)
    if kept is not None:
        kept.close()
    return result
