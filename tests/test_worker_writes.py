"""The worker against request bodies of many chunks and clients that never read their
answers, on a real `csr-webhook serve` (`--workers 2 --threads 4`) over TLS: no thread may be
held by either, every byte costs O(1), and legitimate reviews keep their 1 s bound."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import RunningServer, review_over, running_server
from tests.slow_clients import large_answer_request, legitimate_reviews
from tests.test_slow_clients import REVIEW_BOUND_SECONDS, _answer, _Prefixed
from webhook.errors import ResponseTooLargeError
from webhook.serving.connection import (
    BUFFER_BUDGET_BYTES,
    MAX_RESPONSE_BYTES,
    RESPONSE_DEADLINE_SECONDS,
)
from webhook.serving.rendering import ResponseBuffer

pytestmark = pytest.mark.server
ALLOWED = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
HEAD = (
    b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})


def _tls(server: RunningServer, receive_buffer: int | None = None) -> ssl.SSLSocket:
    raw = socket.socket()
    if receive_buffer is not None:  # before connect: it sets the window the client advertises
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.settimeout(30)
    raw.connect(("127.0.0.1", server.port))
    return server.tls_context().wrap_socket(raw, server_hostname="localhost")


def _chunked(body: bytes, size: int) -> bytes:
    chunks = (body[i : i + size] for i in range(0, len(body), size))
    return HEAD + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


# --- chunked bodies -------------------------------------------------------------------------


def test_a_chunked_review_is_decided_like_one_with_a_content_length(
    tmp_path: Path, policies: Path
) -> None:
    body = json.dumps(ALLOWED).encode()
    with running_server(tmp_path, policies) as server:
        tls = _tls(server)
        tls.sendall(_chunked(body, 100) + _chunked(body, 1))  # two, kept alive
        first_status, first, rest = _answer(tls)
        second_status, second, _ = _answer(_Prefixed(tls, rest))
        tls.close()
    for status, payload in ((first_status, first), (second_status, second)):
        assert status == 200
        assert payload["response"]["uid"] == ALLOWED["request"]["uid"]
        assert payload["response"]["allowed"] is True


def _seconds_for(server: RunningServer, chunks: int) -> float:
    """The median of five round trips for a body of `chunks` chunks of 100 bytes (not a
    review, so it is answered 400) on one kept-alive connection."""
    request = HEAD + b"64\r\n" + b"{" * 100 + b"\r\n"
    request = HEAD + request[len(HEAD) :] * chunks + b"0\r\n\r\n"
    took = []
    tls = _tls(server)
    for _ in range(5):
        started = time.perf_counter()
        tls.sendall(request)
        status, payload, _ = _answer(tls)
        took.append(time.perf_counter() - started)
        assert status == 400, payload
    tls.close()
    return statistics.median(took)


def test_a_body_of_many_small_chunks_costs_time_linear_in_its_size(
    tmp_path: Path, policies: Path
) -> None:
    with running_server(tmp_path, policies, "--workers", "1") as server:
        _seconds_for(server, 100)  # warm up the worker
        small = _seconds_for(server, 1_000)
        large = _seconds_for(server, 10_000)  # 60 KB of chunk framing: within its limit
    print(f"1 000 chunks of 100 bytes: {small * 1000:.1f} ms; 10 000: {large * 1000:.1f} ms")
    # Quadratic (gunicorn copying the rest of the body for each chunk) was 100x or more.
    assert large / small < 30, (small, large)


def test_a_3_mib_body_of_one_byte_chunks_is_refused_at_once_and_reviews_go_on(
    tmp_path: Path, policies: Path
) -> None:
    request = HEAD + b"1\r\n{\r\n" * (3 * 1024 * 1024 // 6) + b"0\r\n\r\n"  # 524 288 chunks
    with running_server(tmp_path, policies) as server:
        tls = _TlsOverMemory(server)
        sender = threading.Thread(
            target=_send_quietly, args=(tls.raw, tls.encrypt(request)), daemon=True
        )
        started = time.monotonic()
        sender.start()
        status, payload, _ = _answer(tls)
        took = time.monotonic() - started
        latencies = legitimate_reviews(server, ALLOWED, 2.0)
        tls.close()
    print(
        f"3 MiB of 1-byte chunks answered {status} in {took * 1000:.0f} ms; {latencies.summary()}"
    )
    assert status == 413
    assert "chunk framing exceeds the limit of 65536 bytes" in payload["error"]
    assert took < REVIEW_BOUND_SECONDS
    assert latencies.failures == []
    assert max(latencies.all()) < REVIEW_BOUND_SECONDS, latencies.summary()


class _TlsOverMemory:
    """A TLS client that sends from one thread while another reads, without sharing an
    OpenSSL connection between threads (undefined, and under load it lost the answer): the
    request is encrypted up front and its bytes go out on the raw socket; only the reading
    thread touches the TLS object afterwards."""

    def __init__(self, server: RunningServer) -> None:
        self.raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = server.tls_context().wrap_bio(
            self.incoming, self.outgoing, server_hostname="localhost"
        )
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.raw.sendall(self.outgoing.read())
                if not self._receive():
                    raise ConnectionError("closed during the TLS handshake") from None
        self.raw.sendall(self.outgoing.read())

    def _receive(self) -> bool:
        data = self.raw.recv(65536)
        self.incoming.write(data) if data else self.incoming.write_eof()
        return bool(data)

    def encrypt(self, data: bytes) -> bytes:
        """`data` as TLS records, for any thread to send on `raw`."""
        self.tls.write(data)
        return self.outgoing.read()

    def recv(self, size: int) -> bytes:
        while True:
            try:
                return self.tls.read(size)
            except ssl.SSLWantReadError:
                try:
                    self._receive()
                except OSError:
                    return b""
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return b""

    def close(self) -> None:
        self.raw.close()


def _send_quietly(sock: socket.socket | ssl.SSLSocket, data: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):  # refused and closed midway: expected
        sock.sendall(data)


# --- clients that never read ----------------------------------------------------------------


def _hostile_request(size: int) -> bytes:
    """A complete review of about `size` bytes whose answer echoes most of it (the uid)."""
    review: dict[str, Any] = json.loads(json.dumps(ALLOWED))
    review["request"]["uid"] = ""
    head = b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    empty = len(head) + len(b"Content-Length: %d\r\n\r\n" % size) + len(json.dumps(review))
    review["request"]["uid"] = "u" * (size - empty)
    body = json.dumps(review).encode()
    request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    assert size - 8 <= len(request) <= size
    return request


def _non_readers(server: RunningServer, request: bytes, count: int, pipelined: int) -> list[Any]:
    """`count` connections with a 4 KiB receive window, each sending `pipelined` complete
    requests (from a thread: the server stops reading them) and never reading an answer."""
    socks = []
    for _ in range(count):
        tls = _tls(server, receive_buffer=4096)
        threading.Thread(target=_send_quietly, args=(tls, request * pipelined), daemon=True).start()
        socks.append(tls)
        time.sleep(0.05)
    return socks


@pytest.mark.parametrize(("count", "pipelined"), [(24, 3), (8, 40)])
def test_clients_that_never_read_their_answers_do_not_delay_reviews(
    tmp_path: Path, policies: Path, count: int, pipelined: int
) -> None:
    """Connections with a 4 KiB receive window that send complete reviews with the largest
    answers a review gets (a denial whose causes fill their budget) and never read them."""
    request = large_answer_request()
    with running_server(tmp_path, policies) as server:
        socks = _non_readers(server, request, count, pipelined)
        time.sleep(1.0)  # let every request arrive and its answer get stuck
        latencies = legitimate_reviews(server, ALLOWED, 4.0)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        log = server.log()
    print(f"{count}x{pipelined} non-readers: {latencies.summary()}")
    assert latencies.failures == []
    assert len(latencies.fresh) >= 3 and len(latencies.kept_alive) >= 3
    assert max(latencies.all()) < REVIEW_BOUND_SECONDS, latencies.summary()
    assert "Traceback" not in log


def test_large_requests_whose_answers_nobody_reads_do_not_lock_out_a_review(
    tmp_path: Path, policies: Path
) -> None:
    """One worker, 14 requests of 2.9 MB (together past its budget of 10) whose answers are
    never read: since request.uid is capped at 128 characters every answer is small (a 400
    here), so nothing stays stuck and the review is served. (Answers large enough to stay
    unread need more than the kernel's 4 MiB socket buffers on one connection, which no
    bounded answer reaches; the budget's eviction of unread responses is a backstop.)"""
    request = _hostile_request(BUFFER_BUDGET_BYTES // 11 - 300)
    with running_server(tmp_path, policies, "--workers", "1") as server:
        socks = _non_readers(server, request, 14, 1)
        time.sleep(1.0)
        connection = server.connection()
        answer = review_over(connection, ALLOWED)
        connection.close()
        log = server.log()
        for sock in socks:
            sock.close()
    assert answer["status"] == 200
    assert "Traceback" not in log


def test_a_response_past_its_bound_is_refused() -> None:
    out = ResponseBuffer(limit=100)
    out.sendall(b"x" * 60)
    with pytest.raises(ResponseTooLargeError, match="response exceeds the limit of 100 bytes"):
        out.sendall(b"y" * 41)
    assert bytes(out.data) == b"x" * 60
    assert ResponseBuffer().limit == MAX_RESPONSE_BYTES


def test_pipelined_answers_stay_small_whatever_the_size_of_the_requests(
    tmp_path: Path, policies: Path
) -> None:
    """Five pipelined 2 MB reviews whose uid the answer would have echoed: each one answered
    is a small 400, so a client reading 4 KiB at a time holds nothing (before the uid cap,
    ~10 MB of answers sat in the poller until their 10 s write deadline)."""
    request = _hostile_request(2_000_000)
    with running_server(tmp_path, policies) as server:
        tls = _tls(server, receive_buffer=4096)
        threading.Thread(target=_send_quietly, args=(tls, request * 5), daemon=True).start()
        received = b""
        deadline = time.monotonic() + RESPONSE_DEADLINE_SECONDS
        while received.count(b"HTTP/1.1 ") < 5 and time.monotonic() < deadline:
            received += tls.recv(4096)
        tls.close()
    answers = received.count(b"HTTP/1.1 ")
    assert answers >= 1, received[:500]
    assert received.count(b"HTTP/1.1 400 ") == answers, received[:500]
    assert len(received) < answers * 1024
    assert b"request.uid must be at most 128 characters" in received
