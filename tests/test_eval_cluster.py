"""`csr-webhook eval --nodes FILE --count-pending`: the cluster facts of constraints.node and
maxPending, read from Node manifests and counted in the CSRs evaluated, against the shipped
kubelet-serving policy."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import build_csr
from webhook.cli import main

POLICIES = str(Path(__file__).resolve().parent.parent / "policies")
SIGNER = "kubernetes.io/kubelet-serving"

NODES = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "worker-1"},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "10.0.0.15"},
                    {"type": "Hostname", "address": "worker-1"},
                    {"type": "InternalDNS", "address": "ip-10-0-0-15.ec2.internal"},
                ]
            },
        },
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-2"}, "status": {}},
    ],
}


def csr(
    name: str, node: str = "worker-1", *, ips: tuple[str, ...] = (), approved: bool = False
) -> dict[str, Any]:
    pem = build_csr(
        common_name=f"system:node:{node}",
        organization=["system:nodes"],
        dns_names=[node, "ip-10-0-0-15.ec2.internal"] if node == "worker-1" else [node],
        ip_addresses=ips,
    )
    conditions = [{"type": "Approved", "status": "True"}] if approved else []
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": SIGNER,
            "usages": ["digital signature", "server auth"],
            "expirationSeconds": 86400,
            "username": f"system:node:{node}",
            "groups": ["system:nodes", "system:authenticated"],
        },
        "status": {"conditions": conditions},
    }


def write(tmp_path: Path, name: str, value: object) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(value))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["eval", "--policies", POLICIES, "-o", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else [], err


def codes(result: dict[str, Any]) -> list[str]:
    return [v["code"] for v in result["violations"]]


def csr_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def test_nodes_and_counted_pending_csrs_let_a_bound_csr_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = write(tmp_path, "nodes.yaml", NODES)
    csrs = write(tmp_path, "csrs.yaml", csr_list(csr("own", ips=("10.0.0.15",))))
    code, results, _ = run(capsys, "-f", csrs, "--nodes", nodes, "--count-pending")
    assert (code, [r["verdict"] for r in results]) == (0, ["allowed"])


def test_an_address_the_node_lacks_and_a_missing_node_are_denied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = write(tmp_path, "nodes.yaml", NODES)
    items = csr_list(csr("foreign", ips=("10.0.0.16",)), csr("ghost", node="worker-9"))
    code, results, _ = run(
        capsys, "-f", write(tmp_path, "c.yaml", items), "--nodes", nodes, "--count-pending"
    )
    assert code == 1
    assert [codes(r) for r in results] == [
        ["node.san_not_an_address"],
        ["node.not_found", "node.san_not_an_address"],
    ]
    assert results[0]["violations"][0]["message"] == (
        "IP address '10.0.0.16' is not an address of Node 'worker-1' of type ExternalDNS, "
        "ExternalIP, Hostname, InternalDNS, InternalIP: it has ['10.0.0.15', 'worker-1', "
        "'ip-10-0-0-15.ec2.internal']"
    )


def test_an_address_another_node_lists_too_is_denied_to_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claimed = json.loads(json.dumps(NODES))
    claimed["items"][1]["status"] = {
        "addresses": [
            {"type": "Hostname", "address": "worker-2"},
            {"type": "InternalIP", "address": "10.0.0.15"},  # worker-1's, written by worker-2
        ]
    }
    nodes = write(tmp_path, "nodes.yaml", claimed)
    items = csr_list(
        csr("thief", node="worker-2", ips=("10.0.0.15",)), csr("own", ips=("10.0.0.15",))
    )
    code, results, _ = run(
        capsys, "-f", write(tmp_path, "c.yaml", items), "--nodes", nodes, "--count-pending"
    )
    assert (code, [codes(r) for r in results]) == (
        1,
        [["node.address_shared"], ["node.address_shared"]],
    )
    assert [r["violations"][0]["message"] for r in results] == [
        "IP address '10.0.0.15' is an address of Node 'worker-2' and also of Node 'worker-1': "
        "an address two Nodes list proves neither's (sharedAddresses: Deny)",
        "IP address '10.0.0.15' is an address of Node 'worker-1' and also of Node 'worker-2': "
        "an address two Nodes list proves neither's (sharedAddresses: Deny)",
    ]


def test_without_the_flags_the_facts_are_unknown_and_say_which_flag_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csrs = write(tmp_path, "csrs.yaml", csr("own"))
    code, results, _ = run(capsys, "-f", csrs)
    assert (code, codes(results[0])) == (1, ["node.unknown", "requester.pending_unknown"])
    messages = [v["message"] for v in results[0]["violations"]]
    assert messages[0].endswith(
        "cannot be told now: eval knows no Nodes without --nodes; eval counts no pending CSRs "
        "without --count-pending"
    )
    code, results, _ = run(capsys, "-f", csrs, "--nodes", write(tmp_path, "n.yaml", NODES))
    assert codes(results[0]) == ["requester.pending_unknown"]
    assert results[0]["violations"][0]["message"].endswith(
        ": eval counts no pending CSRs without --count-pending"
    )


def test_pending_csrs_of_the_input_count_against_the_quota_and_decided_ones_do_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = write(tmp_path, "nodes.yaml", NODES)
    three = [csr(f"p{n}") for n in range(3)]
    approved = [csr(f"a{n}", approved=True) for n in range(3)]
    code, results, _ = run(
        capsys,
        "-f",
        write(tmp_path, "three.yaml", csr_list(*three, *approved)),
        "--nodes",
        nodes,
        "--count-pending",
    )
    # Each CSR is judged as at its CREATE: a pending one sees the 2 others, an approved one
    # all 3 pending (it would be a fourth).
    assert code == 1
    assert [codes(r) for r in results] == [[]] * 3 + [["requester.too_many_pending"]] * 3
    four = write(tmp_path, "four.yaml", csr_list(*three, csr("p3")))
    code, results, _ = run(capsys, "-f", four, "--nodes", nodes, "--count-pending")
    assert code == 1
    assert [codes(r) for r in results] == [["requester.too_many_pending"]] * 4


@pytest.mark.parametrize(
    ("nodes", "error"),
    [
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}},
            "document 1: the document is a 'Pod' of 'v1', not a v1 Node",
        ),
        (
            {"kind": "List", "items": [{"kind": "Node", "metadata": {}}]},
            "document 1: items[0].metadata.name must be a non-empty string",
        ),
        (
            {"kind": "Node", "metadata": {"name": "n"}, "status": {"addresses": [{"type": 1}]}},
            "document 1: status.addresses[0]: type and address must be strings",
        ),
        (
            {"kind": "List", "items": [NODES["items"][0], NODES["items"][0]]},
            "document 1: Node 'worker-1' is given twice",
        ),
    ],
)
def test_bad_node_manifests_exit_2_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nodes: object, error: str
) -> None:
    node_file = write(tmp_path, "nodes.yaml", nodes)
    code = main(
        [
            "eval",
            "--policies",
            POLICIES,
            "-f",
            write(tmp_path, "c.yaml", csr("own")),
            "--nodes",
            node_file,
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith(f"csr-webhook: error: {node_file}:"), err
    assert error in err, err
