"""Server settings: one frozen value built by the CLI from flags and CSR_WEBHOOK_* variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    policies: Path = Path("policies")
    bind: str = "0.0.0.0:8443"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    metrics_bind: str = "0.0.0.0:9090"
    workers: int = 2
    threads: int = 4
    unmatched_signers: str = "deny"
    reload_interval: float = 5.0
    log_level: str = "info"
    allow_empty_policies: bool = False
    cluster: str = "auto"  # auto, on, off (webhook/serving/cluster.py)
    kubeconfig: Path | None = None
    cluster_sync_grace: float = 30.0
    listeners: str = "per-worker"  # per-worker, shared (webhook/serving/listeners.py)
