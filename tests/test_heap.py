"""The worker's heap (webhook/serving/heap.py): a review leaves no reference cycle behind, a
worker freezes what it loaded before it serves, and a policy set it retires is collected.

The pauses themselves are measured by the benchmark (docs/performance.md), not asserted here.
"""

from __future__ import annotations

import gc
import io
import json
import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder

from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import RunningServer, review_over, running_server, worker_pids
from tests.test_operations import wait_for
from webhook.serving import heap

TIGHTER = BASIC_POLICY.replace('commonName: {values: ["*"]', 'commonName: {values: ["bob"]')


@pytest.fixture
def collector_paused() -> Iterator[None]:
    """The collector off for the test (so nothing is collected behind its back) and
    whatever the test froze unfrozen afterwards."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def _answer(app: Flask, body: bytes) -> dict[str, Any]:
    environ = EnvironBuilder(
        method="POST",
        path="/validate",
        query_string="timeout=10s",
        data=body,
        content_type="application/json",
    ).get_environ()
    environ["wsgi.input"] = io.BytesIO(body)
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: object) -> Any:
        statuses.append(status)

    chunks = app.wsgi_app(environ, start_response)
    assert statuses == ["200 OK"]
    answer: dict[str, Any] = json.loads(b"".join(chunks))
    return answer


@pytest.mark.parametrize("signer", ["example.com/signer", "example.com/unknown"])
def test_a_review_leaves_no_reference_cycle(
    app: Flask, collector_paused: None, signer: str
) -> None:
    """Every object a review makes is freed by reference counting once it is answered, so
    none waits for (and lengthens) a collection. werkzeug's Request stored in the environ
    made a cycle of every review until the review path stopped asking it to."""
    bodies = [
        json.dumps(create_review(build_csr(common_name=f"user-{n}"), signer_name=signer)).encode()
        for n in range(20)
    ]
    _answer(app, bodies[0])  # first-use caches (compiled patterns and the like) filled
    gc.collect()
    verdicts = [_answer(app, body)["response"]["allowed"] for body in bodies[1:]]
    assert gc.collect() == 0
    assert verdicts == [signer == "example.com/signer"] * 19


def test_settle_freezes_what_survives_and_collects_the_rest(collector_paused: None) -> None:
    garbage = _cycle()
    kept = _Node()
    kept.other = kept
    frozen = heap.settle()
    assert garbage() is None, "settle collects before it freezes"
    assert frozen == gc.get_freeze_count() > 0
    assert gc.collect() == 0  # `kept` and the rest are out of the collector's walk
    assert kept.other is kept


def test_resettle_collects_a_cycle_that_died_frozen(collector_paused: None) -> None:
    """A retired policy set may hold a cycle: frozen, it would never be collected."""
    policy_set = [_Node()]
    policy_set[0].other = policy_set[0]
    retired = weakref.ref(policy_set[0])
    heap.settle()
    del policy_set  # retired while frozen
    gc.collect()
    assert retired() is not None, "a frozen cycle is not collected"
    assert heap.resettle() > 0
    assert retired() is None


def _heap_lines(server: RunningServer, text: str) -> dict[int, int]:
    """pid -> objects frozen, from the worker lines of the server's debug log containing text."""
    found = {}
    for line in server.log().splitlines():
        if text in line:
            pid = int(line.split("[")[2].split("]")[0]) if line.startswith("[") else 0
            found[pid] = int(line.rsplit(": ", 1)[1].split()[0])
    return found


@pytest.mark.server
def test_a_worker_settles_before_serving_and_again_for_a_new_policy_set(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    alice = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    with running_server(
        tmp_path, policies, "--log-level", "debug", "--reload-interval", "0.3"
    ) as server:
        workers = set(worker_pids(server))
        wait_for(lambda: set(_heap_lines(server, "heap settled: ")) == workers)
        settled = _heap_lines(server, "heap settled: ")
        assert set(settled) == workers and all(n > 10_000 for n in settled.values()), settled
        connection = server.connection()
        assert review_over(connection, alice)["body"]["response"]["allowed"]

        temporary = policies / ".example.yaml.tmp"
        temporary.write_text(TIGHTER)
        os.replace(temporary, policies / "example.yaml")
        wait_for(lambda: server.log().count("heap resettled for the new policy set") == 2)
        assert not review_over(connection, alice)["body"]["response"]["allowed"]
        connection.close()
    resettled = [line for line in server.log().splitlines() if "heap resettled" in line]
    assert len(resettled) == 2 and all(
        int(line.rsplit(": ", 1)[1].split()[0]) > 10_000 for line in resettled
    )
