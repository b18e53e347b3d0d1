"""The API server's rules for a webhook's response, applied to every response tests receive.

Sources: VerifyAdmissionResponse in
staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/request/admissionreview.go,
NewWarningHeader (k8s.io/apimachinery/pkg/util/net/http.go) and checkKeyFormat
(staging/src/k8s.io/apiserver/pkg/admission/attributes.go), as summarised in docs/server.md §3.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from typing import Any

RESPONSE_FIELDS = {"uid", "allowed", "status", "patch", "patchType", "auditAnnotations", "warnings"}
ANNOTATION_KEY = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def check_admission_response(review: dict[str, Any], body: Any, *, mutating: bool) -> None:
    """Raise AssertionError unless the API server would accept `body` as the answer."""
    assert isinstance(body, dict), f"response is not a JSON object: {body!r}"
    assert body.get("apiVersion") == "admission.k8s.io/v1", body
    assert body.get("kind") == "AdmissionReview", body
    response = body.get("response")
    assert isinstance(response, dict), "webhook response was absent"
    assert set(response) <= RESPONSE_FIELDS, (
        f"unknown response fields {set(response) - RESPONSE_FIELDS}"
    )
    assert response.get("uid") == review["request"]["uid"], "response.uid differs from request.uid"
    assert isinstance(response.get("allowed"), bool), "response.allowed must be a boolean"
    if not mutating:
        assert "patch" not in response, "validating webhook may not return response.patch"
        assert "patchType" not in response, "validating webhook may not return response.patchType"
    else:
        assert ("patch" in response) == ("patchType" in response), "patch and patchType go together"
        if "patch" in response:
            assert response["patchType"] == "JSONPatch"
            operations = json.loads(base64.b64decode(response["patch"], validate=True))
            assert isinstance(operations, list)
            for operation in operations:
                assert operation["op"] in {"add", "replace", "remove", "test", "move", "copy"}
                assert operation["path"].startswith("/")
    # Whatever the violations, a response stays under 64 KiB, besides the echoed uid (which
    # must be returned whole, and is a UUID when the API server sends it).
    echoed = len(json.dumps(response.get("uid", "")))
    assert len(json.dumps(body)) - echoed < 64 * 1024, "a response stays under 64 KiB"
    warnings = response.get("warnings", [])
    assert sum(len(w) for w in warnings) <= 4096, "past 4096 characters the API server cuts"
    for warning in warnings:
        assert isinstance(warning, str) and warning, "warnings must be non-empty strings"
        assert len(warning) <= 256, f"warning longer than 256 characters: {warning!r}"
        assert not any(unicodedata.category(c) == "Cc" for c in warning), (
            f"the API server silently drops a warning with control characters: {warning!r}"
        )
        warning.encode("utf-8")
    for key, value in response.get("auditAnnotations", {}).items():
        assert "/" not in key and len(key) <= 63 and ANNOTATION_KEY.fullmatch(key), (
            f"audit annotation key {key!r} would be dropped"
        )
        assert isinstance(value, str)
    if not response["allowed"]:
        status = response.get("status")
        assert isinstance(status, dict), "a denial carries a status"
        assert status.get("code", 0) >= 400, "a denial's status.code is 4xx"
        message = status.get("message", "")
        assert isinstance(message, str)
        assert message
        assert "\n" not in message
        assert len(message) <= 1024, f"message longer than 1024 characters ({len(message)})"
        causes = status.get("details", {}).get("causes", [])
        assert len(causes) <= 100, f"{len(causes)} causes; at most 100 (the rest summarised)"
        for cause in causes:
            assert set(cause) == {"reason", "field", "message"}, cause
            assert all(isinstance(v, str) for v in cause.values()), cause


def check_error_body(status: int, body: Any) -> None:
    """A non-200 answer is JSON with an error message (never an HTML error page)."""
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    assert body.get("code") == status, body
