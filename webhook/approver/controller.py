"""The approval controller's workers: a CSR name from the queue -> read -> decide -> act.

Each name is processed on its own (the queue hands a name to one worker at a time; an error
on one requeues that one with its backoff and never blocks the others). The stored object is
read afresh and parsed by webhook.admission's parser; the decision is webhook.approver.decide's.
An approval or denial goes through the /approval subresource with the resourceVersion read, so
if anyone (another replica included) changed the CSR since, the API server answers 409 and
the name is read again, finds a condition, and is skipped: a CSR is never acted on twice.
Writes happen only while `is_leader()` says so. One JSON line per decision.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from kubernetes.client import CertificatesV1Api
from kubernetes.client.exceptions import ApiException

from webhook.admission import parse_csr_object
from webhook.approver.decide import (
    APPROVED_REASON,
    DENIED_REASON,
    Action,
    Outcome,
    decide,
)
from webhook.approver.metrics import ApproverMetrics
from webhook.approver.queue import WorkQueue
from webhook.cluster.client import read_json
from webhook.engine import EngineOptions
from webhook.errors import ReviewError
from webhook.facts import ClusterFacts
from webhook.policy.model import PolicySet
from webhook.resource import CSRObject
from webhook.text import show

log = logging.getLogger("csr_webhook.approver")
decision_log = logging.getLogger("csr_webhook.approver.decisions")
REQUEST_TIMEOUT = 30.0


class _Stdout(logging.Handler):
    """Bare lines on whatever sys.stdout is when a line is written."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:  # logging's own rule: report, never raise
            self.handleError(record)


def configure_decision_log() -> None:
    """Decision lines go to stdout as bare JSON, as `serve`'s do; everything else to stderr.
    Idempotent."""
    if not any(isinstance(h, _Stdout) for h in decision_log.handlers):
        decision_log.addHandler(_Stdout())
    decision_log.propagate = False
    decision_log.setLevel(logging.INFO)


class PolicySource(Protocol):
    @property
    def current(self) -> PolicySet: ...


class Controller:
    def __init__(
        self,
        api_client: Any,
        policies: PolicySource,
        *,
        facts: ClusterFacts,
        metrics: ApproverMetrics,
        is_leader: Callable[[], bool],
        queue: WorkQueue | None = None,
        options: EngineOptions | None = None,
        workers: int = 2,
        identity: str = "",
    ) -> None:
        # Typed in some client versions, not in others; called with raw JSON either way.
        self._api: Any = CertificatesV1Api(api_client)
        self._policies = policies
        self._facts = facts
        self._metrics = metrics
        self._is_leader = is_leader
        self.queue = queue or WorkQueue()
        self._options = options or EngineOptions()
        self._workers = workers
        self._identity = identity
        self._threads: list[threading.Thread] = []
        # name -> (resourceVersion, policy digest) of a CSR left pending: judged again only
        # when either changes, so a resync neither recounts nor relogs it.
        self._left: dict[str, tuple[str, str]] = {}
        self._pending: set[str] = set()
        # CSRs left pending for a node.* reason: a Node's change may change their outcome,
        # and a Node change is no change of the CSR (nodes_changed queues them again).
        self._left_for_nodes: set[str] = set()
        self._left_lock = threading.Lock()
        metrics.queue_depth.set_function(lambda: self.queue.depth)

    def changed(self, name: str, pending: bool) -> None:
        """The CSR informer's on_change: a pending CSR is queued; a finished or deleted one
        is forgotten."""
        with self._left_lock:
            if pending:
                self._pending.add(name)
            else:
                self._pending.discard(name)
                self._left.pop(name, None)
                self._left_for_nodes.discard(name)
        if pending:
            self.queue.add(name)

    def nodes_changed(self) -> None:
        """The Node informer's on_change: every CSR left pending for a node.* reason is judged
        again (an address another Node claimed may be free now, a missing Node may exist)."""
        with self._left_lock:
            names = sorted(self._left_for_nodes)
            self._left_for_nodes.clear()
            for name in names:
                self._left.pop(name, None)
        self.enqueue(names)

    def pending_names(self) -> list[str]:
        """Every CSR the watch shows pending (to judge them all again)."""
        with self._left_lock:
            return sorted(self._pending)

    def enqueue(self, names: Iterable[str]) -> None:
        for name in names:
            self.queue.add(name)

    def start(self) -> None:
        for index in range(self._workers):
            thread = threading.Thread(
                target=self._work, name=f"approver-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self.queue.shutdown()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    def _work(self) -> None:
        while (name := self.queue.get()) is not None:
            try:
                self.process(name)
            except Exception:  # a bug on one CSR must not end the worker
                log.exception("approver: processing CSR %s failed", show(name))
                self._retry(name)
            finally:
                self.queue.done(name)

    def process(self, name: str) -> str:
        """Handle one CSR; returns what happened (for tests and debug logs): gone, skipped,
        unchanged, approved, denied, left_pending, unknown, conflict, error, not_leader."""
        try:
            answer = self._api.read_certificate_signing_request(
                name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
            raw = read_json(answer)
        except ApiException as exc:
            if exc.status == 404:
                self.queue.forget(name)
                return "gone"
            return self._failed(name, f"reading it: {_api_error(exc)}")
        except Exception as exc:
            return self._failed(name, f"reading it: {exc}")
        try:
            obj = parse_csr_object(raw, f"CertificateSigningRequest {name}")
        except ReviewError as exc:
            log.error("approver: CSR %s cannot be read: %s", show(name), exc)
            self.queue.forget(name)
            return "error"
        policies = self._policies.current
        version = str((raw.get("metadata") or {}).get("resourceVersion", ""))
        with self._left_lock:
            if self._left.get(name) == (version, policies.digest):
                return "unchanged"
        outcome = decide(obj, policies, self._options, self._facts)
        if outcome is None:
            self.queue.forget(name)
            return "skipped"
        if outcome.action is Action.RETRY:
            self._record(obj, outcome)
            self._retry(name)
            return outcome.result
        if outcome.action is Action.LEAVE:
            self._record(obj, outcome)
            self.queue.forget(name)
            with self._left_lock:
                self._left[name] = (version, policies.digest)
                if any(code.startswith("node.") for code in outcome.codes):
                    self._left_for_nodes.add(name)
            return outcome.result
        if not self._is_leader():
            log.warning("approver: not leader; CSR %s is left to the leader", show(name))
            return "not_leader"
        return self._write(name, raw, obj, outcome)

    def _write(self, name: str, raw: dict[str, Any], obj: CSRObject, outcome: Outcome) -> str:
        approve = outcome.action is Action.APPROVE
        condition = {
            "type": "Approved" if approve else "Denied",
            "status": "True",
            "reason": APPROVED_REASON if approve else DENIED_REASON,
            "message": outcome.message,
            "lastUpdateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        status = raw.setdefault("status", {})
        status["conditions"] = [*(status.get("conditions") or []), condition]
        try:
            read_json(
                self._api.replace_certificate_signing_request_approval(
                    name, raw, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as exc:
            if exc.status == 409:
                # Changed since it was read (another writer, another replica): read it again.
                # Rate-limited like any failure, so a CSR that keeps changing cannot spin.
                log.info("approver: CSR %s changed while deciding; reading it again", show(name))
                self.queue.add_rate_limited(name)
                return "conflict"
            if exc.status == 404:
                self.queue.forget(name)
                return "gone"
            return self._failed(name, f"{outcome.action.value}: {_api_error(exc)}")
        except Exception as exc:
            return self._failed(name, f"{outcome.action.value}: {exc}")
        self._record(obj, outcome)
        self.queue.forget(name)
        return outcome.result

    def _failed(self, name: str, why: str) -> str:
        log.warning("approver: CSR %s: %s; retrying", show(name), why)
        self._retry(name)
        return "error"

    def _retry(self, name: str) -> None:
        self._metrics.retries.inc()
        self.queue.add_rate_limited(name)

    def _record(self, obj: CSRObject, outcome: Outcome) -> None:
        decision = outcome.decision
        self._metrics.decisions.labels(decision.policy, outcome.result).inc()
        if decision_log.isEnabledFor(logging.INFO):
            record = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
                "msg": "approval decision",
                "csr": obj.name[:512],
                "signer": obj.signer_name[:512],
                "requester": obj.username[:512],
                "policy": decision.policy,
                "rule": ",".join(decision.rules),
                "result": outcome.result,
                "violations": outcome.codes,
                "reason": outcome.message[:1024],
                "identity": self._identity,
            }
            decision_log.info(json.dumps(record, separators=(",", ":")))


def _api_error(exc: ApiException) -> str:
    """The API server's Status message (a webhook's denial says why), else its status."""
    message = ""
    with contextlib.suppress(ValueError, AttributeError):
        message = str(json.loads(exc.body or b"{}").get("message", ""))
    return f"{exc.status} {exc.reason}" + (f": {show(message, 400)}" if message else "")
