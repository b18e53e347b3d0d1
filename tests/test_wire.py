"""The bytes of an answer and of a decision line, against what Flask's jsonify and
`logging.Formatter("%(message)s")` made of the same values before webhook.response's encoder
and webhook.serving.logs' record replaced them: compact JSON, non-ASCII escaped, keys in the
order built, the answer ending in one newline, the same headers; and the answers of
webhook.serving.views.review_wsgi (in front of Flask) against the Flask views'.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from flask import Flask
from flask import Response as FlaskResponse
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request

from tests.builders import build_csr
from tests.conftest import MakeApp
from tests.decision_capture import configured_decision_log
from tests.reviews import create_review, mutating_create_review
from webhook.serving.views import ARRIVAL_KEY, _BodyError, _expired, _read_body

LIFETIME_POLICY = """
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: wire}
spec:
  signerNames: ["example.com/wire"]
  rules:
    - name: any-cn
      allowed:
        subject:
          commonName: {values: ["*"]}
        dnsNames: {values: ["*.example.com"]}
        usages: ["digital signature", "server auth"]
      constraints:
        lifetime: {max: 24h, default: 12h, onExceed: Clamp}
"""


def _as_jsonify_sent(app: Flask, body: bytes) -> tuple[bytes, str, str]:
    with app.app_context():
        sent = app.json.response(json.loads(body))
    assert isinstance(sent, FlaskResponse)
    return sent.get_data(), sent.headers["Content-Type"], sent.headers["Content-Length"]


USAGES = ["digital signature", "server auth"]
REVIEWS = {
    "allowed": (
        "/validate",
        create_review(
            build_csr(common_name="ok"),
            signer_name="example.com/wire",
            usages=USAGES,
            expiration_seconds=3600,
        ),
    ),
    "denied, non-ASCII and control characters in the values": (
        "/validate",
        create_review(
            build_csr(
                common_name="ok", organization=["ünïcödé\tcorp"], dns_names=["x.example.net"]
            ),
            signer_name="example.com/wire",
            usages=["digital signature", "server auth", "client auth"],
        ),
    ),
    "mutated, with a patch": (
        "/mutate",
        mutating_create_review(
            build_csr(common_name="ok"), signer_name="example.com/wire", usages=USAGES
        ),
    ),
}


@pytest.mark.parametrize("case", REVIEWS)
def test_the_answer_is_byte_for_byte_what_jsonify_sent(make_app: MakeApp, case: str) -> None:
    app = make_app({"wire.yaml": LIFETIME_POLICY})
    path, review = REVIEWS[case]
    answer = app.test_client().post(path, json=review)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.get_json()
    response = body["response"]
    if case == "allowed":
        assert response["allowed"] is True and "auditAnnotations" in response
    if case.startswith("denied"):
        assert response["allowed"] is False and "\\u00fc" in answer.get_data(as_text=True)
    if case.startswith("mutated"):
        assert response["patchType"] == "JSONPatch"
    data, content_type, length = _as_jsonify_sent(app, answer.get_data())
    assert answer.get_data() == data
    assert answer.headers["Content-Type"] == content_type == "application/json"
    assert answer.headers["Content-Length"] == length


def test_the_decision_line_is_the_json_of_the_decision_record(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app({"wire.yaml": LIFETIME_POLICY})
    review = create_review(
        build_csr(common_name="ök"),
        signer_name="example.com/wire",
        usages=USAGES,
        expiration_seconds=3600,
    )
    review["request"]["uid"] = "uid-\n-ü"
    with configured_decision_log(caplog) as stream:
        answer = app.test_client().post("/validate", json=review)
    assert answer.status_code == 200
    [line] = stream.getvalue().splitlines()
    [record] = caplog.records
    # What decision_log.info(line) with Formatter("%(message)s") wrote: the record's message.
    assert line == logging.Formatter("%(message)s").format(record) == record.getMessage()
    assert record.levelno == logging.INFO and record.funcName == "log_decision"
    fields = json.loads(line)
    assert line == json.dumps(fields, separators=(",", ":"))
    assert fields["uid"] == "uid-\n-ü" and "\\u00fc" in line and "\n" not in line
    assert list(fields) == [
        "time", "msg", "uid", "webhook", "resource", "namespace", "name", "signer",
        "operation", "subresource", "user", "requester", "decision", "policy", "rule",
        "violations", "dryRun", "durationMs",
    ]  # fmt: skip
    assert fields["decision"] == "allowed", fields["violations"]
    assert fields["time"].endswith("Z")


TOO_LONG = b"{" + b" " * (3 * 1024 * 1024) + b"}"
REQUESTS: dict[str, dict[str, Any]] = {
    "allowed": {"path": "/validate", "json": REVIEWS["allowed"][1]},
    "mutated": {"path": "/mutate", "json": REVIEWS["mutated, with a patch"][1]},
    "malformed": {"path": "/validate", "data": b'{"kind": 1}', "content_type": "application/json"},
    "not JSON": {"path": "/validate", "data": b"{", "content_type": "application/json"},
    "wrong content type": {"path": "/mutate", "data": b"{}", "content_type": "text/plain"},
    "too long": {"path": "/validate", "data": TOO_LONG, "content_type": "application/json"},
    "expired": {"path": "/validate?timeout=1s", "json": REVIEWS["allowed"][1]},
}


@pytest.mark.parametrize("case", REQUESTS)
def test_review_wsgi_answers_as_the_flask_views_do(make_app: MakeApp, case: str) -> None:
    """create_app puts review_wsgi in front of Flask; the Flask views it bypasses give the same
    status line, headers and bytes."""
    app = make_app({"wire.yaml": LIFETIME_POLICY})
    flask_only = Client(Flask.wsgi_app.__get__(app))
    sent = dict(REQUESTS[case])
    if case == "expired":  # arrived 5 s ago, with a 1 s timeout
        sent["environ_base"] = {ARRIVAL_KEY: time.monotonic() - 5}
    fast = app.test_client().open(method="POST", **sent)
    slow = flask_only.open(method="POST", **sent)
    assert fast.status == slow.status
    assert fast.headers.to_wsgi_list() == slow.headers.to_wsgi_list()
    if case == "expired":  # the wait is in the message
        assert fast.get_json()["error"].startswith("review waited 5.")
        assert slow.get_json()["error"].startswith("review waited 5.")
    else:
        assert fast.get_data() == slow.get_data()
    expected = {"allowed": 200, "mutated": 200, "malformed": 400, "not JSON": 400}
    expected.update({"wrong content type": 415, "too long": 413, "expired": 503})
    assert fast.status_code == expected[case]


def test_other_methods_and_paths_still_reach_flask(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/validate").status_code == 405
    assert set(client.get("/validate").headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert client.post("/validate/").status_code in (308, 404)
    assert client.get("/healthz").get_json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("query", "expired"),
    [
        ("timeout=1s", True),  # what the API server sends: read from the raw query
        ("timeout=9s", False),
        ("a=1&timeout=1s", True),  # anything else: werkzeug's parse, as before
        ("t%69meout=1s", True),
        ("timeout=1s&timeout=99s", True),
        ("timeout=99s&timeout=1s", False),
        ("timeout=99999s", False),
        ("timeout=1", False),
        ("timeout=%31s", True),
        ("", False),
    ],
)
def test_a_review_past_its_timeout_is_told_from_any_query(query: str, expired: bool) -> None:
    environ = EnvironBuilder(path="/validate", query_string=query).get_environ()
    environ[ARRIVAL_KEY] = time.monotonic() - 5
    assert (_expired(Request(environ)) is not None) is expired


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "text/plain",
     "application/jsonx", "application/json, text/plain", ""],
)  # fmt: skip
def test_the_content_type_is_judged_as_werkzeug_reads_it(content_type: str) -> None:
    environ = EnvironBuilder(path="/validate", data=b"{}").get_environ()
    environ["CONTENT_TYPE"] = content_type
    if Request(dict(environ)).mimetype == "application/json":
        assert _read_body(Request(environ)) == b"{}"
    else:
        with pytest.raises(_BodyError) as refused:
            _read_body(Request(environ))
        assert refused.value.status == 415
