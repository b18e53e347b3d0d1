"""A real `csr-webhook serve` spreads kept-alive connections over its workers.

The API server opens a handful of connections at once and keeps them alive, so whichever
worker holds a connection serves everything sent on it. Which worker holds each connection is
read from the kernel: the connection's inode in /proc/net/tcp (matched by the client's port)
against the socket inodes in each worker's /proc/<pid>/fd.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import (
    CLI,
    RunningServer,
    free_port,
    review_over,
    running_server,
    worker_pids,
)
from webhook.serving.devcert import generate_dev_certificate

pytestmark = pytest.mark.server

CONNECTIONS = 16


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` has open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def tcp_sockets(local_port: int) -> list[tuple[int, str, int]]:
    """(remote port, state, inode) of every TCP socket bound to `local_port` (state 0A: a
    listener, 01: an established connection)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                found.append((int(fields[2].rsplit(":", 1)[1], 16), fields[3], int(fields[9])))
    return found


def server_side_inodes(server_port: int) -> dict[int, int]:
    """Client port -> inode of the server's end of each TCP connection to `server_port`."""
    return {port: inode for port, state, inode in tcp_sockets(server_port) if state == "01"}


def wait_for_listeners(server: RunningServer, count: int, seconds: float = 30) -> None:
    """Until `count` sockets listen on the server's port: every worker has booted."""
    end = time.monotonic() + seconds
    while sum(state == "0A" for _, state, _ in tcp_sockets(server.port)) < count:
        assert time.monotonic() < end, f"not {count} listeners on {server.port}: {server.log()}"
        time.sleep(0.1)


def holders(server: RunningServer, client_ports: list[int]) -> list[int | None]:
    """For each client port, the pid of the worker that holds its connection (None: none)."""
    by_worker = {pid: socket_inodes(pid) for pid in worker_pids(server)}
    inodes = server_side_inodes(server.port)
    return [
        next((pid for pid, held in by_worker.items() if inodes.get(port) in held), None)
        for port in client_ports
    ]


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
