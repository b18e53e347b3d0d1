"""The benchmark's baseline: a Flask webhook that parses the review and allows it, served by
csr-webhook's own gunicorn application with only `load()` overridden, so TLS context, worker
class, threads, keep-alive, timeouts and master-side hooks are exactly those of the real server.

Run it with the same flags as `csr-webhook serve`:
    python -m bench.noop_app --policies bench/policies --bind 127.0.0.1:8444 \
        --tls-cert cert.pem --tls-key key.pem

With BENCH_NOOP_FRONT=wsgi the reviews are answered in front of Flask, from the WSGI environ
through a werkzeug Request, as the real server answers them (webhook.serving.views.review_wsgi):
the baseline then carries the same web stack as the real server, not Flask's request machinery
on top of it.

With BENCH_NOOP_WORK=floor it is not a no-op but the floor of the real server: the real
application, whose policy engine is replaced by the work no design may skip, the signature
check (cryptography reads the DER and verifies it; the PEM block is read as parse_csr's fast
path reads it). The review parse, the metrics, the decision line and the answer are the real
server's own. What it costs above the no-op is what every policy decision costs before our CSR
reader and checks run (`python -m bench --real floor`). With BENCH_NOOP_WORK=verify it is the
no-op that also checks the signature, the same way, and nothing else (`--real verify`).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from flask import Flask, Response, request
from werkzeug import Request

from webhook.cli import build_parser, prepare_multiprocess_metrics, settings_from_args
from webhook.decision import Decision, Verdict
from webhook.errors import UsageError
from webhook.policy.loader import load_policies
from webhook.serving.logs import configure_decision_log
from webhook.x509.csr import PEM_TYPE
from webhook.x509.pem import sole_block_body


def create_noop_app() -> Flask:
    app = Flask("noop")
    verify = os.environ.get(WORK_ENV) == "verify"

    @app.post("/validate")
    @app.post("/mutate")
    def review() -> Response:
        uid = _answered_uid(json.loads(request.get_data()), verify=verify)
        answer = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": True},
        }
        return Response(json.dumps(answer), mimetype="application/json")

    @app.get("/readyz")
    @app.get("/healthz")
    def ready() -> Response:
        return Response('{"status":"ready"}', mimetype="application/json")

    if os.environ.get(FRONT_ENV) == "wsgi":
        app.wsgi_app = _wsgi_front(app.wsgi_app)  # type: ignore[method-assign]
    return app


FRONT_ENV = "BENCH_NOOP_FRONT"
WORK_ENV = "BENCH_NOOP_WORK"
WORKS = ("", "floor", "verify")  # BENCH_NOOP_WORK's values; empty or unset: the plain no-op
_PATHS = frozenset({"/validate", "/mutate"})


def _wsgi_front(fallback: Any) -> Any:
    """POST /validate and /mutate answered from the environ, the rest by Flask."""
    verify = os.environ.get(WORK_ENV) == "verify"

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in _PATHS:
            return fallback(environ, start_response)
        uid = _answered_uid(json.loads(Request(environ).get_data()), verify=verify)
        answer = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": True},
        }
        body = json.dumps(answer).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    return serve


def _answered_uid(review: Any, *, verify: bool) -> Any:
    """The uid the no-op answers with; with `verify`, "signature invalid" for a CSR whose
    signature does not verify (the bench's preflight then counts a wrong answer)."""
    uid = review["request"]["uid"]
    if not verify:
        return uid
    pem = base64.b64decode(review["request"]["object"]["spec"]["request"], validate=True)
    return uid if signature_verifies(pem) else "signature invalid"


def signature_verifies(request: bytes | None) -> bool:
    """spec.request (decoded) is one PEM block of a DER CSR whose signature cryptography
    verifies: the PEM block read as parse_csr's fast path reads it, no DER reader of ours."""
    body = sole_block_body(request, PEM_TYPE) if request else None
    try:
        return body is not None and bool(x509.load_der_x509_csr(body).is_signature_valid)
    except ValueError:  # not DER cryptography reads
        return False


def floor_evaluate(admission: Any, *_: Any, **__: Any) -> Any:
    """The engine's place in the floor server: allow a CSR whose signature verifies, deny the
    rest; no policy check."""
    obj = admission.object
    valid = signature_verifies(obj.request if obj is not None else None)
    verdict = Verdict.ALLOWED if valid else Verdict.DENIED
    return Decision(verdict=verdict, policy="floor", rules=("floor",) if valid else ())


def load_floor_app(load_real: Any) -> Any:
    """The real application (in this worker process) with floor_evaluate as its engine."""
    from webhook.serving import views  # noqa: PLC0415

    views.evaluate = floor_evaluate  # type: ignore[attr-defined,assignment]
    return load_real()


def main(argv: Sequence[str] | None = None) -> int:
    work = os.environ.get(WORK_ENV, "")
    if work not in WORKS:
        print(
            f"noop_app: error: {WORK_ENV}={work!r}; expected floor, verify or nothing",
            file=sys.stderr,
        )
        return 2
    args = build_parser().parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        settings = settings_from_args(args)
    except UsageError as exc:
        print(f"noop_app: error: {exc}", file=sys.stderr)
        return 2
    if settings.tls_cert is None:
        print("noop_app: error: --tls-cert and --tls-key are required", file=sys.stderr)
        return 2
    loaded = load_policies([settings.policies])
    policy_set = loaded.policy_set
    if policy_set is None:
        print(f"noop_app: error: invalid policies in {settings.policies}", file=sys.stderr)
        return 1
    prepare_multiprocess_metrics()
    from webhook.serving.server import WebhookServer  # noqa: PLC0415 - after the metrics directory is set

    floor = work == "floor"
    if floor:  # as `csr-webhook serve` does: the floor writes the real decision lines
        configure_decision_log()

    class NoopServer(WebhookServer):
        def load(self) -> Any:
            if floor:
                return load_floor_app(super().load)
            return create_noop_app()

    NoopServer(settings, policy_set, loaded.sources).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
