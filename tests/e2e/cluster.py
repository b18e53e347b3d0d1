"""Start and stop the real control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

Each process binds 127.0.0.1 only, logs to its own file and is stopped by its PID (SIGTERM,
then SIGKILL). The binaries come from `make e2e-bin` (CSR_WEBHOOK_E2E_BIN); nothing here
talks to anything but loopback, and proxy variables are removed from every child's environment.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.pki import ClusterPKI
from tests.server import free_port

PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def child_environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    environment.update(extra)
    return environment


@dataclass
class Process:
    name: str
    args: list[str]
    log_file: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log_file.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(),
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.kill(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_for(what: str, probe: Callable[[], bool], deadline: float, *processes: Process) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for process in processes:
            if not process.running():
                raise AssertionError(
                    f"{process.name} exited while waiting for {what}:\n{process.tail()}"
                )
        try:
            if probe():
                return
        except OSError:
            pass
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    raise AssertionError(f"timed out after {deadline}s waiting for {what}\n{tails}")


def write_kubeconfig(path: Path, server: str, ca: Path, user: dict[str, str]) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "e2e",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "user"}}],
        "current-context": "e2e",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class Cluster:
    """A running control plane and the admin credentials to drive it with kubectl."""

    root: Path
    bin_dir: Path
    pki: ClusterPKI
    apiserver_port: int
    admin_kubeconfig: Path
    processes: list[Process] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def version(self) -> str:
        return (self.bin_dir / "version").read_text().strip()

    def kubectl(
        self, *args: str, input: str | None = None, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl (as the admin unless another kubeconfig is given); never raises."""
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig or self.admin_kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            env=child_environment(),
            timeout=120,
            check=False,
        )

    def kubectl_ok(self, *args: str, input: str | None = None) -> str:
        done = self.kubectl(*args, input=input)
        if done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl_ok("get", *args, "-o", "json"))

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]]) -> None:
        documents = manifest if isinstance(manifest, list) else [manifest]
        self.kubectl_ok("apply", "-f", "-", input=yaml.safe_dump_all(documents))

    def raw(self, path: str) -> str:
        return self.kubectl_ok("get", "--raw", path)

    def readyz(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        context.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
        with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as answer:
            return bool(answer.status == 200)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_cluster(root: Path, bin_dir: Path, pki: ClusterPKI) -> Cluster:
    """etcd, then kube-apiserver, then kube-controller-manager with the CSR controllers; what
    was started is stopped again if a later step fails."""
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    apiserver_port = free_port()
    admin = write_kubeconfig(
        root / "admin.kubeconfig",
        f"https://127.0.0.1:{apiserver_port}",
        pki.ca.cert,
        {"client-certificate": str(pki.admin.cert), "client-key": str(pki.admin.key)},
    )
    cluster = Cluster(root, bin_dir, pki, apiserver_port, admin)
    try:
        _start_processes(cluster, logs)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _start_processes(cluster: Cluster, logs: Path) -> None:
    root, bin_dir, pki, apiserver_port = (
        cluster.root,
        cluster.bin_dir,
        cluster.pki,
        cluster.apiserver_port,
    )
    etcd_port, peer_port = free_port(), free_port()
    etcd = Process(
        "etcd",
        [
            str(bin_dir / "etcd"),
            "--name=e2e",
            f"--data-dir={root / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=e2e=http://127.0.0.1:{peer_port}",
            "--quota-backend-bytes=1073741824",
            "--unsafe-no-fsync",
        ],
        logs / "etcd.log",
    )
    cluster.processes.append(etcd.start())
    wait_for(
        "etcd health",
        lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"),
        60,
        etcd,
    )
    apiserver = Process(
        "kube-apiserver",
        [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={apiserver_port}",
            f"--cert-dir={root / 'apiserver-certs'}",
            f"--tls-cert-file={pki.apiserver.cert}",
            f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--enable-bootstrap-token-auth",
            f"--service-account-issuer=https://127.0.0.1:{apiserver_port}",
            f"--service-account-key-file={pki.service_account.cert}",
            f"--service-account-signing-key-file={pki.service_account.key}",
            "--service-cluster-ip-range=10.96.0.0/24",
            # The `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints
            # validation refuses; nothing in the suite needs them.
            "--endpoint-reconciler-type=none",
            "--anonymous-auth=false",
            "--profiling=false",
            # The deprecated v1beta1 PodCertificateRequest (pkixPublicKey + proofOfPossession)
            # is off by default since v1 went GA; tests/e2e/test_pod_certificates.py makes one.
            "--runtime-config=certificates.k8s.io/v1beta1/podcertificaterequests=true",
        ],
        logs / "kube-apiserver.log",
    )
    cluster.processes.append(apiserver.start())
    wait_for("kube-apiserver /readyz", cluster.readyz, 180, etcd, apiserver)
    controller_kubeconfig = write_kubeconfig(
        root / "controller-manager.kubeconfig",
        cluster.server,
        pki.ca.cert,
        {
            "client-certificate": str(pki.controller_manager.cert),
            "client-key": str(pki.controller_manager.key),
        },
    )
    controller_manager = Process(
        "kube-controller-manager",
        [
            str(bin_dir / "kube-controller-manager"),
            f"--kubeconfig={controller_kubeconfig}",
            f"--authentication-kubeconfig={controller_kubeconfig}",
            f"--authorization-kubeconfig={controller_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={root / 'controller-manager-certs'}",
            "--controllers=csrapproving,csrsigning,csrcleaner",
            f"--cluster-signing-cert-file={pki.ca.cert}",
            f"--cluster-signing-key-file={pki.ca.key}",
            f"--root-ca-file={pki.ca.cert}",
            "--use-service-account-credentials",
            "--leader-elect=false",
        ],
        logs / "kube-controller-manager.log",
    )
    cluster.processes.append(controller_manager.start())


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return bool(answer.status == 200)
