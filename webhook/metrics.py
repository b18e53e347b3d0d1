"""Prometheus metrics on the plain-HTTP --metrics-bind port.

Placeholder scope: build info only; admission counters, histograms and multiprocess
aggregation plug in here. Label values must come from bounded, operator-controlled sets.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from webhook import __version__


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    info = Gauge("csr_webhook_build_info", "csr-webhook build", ["version"], registry=registry)
    info.labels(version=__version__).set(1)
    return registry


def start_metrics_server(bind: str, registry: CollectorRegistry) -> None:
    host, _, port = bind.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=registry)
