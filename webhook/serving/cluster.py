"""The cluster connection of one serving process: whether to connect, the facts, readiness.

`serve --cluster auto` connects when given --kubeconfig or when running in a pod; `on` must
connect (startup fails without credentials, as with a --kubeconfig that cannot be used); `off`
never does. Each gunicorn worker starts
its own caches after the fork (threads and the API client's connection pool do not survive
a fork, and a review must read its facts in memory, not from the master). A cache that never
syncs holds /readyz at 503 for at most --cluster-sync-grace seconds after the worker started;
after that the worker is ready and every fact it lacks is Unknown (rules needing one deny).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webhook.errors import CredentialsError
from webhook.facts import NO_CLUSTER, ClusterFacts, StaticFacts
from webhook.serving.settings import Settings

log = logging.getLogger("csr_webhook")
MODES = ("auto", "on", "off")
# How often a worker writes its caches' state into the metrics.
METRICS_INTERVAL_SECONDS = 1.0


def wants_cluster(settings: Settings) -> bool:
    """Whether `settings` ask for a connection (auto: a kubeconfig, or a pod's environment)."""
    if settings.cluster == "off":
        return False
    if settings.cluster == "on" or settings.kubeconfig is not None:
        return True
    from webhook.cluster.client import in_cluster  # noqa: PLC0415 - kubernetes only if needed

    return in_cluster()


def check_credentials(settings: Settings) -> str | None:
    """In the master, before any worker: the credentials load (None), or why not. With `on`
    or an explicit --kubeconfig that is a startup error (CredentialsError); `auto` in a pod
    whose service account cannot be read serves without a cluster instead."""
    if not wants_cluster(settings):
        return None
    from webhook.cluster.client import connect  # noqa: PLC0415

    try:
        connect(str(settings.kubeconfig) if settings.kubeconfig else None).close()
    except CredentialsError as error:
        if settings.cluster == "on" or settings.kubeconfig is not None:
            raise
        return str(error)
    return None


@dataclass
class ClusterLink:
    """One worker's facts and what /readyz and the metrics say about them."""

    facts: ClusterFacts = NO_CLUSTER
    watched: Any = None  # a webhook.cluster.facts.WatchedFacts when connected
    reason: str = NO_CLUSTER.reason  # why there is no connection, when there is none
    grace: float = 0.0
    started: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, the `cluster` block of /readyz)."""
        if self.watched is None:
            return True, {"connected": False, "reason": self.reason}
        caches = {
            cache.name: {
                "synced": cache.synced,
                "ageSeconds": None if cache.age is None else round(cache.age, 1),
                "error": cache.error,
                "unknown": cache.unknown,
            }
            for cache in self.watched.caches()
        }
        waiting = not self.watched.synced and self.clock() - self.started < self.grace
        return not waiting, {"connected": True, "caches": caches}

    def cache_states(self) -> list[tuple[str, bool, float]]:
        """(cache, synced, seconds since its last contact, or since the start before any)."""
        if self.watched is None:
            return []
        now = self.clock()
        return [
            (cache.name, cache.synced, cache.age if cache.age is not None else now - self.started)
            for cache in self.watched.caches()
        ]


def start_cluster_link(settings: Settings) -> ClusterLink:
    """In a worker: connect and start the caches, or the reason there are none. Never raises
    for the cluster's sake: a connection that fails only makes the facts Unknown."""
    if not wants_cluster(settings):
        reason = "no cluster connection (serve --cluster off)"
        if settings.cluster == "auto":
            reason = NO_CLUSTER.reason
        return ClusterLink(facts=StaticFacts(reason=reason), reason=reason)
    from webhook.cluster.client import connect  # noqa: PLC0415
    from webhook.cluster.facts import watch_cluster  # noqa: PLC0415

    try:
        api = connect(str(settings.kubeconfig) if settings.kubeconfig else None)
    except CredentialsError as error:
        reason = f"no cluster connection: {error}"
        log.warning("%s", reason)
        return ClusterLink(facts=StaticFacts(reason=reason), reason=reason)
    watched = watch_cluster(api)
    watched.start()
    return ClusterLink(facts=watched, watched=watched, reason="", grace=settings.cluster_sync_grace)


def follow_in_metrics(link: ClusterLink, record: Callable[[str, bool, float], None]) -> None:
    """Write the link's cache states through `record` now and every METRICS_INTERVAL_SECONDS
    (a gauge in multiprocess mode holds the value last written, not one read at scrape)."""
    if link.watched is None:
        return

    def loop() -> None:
        while True:
            for name, synced, age in link.cache_states():
                record(name, synced, age)
            time.sleep(METRICS_INTERVAL_SECONDS)

    threading.Thread(target=loop, name="cluster-metrics", daemon=True).start()
