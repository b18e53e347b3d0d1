"""HTTP endpoints: /validate, /mutate, /healthz, /readyz.

The only place that maps outcomes to HTTP, in one `try`: a broken review is 400/413/415 with a
JSON error body, a policy violation is 200 with `allowed: false`, a bug is 500. Every other
HTTP error (an unknown path, a wrong method) has the same JSON shape, never an HTML page.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug import Request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from webhook.admission import AdmissionRequest, parse_review
from webhook.decision import Decision
from webhook.engine import EngineOptions, evaluate
from webhook.errors import CsrWebhookError, ReviewError
from webhook.response import (
    build_response,
    encode_json,
    encode_response,
)
from webhook.serving.cluster import ClusterLink
from webhook.serving.logs import log_decision, shown_uid
from webhook.serving.metrics import ReviewMetrics
from webhook.serving.reload import PolicyView
from webhook.text import show

MAX_BODY_BYTES = 3 * 1024 * 1024
# WSGI environ key: time.monotonic() when the request became ready to serve (set by the
# server's worker; absent under the test client).
ARRIVAL_KEY = "csr_webhook.arrival"
_TIMEOUT = re.compile(r"([0-9]{1,4})s")
_TIMEOUT_QUERY = re.compile(r"timeout=([0-9]{1,4})s")
ENDPOINTS = "POST /validate, POST /mutate, GET /healthz, GET /readyz"

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("csr_webhook")
blueprint = Blueprint("webhook", __name__)


class _BodyError(CsrWebhookError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message, "code": status}), status


@blueprint.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """werkzeug's own answers (404, 405, 413 from MAX_CONTENT_LENGTH, 500 for an exception no
    view caught) in the JSON error shape, keeping their headers (405's `Allow`)."""
    status = exc.code or 500
    if isinstance(exc, NotFound):
        message = f"no endpoint at {show(request.path)}; the endpoints are {ENDPOINTS}"
    elif isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(sorted(exc.valid_methods or ()))
        message = (
            f"method {show(request.method)} is not allowed on {show(request.path)} "
            f"(allowed: {allowed})"
        )
    else:
        message = f"{exc.name}: {exc.description}"
    response, _ = _error(status, message)
    response.status_code = status
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _read_body(request: Request) -> bytes:
    # What the API server sends is exactly this; anything else through werkzeug's parse.
    exact = request.environ.get("CONTENT_TYPE") == "application/json"
    if not exact and request.mimetype != "application/json":
        raise _BodyError(415, f"content type must be application/json, got {request.mimetype!r}")
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise _BodyError(413, f"body of {length} bytes exceeds the limit of {MAX_BODY_BYTES}")
    # Read the server's input directly: werkzeug's limited stream stops silently at the
    # limit, which would hand a truncated body to the JSON parser.
    if length is None and not request.environ.get("wsgi.input_terminated"):
        return b""
    stream = request.environ["wsgi.input"]
    chunks, size = [], 0
    while size <= MAX_BODY_BYTES:
        try:
            chunk = stream.read(min(65536, MAX_BODY_BYTES + 1 - size))
        except Exception as exc:  # the server's body reader refusing what the client framed
            raise _BodyError(400, f"the request body cannot be read: {exc}"[:256]) from exc
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY_BYTES:
        raise _BodyError(413, f"body exceeds the limit of {MAX_BODY_BYTES} bytes")
    return b"".join(chunks)


def _expired(request: Request) -> str | None:
    """Why the review is not worth evaluating: it waited past the API server's `?timeout=`,
    so the API server has given up on it (a backlog must not snowball)."""
    arrival = request.environ.get(ARRIVAL_KEY)
    if arrival is None:
        return None
    # The API server's query is exactly `timeout=<n>s`: read without parsing request.args.
    match = _TIMEOUT_QUERY.fullmatch(request.environ.get("QUERY_STRING", ""))
    if match is None:
        match = _TIMEOUT.fullmatch(request.args.get("timeout", ""))
    if match is None:
        return None
    waited = time.monotonic() - arrival
    if waited <= int(match.group(1)):
        return None
    return f"review waited {waited:.1f}s, past its {match.group(1)}s timeout; not evaluated"


def _review(extensions: Mapping[str, Any], request: Request, mutating: bool) -> tuple[int, bytes]:
    """The status and JSON body of the answer to one review."""
    started = time.perf_counter()
    webhook = "mutate" if mutating else "validate"
    metrics: ReviewMetrics | None = extensions["csr_webhook.metrics"]
    admission: AdmissionRequest | None = None
    decision: Decision | None = None
    expired = _expired(request)
    try:
        if expired is not None:
            log.warning("%s", expired)
            status, body = 503, expired
        else:
            admission = parse_review(_read_body(request))
            store: PolicyView = extensions["csr_webhook.policies"]
            options: EngineOptions = extensions["csr_webhook.options"]
            cluster: ClusterLink = extensions["csr_webhook.cluster"]
            decision = evaluate(
                admission, store.current, options, facts=cluster.facts, mutating=mutating
            )
            status, body = 200, ""
    except _BodyError as exc:
        status, body = exc.status, exc.message
    except ReviewError as exc:
        status, body = 400, f"malformed AdmissionReview: {exc}"
    except Exception:
        uid = shown_uid(admission.uid if admission is not None else "")
        log.exception("evaluation failed for review uid=%s", uid)
        status, body = 500, f"internal error evaluating review uid={uid}"
    seconds = time.perf_counter() - started
    if metrics is not None:
        metrics.observe(
            webhook=webhook,
            resource=admission.resource if admission is not None else "other",
            operation=admission.operation if admission is not None else "other",
            subresource=admission.sub_resource if admission is not None else "other",
            decision=decision,
            seconds=seconds,
        )
    if admission is None or decision is None:
        return status, encode_json({"error": body, "code": status})
    log_decision(admission, decision, webhook=webhook, seconds=seconds)
    return 200, encode_response(build_response(admission.uid, decision, mutating=mutating))


# Status lines as werkzeug writes them ("400 BAD REQUEST"), for the answers review_wsgi sends.
_STATUS_LINES = {code: Response(status=code).status for code in (200, 400, 413, 415, 500, 503)}
_REVIEW_PATHS = {"/validate": False, "/mutate": True}


def review_wsgi(app: Flask, fallback: WSGIApplication) -> WSGIApplication:
    """POST /validate and /mutate answered straight from the WSGI environ, the same status,
    headers and body the Flask views below send, without Flask's request context, URL
    adapter, session and signals on every review. Any other method or path goes to
    `fallback` (Flask: the other endpoints, 404 and 405 answers)."""
    extensions = app.extensions

    def serve(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        mutating = _REVIEW_PATHS.get(environ.get("PATH_INFO", ""))
        if mutating is None or environ.get("REQUEST_METHOD") != "POST":
            return fallback(environ, start_response)
        status, body = _review(extensions, Request(environ, populate_request=False), mutating)
        start_response(
            _STATUS_LINES[status],
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return serve


def _answer(mutating: bool) -> tuple[Response, int]:
    status, body = _review(current_app.extensions, request, mutating)
    return Response(body, content_type="application/json"), status


# Reached when review_wsgi is not in front (it answers these itself); they also give Flask
# the routes' methods, for the 405 of a GET.
@blueprint.post("/validate")
def validate() -> tuple[Response, int]:
    return _answer(mutating=False)


@blueprint.post("/mutate")
def mutate() -> tuple[Response, int]:
    return _answer(mutating=True)


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    return jsonify({"status": "ok"}), 200


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready with a policy set; 503 only while this worker's cluster caches have not synced,
    within --cluster-sync-grace of its start (webhook/serving/cluster.py says why)."""
    store: PolicyView = current_app.extensions["csr_webhook.policies"]
    cluster: ClusterLink = current_app.extensions["csr_webhook.cluster"]
    current = store.current
    ready, facts = cluster.readiness()
    return jsonify(
        {
            "status": "ready" if ready else "waiting for the cluster caches to sync",
            "policies": len(current.policies),
            "policySetHash": current.digest,
            "lastReloadError": store.last_error,
            "cluster": facts,
        }
    ), 200 if ready else 503
