"""Every HTTP error is the JSON error shape `{"error": ..., "code": N}`, never an HTML page:
Flask's own 404/405, and the answers gunicorn gives to a request it cannot parse."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.conftest import BASIC_POLICY, write_policies
from tests.contract import check_error_body
from tests.server import RunningServer, running_server


def _json_error(response_status: int, content_type: str, body: bytes) -> dict[str, object]:
    assert content_type == "application/json", (content_type, body)
    payload = json.loads(body)
    check_error_body(response_status, payload)
    assert isinstance(payload, dict)
    return payload


def test_unknown_path_is_a_json_404_naming_the_path_and_the_endpoints(
    client: FlaskClient,
) -> None:
    response = client.get("/no/such/thing")
    payload = _json_error(404, response.content_type, response.data)
    assert payload["error"] == (
        "no endpoint at '/no/such/thing'; the endpoints are "
        "POST /validate, POST /mutate, GET /healthz, GET /readyz"
    )


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/validate", "OPTIONS, POST"),
        ("PUT", "/mutate", "OPTIONS, POST"),
        ("POST", "/readyz", "GET, HEAD, OPTIONS"),
        ("DELETE", "/healthz", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_is_a_json_405_with_its_allow_header(
    client: FlaskClient, method: str, path: str, allowed: str
) -> None:
    response = client.open(path, method=method)
    payload = _json_error(405, response.content_type, response.data)
    assert payload["error"] == (
        f"method {method!r} is not allowed on {path!r} (allowed: {allowed})"
    )
    assert sorted(response.headers["Allow"].split(", ")) == allowed.split(", ")


def _raw(server: RunningServer, request: bytes) -> tuple[int, str, bytes]:
    """Send raw bytes over TLS; the status, content type and body of the answer."""
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=20) as raw,
        server.tls_context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(request)
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), body


@pytest.mark.server
def test_real_server_answers_unknown_paths_wrong_methods_and_unparsable_requests_in_json(
    tmp_path: Path,
) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    close = b"Host: localhost\r\nConnection: close\r\n\r\n"
    with running_server(tmp_path, policies) as server:
        status, kind, body = _raw(server, b"GET /nope HTTP/1.1\r\n" + close)
        assert status == 404
        assert "no endpoint at '/nope'" in str(_json_error(status, kind, body)["error"])

        status, kind, body = _raw(server, b"GET /validate HTTP/1.1\r\n" + close)
        assert status == 405
        _json_error(status, kind, body)

        # Past the worker's framing, refused by gunicorn's parser (handle_error).
        status, kind, body = _raw(server, b"GET /readyz HTTP/2.0\r\n" + close)
        assert status == 400
        assert "Invalid HTTP Version" in str(_json_error(status, kind, body)["error"])

        status, kind, body = _raw(server, b"get /readyz HTTP/1.1\r\n" + close)
        assert status == 400
        assert "Invalid Method" in str(_json_error(status, kind, body)["error"])

        status, kind, body = _raw(server, b"GET /readyz HTTP/1.1\r\nExpect: x\r\n" + close)
        assert status == 417
        assert "expectation" in str(_json_error(status, kind, body)["error"])
