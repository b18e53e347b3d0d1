"""`csr-webhook eval`: verdicts for CSR manifests, kubectl Lists and AdmissionReviews."""

from __future__ import annotations

import copy
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.cli import main

DATA = Path(__file__).resolve().parent / "data" / "eval"
POLICIES = str(DATA / "policies.yaml")
LIST = DATA / "kubectl-list.yaml"

TABLE = """\
NAME     SIGNER               REQUESTER       VERDICT  POLICY     RULE    VIOLATIONS
alice-1  example.com/clients  alice           allowed  clients    people  -
alice-2  example.com/clients  alice           denied   clients    people  subject.not_allowed
trial-1  example.com/trial    alice           warned   trial      people  subject.not_allowed
node-w1  example.com/nodes    system:node:w1  allowed  nodes      node    -
other-1  example.com/other    carol           denied   unmatched  -       signer.unmatched

alice-2: subject.not_allowed: spec.request.subject.commonName: commonName 'bob' matches none of ['${username}' (here 'alice')]
trial-1: subject.not_allowed: spec.request.subject.commonName: commonName 'bob' matches none of ['${username}' (here 'alice')]
other-1: signer.unmatched: spec.signerName: no policy governs signer 'example.com/other'
"""


def listed() -> dict[str, Any]:
    value = yaml.safe_load(LIST.read_text())
    assert isinstance(value, dict)
    return value


def item(name: str) -> dict[str, Any]:
    return copy.deepcopy(next(i for i in listed()["items"] if i["metadata"]["name"] == name))


def run(
    capsys: pytest.CaptureFixture[str], *args: str, policies: str = POLICIES
) -> tuple[int, str, str]:
    code = main(["eval", "--policies", policies, *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def review(obj: dict[str, Any], operation: str = "CREATE", **request: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {
                "group": "certificates.k8s.io",
                "version": "v1",
                "kind": "CertificateSigningRequest",
            },
            "resource": {
                "group": "certificates.k8s.io",
                "version": "v1",
                "resource": "certificatesigningrequests",
            },
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["people", "system:authenticated"]},
            "object": obj,
            **request,
        },
    }


def test_kubectl_list_yaml_prints_table_and_exits_1_when_any_is_denied(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "-f", str(LIST))
    assert code == 1
    assert out == TABLE
    assert err == "5 CSR(s): 2 allowed, 1 warned, 0 audited, 2 denied\n"


def test_json_output_is_a_list_of_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-f", str(LIST), "-o", "json")
    assert code == 1
    verdicts = json.loads(out)
    assert [
        (v["name"], v["signer"], v["allowed"], v["verdict"], v["policy"], v["rule"])
        for v in verdicts
    ] == [
        ("alice-1", "example.com/clients", True, "allowed", "clients", "people"),
        ("alice-2", "example.com/clients", False, "denied", "clients", "people"),
        ("trial-1", "example.com/trial", True, "warned", "trial", "people"),
        ("node-w1", "example.com/nodes", True, "allowed", "nodes", "node"),
        ("other-1", "example.com/other", False, "denied", "unmatched", None),
    ]
    assert verdicts[1] == {
        "name": "alice-2",
        "kind": "CertificateSigningRequest",
        "signer": "example.com/clients",
        "requester": {"username": "alice", "groups": ["people", "system:authenticated"]},
        "allowed": False,
        "verdict": "denied",
        "policy": "clients",
        "rule": "people",
        "violations": [
            {
                "code": "subject.not_allowed",
                "field": "spec.request.subject.commonName",
                "message": "commonName 'bob' matches none of ['${username}' (here 'alice')]",
            }
        ],
    }
    assert [v["violations"] for v in verdicts if v["allowed"] and v["verdict"] == "allowed"] == [
        [],
        [],
    ]


def test_multi_document_yaml_and_several_files_exit_0_when_all_are_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = yaml.safe_dump_all([item("alice-1"), item("node-w1")])
    first = write(tmp_path, "two.yaml", "# two CSRs\n---\n" + docs)
    second = write(tmp_path, "warned.yaml", yaml.safe_dump(item("trial-1")))
    code, out, err = run(capsys, "-f", first, "-f", second)
    assert code == 0, out
    assert [line.split()[0] for line in out.splitlines()[1:4]] == ["alice-1", "node-w1", "trial-1"]
    assert err == "3 CSR(s): 2 allowed, 1 warned, 0 audited, 0 denied\n"


def test_json_list_from_kubectl_and_api_list_without_item_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "-f", write(tmp_path, "l.json", json.dumps(listed())))[1] == TABLE
    # The API's own list (`kubectl get --raw`): items carry neither kind nor apiVersion.
    items = [
        {k: v for k, v in i.items() if k not in ("kind", "apiVersion")} for i in listed()["items"]
    ]
    api_list = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequestList",
        "items": items,
    }
    assert run(capsys, "-f", write(tmp_path, "raw.json", json.dumps(api_list)))[1] == TABLE


def test_admission_review_takes_the_requester_from_user_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    obj = item("alice-1")
    del obj["spec"]["username"], obj["spec"]["groups"]  # as the mutating endpoint sees it
    code, out, _ = run(
        capsys, "-f", write(tmp_path, "r.json", json.dumps(review(obj))), "-o", "json"
    )
    assert code == 0
    (verdict,) = json.loads(out)
    assert (verdict["name"], verdict["verdict"], verdict["rule"]) == (
        "alice-1",
        "allowed",
        "people",
    )
    assert verdict["requester"] == {
        "username": "alice",
        "groups": ["people", "system:authenticated"],
    }


def test_reads_stdin_with_dash_and_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (("-f", "-"), ()):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LIST.read_bytes())))
        assert run(capsys, *args)[:2] == (1, TABLE)


def test_as_and_as_group_replace_the_spec_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = write(tmp_path, "n.yaml", yaml.safe_dump(item("node-w1")))
    code, out, _ = run(
        capsys, "-f", node, "--as", "system:node:w2", "--as-group", "system:nodes", "-o", "json"
    )
    (verdict,) = json.loads(out)
    assert code == 1
    assert verdict["requester"] == {
        "username": "system:node:w2",
        "groups": ["system:nodes", "system:authenticated"],  # added as the API server does
    }
    assert {v["code"] for v in verdict["violations"]} == {"subject.not_allowed", "dns.not_allowed"}
    code, out, _ = run(capsys, "-f", node, "--as", "system:node:w1", "--as-group", "system:nodes")
    assert code == 0
    code, _, err = run(capsys, "-f", node, "--as", "mallory")
    assert code == 1
    code, _, err = run(capsys, "-f", node, "--as-group", "system:nodes")
    assert (code, err) == (2, "csr-webhook: error: --as-group requires --as\n")


def test_unmatched_signers_allow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = write(tmp_path, "o.yaml", yaml.safe_dump(item("other-1")))
    assert run(capsys, "-f", other)[0] == 1
    code, out, _ = run(capsys, "-f", other, "--unmatched-signers", "allow")
    assert code == 0
    assert out.splitlines()[1].split() == [
        "other-1",
        "example.com/other",
        "carol",
        "allowed",
        "unmatched",
        "-",
        "-",
    ]


def test_empty_list_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write(tmp_path, "e.yaml", "apiVersion: v1\nkind: List\nitems: []\n")
    assert run(capsys, "-f", empty) == (
        0,
        "",
        "0 CSR(s): 0 allowed, 0 warned, 0 audited, 0 denied\n",
    )
    assert run(capsys, "-f", empty, "-o", "json")[:2] == (0, "[]\n")


def test_broken_policy_set_exits_2_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        "apiVersion: policy.csr-webhook.io/v1alpha1\nkind: SignerPolicy\nmetadata: {name: x}\n"
        "spec:\n  signerNames: [nope]\n  rules: [{name: r, surprise: 1}]\n",
    )
    code, out, err = run(capsys, "-f", str(LIST), policies=bad)
    assert (code, out) == (2, "")
    assert err == (
        f"{bad}:5: spec.signerNames[0]: signer name 'nope' must have the form "
        "'example.com/signer-name'\n"
        f"{bad}:6: spec.rules[0].surprise: unknown field 'surprise' (known: name, requesters, "
        "allowed, constraints)\n"
        f"csr-webhook: error: 2 problem(s) in policy set {bad!r}\n"
    )


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "syntax.yaml",
            "kind: List\nitems: []\n---\nkind: [\n",
            "{f}:4:7: document 2: YAML syntax error: '[' is not closed: ",
        ),
        (
            "scalar.yaml",
            "---\n# empty\n---\njust text\n",
            "{f}:4: document 2: expected a CertificateSigningRequest, a List or an AdmissionReview, got the scalar 'just text'",
        ),
        ("pod.yaml", "apiVersion: v1\nkind: Pod\n", "{f}:1: document 1: kind 'Pod' is not a"),
        ("bomb.yaml", BOMB, "{f}:1: document 1: document expands to more than 2000000 YAML nodes"),
        ("empty.yaml", "# nothing\n", "{f}: no YAML or JSON documents in the input"),
        ("dashes.yaml", "---\n---\n", "{f}: no YAML or JSON documents in the input"),
        ("bad.json", '{"kind": "List", "items": [}', "{f}:1: document 1: not valid JSON: "),
        ("nolist.yaml", "kind: List\nitems: {}\n", "{f}:1: document 1: items must be a list"),
        (
            "v1beta1.yaml",
            "kind: CertificateSigningRequest\napiVersion: certificates.k8s.io/v1beta1\n",
            "{f}:1: document 1: object has apiVersion 'certificates.k8s.io/v1beta1'; only "
            "certificates.k8s.io/v1",
        ),
    ],
)
def test_bad_input_exits_2_naming_file_and_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    code, out, err = run(capsys, "-f", path)
    assert (code, out) == (2, "")
    assert err.startswith("csr-webhook: error: " + message.format(f=path)), err


def test_bad_list_item_names_its_index_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = listed()
    value["items"][1]["spec"]["usages"] = "client auth"
    value["items"].insert(1, {"apiVersion": "v1", "kind": "Secret"})
    text = yaml.safe_dump(value, sort_keys=False)
    path = write(tmp_path, "l.yaml", text)
    _, _, err = run(capsys, "-f", path)
    line = text.splitlines().index("- apiVersion: v1") + 1
    assert (
        err
        == f"csr-webhook: error: {path}:{line}: document 1: items[1] is a 'Secret', not a CertificateSigningRequest\n"
    )
    del value["items"][1]
    path = write(tmp_path, "l.json", json.dumps(value))
    assert run(capsys, "-f", path)[2] == (
        f"csr-webhook: error: {path}: document 1: items[1].spec.usages must be a list\n"
    )


def test_review_must_be_a_create_of_a_csr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    update = write(
        tmp_path,
        "u.yaml",
        yaml.safe_dump(review(item("alice-1"), "UPDATE", subResource="approval")),
    )
    assert run(capsys, "-f", update)[2] == (
        f"csr-webhook: error: {update}:1: document 1: eval takes CREATE reviews of "
        "certificatesigningrequests, got UPDATE of certificatesigningrequests/approval\n"
    )
    broken = review(item("alice-1"))
    del broken["request"]["uid"]
    path = write(tmp_path, "b.json", json.dumps(broken))
    assert run(capsys, "-f", path)[2] == (
        f"csr-webhook: error: {path}: document 1: not a usable AdmissionReview: "
        "request.uid must be a non-empty string\n"
    )


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert run(capsys, "-f", missing)[::2] == (
        2,
        f"csr-webhook: error: {missing}: cannot read: No such file or directory\n",
    )
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8 text" in run(capsys, "-f", str(binary))[2]


def test_bad_request_encoding_is_a_denial_not_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    obj = item("alice-1")
    obj["spec"]["request"] = "not base64!"
    code, out, _ = run(capsys, "-f", write(tmp_path, "x.yaml", yaml.safe_dump(obj)), "-o", "json")
    assert code == 1
    assert [v["code"] for v in json.loads(out)[0]["violations"]] == ["csr.encoding"]
