"""Hostile reviews found by a red-team pass over the hardening of issue 11: each one got an
HTTP 500, an unbounded answer or log line, or cost quadratic CPU. Costs are compared as
ratios within one run, never as absolute times."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID
from flask import Flask
from flask.testing import FlaskClient

from tests.builders import build_csr, raw_csr, raw_extension, seq, to_pem
from tests.conftest import BASIC_POLICY, MakeApp, write_policies
from tests.issuance_builders import TestCA, _ca_certificate, root_ca
from tests.issuance_setting import approved_csr, issue, leaf, policies
from tests.reviews import create_review, mutating_create_review
from tests.server import running_server
from tests.update_reviews import SIGNER, raw_update, stored_csr, validate
from webhook.x509 import der
from webhook.x509.chain import MAX_CHAIN_VERIFICATIONS

LONG_OID = der.encode_tlv(der.OID, b"\x2a" + b"\xff" * 2100 + b"\x01")


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_an_extension_with_a_huge_oid_arc_is_denied_not_a_500(
    client: FlaskClient, path: str
) -> None:
    extension = seq(LONG_OID, der.encode_tlv(der.OCTET_STRING, b"\x05\x00"))
    pem = to_pem(raw_csr(extensions=[extension]))
    build = create_review if path == "/validate" else mutating_create_review
    answer = client.post(path, json=build(pem, signer_name="example.com/signer"))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    response = answer.get_json()["response"]
    if path == "/validate":
        assert response["allowed"] is False
        causes = response["status"]["details"]["causes"]
        assert any("arc longer than 9 octets" in c["message"] for c in causes), causes


def test_a_network_in_an_ip_san_is_refused_at_create_and_issuance(
    make_app: MakeApp, tmp_path: Path
) -> None:
    """8 octets: cryptography reads 10.0.0.0/8, Go refuses the CSR."""
    client = make_app(policies(tmp_path)).test_client()
    network = der.encode_tlv(0x87, b"\x0a\x00\x00\x00\xff\x00\x00\x00")
    san = raw_extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, seq(network))
    pem = to_pem(raw_csr(extensions=[san]))
    response = issue(client, leaf(), old=approved_csr(pem=pem))  # asserts HTTP 200
    assert response["allowed"] is False


def cpu(action: Any, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def test_condition_checks_cost_linear_time(client: FlaskClient) -> None:
    def update(count: int) -> Any:
        conditions = [{"type": "Failed", "status": "False"} for _ in range(count)]
        old = stored_csr(
            build_csr(common_name="alice"), signer_name="example.com/signer", conditions=conditions
        )
        review = raw_update(old, old, "status", SIGNER)
        return lambda: validate(client, review)

    small, large = update(500), update(5000)
    small()
    ratio = cpu(large) / cpu(small)
    print(f"5000 vs 500 conditions: {ratio:.1f}x the CPU time")
    assert ratio < 30, f"10x the conditions cost {ratio:.1f}x"


def _same_name_chain(count: int) -> list[TestCA]:
    chain: list[TestCA] = []
    issuer = root_ca()
    for index in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        issuer = TestCA(name=f"i{index}", key=key, certificate=_ca_certificate("same", key, issuer))
        chain.append(issuer)
    return chain


def test_a_chain_of_same_name_intermediates_costs_a_bounded_number_of_checks(
    make_app: MakeApp, tmp_path: Path
) -> None:
    """Listed so that each step finds its parent last, n intermediates cost n²/2 signature
    checks; past MAX_CHAIN_VERIFICATIONS the chain is refused as untrusted."""
    client = make_app(policies(tmp_path)).test_client()
    short = _same_name_chain(3)
    assert issue(client, leaf(ca=short[-1], chain=short))["allowed"] is True
    chain = _same_name_chain(120)  # 7260 checks unbounded
    assert len(chain) * (len(chain) + 1) // 2 > 20 * MAX_CHAIN_VERIFICATIONS
    certificate = leaf(ca=chain[-1], chain=chain)
    started = time.process_time()
    response = issue(client, certificate)
    took = time.process_time() - started
    assert response["allowed"] is False
    assert [c["reason"] for c in response["status"]["details"]["causes"]] == [
        "issuance.untrusted_issuer"
    ]
    # the cost of the refusal is that of the budget, not of the chain's pairs
    one = cpu(lambda: issue(client, leaf(ca=short[-1], chain=short)))
    print(f"120 same-name intermediates: {took / one:.1f}x a 3-certificate chain")
    assert took / one < MAX_CHAIN_VERIFICATIONS


TEMPLATE_POLICY = """
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: example}
spec:
  signerNames: ["example.com/signer"]
  rules:
    - name: clients
      allowed:
        subject:
          commonName: {values: ["*"]}
        dnsNames: {values: ["${username}.example.com"], maxItems: 1000}
        usages: ["digital signature", "client auth"]
"""


def test_a_huge_username_costs_no_more_per_san_than_a_short_one(make_app: MakeApp) -> None:
    """A template was expanded for every SAN it was matched against: 1 MB username x 1000
    SANs was ~2 s. A variable over 1024 characters is not defined, so it matches nothing."""
    client = make_app({"example.yaml": TEMPLATE_POLICY}).test_client()
    pem = build_csr(common_name="x", dns_names=[f"n{i}.other.org" for i in range(1000)])

    def review(username: str) -> Any:
        body = create_review(pem, signer_name="example.com/signer", requester=username)
        return lambda: client.post("/validate", json=body)

    short, huge = review("a" * 1000), review("a" * 1_000_000)
    short()
    ratio = cpu(huge) / cpu(short)
    print(f"1 MB vs 1 KB username over 1000 SANs: {ratio:.1f}x the CPU time")
    assert ratio < 30, f"1000x the username cost {ratio:.1f}x"
    pem = build_csr(common_name="x", dns_names=["a" * 1025 + ".example.com"])
    body = create_review(pem, signer_name="example.com/signer", requester="a" * 1025)
    assert client.post("/validate", json=body).get_json()["response"]["allowed"] is False


@pytest.mark.parametrize("field", ["apiVersion", "kind"])
def test_an_error_answer_does_not_echo_a_huge_value(app: Flask, field: str) -> None:
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}
    review[field] = "x" * 3_000_000
    answer = app.test_client().post(
        "/validate", data=json.dumps(review), content_type="application/json"
    )
    assert answer.status_code == 400
    assert len(answer.data) < 1024
    assert "(3000002 characters)" in answer.get_json()["error"]


@pytest.mark.parametrize("field", ["operation", "subResource"])
def test_the_decision_log_line_is_bounded(
    app: Flask, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    review = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    review["request"][field] = "X" * 1_000_000
    with caplog.at_level("INFO", logger="csr_webhook.decisions"):
        answer = app.test_client().post("/validate", json=review)
    assert answer.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "csr_webhook.decisions"]
    assert lines
    assert max(len(line) for line in lines) < 4096


CHUNKED_HEAD = (
    b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)


@pytest.mark.server
@pytest.mark.parametrize(
    "body",
    [b"1;a\rb\r\nx\r\n0\r\n\r\n", b"1\r\nx\r\n0\r\nContent-Length: 5\r\n\r\n"],
    ids=["bare-cr-in-chunk-extension", "content-length-trailer"],
)
def test_a_chunked_body_the_server_cannot_read_is_a_4xx_not_a_500(
    tmp_path: Path, body: bytes
) -> None:
    policies_dir = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    with running_server(tmp_path, policies_dir) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with server.tls_context().wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(CHUNKED_HEAD + body)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]
    assert b'"error"' in answer
