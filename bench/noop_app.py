"""The benchmark's baseline: a Flask webhook that parses the review and allows it, served by
csr-webhook's own gunicorn application with only `load()` overridden, so TLS context, worker
class, threads, keep-alive, timeouts and master-side hooks are exactly those of the real server.

Run it with the same flags as `csr-webhook serve`:
    python -m bench.noop_app --policies bench/policies --bind 127.0.0.1:8444 \
        --tls-cert cert.pem --tls-key key.pem
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, request

from webhook.cli import build_parser, prepare_multiprocess_metrics, settings_from_args
from webhook.errors import UsageError
from webhook.policy.loader import load_policies


def create_noop_app() -> Flask:
    app = Flask("noop")

    @app.post("/validate")
    @app.post("/mutate")
    def review() -> Response:
        uid = json.loads(request.get_data())["request"]["uid"]
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

    return app


def main(argv: Sequence[str] | None = None) -> int:
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

    class NoopServer(WebhookServer):
        def load(self) -> Any:
            return create_noop_app()

    NoopServer(settings, policy_set, loaded.sources).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
