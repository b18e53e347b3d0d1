"""The master's /metrics endpoint under idle connections: bounded threads, scrapes resume."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import BASIC_POLICY, write_policies
from tests.server import running_server
from webhook.metrics_http import MAX_CONNECTIONS

pytestmark = pytest.mark.server


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def test_idle_connections_to_the_metrics_port_hold_a_bounded_number_of_threads(
    tmp_path: Path,
) -> None:
    """prometheus_client's server gave each of 500 idle connections a master thread."""
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    with running_server(tmp_path, policies) as server:
        master = server.process.pid
        assert "csr_webhook_build_info" in scrape(server.metrics_port)
        before = threads(master)
        idle = [socket.create_connection(("127.0.0.1", server.metrics_port)) for _ in range(300)]
        try:
            time.sleep(1.0)
            assert threads(master) <= before + MAX_CONNECTIONS + 2
        finally:
            for connection in idle:
                connection.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert "csr_webhook_build_info" in scrape(server.metrics_port)
                break
            except OSError:
                assert time.monotonic() < deadline, "scrapes did not resume"
                time.sleep(0.2)
