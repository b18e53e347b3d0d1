"""Our webhooks' latency as the API server measures it: its own
apiserver_admission_webhook_admission_duration_seconds histogram, scraped from /metrics.

The figure includes everything between the API server and csr-webhook (TLS, the recording
proxy of this suite, gunicorn, the decision); p50/p99 are reported as the bucket bound that
holds that quantile, which is all a histogram can say.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import Cluster

METRIC = "apiserver_admission_webhook_admission_duration_seconds"
OUR_WEBHOOKS = ("mutate.csr-webhook.io", "validate.csr-webhook.io")


@dataclass(frozen=True)
class Latency:
    webhook: str
    count: int
    total_seconds: float
    p50_bucket: float
    p99_bucket: float

    def line(self) -> str:
        mean = self.total_seconds / self.count if self.count else math.nan
        return (
            f"{self.webhook}: {self.count} calls observed by kube-apiserver, "
            f"mean {mean * 1000:.1f} ms, p50 <= {self.p50_bucket:g} s, p99 <= {self.p99_bucket:g} s"
        )


def quantile_bucket(buckets: dict[float, float], count: float, quantile: float) -> float:
    """The upper bound of the first cumulative bucket holding `quantile` of the observations."""
    for bound in sorted(buckets):
        if buckets[bound] >= quantile * count:
            return bound
    return math.inf


def parse_latency(metrics_text: str) -> list[Latency]:
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, float] = defaultdict(float)
    sums: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(metrics_text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            name = sample.labels.get("name", "")
            if name not in OUR_WEBHOOKS:
                continue
            if sample.name.endswith("_bucket"):
                buckets[name][float(sample.labels["le"])] += sample.value
            elif sample.name.endswith("_count"):
                counts[name] += sample.value
            elif sample.name.endswith("_sum"):
                sums[name] += sample.value
    return [
        Latency(
            webhook=name,
            count=int(counts[name]),
            total_seconds=sums[name],
            p50_bucket=quantile_bucket(buckets[name], counts[name], 0.50),
            p99_bucket=quantile_bucket(buckets[name], counts[name], 0.99),
        )
        for name in OUR_WEBHOOKS
        if counts[name]
    ]


def scrape_latency(cluster: Cluster) -> list[Latency]:
    return parse_latency(cluster.raw("/metrics"))
