"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's tools/leaderelection does it.

A candidate reads the Lease; one held by another identity is taken only once its record has
stayed unchanged for leaseDurationSeconds by this process's own monotonic clock (the remote
renewTime is never compared with a local clock: the clocks of two machines need not agree).
Every write carries the resourceVersion read, so of two candidates racing for an expired
Lease one gets 409 Conflict. The holder renews every retry period; when no renewal has
succeeded for the renew deadline it is no longer leader (`is_leader` turns False at once,
before another can take over: renew deadline < lease duration) and `keep_renewing` returns.
`release` hands the Lease back (empty holder), so a successor need not wait it out.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import CoordinationV1Api
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("csr_webhook.approver")
# client-go's leaderelection.JitterFactor: an acquire attempt waits retry * (1 + [0, 1.2)).
JITTER_FACTOR = 1.2


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The fields of a Lease's spec that leader election reads and writes."""

    holder: str
    duration: int
    acquire_time: str
    renew_time: str
    transitions: int

    @classmethod
    def of(cls, spec: dict[str, Any]) -> LeaseRecord:
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=str(spec.get("acquireTime") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "leaseDurationSeconds": self.duration,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }
        if self.holder:
            spec["holderIdentity"] = self.holder
        return spec


def micro_time() -> str:
    """Now as a Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        on_leading: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period * JITTER_FACTOR:
            raise ValueError(
                f"need lease duration ({lease_duration}) > renew deadline ({renew_deadline}) > "
                f"{JITTER_FACTOR} x retry period ({retry_period})"
            )
        # Typed in some client versions, not in others; called with raw JSON either way.
        self._api: Any = CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._on_leading = on_leading
        self._clock = clock
        self._lock = threading.Lock()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._lease: dict[str, Any] | None = None  # the Lease as our last write left it
        self._renewed_at: float | None = None
        self._lost = False  # once lost, this process does not lead again (it exits)
        self.last_error = ""

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    def is_leader(self) -> bool:
        """True while a renewal succeeded within the renew deadline: act only when True."""
        with self._lock:
            renewed = self._renewed_at
        return renewed is not None and self._clock() < renewed + self.renew_deadline

    def holder(self) -> str:
        """The holder as last observed ("" when none or unknown)."""
        with self._lock:
            return self._observed.holder if self._observed else ""

    def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's tryAcquireOrRenew); never raises for the API's answers."""
        started = self._clock()
        timeout = max(1.0, self.renew_deadline / 2)
        try:
            answer = self._api.read_namespaced_lease(
                self.name, self.namespace, _preload_content=False, _request_timeout=timeout
            )
            lease = json.loads(answer.data)
        except ApiException as exc:
            if exc.status != 404:
                return self._failed(f"reading {self.where}: {exc.status} {exc.reason}")
            return self._create(started, timeout)
        except Exception as exc:
            return self._failed(f"reading {self.where}: {exc}")
        record = LeaseRecord.of(lease.get("spec") or {})
        with self._lock:
            if record != self._observed:
                self._observed, self._observed_at = record, started
            observed_at = self._observed_at
        if (
            record.holder
            and record.holder != self.identity
            and started < observed_at + max(record.duration, 1)
        ):
            with self._lock:
                deposed = self._renewed_at is not None
            if deposed:  # another holder wrote the Lease: stop at once, not at the deadline
                self._lose()
            return False
        now = micro_time()
        mine = record.holder == self.identity
        lease["spec"] = LeaseRecord(
            holder=self.identity,
            duration=int(self.lease_duration),
            acquire_time=record.acquire_time if mine else now,
            renew_time=now,
            transitions=record.transitions if mine else record.transitions + 1,
        ).spec()
        try:
            answer = self._api.replace_namespaced_lease(
                self.name, self.namespace, lease, _preload_content=False, _request_timeout=timeout
            )
        except ApiException as exc:
            return self._failed(f"updating {self.where}: {exc.status} {exc.reason}")
        except Exception as exc:
            return self._failed(f"updating {self.where}: {exc}")
        return self._succeeded(json.loads(answer.data), started, took_over=not mine)

    def _create(self, started: float, timeout: float) -> bool:
        now = micro_time()
        record = LeaseRecord(self.identity, int(self.lease_duration), now, now, 0)
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.spec(),
        }
        try:
            answer = self._api.create_namespaced_lease(
                self.namespace, body, _preload_content=False, _request_timeout=timeout
            )
        except ApiException as exc:
            return self._failed(f"creating {self.where}: {exc.status} {exc.reason}")
        except Exception as exc:
            return self._failed(f"creating {self.where}: {exc}")
        return self._succeeded(json.loads(answer.data), started, took_over=True)

    def _succeeded(self, lease: dict[str, Any], started: float, *, took_over: bool) -> bool:
        with self._lock:
            was_leader = self._renewed_at is not None
            self._lease = lease
            self._observed = LeaseRecord.of(lease.get("spec") or {})
            self._observed_at = started
            # The attempt's start, not its end: the Lease may have been written at any
            # moment in between, and the deadline must not outlast the others' view of it.
            self._renewed_at = started
            self.last_error = ""
        if took_over or not was_leader:
            log.info("%s acquired by %s", self.where, self.identity)
            if self._on_leading:
                self._on_leading(True)
        return True

    def _failed(self, message: str) -> bool:
        with self._lock:
            self.last_error = message
        log.warning("leader election: %s", message)
        return False

    def acquire(self, stop: threading.Event) -> bool:
        """Try until this process holds the Lease (True) or `stop` is set (False)."""
        while not stop.is_set():
            if self.try_acquire_or_renew():
                return True
            stop.wait(self.retry_period * (1 + random.random() * JITTER_FACTOR))
        return False

    def keep_renewing(self, stop: threading.Event) -> bool:
        """Renew every retry period. Returns True when `stop` is set, False as soon as the
        renew deadline passed without a renewal or another holder took over (leadership
        lost)."""
        while not stop.is_set():
            stop.wait(self.retry_period)
            while not stop.is_set():
                if self.try_acquire_or_renew():
                    break
                if not self.is_leader():
                    self._lose()
                    return False
                stop.wait(self.retry_period / 4)
        return True

    def _lose(self) -> None:
        with self._lock:
            if self._lost:
                return
            self._lost = True
            self._renewed_at = None
        log.error(
            "%s: no renewal within the renew deadline (%ss); %s stops acting as leader (%s)",
            self.where,
            self.renew_deadline,
            self.identity,
            self.last_error or "another holder",
        )
        if self._on_leading:
            self._on_leading(False)

    def release(self) -> bool:
        """Give the Lease up if this process holds it; True when the API took the release."""
        with self._lock:
            lease, leading = self._lease, self._renewed_at is not None
            self._renewed_at = None
        if lease is None or not leading:
            return False
        if self._on_leading:
            self._on_leading(False)
        now = micro_time()
        record = LeaseRecord.of(lease.get("spec") or {})
        lease["spec"] = LeaseRecord("", 1, now, now, record.transitions).spec()
        try:
            self._api.replace_namespaced_lease(
                self.name, self.namespace, lease, _preload_content=False, _request_timeout=5
            )
        except Exception as exc:
            log.warning("releasing %s: %s", self.where, exc)
            return False
        log.info("%s released by %s", self.where, self.identity)
        return True
