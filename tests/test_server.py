"""A real `csr-webhook serve` process: TLS, keep-alive, startup checks, SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import CLI, free_port, review_over, running_server

pytestmark = pytest.mark.server


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})


def test_serves_several_reviews_on_one_kept_alive_tls_connection(
    tmp_path: Path, policies: Path
) -> None:
    allowed = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    denied = create_review(b"garbage", signer_name="example.com/signer")
    with running_server(tmp_path, policies) as server:
        connection = server.connection()
        answers = [review_over(connection, review) for review in (allowed, denied, allowed, denied)]
        first_socket = connection.sock
        answers.append(review_over(connection, allowed, "/mutate"))
        assert connection.sock is first_socket, "the connection was not kept alive"
        assert isinstance(connection.sock, ssl.SSLSocket)
        assert connection.sock.version() in ("TLSv1.2", "TLSv1.3")
        connection.close()
    assert [a["status"] for a in answers] == [200] * 5
    assert [a["body"]["response"]["allowed"] for a in answers] == [True, False, True, False, True]
    assert all(a["headers"].get("Connection", "").lower() != "close" for a in answers)


def test_rejects_oversized_chunked_body_and_accepts_chunked_review(
    tmp_path: Path, policies: Path
) -> None:
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    huge = (b"x" * 65536 for _ in range(60))  # 3.75 MiB, no Content-Length
    with running_server(tmp_path, policies) as server:
        connection = server.connection()
        connection.request(
            "POST",
            "/validate",
            body=huge,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        answer = connection.getresponse()
        error = answer.read()
        assert answer.status == 413, error
        assert "exceeds the limit" in json.loads(error)["error"]
        connection.close()
        connection = server.connection()
        connection.request(
            "POST",
            "/validate",
            body=iter([json.dumps(review).encode()]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        answer = connection.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read())["response"]["allowed"] is True
        connection.close()


def test_environment_variables_configure_the_server(tmp_path: Path, policies: Path) -> None:
    review = create_review(b"garbage", signer_name="nobody.example/x")
    with running_server(
        tmp_path, policies, use_flags=False, env={"CSR_WEBHOOK_UNMATCHED_SIGNERS": "allow"}
    ) as server:
        connection = server.connection()
        answer = review_over(connection, review)
        connection.close()
    assert answer["body"]["response"]["allowed"] is True


def test_refuses_tls_below_1_2(tmp_path: Path, policies: Path) -> None:
    with running_server(tmp_path, policies) as server:
        context = server.tls_context()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("ALL:@SECLEVEL=0")
        with (
            socket.create_connection(("127.0.0.1", server.port)) as raw,
            pytest.raises(ssl.SSLError) as refused,
        ):
            context.wrap_socket(raw, server_hostname="localhost")
        # The client did offer TLS 1.1; the server answered with a protocol alert.
        assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)


def test_startup_with_invalid_policies_exits_listing_every_problem(tmp_path: Path) -> None:
    bad = write_policies(
        tmp_path / "bad",
        **{
            "a.yaml": BASIC_POLICY.replace("usages:", "usage:"),
            "b.yaml": "apiVersion: [\n",
        },
    )
    result = subprocess.run(
        [str(CLI), "serve", "--policies", str(bad), "--bind", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "a.yaml:13: spec.rules[0].allowed.usage: unknown field 'usage'" in result.stderr
    assert "b.yaml:1:13: YAML syntax error: '[' is not closed" in result.stderr
    assert "refusing to start: 2 problem(s)" in result.stderr


def test_generates_development_certificate_when_none_given(tmp_path: Path, policies: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            str(CLI),
            "serve",
            "--policies",
            str(policies),
            "--bind",
            f"127.0.0.1:{port}",
            "--metrics-bind",
            f"127.0.0.1:{free_port()}",
            "--workers",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        directory = None
        while directory is None:
            line = process.stdout.readline().decode()
            assert line, "".join(lines)
            lines.append(line)
            if line.startswith("development certificate written to "):
                directory = Path(line.split(" to ", 1)[1].strip())
        cert = directory / "cert.pem"
        assert (directory / "key.pem").stat().st_mode & 0o777 == 0o600
        context = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 30
        while True:
            try:
                with (
                    socket.create_connection(("127.0.0.1", port)) as raw,
                    context.wrap_socket(raw, server_hostname="localhost") as tls,
                ):
                    tls.sendall(
                        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                    )
                    reply = tls.recv(4096)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert reply.startswith(b"HTTP/1.1 200")
        while not any("development certificate" in line and "WARNING" in line for line in lines):
            line = process.stdout.readline().decode()
            assert line, "".join(lines)
            lines.append(line)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def test_sigterm_finishes_in_flight_request_then_exits_zero(tmp_path: Path, policies: Path) -> None:
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    body = json.dumps(review).encode()
    with running_server(tmp_path, policies) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        tls = server.tls_context().wrap_socket(raw, server_hostname="localhost")
        head = (
            f"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        tls.sendall(head + body[:100])
        time.sleep(0.5)  # the worker is now reading the body
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        tls.sendall(body[100:])
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = tls.recv(65536)
            if not chunk:
                break
            reply += chunk
        tls.close()
        assert server.process.wait(timeout=40) == 0
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", reply[:200]
    payload = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert payload["response"]["uid"] == review["request"]["uid"]
    assert payload["response"]["allowed"] is True
