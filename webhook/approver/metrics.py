"""The approval controller's Prometheus metrics, in one registry of its own process.

Label values are bounded: a policy name of the loaded set (or unmatched/none) and a result
of webhook.approver.decide.RESULTS. Not multiprocess: `approve` is one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from webhook import __version__


class ApproverMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.decisions = Counter(
            "csr_webhook_approver_decisions",
            "CSRs the controller decided, by policy and result",
            ["policy", "result"],
            registry=registry,
        )
        self.retries = Counter(
            "csr_webhook_approver_retries",
            "CSRs requeued with backoff (API error, unknown cluster fact)",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "csr_webhook_approver_queue_depth",
            "CSR names ready to be processed",
            registry=registry,
        )
        self.leader = Gauge(
            "csr_webhook_approver_leader",
            "1 while this process holds the Lease and acts, else 0",
            registry=registry,
        )
        self.build = Gauge(
            "csr_webhook_approver_build_info",
            "The running version",
            ["version"],
            registry=registry,
        )
        self.build.labels(__version__).set(1)
