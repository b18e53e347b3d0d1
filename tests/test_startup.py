"""Startup footguns of a real `csr-webhook serve`: a policy set with no policy is refused unless
asked for, and the development certificate (`serve` without --tls-cert) leaves no private key
behind when the server exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import BASIC_POLICY, write_policies
from tests.server import CLI, free_port, running_server
from webhook.cli import main
from webhook.policy.loader import load_policies
from webhook.serving.reload import PolicyStore

pytestmark = pytest.mark.server

REFUSAL = "every CSR in the cluster would fall to --unmatched-signers"


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    directory = tmp_path / "empty"
    directory.mkdir()
    return directory


def _args(policies: Path, port: int) -> list[str]:
    metrics = f"127.0.0.1:{free_port()}"
    bind = f"127.0.0.1:{port}"
    return [
        str(CLI),
        "serve",
        "--policies",
        str(policies),
        "--bind",
        bind,
        "--metrics-bind",
        metrics,
    ]


def _serve(policies: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*_args(policies, free_port()), "--workers", "1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_serve_refuses_to_start_on_an_empty_policy_directory(empty: Path) -> None:
    process = _serve(empty)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert f"refusing to start: no policy in --policies '{empty}': {REFUSAL}" in output
    assert "--allow-empty-policies" in output


def test_serve_refuses_a_directory_whose_files_hold_no_policy(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "p", **{"blank.yaml": "# policies go here\n"})
    process = _serve(policies)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert REFUSAL in output


@pytest.mark.parametrize(
    ("extra", "env"),
    [(("--allow-empty-policies",), {}), ((), {"CSR_WEBHOOK_ALLOW_EMPTY_POLICIES": "true"})],
    ids=["flag", "env"],
)
def test_serve_starts_on_an_empty_policy_directory_when_allowed(
    tmp_path: Path, empty: Path, extra: tuple[str, ...], env: dict[str, str]
) -> None:
    with running_server(tmp_path, empty, *extra, env=env) as server:
        connection = server.connection()
        try:
            connection.request("GET", "/readyz")
            answer = connection.getresponse()
            assert answer.status == 200
            assert b'"policies":0' in answer.read()
        finally:
            connection.close()


def test_serve_names_an_allow_empty_policies_variable_that_is_not_a_boolean(empty: Path) -> None:
    process = _serve(empty, env={"CSR_WEBHOOK_ALLOW_EMPTY_POLICIES": "sometimes"})
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    assert "CSR_WEBHOOK_ALLOW_EMPTY_POLICIES='sometimes' is not a boolean" in output


def test_check_fails_on_zero_policies_unless_allowed(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(empty)]) == 1
    assert REFUSAL in capsys.readouterr().err
    assert main(["check", "--allow-empty-policies", str(empty)]) == 0
    assert "ok: 0 policies" in capsys.readouterr().err


def test_reload_to_zero_policies_is_refused_and_keeps_the_set_in_force(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "p", **{"example.yaml": BASIC_POLICY})
    initial = load_policies([policies]).policy_set
    assert initial is not None and len(initial.policies) == 1
    store = PolicyStore(policies, initial)
    (policies / "example.yaml").unlink()
    assert store.poll() is False
    assert store.current is initial
    assert store.last_error is not None
    assert "'example.com/signer' (was policy 'example') without a policy" in store.last_error


# --- the development certificate ------------------------------------------------------------


@contextmanager
def _dev_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`serve` without TLS flags, its temporary directory inside tmp_path; yields the process
    once it serves, and the development certificate's directory."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    port = free_port()
    process = subprocess.Popen(
        [*_args(policies, port), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(temporary)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "server exited early"
            made = list(temporary.glob("csr-webhook-devcert-*"))
            if made and (made[0] / "key.pem").exists():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    pass
            assert time.monotonic() < deadline, "server not serving after 30 s"
            time.sleep(0.1)
        yield process, made[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_development_certificate_and_key_are_removed_when_the_server_exits(
    tmp_path: Path, signum: signal.Signals
) -> None:
    with _dev_server(tmp_path) as (process, directory):
        assert (directory / "key.pem").stat().st_mode & 0o777 == 0o600
        process.send_signal(signum)
        assert process.wait(timeout=40) == 0
        assert not directory.exists()


def _workers(master: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_development_key_survives_a_worker_exit_and_goes_with_the_master(tmp_path: Path) -> None:
    with _dev_server(tmp_path) as (process, directory):
        deadline = time.monotonic() + 30
        while len(first := _workers(process.pid)) < 2:
            assert time.monotonic() < deadline, "workers not started"
            time.sleep(0.1)
        # gunicorn forks a worker inside the block that owns the directory: a worker that
        # exits leaves through it too, and must not take the master's key with it.
        os.kill(first[0], signal.SIGTERM)
        while first[0] in (now := _workers(process.pid)) or len(now) < 2:
            assert time.monotonic() < deadline, "worker not replaced"
            time.sleep(0.1)
        assert (directory / "key.pem").exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
        assert not directory.exists()


def test_development_key_is_removed_when_the_server_cannot_start(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*_args(policies, port), "--workers", "1"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TMPDIR": str(temporary)},
        )
    assert result.returncode != 0
    assert "development certificate written to" in result.stderr
    assert list(temporary.glob("csr-webhook-devcert-*")) == [], result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("CSR_WEBHOOK_LISTENERS", "everywhere", "per-worker, shared"),
        ("CSR_WEBHOOK_CLUSTER", "maybe", "auto, on, off"),
    ],
)
def test_serve_names_a_variable_that_is_not_one_of_its_flags_words(
    empty: Path, variable: str, value: str, words: str
) -> None:
    process = _serve(empty, env={variable: value})
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    assert f"{variable}={value!r} is not one of {words}" in output
    assert "Booting worker" not in output
