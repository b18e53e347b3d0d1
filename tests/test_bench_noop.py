"""The benchmark's no-op baseline answers a review with its uid, allowed, in both fronts: Flask's
views, and (BENCH_NOOP_FRONT=wsgi) the WSGI front that mirrors the real server's review path. Its
floor mode (BENCH_NOOP_WORK=floor) is the real application judging the signature alone."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask

from bench.compare import compare_text
from bench.corpus import POLICY_DIR, build_corpus, parse_mix
from bench.noop_app import (
    FRONT_ENV,
    WORK_ENV,
    create_noop_app,
    floor_evaluate,
    load_floor_app,
)
from bench.noop_app import main as noop_main
from bench.run import preflight, start_server
from webhook.admission import parse_review
from webhook.policy.loader import load_policies
from webhook.serving import views
from webhook.serving.app import create_app
from webhook.serving.devcert import generate_dev_certificate
from webhook.serving.reload import PolicyStore
from webhook.serving.settings import Settings

DER, PEM = Encoding.DER, Encoding.PEM

UID = "0f1e2d3c-0000-4000-8000-000000000001"
REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {"uid": UID, "operation": "CREATE"},
}


@pytest.mark.parametrize("front", ["flask", "wsgi"])
def test_the_noop_allows_and_echoes_the_uid(front: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FRONT_ENV, front)
    app = create_noop_app()
    wrapped = getattr(app.wsgi_app, "__func__", None) is not Flask.wsgi_app
    assert wrapped is (front == "wsgi")
    client = app.test_client()
    for path in ("/validate", "/mutate"):
        answer = client.post(path, data=json.dumps(REVIEW), content_type="application/json")
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json == {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": UID, "allowed": True},
        }
    assert client.get("/readyz").json == {"status": "ready"}
    assert client.get("/validate").status_code == 405


def _with_broken_signature(review: dict[str, object]) -> dict[str, object]:
    """The review with the last byte of its CSR's signature changed (the DER still parses)."""
    spec = review["request"]["object"]["spec"]  # type: ignore[index]
    der = bytearray(x509.load_pem_x509_csr(base64.b64decode(spec["request"])).public_bytes(DER))
    der[-1] ^= 0x01
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(PEM)
    broken = copy.deepcopy(review)
    broken["request"]["object"]["spec"]["request"] = base64.b64encode(pem).decode()  # type: ignore[index]
    return broken


@pytest.mark.parametrize("front", ["flask", "wsgi"])
def test_the_verifying_noop_checks_the_signature_and_nothing_else(
    front: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FRONT_ENV, front)
    monkeypatch.setenv(WORK_ENV, "verify")
    client = create_noop_app().test_client()
    review = build_corpus(1, parse_mix("ecdsa-p256=1")).reviews[0]
    uid = review["request"]["uid"]
    for body, answered in ((review, uid), (_with_broken_signature(review), "signature invalid")):
        answer = client.post("/validate", data=json.dumps(body), content_type="application/json")
        assert answer.status_code == 200
        assert json.loads(answer.data)["response"] == {"uid": answered, "allowed": True}


def test_the_floor_server_is_the_real_app_judging_the_signature_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BENCH_NOOP_WORK=floor: the real application answers (its review parse, response and
    decision line), and its engine allows exactly the CSRs whose signature verifies."""
    monkeypatch.setattr(views, "evaluate", vars(views)["evaluate"])  # put back after the test
    policy_set = load_policies([POLICY_DIR]).policy_set
    assert policy_set is not None

    def load_real() -> Flask:
        return create_app(Settings(policies=POLICY_DIR), PolicyStore(POLICY_DIR, policy_set))

    app = load_floor_app(load_real)
    assert vars(views)["evaluate"] is floor_evaluate
    client = app.test_client()
    review = build_corpus(1, parse_mix("ecdsa-p256=1")).reviews[0]
    uid = review["request"]["uid"]
    for body, allowed in ((review, True), (_with_broken_signature(review), False)):
        answer = client.post("/validate", data=json.dumps(body), content_type="application/json")
        assert answer.status_code == 200
        response = answer.json["response"]
        assert (response["uid"], response["allowed"]) == (uid, allowed)
    # Not a CSR review at all: the real server's own 400, not the floor's.
    assert client.post("/validate", data="[]", content_type="application/json").status_code == 400


def _decision_lines(log: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if '"msg"' in line]
    return [line for line in lines if line.get("msg") == "admission review"]


@pytest.mark.server
def test_bench_runs_the_floor_server_in_the_real_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m bench --real floor`: start_server runs bench.noop_app with
    BENCH_NOOP_WORK=floor, a real gunicorn over TLS whose decision lines name the floor; the
    no-op beside it runs plain, whatever BENCH_NOOP_WORK the bench itself was started with."""
    monkeypatch.setenv(WORK_ENV, "floor")
    corpus = build_corpus(2, parse_mix("ecdsa-p256=1"))
    cert, key = generate_dev_certificate(tmp_path)
    servers = {
        "real": start_server(
            "real", tmp_path, cert=cert, key=key, workers=1, threads=1, work="floor"
        ),
        "noop": start_server("noop", tmp_path, cert=cert, key=key, workers=1, threads=1),
    }
    try:
        preflight(servers, corpus.reviews, corpus.bodies())
    finally:
        assert [server.stop() for server in servers.values()] == [0, 0]
    decisions = _decision_lines(servers["real"].log)
    assert len(decisions) == 2
    assert {(d["decision"], d["policy"], d["rule"]) for d in decisions} == {
        ("allowed", "floor", "floor")
    }
    assert _decision_lines(servers["noop"].log) == []


def test_an_unknown_work_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORK_ENV, "Floor")
    assert noop_main([]) == 2


def test_the_floor_denies_a_request_that_is_not_a_csr() -> None:
    review = build_corpus(1, parse_mix("ecdsa-p256=1")).reviews[0]
    spec = review["request"]["object"]["spec"]
    spec["request"] = base64.b64encode(
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    ).decode()
    decision = floor_evaluate(parse_review(json.dumps(review).encode()))
    assert (decision.allowed, decision.policy) == (False, "floor")


def test_a_comparison_says_when_the_real_column_was_not_csr_webhook() -> None:
    baselines = Path(__file__).resolve().parent.parent / "bench" / "baselines"
    server = json.loads((baselines / "2026-12-02-1f795f7-fast-machine.json").read_text())
    floor = json.loads((baselines / "2026-12-02-f05eb43-floor.json").read_text())
    before, after = compare_text(server, floor, "a.json", "b.json").splitlines()[:2]
    assert before.endswith("commit 1f795f7)")
    assert after.endswith("commit f05eb43, real column: --real floor)")
