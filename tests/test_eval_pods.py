"""`csr-webhook eval` for PodCertificateRequests: manifests, Lists mixing them with CSRs, typed
Lists, CREATE reviews; the creator is the node in spec.nodeName unless --as says otherwise."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.authoring import pod_reviews
from webhook.authoring.generate import KeyCache
from webhook.authoring.pod_case_review import build_pod_object
from webhook.authoring.pod_suite import parse_pod_spec
from webhook.cli import main

SHIPPED = str(Path(__file__).resolve().parent.parent / "policies")
CSR_LIST = Path(__file__).resolve().parent / "data" / "eval" / "kubectl-list.yaml"
KEYS = KeyCache()
NOTE = (
    "PodCertificateRequests are judged as created by the node in their spec.nodeName "
    "(system:node:<nodeName>, group system:nodes); --as judges another creator\n"
)


def pcr(
    name: str, namespace: str = "team-a", node: str = "worker-1", **spec: Any
) -> dict[str, Any]:
    """A PodCertificateRequest as `kubectl get pcr -o yaml` shows it: stored, with status."""
    pod = parse_pod_spec(
        {
            "signerName": "mesh.example.com/spiffe",
            "namespace": namespace,
            "name": f"{name}-pod",
            "serviceAccountName": "web",
            "nodeName": node,
            **spec,
        }
    )
    created = pod_reviews.created_pcr(build_pod_object(pod, KEYS, name=name))
    return pod_reviews.stored_pcr(created, {"conditions": [pod_reviews.condition("Denied")]})


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["eval", "--policies", SHIPPED, *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, value: object) -> str:
    """JSON for a .json name, else YAML documents (`value` a list of them)."""
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(value))
    else:
        assert isinstance(value, list)
        path.write_text(yaml.safe_dump_all(value))
    return str(path)


def test_manifests_are_judged_as_created_by_their_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "p.yaml", [pcr("web"), pcr("api", namespace="payments", key="rsa-3072")])
    code, out, err = run(capsys, "-f", path)
    assert code == 1
    rows = [line.split() for line in out.splitlines()[:3]]
    signer, node = "mesh.example.com/spiffe", "system:node:worker-1"
    codes = "pod.namespace_not_allowed,pod.service_account_not_allowed,key.type_not_allowed"
    assert rows == [
        ["NAME", "SIGNER", "REQUESTER", "VERDICT", "POLICY", "RULE", "VIOLATIONS"],
        ["team-a/web", signer, node, "allowed", "spiffe-mesh", "-", "-"],
        ["payments/api", signer, node, "denied", "spiffe-mesh", "-", codes],
    ]
    assert "payments/api: pod.namespace_not_allowed: metadata.namespace: " in out
    assert (
        err
        == NOTE + "0 CSR(s), 2 PodCertificateRequest(s): 1 allowed, 0 warned, 0 audited, 1 denied\n"
    )


def test_as_judges_another_creator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "p.yaml", [pcr("web")])
    code, out, err = run(capsys, "-f", path, "--as", "alice", "-o", "json")
    assert code == 1
    [verdict] = json.loads(out)
    assert verdict["kind"] == "PodCertificateRequest"
    assert verdict["requester"] == {"username": "alice", "groups": ["system:authenticated"]}
    assert [v["code"] for v in verdict["violations"]] == ["pod.requester_not_permitted"]
    assert NOTE not in err
    node = ["--as", "system:node:worker-2", "--as-group", "system:nodes"]
    code, out, _ = run(capsys, "-f", path, *node, "-o", "json")
    assert [v["code"] for v in json.loads(out)[0]["violations"]] == ["pod.node_mismatch"]


def test_a_list_may_mix_csrs_and_pod_certificate_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csrs = yaml.safe_load(CSR_LIST.read_text())
    mixed = {"apiVersion": "v1", "kind": "List", "items": [csrs["items"][0], pcr("web")]}
    code, out, err = run(capsys, "-f", write(tmp_path, "l.json", mixed), "-o", "json")
    assert code == 1  # the CSR's signer is not one of the shipped policies'
    verdicts = json.loads(out)
    assert [(v["kind"], v["name"], v["verdict"]) for v in verdicts] == [
        ("CertificateSigningRequest", "alice-1", "denied"),
        ("PodCertificateRequest", "team-a/web", "allowed"),
    ]
    assert err.endswith(
        "1 CSR(s), 1 PodCertificateRequest(s): 1 allowed, 0 warned, 0 audited, 1 denied\n"
    )


def test_a_typed_list_without_item_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = []
    for obj in (pcr("web"), pcr("db", key="ecdsa-p384")):
        bare = copy.deepcopy(obj)
        del bare["kind"], bare["apiVersion"]
        items.append(bare)
    typed = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "PodCertificateRequestList",
        "items": items,
    }
    code, out, _ = run(capsys, "-f", write(tmp_path, "l.json", typed), "-o", "json")
    assert code == 1
    assert [(v["name"], [c["code"] for c in v["violations"]]) for v in json.loads(out)] == [
        ("team-a/web", []),
        ("team-a/db", ["key.curve_not_allowed"]),
    ]


def test_a_create_review_is_judged_with_its_caller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = build_pod_object(
        parse_pod_spec(
            {
                "signerName": "mesh.example.com/spiffe",
                "namespace": "team-a",
                "name": "web-0",
                "serviceAccountName": "web",
                "nodeName": "worker-1",
            }
        ),
        KEYS,
    )
    caller = {
        "username": "system:node:worker-2",
        "groups": ["system:nodes", "system:authenticated"],
    }
    review = pod_reviews.create_review(sent, caller)
    code, out, err = run(capsys, "-f", write(tmp_path, "r.json", review), "-o", "json")
    assert code == 1
    [verdict] = json.loads(out)
    assert verdict["requester"]["username"] == "system:node:worker-2"
    assert [v["code"] for v in verdict["violations"]] == ["pod.node_mismatch"]
    assert NOTE not in err  # the review says who created it


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"spec": "x"}, "document 1: object.spec must be an object"),
        (
            {"apiVersion": "certificates.k8s.io/v2"},
            "document 1: object has apiVersion "
            "'certificates.k8s.io/v2'; only certificates.k8s.io/v1 or certificates.k8s.io/v1beta1",
        ),
        ({"metadata": []}, "document 1: object.metadata must be an object"),
        (
            {"spec": {"signerName": "mesh.example.com/spiffe"}},
            "document 1: object.spec.nodeName must be a node name, got None",
        ),
        (
            {"spec": {**pcr("web")["spec"], "maxExpirationSeconds": "1d"}},
            "document 1: object.spec.maxExpirationSeconds must be an integer",
        ),
    ],
)
def test_bad_input_names_file_and_document_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, "bad.yaml", [{**pcr("web"), **change}])
    code, out, err = run(capsys, "-f", path)
    assert (code, out) == (2, "")
    assert err == f"csr-webhook: error: {path}:1: {message}\n"


def test_an_update_review_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stored = pcr("web")
    review = pod_reviews.status_review(stored, {}, {"username": "signer"})
    path = write(tmp_path, "r.json", review)
    assert run(capsys, "-f", path) == (
        2,
        "",
        f"csr-webhook: error: {path}: document 1: eval takes CREATE reviews, got UPDATE of "
        "podcertificaterequests/status\n",
    )
