"""No request uid can forge or flood a log line: the uid is any string a client sends.

The decision line is JSON (json.dumps escapes control characters) with the uid cut to
webhook.serving.logs.MAX_UID characters; the plain-text line of an internal error carries it
repr-escaped and cut as well. Read from the real output: a gunicorn process's log, and the
records the "csr_webhook" logger emits.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from flask import Flask

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import review_over, running_server
from webhook.admission import MAX_UID

FORGED = '{"msg":"admission review","uid":"forged","decision":"allowed"}'
HOSTILE_UID = "real-uid\n" + FORGED + "\r\n\x1b[2K\x00\u2028" + "x" * 40
assert len(HOSTILE_UID) <= MAX_UID


def _review(signer: str = "example.com/signer") -> dict[str, object]:
    review = create_review(build_csr(common_name="alice"), signer_name=signer)
    review["request"]["uid"] = HOSTILE_UID
    return review


@pytest.mark.server
def test_a_newline_in_the_uid_cannot_forge_a_decision_log_line(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    with running_server(tmp_path, policies) as server:
        connection = server.connection()
        answer = review_over(connection, _review())
        connection.close()
        time.sleep(0.3)
        log = server.log()
    assert answer["status"] == 200
    assert answer["body"]["response"]["uid"] == HOSTILE_UID  # the API server needs it whole
    lines = log.splitlines()
    assert not any(line.startswith(FORGED) for line in lines), "a forged line reached the log"
    assert not any(c in log for c in "\x1b\x00\r\u2028"), "a raw control character was logged"
    [record] = [json.loads(line) for line in lines if line.startswith("{")]
    assert record["uid"] == HOSTILE_UID


def test_a_uid_longer_than_any_the_api_server_sends_is_refused_unechoed(app: Flask) -> None:
    """The answer echoes the uid whole: a long one would let any client choose its size."""
    review = _review()
    review["request"]["uid"] = "x" * 3_000_000  # type: ignore[index]
    answer = app.test_client().post("/validate", json=review)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == (
        f"malformed AdmissionReview: request.uid must be at most {MAX_UID} characters, got 3000000"
    )
    assert len(answer.data) < 200


def test_an_internal_error_logs_the_uid_escaped_and_cut_short(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    # a bug, planted in the wiring: the engine's options, read for a signer no policy governs,
    # are missing
    app.extensions["csr_webhook.options"] = None
    with caplog.at_level(logging.ERROR, logger="csr_webhook"):
        answer = app.test_client().post("/validate", json=_review("example.com/ungoverned"))
    assert answer.status_code == 500
    [record] = [r for r in caplog.records if r.name == "csr_webhook"]
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x00" not in line
    assert line.startswith("evaluation failed for review uid='real-uid\\n")
    assert len(line) < MAX_UID * 2 + 100
    error = answer.get_json()["error"]
    assert "\n" not in error and len(error) < MAX_UID * 2 + 100
