"""Our webhooks' latency as the API server measures it: its own
apiserver_admission_webhook_admission_duration_seconds histogram, scraped from /metrics.

The figure covers everything between the API server and csr-webhook (TLS, gunicorn, the
decision, and the recording proxy when the call went through it); p50/p99 are reported as the
bucket bound that holds that quantile, which is all a histogram can say. `Histogram.minus`
isolates one phase of a run (two scrapes).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import Cluster

METRIC = "apiserver_admission_webhook_admission_duration_seconds"
OUR_WEBHOOKS = ("mutate.csr-webhook.io", "validate.csr-webhook.io")


@dataclass
class Histogram:
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    count: float = 0.0
    total: float = 0.0

    def minus(self, earlier: Histogram) -> Histogram:
        return Histogram(
            defaultdict(
                float, {b: v - earlier.buckets.get(b, 0.0) for b, v in self.buckets.items()}
            ),
            self.count - earlier.count,
            self.total - earlier.total,
        )

    def quantile_bucket(self, quantile: float) -> float:
        """The upper bound of the first cumulative bucket holding `quantile` of the calls."""
        for bound in sorted(self.buckets):
            if self.buckets[bound] >= quantile * self.count:
                return bound
        return math.inf


@dataclass(frozen=True)
class Latency:
    webhook: str
    count: int
    total_seconds: float
    p50_bucket: float
    p99_bucket: float
    label: str = "whole run"

    def line(self) -> str:
        mean = self.total_seconds / self.count if self.count else math.nan
        return (
            f"{self.webhook} ({self.label}): {self.count} calls observed by kube-apiserver, "
            f"mean {mean * 1000:.1f} ms, p50 <= {self.p50_bucket:g} s, p99 <= {self.p99_bucket:g} s"
        )


def parse_histograms(metrics_text: str) -> dict[str, Histogram]:
    """Our two webhooks' histograms, summed over operation, rejected and type labels."""
    found: dict[str, Histogram] = defaultdict(Histogram)
    for family in text_string_to_metric_families(metrics_text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            name = sample.labels.get("name", "")
            if name not in OUR_WEBHOOKS:
                continue
            if sample.name.endswith("_bucket"):
                found[name].buckets[float(sample.labels["le"])] += sample.value
            elif sample.name.endswith("_count"):
                found[name].count += sample.value
            elif sample.name.endswith("_sum"):
                found[name].total += sample.value
    return dict(found)


def summarize(histograms: dict[str, Histogram], label: str = "whole run") -> list[Latency]:
    return [
        Latency(
            webhook=name,
            count=round(histograms[name].count),
            total_seconds=histograms[name].total,
            p50_bucket=histograms[name].quantile_bucket(0.50),
            p99_bucket=histograms[name].quantile_bucket(0.99),
            label=label,
        )
        for name in OUR_WEBHOOKS
        if name in histograms and histograms[name].count > 0
    ]


def scrape_histograms(cluster: Cluster) -> dict[str, Histogram]:
    return parse_histograms(cluster.raw("/metrics"))


def scrape_latency(cluster: Cluster) -> list[Latency]:
    return summarize(scrape_histograms(cluster))
