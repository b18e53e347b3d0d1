"""The benchmark's no-op baseline answers a review with its uid, allowed, in both fronts: Flask's
views, and (BENCH_NOOP_FRONT=wsgi) the WSGI front that mirrors the real server's review path."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from bench.noop_app import FRONT_ENV, create_noop_app

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
