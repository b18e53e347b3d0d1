"""`csr-webhook approve`: wire the Lease, the watches, the policies and the workers together.

Every replica lists and watches CSRs and serves /metrics, /healthz and /readyz; only the one
holding the Lease runs workers. Leadership lost (no renewal within the renew deadline): the
process stops its workers and exits 1, for the Deployment to restart it as a candidate.
SIGTERM or SIGINT: workers finish the CSR in hand, the Lease is released (a successor need
not wait it out), exit 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry

from webhook.approver.controller import Controller, configure_decision_log
from webhook.approver.lease import LeaderElector
from webhook.approver.metrics import ApproverMetrics
from webhook.approver.policies import PolicyDirectory
from webhook.cluster.client import connect
from webhook.cluster.facts import watch_cluster
from webhook.errors import ClusterError, UsageError
from webhook.metrics_http import start_metrics_http
from webhook.policy.loader import load_policies

log = logging.getLogger("csr_webhook.approver")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproverSettings:
    policies: Path
    kubeconfig: str | None
    lease_namespace: str
    lease_name: str
    identity: str
    lease_duration: float
    renew_deadline: float
    retry_period: float
    metrics_bind: str
    workers: int
    reload_interval: float


def run_approve(settings: ApproverSettings) -> int:
    if not settings.policies.is_dir():
        raise UsageError(f"--policies {str(settings.policies)!r} is not a directory")
    configure_decision_log()
    result = load_policies([settings.policies])
    if result.policy_set is None:
        for problem in result.errors:
            print(problem, file=sys.stderr)
        print(f"refusing to start: {len(result.errors)} problem(s) in policy set", file=sys.stderr)
        return 1
    try:
        api = connect(settings.kubeconfig)
    except ClusterError as exc:
        raise UsageError(str(exc)) from exc
    policies = PolicyDirectory(settings.policies, result.policy_set)
    registry = CollectorRegistry()
    metrics = ApproverMetrics(registry)
    try:
        elector = LeaderElector(
            api,
            namespace=settings.lease_namespace,
            name=settings.lease_name,
            identity=settings.identity,
            lease_duration=settings.lease_duration,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
            on_leading=lambda leading: metrics.leader.set(1 if leading else 0),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    # One CSR watch feeds both the facts' pending index (maxPending) and the queue; a Node's
    # change brings back the CSRs left pending for a node reason.
    controller: Controller  # built below; the watches start after it
    facts = watch_cluster(
        api,
        on_node_change=lambda _name, _addresses: controller.nodes_changed(),
        on_csr_change=lambda name, state: controller.changed(
            name, state is not None and state.pending
        ),
    )
    controller = Controller(
        api,
        policies,
        facts=facts,
        metrics=metrics,
        is_leader=elector.is_leader,
        workers=settings.workers,
        identity=settings.identity,
    )

    def ready() -> tuple[int, str]:
        waiting = [c for c in facts.caches() if not c.synced]
        if waiting:
            why = "; ".join(f"{c.name}: {c.error or 'listing'}" for c in waiting)
            return 503, f"watch not synced: {why}"
        role = "leader" if elector.is_leader() else f"standby (leader: {elector.holder() or '?'})"
        problem = f"; policy reload refused: {policies.last_error}" if policies.last_error else ""
        return 200, f"ok: {role}{problem}"

    host, _, port = settings.metrics_bind.rpartition(":")
    try:
        start_metrics_http(
            host.strip("[]") or "0.0.0.0",
            int(port),
            registry,
            {"/healthz": lambda: (200, "ok"), "/readyz": ready},
        )
    except OSError as exc:
        raise UsageError(f"--metrics-bind {settings.metrics_bind}: {exc.strerror or exc}") from exc
    facts.start()
    policies.watch(settings.reload_interval, lambda: controller.enqueue(controller.pending_names()))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("approver: signal %d, stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "approver %s: candidate for %s (lease %ss, renew deadline %ss, retry %ss)",
        settings.identity,
        elector.where,
        settings.lease_duration,
        settings.renew_deadline,
        settings.retry_period,
    )
    if not elector.acquire(stop):
        facts.stop()
        return 0
    # What the watch has seen so far; the rest is queued as it arrives (on_change).
    controller.enqueue(controller.pending_names())
    controller.start()
    still_leader = elector.keep_renewing(stop)
    controller.stop()
    if still_leader:
        elector.release()  # before anything else, so the successor starts sooner
    facts.stop()
    policies.stop()
    if not still_leader:
        log.error(
            "approver %s: leadership lost, exiting to start again as a candidate", settings.identity
        )
        return 1
    return 0
