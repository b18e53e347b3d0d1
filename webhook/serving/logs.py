"""One JSON log line per review on stdout (docs/server.md), from the typed request and its Decision.
Never PEM, base64 or key material: only names, identities, codes and timings are copied out
of the review, each cut short; the request uid (any string a client sends) to MAX_UID
characters, and escaped in plain-text lines."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from webhook.admission import MAX_UID, AdmissionRequest
from webhook.decision import Decision
from webhook.text import show

decision_log = logging.getLogger("csr_webhook.decisions")


def decision_record(
    request: AdmissionRequest, decision: Decision, *, webhook: str, seconds: float
) -> dict[str, Any]:
    obj = request.object or request.old_object
    pod = request.pod_request or request.old_pod_request
    signer = obj.signer_name if obj is not None else pod.signer_name if pod is not None else ""
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "msg": "admission review",
        "uid": request.uid[:MAX_UID],
        "webhook": webhook,
        "resource": request.resource[:64],
        "namespace": request.namespace[:64],
        "name": request.name[:512],
        "signer": signer[:512],
        "operation": request.operation[:64],
        "subresource": request.sub_resource[:64],
        "user": request.user_info.username[:512],
        "requester": obj.username[:512] if obj is not None else "",
        "decision": decision.verdict.value,
        "policy": decision.policy,
        "rule": ",".join(decision.rules),
        "violations": sorted({v.code for v in decision.violations}),
        "dryRun": request.dry_run,
        "durationMs": round(seconds * 1000, 3),
    }


def shown_uid(uid: str) -> str:
    """The uid for a plain-text log line or message: repr-escaped (no newline or control
    character can start a forged line) and cut to MAX_UID characters."""
    return show(uid, MAX_UID)


def log_decision(
    request: AdmissionRequest, decision: Decision, *, webhook: str, seconds: float
) -> None:
    if decision_log.isEnabledFor(logging.INFO):
        record = decision_record(request, decision, webhook=webhook, seconds=seconds)
        decision_log.info(json.dumps(record, separators=(",", ":")))


def configure_decision_log() -> None:
    """Decision lines go to stdout as bare JSON; everything else stays on stderr."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    decision_log.addHandler(handler)
    decision_log.propagate = False
    decision_log.setLevel(logging.INFO)
