"""One policy set per server (a real `csr-webhook serve`, two workers): only the master reads
the policy directory, every worker serves the master's last good set, respawned workers
included, and /readyz and /metrics report the set each process serves by its hash."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import RunningServer, on_worker, review_over, running_server, worker_pids
from tests.test_metrics import scrape, total
from tests.test_operations import readyz, wait_for
from webhook.policy.loader import load_policies
from webhook.serving.reload import PolicyStore
from webhook.serving.snapshot import SnapshotFollower, SnapshotPublisher

pytestmark = pytest.mark.server
INTERVAL = "0.5"
ALICE = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
# v2 tightens v1: only "bob" may be the common name, so alice's CSR is denied.
TIGHTER = BASIC_POLICY.replace('commonName: {values: ["*"]', 'commonName: {values: ["bob"]')
BROKEN = TIGHTER + "  enforcement: [\n"


def write_atomically(path: Path, text: str) -> None:
    """Replace a policy file in one step, as a ConfigMap swap does: never half written."""
    temporary = path.parent / f".{path.name}.tmp"
    temporary.write_text(text)
    os.replace(temporary, path)


def allowed(server: RunningServer) -> bool:
    connection = server.connection()
    try:
        return bool(review_over(connection, ALICE)["body"]["response"]["allowed"])
    finally:
        connection.close()


def set_info(server: RunningServer) -> dict[tuple[str, str], str]:
    """(role, pid) -> hash of the policy set that process serves, from /metrics."""
    return {
        (labels["role"], labels["pid"]): labels["hash"]
        for labels, value in scrape(server).get("csr_webhook_policy_set_info", [])
        if value == 1
    }


def allowed_over(connection: http.client.HTTPSConnection) -> bool:
    try:
        return bool(review_over(connection, ALICE)["body"]["response"]["allowed"])
    finally:
        connection.close()


def readyz_over(connection: http.client.HTTPSConnection) -> dict[str, Any]:
    try:
        connection.request("GET", "/readyz")
        answer = connection.getresponse()
        assert answer.status == 200
        body: dict[str, Any] = json.loads(answer.read())
        return body
    finally:
        connection.close()


def test_respawned_worker_serves_the_masters_last_good_set(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    write_atomically(policies / "example.yaml", BASIC_POLICY)
    with running_server(
        tmp_path, policies, "--workers", "2", "--reload-interval", INTERVAL
    ) as server:
        assert allowed(server)
        v1 = readyz(server)["policySetHash"]

        write_atomically(policies / "example.yaml", TIGHTER)
        wait_for(
            lambda: total(scrape(server), "csr_webhook_policy_reloads_total", result="success") == 1
        )
        wait_for(lambda: v1 not in {readyz(server)["policySetHash"] for _ in range(8)})
        v2 = readyz(server)["policySetHash"]
        assert v2 != v1
        assert not any(allowed(server) for _ in range(8))

        write_atomically(policies / "example.yaml", BROKEN)
        wait_for(
            lambda: total(scrape(server), "csr_webhook_policy_reloads_total", result="failure") == 1
        )
        time.sleep(2 * float(INTERVAL))  # every process has looked at the broken directory

        first, survivor = worker_pids(server)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(set(worker_pids(server)) - {first, survivor}) == 1, 30)
        [replacement] = set(worker_pids(server)) - {first, survivor}

        # Each worker has a listener of its own: reviews on connections the replacement took.
        verdicts = [allowed_over(on_worker(server, replacement)) for _ in range(20)]
        replacement_status = readyz_over(on_worker(server, replacement))
        assert verdicts == [False] * 20, "the respawned worker serves an older set than v2"
        assert replacement_status["policySetHash"] == v2
        assert (
            "example.yaml:14:16: YAML syntax error: '[' is not closed"
            in replacement_status["lastReloadError"]
        )

        assert [allowed(server) for _ in range(20)] == [False] * 20
        assert {readyz(server)["policySetHash"] for _ in range(8)} == {v2}
        info = set_info(server)
    assert info == {
        ("master", str(server.process.pid)): v2,
        ("worker", str(survivor)): v2,
        ("worker", str(replacement)): v2,
    }


# --- the hand-off itself, on real files: master store and publisher, worker follower -------


def master(directory: Path, runtime: Path) -> tuple[PolicyStore, SnapshotPublisher]:
    result = load_policies([directory])
    assert result.policy_set is not None
    publisher = SnapshotPublisher(runtime)
    store = PolicyStore(directory, result.policy_set, sources=result.sources, publisher=publisher)
    return store, publisher


def test_worker_takes_the_published_set_before_serving_whatever_it_inherited(
    tmp_path: Path,
) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    runtime = create_runtime(tmp_path)
    store, _ = master(policies, runtime)
    inherited = store.current
    write_atomically(policies / "example.yaml", TIGHTER)
    assert store.poll() is True
    # Forked before the master swapped, a worker inherits v1 but must not serve it.
    follower = SnapshotFollower(runtime, inherited, pid=4242)
    assert follower.poll() is True
    assert follower.current.digest == store.current.digest != inherited.digest
    assert [p.name for p in follower.current.policies] == ["example"]
    assert (runtime / "serving" / "4242").read_text() == store.current.digest
    # The same content hashes alike wherever it was read: master, worker, a fresh load.
    fresh = load_policies([policies]).policy_set
    assert fresh is not None
    assert fresh.digest == follower.current.digest


def test_worker_keeps_its_set_when_the_published_one_does_not_load(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    runtime = create_runtime(tmp_path)
    store, publisher = master(policies, runtime)
    outcomes: list[tuple[bool, str | None]] = []
    follower = SnapshotFollower(
        runtime, store.current, listener=lambda ok, error: outcomes.append((ok, error))
    )
    v1 = store.current.digest
    snapshot = json.loads((runtime / "policy-set.json").read_text())
    snapshot["policyFiles"][0][1] = base64.b64encode(TIGHTER.encode()).decode()
    snapshot["hash"] = "f" * 64  # content that does not hash to what the snapshot claims
    (runtime / "policy-set.json").write_text(json.dumps(snapshot))
    publisher.publish_status("f" * 64, None)

    assert follower.poll() is False
    assert follower.poll() is None  # the same broken set is not tried again
    assert follower.current.digest == v1
    assert follower.last_error is not None
    assert f"policy set {'f' * 64} does not load: its content does not match" in (
        follower.last_error
    )
    assert f"keeps serving policy set {v1}" in follower.last_error
    assert [ok for ok, _ in outcomes] == [False]

    write_atomically(policies / "example.yaml", TIGHTER)
    assert store.poll() is True
    assert follower.poll() is True
    assert follower.current.digest == store.current.digest
    assert follower.last_error is None
    assert [ok for ok, _ in outcomes] == [False, True]


def test_reload_is_refused_when_the_set_cannot_be_handed_to_the_workers(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    runtime = create_runtime(tmp_path)
    store, publisher = master(policies, runtime)
    v1 = store.current.digest
    publisher.remove()
    write_atomically(policies / "example.yaml", TIGHTER)
    assert store.poll() is False
    assert store.current.digest == v1
    assert store.last_error is not None
    assert store.last_error.startswith("cannot hand the new policy set to the workers: ")


def test_server_counts_a_published_set_its_workers_cannot_load(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with running_server(
        tmp_path, policies, "--reload-interval", INTERVAL, env={"TMPDIR": str(temporary)}
    ) as server:
        [runtime] = temporary.glob("csr-webhook-run-*")
        assert total(scrape(server), "csr_webhook_policy_set_handoff_failures_total") == 0
        # Replaced the way the master replaces them, so that no worker reads half a file.
        write_atomically(runtime / "policy-set.json", '{"hash": "not json')
        write_atomically(runtime / "status.json", json.dumps({"hash": "e" * 64, "error": None}))
        wait_for(
            lambda: total(scrape(server), "csr_webhook_policy_set_handoff_failures_total") == 2
        )
        statuses = [readyz(server) for _ in range(6)]
        assert [allowed(server) for _ in range(6)] == [True] * 6
    assert all("cannot read the master's policy set" in s["lastReloadError"] for s in statuses)
    assert not runtime.exists(), "the runtime directory outlived the server"


def create_runtime(tmp_path: Path) -> Path:
    runtime = tmp_path / "runtime"
    (runtime / "serving").mkdir(parents=True)
    return runtime
