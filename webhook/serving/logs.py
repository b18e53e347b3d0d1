"""One JSON log line per review on stdout (docs/server.md), from the typed request and its Decision.
Never PEM, base64 or key material: only names, identities, codes and timings are copied out
of the review, each cut short; the request uid (any string a client sends) to MAX_UID
characters, and escaped in plain-text lines."""

from __future__ import annotations

import logging
import os
import sys
import threading
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


def _utc_now(now: float | None = None) -> str:
    global _stamp  # noqa: PLW0603 - the one cached stamp
    second = int(time.time() if now is None else now)
    if _stamp[0] != second:
        _stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + "Z")
    return _stamp[1]


def decision_record(
    request: AdmissionRequest,
    decision: Decision,
    *,
    webhook: str,
    seconds: float,
    now: float | None = None,
) -> dict[str, Any]:
    obj = request.object or request.old_object
    pod = request.pod_request or request.old_pod_request
    signer = obj.signer_name if obj is not None else pod.signer_name if pod is not None else ""
    return {
        "time": _utc_now(now),
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
    """One record to decision_log's handlers (their filters, locks and streams), with the
    attributes `decision_log.info(line)` called here would give it, made without
    LogRecord.__init__'s per-record path splitting and argument checks: what never changes
    is copied from _FIXED. (The decision log's records are plain LogRecords: a factory set
    with logging.setLogRecordFactory is not consulted.)"""
    if decision_log.isEnabledFor(logging.INFO):
        now = time.time()
        line = compact_json(
            decision_record(request, decision, webhook=webhook, seconds=seconds, now=now)
        )
        record = _new_record(logging.LogRecord)
        record.__dict__ = {
            **_FIXED,
            "msg": line,
            "created": now,
            "msecs": int((now - int(now)) * 1000) + 0.0,
            "relativeCreated": (now - _START) * 1000,
            "thread": threading.get_ident() if logging.logThreads else None,
            "threadName": threading.current_thread().name if logging.logThreads else None,
            "processName": _process_name(),
            "process": os.getpid() if logging.logProcesses else None,
        }
        decision_log.handle(record)


_new_record = object.__new__
_START: float = logging._startTime  # type: ignore[attr-defined]  # relativeCreated's origin
# In LogRecord.__init__'s order (a formatter that lists a record's __dict__ sees the same).
_FIXED: dict[str, object] = {
    "name": decision_log.name,
    "msg": "",
    "args": (),
    "levelname": logging.getLevelName(logging.INFO),
    "levelno": logging.INFO,
    "pathname": __file__,
    "filename": os.path.basename(__file__),
    "module": os.path.splitext(os.path.basename(__file__))[0],
    "exc_info": None,
    "exc_text": None,
    "stack_info": None,
    "lineno": 0,
    "funcName": "log_decision",
}


def _process_name() -> str | None:
    """LogRecord's processName: multiprocessing's name for this process, if it is loaded."""
    if not logging.logMultiprocessing:
        return None
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None:
        try:
            return str(multiprocessing.current_process().name)
        except Exception:  # as LogRecord: the default name then
            pass
    return "MainProcess"


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
