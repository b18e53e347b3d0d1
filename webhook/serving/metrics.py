"""Prometheus metrics (docs/server.md §5). Label values come only from bounded sets we or the
operator control: webhook, a registered resource, a known operation/subresource or "other", a
policy name or unmatched/none, a decision, a rule name, a violation code.

Workers count reviews into prometheus_client's multiprocess files; the master serves
/metrics on --metrics-bind, merging those files with its own state (build info, policy
reloads and whether the directory's content is in force, certificate expiry), so counts are
exact across workers and a scrape never touches a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook import __version__
from webhook.admission import CSR_RESOURCE, PCR_RESOURCE
from webhook.decision import Decision, Verdict
from webhook.metrics_http import start_metrics_http

# From 0.5 ms up, and including the API server's own webhook latency buckets
# (0.005, 0.025, 0.1, 0.5, 1, 2.5: apiserver admission webhook metrics).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
_SUBRESOURCES = frozenset({"", "approval", "status"})
# What the webhook configurations register; anything else is a misregistration ("other").
RESOURCES = frozenset({CSR_RESOURCE, PCR_RESOURCE})


def bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


class ReviewMetrics:
    """What a worker counts per review."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            "csr_webhook_admission_requests",
            "Admission reviews answered, by outcome",
            ["webhook", "resource", "operation", "subresource", "policy", "decision"],
            registry=registry,
        )
        self.violations = Counter(
            "csr_webhook_violations",
            "Policy violations found, by code",
            ["policy", "rule", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "csr_webhook_admission_duration_seconds",
            "Time to answer one admission review",
            ["webhook"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Labelled children by their label values, so labels() (argument checks, a lock, str()
        # of each value) runs once per combination: the keys are the bounded label values, as
        # many as prometheus_client keeps children. A race adds the same child twice, harmlessly.
        self._requests: dict[tuple[str, ...], Counter] = {}
        self._duration: dict[str, Histogram] = {}
        self._violations: dict[tuple[str, str, str], Counter] = {}

    def observe(
        self,
        *,
        webhook: str,
        resource: str,
        operation: str,
        subresource: str,
        decision: Decision | None,
        seconds: float,
    ) -> None:
        """Count one answered review; `decision` None means it failed with an error."""
        policy = decision.policy if decision is not None else "none"
        outcome = decision.verdict.value if decision is not None else "error"
        labels = (
            webhook,
            bounded(resource, RESOURCES),
            bounded(operation, _OPERATIONS),
            bounded(subresource, _SUBRESOURCES),
            policy,
            outcome,
        )
        requests = self._requests.get(labels)
        if requests is None:
            requests = self._requests[labels] = self.requests.labels(*labels)
        requests.inc()
        duration = self._duration.get(webhook)
        if duration is None:
            duration = self._duration[webhook] = self.duration.labels(webhook)
        duration.observe(seconds)
        if decision is None or decision.verdict is Verdict.ALLOWED:
            return
        # One increment per (rule, code): a hostile CSR can earn thousands of violations of
        # one code. `rule` is the rule that reported the violation, "multiple" when several
        # did, "none" for the policy's own (structure, deny lists, approval, issuance).
        counts: dict[tuple[str, str], int] = {}
        for violation in decision.violations:
            rules = decision.reported_by.get(violation, ())
            rule = rules[0] if len(rules) == 1 else "multiple" if rules else "none"
            key = (rule, violation.code)
            counts[key] = counts.get(key, 0) + 1
        for (rule, code), count in counts.items():
            child = self._violations.get((policy, rule, code))
            if child is None:
                child = self._violations[policy, rule, code] = self.violations.labels(
                    policy, rule, code
                )
            child.inc(count)


@dataclass(slots=True)
class ServerState:
    """The master's own facts, read at scrape time."""

    policies: int = 0
    reloads: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    last_reload_success: float = 0.0
    certificate_not_after: Callable[[], float | None] = lambda: None
    # (role, pid, hash) of every process serving a policy set: the master's and each worker's
    policy_sets: Callable[[], list[tuple[str, int, str]]] = lambda: []
    # True while the policy directory holds content that is not the set in force (refused)
    policy_directory_pending: Callable[[], bool] = lambda: False
    certificate_reloads: dict[str, int] = field(
        default_factory=lambda: {"success": 0, "failure": 0}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_certificate_reload(self, ok: bool) -> None:
        with self.lock:
            self.certificate_reloads["success" if ok else "failure"] += 1

    def record_reload(self, ok: bool, policies: int, when: float) -> None:
        with self.lock:
            self.reloads["success" if ok else "failure"] += 1
            if ok:
                self.policies = policies
                self.last_reload_success = when


class ServerCollector(Collector):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        info = GaugeMetricFamily("csr_webhook_build_info", "csr-webhook build", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        with state.lock:
            yield GaugeMetricFamily(
                "csr_webhook_policies", "Policies in the set in force", value=state.policies
            )
            reloads = CounterMetricFamily(
                "csr_webhook_policy_reloads", "Policy set reloads", labels=["result"]
            )
            for result, count in sorted(state.reloads.items()):
                reloads.add_metric([result], count)
            yield reloads
            certificates = CounterMetricFamily(
                "csr_webhook_tls_certificate_reloads",
                "Serving certificate reloads (a rejected pair keeps the last good one)",
                labels=["result"],
            )
            for result, count in sorted(state.certificate_reloads.items()):
                certificates.add_metric([result], count)
            yield certificates
            yield GaugeMetricFamily(
                "csr_webhook_policy_last_reload_success_timestamp_seconds",
                "When a policy set was last loaded successfully",
                value=state.last_reload_success,
            )
        # A gauge, not the failure counter: it stays 1 for as long as the refused content
        # stays, however long ago it was refused, so an alert on it does not clear by itself.
        yield GaugeMetricFamily(
            "csr_webhook_policy_directory_pending",
            "1 while the policy directory's content is not the set in force (its last reload "
            "was refused and the last good set serves), else 0",
            value=1.0 if state.policy_directory_pending() else 0.0,
        )
        sets = GaugeMetricFamily(
            "csr_webhook_policy_set_info",
            "The policy set each process serves, by content hash (as /readyz policySetHash)",
            labels=["role", "pid", "hash"],
        )
        for role, pid, digest in state.policy_sets():
            sets.add_metric([role, str(pid), digest], 1)
        yield sets
        not_after = state.certificate_not_after()
        if not_after is not None:
            yield GaugeMetricFamily(
                "csr_webhook_tls_certificate_not_after_timestamp_seconds",
                "Expiry of the serving certificate in force",
                value=not_after,
            )


def build_master_registry(state: ServerState, multiprocess_dir: str | None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ServerCollector(state))
    if multiprocess_dir is not None:
        _ReadyFilesCollector(registry, multiprocess_dir)
    return registry


# A worker's metrics file is created empty and only then sized (prometheus_client's MmapedDict):
# read in that instant it fails to unpack, and the scrape would answer 500. It has no values
# yet, so a scrape that passes it over loses nothing; the next one reads it.
_READY_FILE_BYTES = 8


class _ReadyFilesCollector(Collector):
    """prometheus_client's MultiProcessCollector over the files that are ready to read."""

    def __init__(self, registry: CollectorRegistry, path: str) -> None:
        self._path = Path(path)
        registry.register(self)

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import multiprocess  # noqa: PLC0415 - multiprocess mode only

        ready = []
        for file in sorted(self._path.glob("*.db")):
            try:
                if file.stat().st_size >= _READY_FILE_BYTES:
                    ready.append(str(file))
            except OSError:  # gone since the listing: nothing to read
                continue
        return multiprocess.MultiProcessCollector.merge(ready, accumulate=True)  # type: ignore[no-any-return,no-untyped-call]


def start_metrics_server(bind: str, registry: CollectorRegistry) -> None:
    host, _, port = bind.rpartition(":")
    start_metrics_http(host.strip("[]") or "0.0.0.0", int(port), registry)


def mark_worker_dead(pid: int) -> None:
    from prometheus_client import multiprocess  # noqa: PLC0415 - multiprocess mode only

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class HandoffMetrics:
    """What a worker counts about the policy sets the master hands it."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.failures = Counter(
            "csr_webhook_policy_set_handoff_failures",
            "Policy sets published by the master that a worker could not take (it keeps the "
            "set it serves)",
            registry=registry,
        )


class ClusterMetrics:
    """What a worker reports about its cluster caches (one value per worker: `pid`)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.synced = Gauge(
            "csr_webhook_cluster_cache_synced",
            "1 once the cache has completed a full list of the API, else 0",
            ["cache"],
            multiprocess_mode="liveall",
            registry=registry,
        )
        self.age = Gauge(
            "csr_webhook_cluster_cache_age_seconds",
            "Seconds since the cache last heard from the API server (since the worker started, "
            "before it first did)",
            ["cache"],
            multiprocess_mode="liveall",
            registry=registry,
        )

    def record(self, cache: str, synced: bool, age: float) -> None:
        self.synced.labels(cache).set(1.0 if synced else 0.0)
        self.age.labels(cache).set(age)
