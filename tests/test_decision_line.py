"""The decision line's bytes for a fixed set of requests and decisions, pinned: a cheaper way
of making the line or its record must write exactly these (time aside, which is the clock's)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import select
import threading
from pathlib import Path

import pytest

from tests.decision_capture import configured_decision_log, decision_log_to
from webhook.admission import AdmissionRequest, UserInfo, parse_review
from webhook.decision import Decision, Verdict, Violation
from webhook.jsonwire import compact_json
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


@pytest.mark.parametrize(("request_kind", "decision"), sorted(EXPECTED))
def test_a_line_written_without_a_record_is_the_same_bytes_on_a_file_descriptor(
    request_kind: str, decision: str, tmp_path: Path
) -> None:
    """With the handler serve adds as the only one, log_decision writes the line to its
    descriptor itself; the bytes are the pinned ones all the same."""
    request = parse_review(json.dumps(CSR_REVIEW).encode()) if request_kind == "csr" else OTHER
    with (tmp_path / "out").open("w") as stream, decision_log_to(stream) as handler:
        assert handler.takes_every_line()
        logs.log_decision(request, DECISIONS[decision], webhook="validate", seconds=0.0012345)
    written = (tmp_path / "out").read_text()
    stamp = TIME.match(written)
    assert stamp is not None, written
    assert written.replace(stamp.group(1), "T", 1) == EXPECTED[request_kind, decision] + "\n"


def test_any_other_handler_or_filter_gets_its_record_and_the_line_is_still_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    with decision_log_to(stream) as handler:
        logs.decision_log.addFilter(lambda record: True)
        assert not handler.takes_every_line()
        logs.decision_log.filters.clear()
        logs.decision_log.addHandler(caplog.handler)
        assert not handler.takes_every_line()
        logs.log_decision(OTHER, DECISIONS["denied"], webhook="validate", seconds=0.001)
    [record] = caplog.records
    assert stream.getvalue() == record.getMessage() + "\n"


def test_lines_of_many_threads_never_mix_in_a_pipe_even_past_pipe_buf() -> None:
    """Each line is one os.write under the handler's lock: no line is cut by another's, even
    one longer than the pipe's atomic write (a name of escaped non-ASCII characters)."""
    long_one = dataclasses.replace(OTHER, name="ü" * 512, uid="é" * 128)
    assert len(compact_json(logs.decision_record(long_one, DECISIONS["denied"],
        webhook="validate", seconds=0.0))) > select.PIPE_BUF  # fmt: skip
    read_fd, write_fd = os.pipe()
    chunks: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(read_fd, chunks))
    reader.start()
    threads, per_thread = 8, 150
    with os.fdopen(write_fd, "w") as stream, decision_log_to(stream):

        def write(index: int) -> None:
            request = long_one if index % 2 else OTHER
            for _ in range(per_thread):
                logs.log_decision(request, DECISIONS["denied"], webhook="validate", seconds=0.0)

        workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    reader.join()
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == threads * per_thread
    names = sorted({json.loads(line)["name"] for line in lines})
    assert names == ["n" * 512, "ü" * 512]


def _drain(fd: int, chunks: list[bytes]) -> None:
    while chunk := os.read(fd, 1000):  # small reads: the writers block on a full pipe
        chunks.append(chunk)
    os.close(fd)


def test_a_write_that_fails_is_reported_on_stderr_and_the_review_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # every write now fails with EPIPE
    with os.fdopen(write_fd, "w") as stream, decision_log_to(stream):
        logs.log_decision(OTHER, DECISIONS["allowed"], webhook="validate", seconds=0.0)
    error = capsys.readouterr().err
    assert "--- Logging error ---" in error and "BrokenPipeError" in error


def test_configuring_the_decision_log_again_replaces_its_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    with decision_log_to(first):
        logs.configure_decision_log(second)
        assert logs.decision_log.handlers == [logs._direct]
        logs.log_decision(OTHER, DECISIONS["allowed"], webhook="validate", seconds=0.0)
    assert first.getvalue() == "" and second.getvalue().count("\n") == 1
