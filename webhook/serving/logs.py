"""One JSON log line per review on stdout (docs/server.md), from the typed request and its Decision.
Never PEM, base64 or key material: only names, identities, codes and timings are copied out
of the review, each cut short; the request uid (any string a client sends) to MAX_UID
characters, and escaped in plain-text lines."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from webhook.admission import MAX_UID, AdmissionRequest
from webhook.decision import Decision
from webhook.jsonwire import compact_json
from webhook.text import show

decision_log = logging.getLogger("csr_webhook.decisions")
# (second, its "YYYY-MM-DDTHH:MM:SSZ"): one strftime a second, not one a review. Replaced
# whole, so a thread reads one pair or the other, never half of each.
_stamp: tuple[int, str] = (-1, "")


def _utc_now() -> str:
    global _stamp  # noqa: PLW0603 - the one cached stamp
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + "Z")
    return _stamp[1]


def decision_record(
    request: AdmissionRequest, decision: Decision, *, webhook: str, seconds: float
) -> dict[str, Any]:
    obj = request.object or request.old_object
    pod = request.pod_request or request.old_pod_request
    signer = obj.signer_name if obj is not None else pod.signer_name if pod is not None else ""
    return {
        "time": _utc_now(),
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
    """One record to decision_log's handlers, as `decision_log.info(line)` would make it but
    without its search of the stack for the caller (the record names this function)."""
    if decision_log.isEnabledFor(logging.INFO):
        line = compact_json(decision_record(request, decision, webhook=webhook, seconds=seconds))
        decision_log.handle(
            decision_log.makeRecord(
                decision_log.name, logging.INFO, __file__, 0, line, (), None, "log_decision"
            )
        )


class MessageFormatter(logging.Formatter):
    """`Formatter("%(message)s")` for records without a traceback, without its %-formatting
    of the record's whole dict for every line."""

    def __init__(self) -> None:
        super().__init__("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = record.getMessage()
        return record.message


def configure_decision_log(stream: TextIO | None = None) -> logging.Handler:
    """Decision lines go to stdout (or `stream`) as bare JSON; everything else stays on
    stderr. Returns the handler added."""
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(MessageFormatter())
    decision_log.addHandler(handler)
    decision_log.propagate = False
    decision_log.setLevel(logging.INFO)
    return handler
