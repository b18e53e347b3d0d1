"""One JSON log line per review on stdout (docs/server.md), from the typed request and its Decision.
Never PEM, base64 or key material: only names, identities, codes and timings are copied out
of the review, each cut short; the request uid (any string a client sends) to MAX_UID
characters, and escaped in plain-text lines."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    """One decision line. While the handler configure_decision_log added is decision_log's
    only one, the line goes straight to it (DecisionLineHandler.write_line: what its emit
    would have written, without building a LogRecord). Otherwise one record goes to every
    handler, as `decision_log.info(line)` would make it but without its search of the stack
    for the caller (the record names this function)."""
    if not decision_log.isEnabledFor(logging.INFO):
        return
    line = compact_json(decision_record(request, decision, webhook=webhook, seconds=seconds))
    direct = _direct
    if direct is not None and direct.takes_every_line():
        direct.write_line(line)
        return
    decision_log.handle(_record(line))


def _record(line: str) -> logging.LogRecord:
    return decision_log.makeRecord(
        decision_log.name, logging.INFO, __file__, 0, line, (), None, "log_decision"
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


class DecisionLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler writing each record's bare message, one line each, that also takes a
    line without a record (write_line). On a stream with a file descriptor (stdout) the line
    is one os.write under the handler's lock, so lines of several threads never mix."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.setFormatter(MessageFormatter())
        try:
            stream.flush()
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):  # io.StringIO and the like: no fd
            self._fd = None

    def takes_every_line(self) -> bool:
        """Nothing but this handler would see a decision record: no other handler, no filter
        on the logger or on this handler, no propagation, and this handler at INFO or lower."""
        log = decision_log
        handlers = log.handlers
        return (
            len(handlers) == 1
            and handlers[0] is self
            and not log.propagate
            and not log.filters
            and not self.filters
            and self.level <= logging.INFO
        )

    def write_line(self, line: str) -> None:
        """What emit writes for a record whose message is `line`; a failed write is reported
        as emit reports one (Handler.handleError: a traceback on stderr, the review answered)."""
        fd = self._fd
        try:
            with self.lock:  # type: ignore[union-attr]  # set by Handler.__init__
                if fd is None:
                    self.stream.write(line + self.terminator)
                    self.stream.flush()
                    return
                data = (line + self.terminator).encode("utf-8", "backslashreplace")
                while data:
                    data = data[os.write(fd, data) :]
        except Exception:  # as StreamHandler.emit: a log write never fails a review
            self.handleError(_record(line))


_direct: DecisionLineHandler | None = None


def configure_decision_log(stream: TextIO | None = None) -> DecisionLineHandler:
    """Decision lines go to stdout (or `stream`) as bare JSON; everything else stays on
    stderr. Returns the handler added, which replaces the one an earlier call added (each line
    is written once however often this is called)."""
    global _direct  # noqa: PLW0603 - the one handler log_decision may write to directly
    if _direct is not None:
        decision_log.removeHandler(_direct)
    handler = DecisionLineHandler(sys.stdout if stream is None else stream)
    decision_log.addHandler(handler)
    decision_log.propagate = False
    decision_log.setLevel(logging.INFO)
    _direct = handler
    return handler


@contextmanager
def decision_log_kept() -> Iterator[None]:
    """The decision log as it was (handlers, filters, level, propagation, the direct-write
    handler) put back on leaving, whatever was configured within: for tests and in-process
    benchmarks, since a logger left unpropagated hides every later decision record from
    caplog (pytest 6.2)."""
    global _direct  # noqa: PLW0603 - the direct-write handler is put back with the rest
    log = decision_log
    propagate, level, direct = log.propagate, log.level, _direct
    handlers, filters = list(log.handlers), list(log.filters)
    try:
        yield
    finally:
        log.handlers[:], log.filters[:] = handlers, filters
        log.propagate = propagate
        log.setLevel(level)
        _direct = direct
