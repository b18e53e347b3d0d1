"""The program bench.instructions runs under callgrind: sends the first N reviews of a corpus
file through one scope of the webhook and prints a JSON summary.

Run by path with `python -P` and PYTHONPATH set to the tree being measured, so `webhook` is that
tree's (another commit's, with --rev); it therefore imports nothing from bench/ and only API that
exists since a9b03f2: parse_review, evaluate, EngineOptions, parse_csr, load_policies,
create_app, Settings, PolicyStore, ReviewMetrics, configure_decision_log.

    python -P bench/instructions_child.py SCOPE POLICY_DIR CORPUS PREPARED WARMUP SEND

Everything but the SEND reviews is the same whatever SEND is: it reads the whole file, prepares
(parses, for the engine and parse scopes) the first PREPARED reviews and the WARMUP after them,
sends the warm-up ones, then the first SEND. Two runs that differ only in SEND then differ only
by the work of the extra reviews.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCOPES = ("app", "engine", "parse", "verify")


def _app_sender(policy_dir: Path) -> Callable[[bytes], bool]:
    """POST /validate on the Flask test client of create_app, as a gunicorn worker serves it:
    multiprocess metrics (PROMETHEUS_MULTIPROC_DIR is set by the parent), decision lines on."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from webhook.policy.loader import load_policies  # noqa: PLC0415
    from webhook.serving.app import create_app  # noqa: PLC0415
    from webhook.serving.logs import configure_decision_log  # noqa: PLC0415
    from webhook.serving.metrics import ReviewMetrics  # noqa: PLC0415
    from webhook.serving.reload import PolicyStore  # noqa: PLC0415
    from webhook.serving.settings import Settings  # noqa: PLC0415

    policies = load_policies([policy_dir]).policy_set
    assert policies is not None, f"{policy_dir}: the bench policy does not load"
    # Decision lines as serve writes them, to /dev/null: configure_decision_log's handler on
    # sys.stdout (every measured commit has it; early ones take no stream), so a cheaper way
    # of writing the line counts here too. The summary still goes to the real stdout.
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - lives with the run
    try:
        configure_decision_log()
    finally:
        sys.stdout = stdout
    app = create_app(
        Settings(policies=policy_dir),
        PolicyStore(policy_dir, policies),
        ReviewMetrics(CollectorRegistry()),
    )
    client = app.test_client()

    def send(body: bytes) -> bool:
        response = client.post("/validate", data=body, content_type="application/json")
        return response.status_code == 200 and b'"allowed":true' in response.data

    return send


def _prepared(scope: str, policy_dir: Path, bodies: list[bytes]) -> tuple[list[Any], Any]:
    """(items, send): what each review becomes before it is sent, and the sender."""
    if scope == "app":
        return bodies, _app_sender(policy_dir)
    from webhook.admission import parse_review  # noqa: PLC0415
    from webhook.engine import EngineOptions, evaluate  # noqa: PLC0415
    from webhook.policy.loader import load_policies  # noqa: PLC0415
    from webhook.x509.csr import parse_csr  # noqa: PLC0415

    requests = [parse_review(body) for body in bodies]
    pems = [(r.object.request if r.object else None) or b"" for r in requests]
    if scope == "parse":
        return pems, lambda pem: parse_csr(pem) is not None
    if scope == "verify":  # the floor inside parse: cryptography's load and signature check
        from cryptography import x509  # noqa: PLC0415

        ders = [parse_csr(pem).der for pem in pems]
        return ders, lambda der: x509.load_der_x509_csr(der).is_signature_valid
    policies = load_policies([policy_dir]).policy_set
    assert policies is not None, f"{policy_dir}: the bench policy does not load"
    options = EngineOptions()
    return requests, lambda request: evaluate(request, policies, options).allowed


def main(argv: list[str]) -> int:
    scope, policy_dir, corpus, prepared, warmup, send = argv
    if scope not in SCOPES:
        raise SystemExit(f"scope {scope!r}: expected one of {', '.join(SCOPES)}")
    lines = Path(corpus).read_bytes().splitlines()
    size, extra, count = int(prepared), int(warmup), int(send)
    if len(lines) < size + extra or count > size:
        raise SystemExit(f"{corpus}: {len(lines)} reviews, {size} + {extra} warm-up needed")
    items, sender = _prepared(scope, Path(policy_dir), lines[: size + extra])
    warmed = [sender(item) for item in items[size : size + extra]]
    results = [sender(item) for item in items[:count]]
    import webhook  # noqa: PLC0415 - which tree was measured

    summary = {
        "scope": scope,
        "webhook": str(Path(webhook.__file__).resolve().parent),
        "sent": len(results),
        "allowed": sum(results),
        "warm_up_allowed": sum(warmed),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
