"""`csr-webhook approve` as a process and its usage errors: exit codes, messages naming what is
wrong, /metrics /healthz /readyz, the Lease taken and released on SIGTERM."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.approver_setting import auto_policy
from tests.fake_objects_api import Store, serving
from tests.server import CLI, free_port
from webhook.cli import main

LEASE = "/apis/coordination.k8s.io/v1/namespaces/csr-webhook/leases/csr-webhook-approver"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "auto.yaml").write_text(auto_policy())
    return directory


def kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_policies_that_are_no_directory_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["approve", f"--policies={tmp_path / 'absent'}"]) == 2
    assert "--policies" in capsys.readouterr().err


def test_a_policy_set_with_a_problem_refuses_to_start(
    policies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (policies / "broken.yaml").write_text("spec: [")
    assert main(["approve", f"--policies={policies}", "--kubeconfig=/nonexistent"]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "refusing to start" in err


def test_missing_credentials_are_named(
    policies: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["approve", f"--policies={policies}"]) == 2
    assert "no cluster credentials" in capsys.readouterr().err
    assert main(["approve", f"--policies={policies}", f"--kubeconfig={tmp_path / 'nope'}"]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err


def test_timings_that_cannot_work_are_a_usage_error(
    policies: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    args = ["approve", f"--policies={policies}", f"--kubeconfig={config}"]
    assert main([*args, "--lease-duration=5", "--renew-deadline=5"]) == 2
    assert "lease duration (5.0) > renew deadline (5.0)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([*args, "--retry-period=0"])
    assert exited.value.code == 2
    assert "'0' must be greater than 0" in capsys.readouterr().err


def test_a_metrics_port_in_use_is_a_usage_error(
    policies: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            [
                "approve",
                f"--policies={policies}",
                f"--kubeconfig={config}",
                f"--metrics-bind=127.0.0.1:{port}",
            ]
        )
    assert code == 2
    assert f"--metrics-bind 127.0.0.1:{port}: Address already in use" in capsys.readouterr().err


def _get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def _wait(what: str, probe: object, process: subprocess.Popen[bytes], deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert process.poll() is None, f"approve exited while waiting for {what}"
        try:
            if probe():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_process_takes_the_lease_serves_health_and_releases_it_on_sigterm(
    policies: Path, tmp_path: Path
) -> None:
    store = Store()
    port = free_port()
    with serving(store) as url:
        config = kubeconfig(tmp_path / "kubeconfig", url)
        environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "not-used")
        process = subprocess.Popen(
            [
                str(CLI),
                "approve",
                f"--policies={policies}",
                f"--kubeconfig={config}",
                f"--metrics-bind=127.0.0.1:{port}",
                "--identity=proc-a",
                "--lease-duration=3",
                "--renew-deadline=2",
                "--retry-period=0.2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
        try:
            _wait(
                "the leader gauge",
                lambda: "csr_webhook_approver_leader 1.0" in _get(port, "/metrics")[1],
                process,
            )
            lease = store.get(LEASE)
            assert lease is not None and lease["spec"]["holderIdentity"] == "proc-a"
            assert _get(port, "/healthz") == (200, "ok\n")
            # This server answers no list: the watches never sync and /readyz says which.
            status, text = _get(port, "/readyz")
            assert status == 503
            assert text.startswith("watch not synced: nodes: HTTP 404")
            assert "certificatesigningrequests: HTTP 404" in text
            assert not (tmp_path / "not-used").exists()  # one process, no multiprocess files
            process.send_signal(signal.SIGTERM)
            assert process.wait(20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        released = store.get(LEASE)
        assert released is not None and "holderIdentity" not in released["spec"]
    _, err = process.communicate()
    stderr = err.decode()
    assert "released by proc-a" in stderr
