"""Loopback only: every socket the control plane and csr-webhook listen on, and every connection
they hold, is on 127.0.0.1 (read from `ss`, by the processes' PIDs)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.webhook import Webhook

pytestmark = pytest.mark.e2e

PID = re.compile(r"pid=(\d+)")


def _sockets(pids: set[int]) -> list[tuple[str, str, str]]:
    """(state, local, peer) of every TCP/UDP socket held by one of `pids`."""
    listing = subprocess.run(
        ["ss", "-H", "-a", "-n", "-p", "-t", "-u"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in listing.splitlines():
        fields = line.split()
        if {int(p) for p in PID.findall(line)} & pids:
            found.append((fields[1], fields[4], fields[5]))
    return found


def _children(pid: int) -> set[int]:
    listed = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return {int(p) for p in listed.stdout.split()}


def test_every_process_binds_and_talks_to_loopback_only(cluster: Cluster, webhook: Webhook) -> None:
    pids = {p.pid for p in cluster.processes} | {webhook.process.pid}
    pids |= _children(webhook.process.pid)  # the gunicorn workers
    sockets = _sockets(pids)
    listening = [s for s in sockets if s[0] in {"LISTEN", "UNCONN"}]
    assert len(listening) >= 5, sockets  # etcd (2), apiserver, manager, webhook (2)
    for state, local, peer in sockets:
        assert local.startswith("127.0.0.1:"), (state, local, peer)
        assert peer.startswith(("127.0.0.1:", "0.0.0.0:", "*:")), (state, local, peer)
