"""The decision line's bytes for a fixed set of requests and decisions, pinned: a cheaper way
of making the line or its record must write exactly these (time aside, which is the clock's)."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.decision_capture import configured_decision_log
from webhook.admission import AdmissionRequest, UserInfo, parse_review
from webhook.decision import Decision, Verdict, Violation
from webhook.serving import logs

CSR_REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "u-1",
        "resource": {"group": "certificates.k8s.io", "version": "v1", "resource": "certificatesigningrequests"},
        "operation": "CREATE",
        "name": "svc-tls",
        "userInfo": {"username": "system:serviceaccount:ns:svc", "groups": ["system:authenticated"]},
        "dryRun": True,
        "object": {
            "metadata": {"name": "svc-tls"},
            "spec": {"request": "", "signerName": "example.com/signer", "username": "ünï\tcode"},
        },
    },
}  # fmt: skip
OTHER = AdmissionRequest(
    uid="uid-\n-ü" + "x" * 200,
    group="",
    resource="configmaps",
    sub_resource="status",
    operation="DELETE",
    name="n" * 600,
    user_info=UserInfo(username="bob"),
    is_csr=False,
    object=None,
    old_object=None,
    namespace="kube-system",
)
VIOLATIONS = (
    Violation(code="dns.not_allowed", field="spec.request.dnsNames[0]", message="m"),
    Violation(code="subject.not_allowed", field="spec.request.subject.commonName", message="m"),
    Violation(code="dns.not_allowed", field="spec.request.dnsNames[1]", message="m"),
)
DECISIONS = {
    "allowed": Decision(verdict=Verdict.ALLOWED, policy="p", rules=("a", "b")),
    "denied": Decision(verdict=Verdict.DENIED, policy="p", rules=("r",), violations=VIOLATIONS),
    "ignored": Decision(verdict=Verdict.IGNORED),
}
EXPECTED = {
    ("csr", "allowed"): '{"time":"T","msg":"admission review","uid":"u-1","webhook":"validate","resource":"certificatesigningrequests","namespace":"","name":"svc-tls","signer":"example.com/signer","operation":"CREATE","subresource":"","user":"system:serviceaccount:ns:svc","requester":"\\u00fcn\\u00ef\\tcode","decision":"allowed","policy":"p","rule":"a,b","violations":[],"dryRun":true,"durationMs":1.234}',
    ("csr", "denied"): '{"time":"T","msg":"admission review","uid":"u-1","webhook":"validate","resource":"certificatesigningrequests","namespace":"","name":"svc-tls","signer":"example.com/signer","operation":"CREATE","subresource":"","user":"system:serviceaccount:ns:svc","requester":"\\u00fcn\\u00ef\\tcode","decision":"denied","policy":"p","rule":"r","violations":["dns.not_allowed","subject.not_allowed"],"dryRun":true,"durationMs":1.234}',
    ("csr", "ignored"): '{"time":"T","msg":"admission review","uid":"u-1","webhook":"validate","resource":"certificatesigningrequests","namespace":"","name":"svc-tls","signer":"example.com/signer","operation":"CREATE","subresource":"","user":"system:serviceaccount:ns:svc","requester":"\\u00fcn\\u00ef\\tcode","decision":"ignored","policy":"none","rule":"","violations":[],"dryRun":true,"durationMs":1.234}',
    ("other", "allowed"): '{"time":"T","msg":"admission review","uid":"uid-\\n-\\u00fc' + "x" * 121 + '","webhook":"validate","resource":"configmaps","namespace":"kube-system","name":"' + "n" * 512 + '","signer":"","operation":"DELETE","subresource":"status","user":"bob","requester":"","decision":"allowed","policy":"p","rule":"a,b","violations":[],"dryRun":false,"durationMs":1.234}',
    ("other", "denied"): '{"time":"T","msg":"admission review","uid":"uid-\\n-\\u00fc' + "x" * 121 + '","webhook":"validate","resource":"configmaps","namespace":"kube-system","name":"' + "n" * 512 + '","signer":"","operation":"DELETE","subresource":"status","user":"bob","requester":"","decision":"denied","policy":"p","rule":"r","violations":["dns.not_allowed","subject.not_allowed"],"dryRun":false,"durationMs":1.234}',
    ("other", "ignored"): '{"time":"T","msg":"admission review","uid":"uid-\\n-\\u00fc' + "x" * 121 + '","webhook":"validate","resource":"configmaps","namespace":"kube-system","name":"' + "n" * 512 + '","signer":"","operation":"DELETE","subresource":"status","user":"bob","requester":"","decision":"ignored","policy":"none","rule":"","violations":[],"dryRun":false,"durationMs":1.234}',
}  # fmt: skip
TIME = re.compile(r'^\{"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)",')


@pytest.mark.parametrize(("request_kind", "decision"), sorted(EXPECTED))
def test_the_decision_line_is_byte_for_byte_the_pinned_one(
    request_kind: str, decision: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = parse_review(json.dumps(CSR_REVIEW).encode()) if request_kind == "csr" else OTHER
    with configured_decision_log(caplog) as stream:
        logs.log_decision(request, DECISIONS[decision], webhook="validate", seconds=0.0012345)
    written = stream.getvalue()
    assert written.endswith("\n") and written.count("\n") == 1
    stamp = TIME.match(written)
    assert stamp is not None, written
    assert written.replace(stamp.group(1), "T", 1) == EXPECTED[request_kind, decision] + "\n"
    # The record other handlers get says what decision_log.info(line) would have said.
    [record] = caplog.records
    assert record.getMessage() == written[:-1]
    assert logging.Formatter("%(message)s").format(record) == written[:-1]
    assert (record.name, record.levelno, record.levelname) == (
        "csr_webhook.decisions",
        logging.INFO,
        "INFO",
    )
    assert record.funcName == "log_decision" and record.args == () and record.exc_info is None
    formatted = logging.Formatter(
        "%(asctime)s %(name)s %(levelname)s %(module)s %(filename)s %(process)d %(threadName)s "
        "%(message)s"
    ).format(record)
    made = logs.decision_log.makeRecord(
        logs.decision_log.name, logging.INFO, logs.__file__, 0, record.msg, (), None, "log_decision"
    )
    formatters_set = {"message", "asctime"}
    assert [k for k in vars(record) if k not in formatters_set] == list(vars(made))
    changing = {"msg", "created", "msecs", "relativeCreated", *formatters_set}
    assert {k: v for k, v in vars(record).items() if k not in changing} == {
        k: v for k, v in vars(made).items() if k not in changing
    }
    assert 0 <= made.created - record.created < 60
    assert formatted.endswith(" logs logs.py " + f"{record.process} MainThread {written[:-1]}")


def test_configuring_the_decision_log_for_a_test_leaves_it_as_it_was(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logs.decision_log
    before = (log.propagate, log.level, list(log.handlers))
    with configured_decision_log(caplog):
        assert (log.propagate, log.level) == (False, logging.INFO)
    assert (log.propagate, log.level, list(log.handlers)) == before
    # And a later test's caplog sees the record again, as test_decisions relies on.
    request = parse_review(json.dumps(CSR_REVIEW).encode())
    with caplog.at_level(logging.INFO, logger=log.name):
        logs.log_decision(request, DECISIONS["allowed"], webhook="validate", seconds=0.001)
    assert [r.name for r in caplog.records] == ["csr_webhook.decisions"]
