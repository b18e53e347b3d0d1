"""Node objects for the e2e tier: no kubelet runs, so the tests create the Nodes the
node-bound kubelet-serving policy looks up, with the addresses a kubelet would report, and
wait until the webhook's cluster facts know them (a server-side dry run is the probe)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any

from tests.e2e.approver import serving_csr
from tests.e2e.cluster import Cluster, Process, wait_for


@dataclass(frozen=True)
class E2ENode:
    name: str
    internal_ip: str

    def manifest(self) -> dict[str, Any]:
        # A Node's status may be set when it is created; later only through its subresource.
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": {"e2e": "serving-nodes"}},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": self.internal_ip},
                    {"type": "Hostname", "address": self.name},
                ]
            },
        }


# TEST-NET-1 addresses: only ever SANs in certificates, never destinations.
# a and b: test_kubelet; c: the serving manager and the leader kill; d: the pending quota.
NODES = (
    E2ENode("e2e-node-a", "192.0.2.10"),
    E2ENode("e2e-node-b", "192.0.2.11"),
    E2ENode("e2e-node-c", "192.0.2.12"),
    E2ENode("e2e-node-d", "192.0.2.13"),
)


def create_nodes(cluster: Cluster, nodes: tuple[E2ENode, ...], *processes: Process) -> None:
    for node in nodes:
        if cluster.kubectl("get", "node", node.name).returncode != 0:
            cluster.kubectl_ok("create", "-f", "-", input=json.dumps(node.manifest()))
    for node in nodes:
        # Four in a row: each review may reach another worker, each with its own Node cache.
        wait_for(
            f"the webhook's workers to know Node {node.name}",
            partial(_allowed_four_times, cluster, node),
            60,
            *processes,
        )


def _allowed_four_times(cluster: Cluster, node: E2ENode) -> bool:
    return all(_dry_run_allowed(cluster, node) for _ in range(4))


def _dry_run_allowed(cluster: Cluster, node: E2ENode) -> bool:
    manifest = serving_csr(f"probe-{node.name}", node.name, ips=[node.internal_ip])
    done = cluster.kubectl(
        "create",
        "-f",
        "-",
        "--dry-run=server",
        "--as",
        f"system:node:{node.name}",
        "--as-group",
        "system:nodes",
        input=json.dumps(manifest),
    )
    return done.returncode == 0
