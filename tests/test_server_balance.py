"""A real `csr-webhook serve` spreads kept-alive connections over its workers.

The API server opens a handful of connections at once and keeps them alive, so whichever
worker holds a connection serves everything sent on it. Which worker holds each connection is
read from the kernel (tests/server.py, `holders`).
"""

from __future__ import annotations

import http.client
import socket
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import (
    CLI,
    free_port,
    holders,
    listeners_held,
    review_over,
    running_server,
    wait_for_listeners,
    worker_pids,
)
from tests.test_operations import wait_for
from webhook.serving.devcert import generate_dev_certificate

pytestmark = pytest.mark.server

CONNECTIONS = 16


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})


def test_kept_alive_connections_opened_at_once_are_spread_over_the_workers(
    tmp_path: Path, policies: Path
) -> None:
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    with running_server(tmp_path, policies) as server:
        wait_for_listeners(server, 2)  # /readyz answers once the first worker listens
        assert len(worker_pids(server)) == 2
        # All TCP connections first, as a client opening its pool does: they wait to be
        # accepted together, then each does its TLS handshake and one review.
        raw = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(CONNECTIONS)]
        context = server.tls_context()
        connections = []
        for sock in raw:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
            connections.append(connection)
        answers = [review_over(connection, review) for connection in connections]
        client_ports = [connection.sock.getsockname()[1] for connection in connections]
        held = holders(server, client_ports)
        # Still the same connections: each serves a second review where it was accepted.
        again = [review_over(connection, review) for connection in connections]
        assert holders(server, client_ports) == held
        for connection in connections:
            connection.close()
    assert [a["status"] for a in answers + again] == [200] * (2 * CONNECTIONS)
    assert None not in held, f"a connection held by no worker: {held}"
    per_worker = Counter(held)
    # With a fair hash over 2 workers, one gets all 16 with probability 2**-15.
    assert len(per_worker) == 2, f"one worker holds every connection: {per_worker}"


def test_a_port_in_use_stops_the_server_at_once_with_one_clear_error(
    tmp_path: Path, policies: Path
) -> None:
    cert, key = generate_dev_certificate(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(CLI), "serve", "--policies", str(policies), "--bind", f"127.0.0.1:{port}",
             "--metrics-bind", f"127.0.0.1:{free_port()}", "--tls-cert", str(cert),
             "--tls-key", str(key)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"csr-webhook: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        result.stderr
    )
    assert "Booting worker" not in result.stderr


def test_listens_on_every_ipv6_and_ipv4_address_with_a_listener_per_worker(
    tmp_path: Path, policies: Path
) -> None:
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    with running_server(tmp_path, policies, host="[::]") as server:
        wait_for_listeners(server, 2)
        answers = []
        for host in ("127.0.0.1", "::1"):
            connection = http.client.HTTPSConnection(
                host, server.port, context=server.tls_context(), timeout=10
            )
            answers.append(review_over(connection, review)["status"])
            connection.close()
    assert answers == [200, 200]


@pytest.mark.parametrize("mode", ["per-worker", "shared"])
def test_listeners_setting_gives_each_worker_its_own_socket_or_one_shared(
    tmp_path: Path, policies: Path, mode: str
) -> None:
    """The default is per-worker; shared is set here with the variable, the flag's twin."""
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    env = {} if mode == "per-worker" else {"CSR_WEBHOOK_LISTENERS": "shared"}
    with running_server(tmp_path, policies, env=env) as server:
        wait_for_listeners(server, 2 if mode == "per-worker" else 1)
        wait_for(lambda: len(worker_pids(server)) == 2)
        held = listeners_held(server)
        master, workers = held.pop(server.process.pid), list(held.values())
        connection = server.connection()
        status = review_over(connection, review)["status"]
        connection.close()
        log = server.log()
    assert status == 200
    assert all(len(inodes) == 1 for inodes in workers), held
    if mode == "per-worker":
        assert workers[0] != workers[1], f"one listener for both workers: {held}"
        assert master == set(), "the master listens: the kernel would queue connections on it"
        assert "one SO_REUSEPORT listener per worker" in log
        assert "Listening at:  (" not in log, "gunicorn's line naming no listener"
    else:
        assert workers[0] == workers[1] == master, f"not one shared socket: {held}"
        assert "SO_REUSEPORT" not in log
        assert f"Listening at: https://127.0.0.1:{server.port} (" in log
