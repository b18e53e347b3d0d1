"""Slow, idle and hostile clients against a real `csr-webhook serve` with its default
`--workers 2 --threads 4`: they must not delay a legitimate review, and every connection is
closed at its deadline for handshake + request (webhook/serving/worker.py)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.contract import check_error_body
from tests.reviews import create_review
from tests.server import RunningServer, running_server, worker_pids
from tests.slow_clients import ATTACKS, CLIENT_HELLO_START, legitimate_reviews
from webhook.serving.connection import REQUEST_DEADLINE_SECONDS as DEADLINE
from webhook.serving.views import MAX_BODY_BYTES

pytestmark = pytest.mark.server
ALLOWED = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
# The bound: 100x a normal review on this machine, so only a stall exceeds it.
REVIEW_BOUND_SECONDS = 1.0
ATTACK_SECONDS = float(os.environ.get("CSR_WEBHOOK_ATTACK_SECONDS", "4"))
SOAK_ATTACK_SECONDS = 30.0


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})


def _workers(server: RunningServer, count: int = 2) -> list[int]:
    deadline = time.monotonic() + 30
    while len(pids := worker_pids(server)) < count:
        assert time.monotonic() < deadline, f"{count} workers not up: {pids}"
        time.sleep(0.1)
    return sorted(pids)


def _under_attack(server: RunningServer, attack: str, seconds: float) -> None:
    workers = _workers(server)
    with ATTACKS[attack](server) as attacker:
        time.sleep(1.0)  # let the attack take hold before measuring
        latencies = legitimate_reviews(server, ALLOWED, seconds)
    print(f"{attack}: {latencies.summary()}; attacker re-opened {attacker.reopened}")
    assert attacker.errors == []
    assert latencies.failures == []
    assert len(latencies.fresh) >= 3 and len(latencies.kept_alive) >= 3
    assert max(latencies.all()) < REVIEW_BOUND_SECONDS, latencies.summary()
    assert sorted(worker_pids(server)) == workers, "a worker died or was restarted"


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_legitimate_reviews_stay_fast_under_attack(
    tmp_path: Path, policies: Path, attack: str
) -> None:
    with running_server(tmp_path, policies) as server:
        _under_attack(server, attack, ATTACK_SECONDS)


@pytest.mark.soak
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_legitimate_reviews_stay_fast_under_a_30_second_attack(
    tmp_path: Path, policies: Path, attack: str
) -> None:
    with running_server(tmp_path, policies) as server:
        _under_attack(server, attack, SOAK_ATTACK_SECONDS)


# --- deadlines ------------------------------------------------------------------------------


def _tls(server: RunningServer) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return server.tls_context().wrap_socket(raw, server_hostname="localhost")


def _request(body: bytes, path: str = "/validate", extra: bytes = b"") -> bytes:
    return (
        (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode()
        + extra
        + b"\r\n"
        + body
    )


class Receiver(Protocol):
    """What `_answer` reads a response from: a socket, or one wrapped."""

    def recv(self, size: int, /) -> bytes: ...


def _answer(sock: Receiver) -> tuple[int, dict[str, Any], bytes]:
    """One response: status, JSON body, and whatever followed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(
            v
            for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        )
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of a response"
        rest += chunk
    payload = json.loads(rest[:length])
    status = int(head.split()[1])
    if status != 200:
        check_error_body(status, payload)
    return status, payload, rest[length:]


class Closed:
    """Waits in a thread for the server to close `sock`; records when, and what it sent."""

    def __init__(self, sock: socket.socket, started: float) -> None:
        self.sock, self.started = sock, started
        self.received = b""
        self.after: float | None = None
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        self.sock.settimeout(60)
        try:
            while chunk := self.sock.recv(65536):
                self.received += chunk
        except OSError:
            pass
        self.after = time.monotonic() - self.started

    def close(self) -> None:
        """Close from our side; shutdown first wakes the thread blocked in recv()."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=10)

    def join(self) -> float:
        self._thread.join(timeout=60)
        assert self.after is not None, "the server never closed the connection"
        return self.after


def test_every_connection_is_closed_at_its_deadline_for_handshake_and_request(
    tmp_path: Path, policies: Path
) -> None:
    body = json.dumps(ALLOWED).encode()
    with running_server(tmp_path, policies) as server:
        started = time.monotonic()
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        half = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        half.sendall(CLIENT_HELLO_START)
        trickler, unfinished, reused = _tls(server), _tls(server), _tls(server)
        unfinished.sendall(_request(body)[: len(body) // 2])
        reused.sendall(_request(body))
        assert _answer(reused)[0] == 200
        watchers = {
            "silent": Closed(silent, started),
            "half handshake": Closed(half, started),
            "unfinished body": Closed(unfinished, started),
        }
        # A trickler's header bytes keep coming, once a second: the deadline is not per read.
        headers = _request(body)
        for index in range(2):
            trickler.sendall(headers[index : index + 1])
            time.sleep(1.0)
        # The kept-alive connection starts its second request 2 s in: its own deadline.
        second_started = time.monotonic()
        reused.sendall(headers[:10])
        watchers["kept-alive second request"] = Closed(reused, second_started)
        # The trickler is read in this thread: an SSL socket is not for two threads at once.
        trickled, trickler_closed = b"", None
        for index in range(2, 40):
            with contextlib.suppress(OSError):  # closed by the server: read its answer
                trickler.sendall(headers[index : index + 1])
            if select.select([trickler], [], [], 1.0)[0]:
                with contextlib.suppress(OSError):
                    while chunk := trickler.recv(65536):
                        trickled += chunk
                trickler_closed = time.monotonic() - started
                break
        closed_after: dict[str, float | None] = {
            name: watcher.join() for name, watcher in watchers.items()
        }
        closed_after["trickler"] = trickler_closed
        received = {name: watcher.received for name, watcher in watchers.items()}
        received["trickler"] = trickled
        for sock in (silent, half, trickler, unfinished, reused):
            sock.close()
    for name, seconds in closed_after.items():
        assert seconds is not None and DEADLINE - 0.5 < seconds < DEADLINE + 5, (name, closed_after)
    for name in ("trickler", "unfinished body", "kept-alive second request"):
        answer = received[name]
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), (name, answer[:100])
        assert b'"error": "request not complete within 10 s"' in answer, answer
    assert received["silent"] == received["half handshake"] == b""


# --- normal traffic through the poller ------------------------------------------------------


def test_pipelined_requests_split_anywhere_are_answered_in_order(
    tmp_path: Path, policies: Path
) -> None:
    denied = create_review(b"garbage", signer_name="example.com/signer")
    stream = (
        b"".join(_request(json.dumps(review).encode()) for review in (ALLOWED, denied, ALLOWED))
        + b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    with running_server(tmp_path, policies) as server:
        for pieces in ([len(stream)], [7, 300, 1, 2000, 5]):
            tls, offset = _tls(server), 0
            for size in pieces:
                tls.sendall(stream[offset : offset + size])
                offset += size
                time.sleep(0.05)
            tls.sendall(stream[offset:])
            answers, rest = [], b""
            reader: Receiver = tls
            for _ in range(4):
                if rest:  # the next response arrived with the previous one
                    reader = _Prefixed(reader, rest)
                status, payload, rest = _answer(reader)
                answers.append((status, payload.get("response", payload).get("allowed")))
            tls.close()
            assert answers == [(200, True), (200, False), (200, True), (200, None)]


class _Prefixed:
    """A socket whose first recv returns bytes already read."""

    def __init__(self, sock: Any, prefix: bytes) -> None:
        self.sock, self.prefix = sock, prefix

    def recv(self, size: int) -> bytes:
        if self.prefix:
            data, self.prefix = self.prefix, b""
            return data
        return bytes(self.sock.recv(size))

    def close(self) -> None:
        self.sock.close()


def test_expect_100_continue_is_answered_before_the_body(tmp_path: Path, policies: Path) -> None:
    body = json.dumps(ALLOWED).encode()
    with running_server(tmp_path, policies) as server:
        tls = _tls(server)
        tls.sendall(
            _request(b"", extra=b"Expect: 100-continue\r\n").replace(
                b"Length: 0", b"Length: %d" % len(body)
            )
        )
        assert tls.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        tls.sendall(body)
        data = b""
        while b'"allowed"' not in data:
            data += tls.recv(65536)
        tls.close()
    assert b"HTTP/1.1 200 OK\r\n" in data


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (
            _request(b"", extra=b"").replace(b"Length: 0", b"Length: 3145729"),
            413,
            "body of 3145729 bytes exceeds the limit of 3145728",
        ),
        (
            _request(b"{}", extra=b"X-Big: " + b"a" * 70000 + b"\r\n"),
            431,
            "exceed the limit of 65536",
        ),
        (_request(b"{}", extra=b"Transfer-Encoding: chunked\r\n"), 400, "both Transfer-Encoding"),
        (
            _request(b"{}").replace(b"Content-Length", b"Transfer-Encoding: gzip\r\nX"),
            501,
            "'gzip'",
        ),
    ],
    ids=["declared-too-large", "headers-too-large", "ambiguous", "unsupported-coding"],
)
def test_unservable_requests_are_refused_before_a_thread_sees_them(
    tmp_path: Path, policies: Path, request_bytes: bytes, status: int, message: str
) -> None:
    with running_server(tmp_path, policies, "--workers", "1") as server:
        tls = _tls(server)
        tls.sendall(request_bytes)  # the declared 3 MiB body is never sent: no need to wait
        answer_status, payload, _ = _answer(tls)
        tls.close()
        connection = server.connection()
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()
    assert answer_status == status
    assert message in payload["error"]


# --- the connection limit -------------------------------------------------------------------


def test_a_full_worker_evicts_the_oldest_idle_connection_instead_of_refusing(
    tmp_path: Path, policies: Path
) -> None:
    """With 300 file descriptors a worker fits 300 - 64 connections; 1000 idle ones do not
    lock legitimate reviews out (nor crash a worker on EMFILE)."""
    with running_server(tmp_path, policies, fd_limit=300) as server:
        workers = _workers(server)
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1000)]
        try:
            time.sleep(0.5)
            latencies = legitimate_reviews(server, ALLOWED, 2.0)
        finally:
            for sock in idle:
                sock.close()
        assert worker_pids(server) == workers
        log = server.log()
    assert latencies.failures == []
    assert len(latencies.all()) >= 4
    assert "connections evicted so far: 236 open is this worker's limit" in log


def test_incomplete_requests_share_a_bounded_buffer_per_worker(
    tmp_path: Path, policies: Path
) -> None:
    """14 almost complete 3 MiB requests do not fit in a worker's 10-request budget: the
    oldest are evicted, the worker's memory stays bounded, a small review still passes."""
    almost = b"{" + b" " * (MAX_BODY_BYTES - 2)  # one byte short of the declared length
    head = _request(b"").replace(b"Length: 0", b"Length: %d" % MAX_BODY_BYTES)
    with running_server(tmp_path, policies, "--workers", "1") as server:
        [worker] = _workers(server, 1)
        stuck = []
        for _ in range(14):
            tls = _tls(server)
            tls.sendall(head + almost)
            stuck.append(tls)
        watchers = [Closed(tls, time.monotonic()) for tls in stuck]
        latencies = legitimate_reviews(server, ALLOWED, 1.0)
        resident = _rss_bytes(worker)
        evicted = sum(w.after is not None for w in watchers)
        for watcher in watchers:
            watcher.close()
        log = server.log()
    assert latencies.failures == []
    assert evicted >= 4, evicted
    assert "request buffers full" in log
    assert resident < 200 * 1024 * 1024, resident


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024
