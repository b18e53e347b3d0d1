"""csr-webhook as the cluster meets it: `csr-webhook serve` over TLS, behind the recording proxy,
registered with the webhook configurations rendered from manifests/base.

Only `clientConfig` changes for loopback (the Service reference becomes an https URL on
127.0.0.1, the caBundle the webhook's CA); every other field is exactly as shipped. The server
reaches the API with a token of the shipped ServiceAccount, bound by the shipped RBAC
(`--kubeconfig`, `--cluster=on`): what manifests/base grants is what its caches get.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.cluster import Cluster, Process, wait_for, write_kubeconfig
from tests.e2e.pki import ClusterPKI
from tests.e2e.recorder import Recorder, RecordingProxy
from tests.server import free_port

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "csr-webhook"
OVERLAYS = Path(__file__).resolve().parent / "policies"
PROBES = 4
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
# The webhook's own identity objects in manifests/base (the approver's live beside them).
IDENTITY_OBJECTS = (
    ("Namespace", "csr-webhook"),
    ("ServiceAccount", "csr-webhook"),
    ("ClusterRole", "csr-webhook-cluster-facts"),
    ("ClusterRoleBinding", "csr-webhook-cluster-facts"),
)


@dataclass
class Webhook:
    process: Process
    proxy: RecordingProxy
    recorder: Recorder
    policies: Path
    port: int
    metrics_port: int
    pki: ClusterPKI
    kubeconfig: Path | None = None  # the ServiceAccount's, when it watches the cluster

    def ready(self) -> bool:
        try:
            self.readyz()
        except urllib.error.HTTPError:  # 503 while the cluster caches sync
            return False
        return True

    def readyz(self) -> dict[str, Any]:
        """The /readyz body of whichever worker answers; raises HTTPError unless 200."""
        context = ssl.create_default_context(cafile=str(self.pki.webhook_ca.cert))
        url = f"https://127.0.0.1:{self.port}/readyz"
        with urllib.request.urlopen(url, context=context, timeout=5) as answer:
            body: dict[str, Any] = json.loads(answer.read())
            return body

    def start(self) -> None:
        self.process.start()
        wait_for("csr-webhook /readyz", self.ready, 60, self.process)
        self.proxy.start()

    def stop(self) -> None:
        self.proxy.stop()
        self.process.stop()

    def metric(self, name: str, labels: str = "") -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (not labels or labels in line):
                total += float(line.rsplit(" ", 1)[1])
        return total

    @contextmanager
    def overlay(
        self,
        name: str,
        probe: Callable[[], bool] | None = None,
        files: Mapping[str, str] | None = None,
    ) -> Iterator[None]:
        """Serve the shipped policies with tests/e2e/policies/<name>/ copied over them (hot
        reload), and the shipped set again afterwards. An overlay file no shipped policy has
        stays served, with its `files`: a reload that leaves a signer without its policy is
        refused by design (restart to remove one). `files` are the files the overlay's
        policies name (a caBundleFile made per run), written beside them first and recorded
        with every review. `probe` says when the new set is in force as the API server sees
        it."""
        reloads = self.metric("csr_webhook_policy_reloads_total", 'result="success"')
        for file_name, text in sorted((files or {}).items()):
            (self.policies / file_name).write_text(text)
        for source in sorted((OVERLAYS / name).glob("*.yaml")):
            _atomic_copy(source, self.policies / source.name)
        self.recorder.overlay = name
        self.recorder.files = dict(files or {})
        try:
            wait_for(
                f"reload of policy overlay {name}",
                lambda: (
                    self.metric("csr_webhook_policy_reloads_total", 'result="success"') > reloads
                ),
                30,
                self.process,
            )
            # The master's reload is counted; each worker polls on its own and is in force
            # within two reload intervals (README, "Behaviour").
            time.sleep(1.5)
            if probe is not None:
                # Several answers in a row: the API server's connections reach either worker.
                wait_for(
                    f"policy overlay {name} in force",
                    lambda: all(probe() for _ in range(PROBES)),
                    30,
                    self.process,
                )
            yield
        finally:
            reloads = self.metric("csr_webhook_policy_reloads_total", 'result="success"')
            shipped = [
                REPO / "policies" / source.name
                for source in sorted((OVERLAYS / name).glob("*.yaml"))
                if (REPO / "policies" / source.name).exists()
            ]
            for source in shipped:
                _atomic_copy(source, self.policies / source.name)
            if shipped:
                wait_for(
                    "reload of the shipped policies",
                    lambda: (
                        self.metric("csr_webhook_policy_reloads_total", 'result="success"')
                        > reloads
                    ),
                    30,
                    self.process,
                )
                time.sleep(1.5)  # every worker has the shipped set again
            self.recorder.overlay = ""
            self.recorder.files = {}


def _atomic_copy(source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, temporary)
    temporary.replace(target)


def rendered_base(cluster: Cluster) -> list[dict[str, Any]]:
    rendered = cluster.kubectl_ok("kustomize", str(REPO / "manifests" / "base"))
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def webhook_identity(base: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The webhook Deployment's Namespace and ServiceAccount, and the ClusterRoleBindings that
    bind that account with their ClusterRoles (manifests/base also ships the approver's)."""
    [deployment] = [
        d for d in base if d["kind"] == "Deployment" and d["metadata"]["name"] == "csr-webhook"
    ]
    namespace = deployment["metadata"]["namespace"]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    subject = ("ServiceAccount", account, namespace)
    bindings = [
        d
        for d in base
        if d["kind"] == "ClusterRoleBinding"
        and subject in [(s["kind"], s["name"], s.get("namespace")) for s in d["subjects"]]
    ]
    roles = {b["roleRef"]["name"] for b in bindings}
    return [
        d
        for d in base
        if (d["kind"], d["metadata"]["name"])
        in {("Namespace", namespace), ("ServiceAccount", account)}
        or d in bindings
        or (d["kind"] == "ClusterRole" and d["metadata"]["name"] in roles)
    ]


def webhook_kubeconfig(cluster: Cluster, root: Path) -> Path:
    """A kubeconfig with a token of the shipped ServiceAccount, after applying the shipped
    Namespace, ServiceAccount and RBAC exactly as `kubectl kustomize manifests/base` renders
    them."""
    identity = webhook_identity(rendered_base(cluster))
    assert sorted((d["kind"], d["metadata"]["name"]) for d in identity) == sorted(IDENTITY_OBJECTS)
    cluster.apply(identity)
    [account] = [doc for doc in identity if doc["kind"] == "ServiceAccount"]
    name, namespace = account["metadata"]["name"], account["metadata"]["namespace"]
    token = cluster.kubectl_ok("create", "token", name, "-n", namespace, "--duration=4h").strip()
    return write_kubeconfig(
        root / "csr-webhook.kubeconfig", cluster.server, cluster.pki.ca.cert, {"token": token}
    )


def start_webhook(
    root: Path, pki: ClusterPKI, recorder: Recorder, kubeconfig: Path | None = None
) -> Webhook:
    policies = root / "policies"
    policies.mkdir()
    for source in sorted((REPO / "policies").iterdir()):
        if source.suffix in {".yaml", ".yml"} and not source.name.endswith(".test.yaml"):
            shutil.copyfile(source, policies / source.name)
    port, metrics_port, proxy_port = free_port(), free_port(), free_port()
    process = Process(
        "csr-webhook",
        [
            str(CLI),
            "serve",
            f"--policies={policies}",
            f"--bind=127.0.0.1:{port}",
            f"--metrics-bind=127.0.0.1:{metrics_port}",
            f"--tls-cert={pki.webhook.cert}",
            f"--tls-key={pki.webhook.key}",
            "--workers=2",
            "--reload-interval=0.5",
            *([f"--kubeconfig={kubeconfig}", "--cluster=on"] if kubeconfig else []),
        ],
        root / "logs" / "csr-webhook.log",
    )
    proxy = RecordingProxy(
        proxy_port,
        cert=pki.webhook.cert,
        key=pki.webhook.key,
        upstream_port=port,
        upstream_ca=pki.webhook_ca.cert,
        recorder=recorder,
    )
    webhook = Webhook(process, proxy, recorder, policies, port, metrics_port, pki, kubeconfig)
    try:
        webhook.start()
    except BaseException:
        webhook.stop()
        raise
    return webhook


def rendered_webhook_configurations(cluster: Cluster) -> list[dict[str, Any]]:
    """The two webhook configurations of `kubectl kustomize manifests/base`, as shipped."""
    rendered = cluster.kubectl_ok("kustomize", str(REPO / "manifests" / "base"))
    return [doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] in WEBHOOK_KINDS]


def for_loopback(configuration: dict[str, Any], proxy_port: int, ca_pem: bytes) -> dict[str, Any]:
    changed = copy.deepcopy(configuration)
    for hook in changed["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {
            "url": f"https://127.0.0.1:{proxy_port}{path}",
            "caBundle": base64.b64encode(ca_pem).decode(),
        }
    return changed


def register(cluster: Cluster, webhook: Webhook, port: int | None = None) -> list[dict[str, Any]]:
    """Register at the recording proxy, or at `port` (csr-webhook itself: the same CA)."""
    configurations = [
        for_loopback(c, port or webhook.proxy.port, webhook.pki.webhook_ca.cert.read_bytes())
        for c in rendered_webhook_configurations(cluster)
    ]
    assert sorted(c["kind"] for c in configurations) == sorted(WEBHOOK_KINDS)
    cluster.apply(configurations)
    return configurations


def stored_webhooks(cluster: Cluster) -> list[dict[str, Any]]:
    return [
        json.loads(cluster.kubectl_ok("get", kind.lower(), "csr-webhook", "-o", "json"))
        for kind in WEBHOOK_KINDS
    ]
