"""The worker's heap (webhook/serving/heap.py): a review leaves no reference cycle behind, a
worker freezes what it loaded before it serves, and a policy set holds no cycle, so one a
reload retires is freed although it was frozen.

The pauses themselves are measured by the benchmark (docs/performance.md), not asserted here.
"""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bench.cache_pressure import review_environ
from bench.corpus import DEFAULT_MIX, POLICY_DIR, build_corpus, parse_mix
from tests.builders import build_csr
from tests.conftest import BASIC_POLICY, write_policies
from tests.reviews import create_review
from tests.server import RunningServer, review_over, running_server, worker_pids
from tests.test_operations import wait_for
from webhook.admission import parse_review
from webhook.engine import EngineOptions, evaluate
from webhook.parse_cache import PARSE_CACHE
from webhook.policy.loader import load_policies
from webhook.serving import heap

SHIPPED_POLICIES = Path(__file__).resolve().parent.parent / "policies"


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


def _cyclic_garbage() -> list[str]:
    """The types of the objects a collection finds in cycles, of this project and its web
    stack only: another thread's garbage (a test left one running) is not this test's."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        types = {type(o) for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    ours = ("webhook", "werkzeug", "flask", "gunicorn")
    return sorted(
        f"{t.__module__}.{t.__qualname__}" for t in types if t.__module__.split(".")[0] in ours
    )


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def _answer(app: Flask, body: bytes) -> dict[str, Any]:
    environ = review_environ(body)
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
    assert _cyclic_garbage() == []
    assert verdicts == [signer == "example.com/signer"] * 19


def test_freeze_survivors_collects_garbage_and_freezes_the_rest(collector_paused: None) -> None:
    garbage = _cycle()
    kept = _Node()
    kept.other = kept
    frozen = heap.freeze_survivors()
    assert garbage() is None, "it collects before it freezes"
    assert frozen > 0
    assert not any(o is kept for o in gc.get_objects()), "kept is out of the collector's walk"
    assert kept.other is kept


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("directory", [POLICY_DIR, SHIPPED_POLICIES])
def test_a_retired_policy_set_holds_no_cycle(collector_paused: None, directory: Path) -> None:
    """Frozen at a worker's start, a set that a reload retires is freed only if reference
    counting frees it: it must hold no cycle, before or after it has judged reviews."""
    loaded = load_policies([directory]).policy_set
    assert loaded is not None and loaded.policies
    if directory == POLICY_DIR:
        corpus = build_corpus(6, parse_mix(DEFAULT_MIX))
        decisions = [evaluate(parse_review(b), loaded, EngineOptions()) for b in corpus.bodies()]
        assert all(d.allowed for d in decisions)
        del decisions, corpus
    gc.collect()  # what loading and judging left behind
    PARSE_CACHE.clear()
    del loaded
    assert _cyclic_garbage() == []


@pytest.mark.server
def test_each_worker_freezes_its_heap_before_serving(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", **{"example.yaml": BASIC_POLICY})
    alice = create_review(build_csr(common_name="alice"), signer_name="example.com/signer")
    with running_server(tmp_path, policies, "--log-level", "debug") as server:
        workers = set(worker_pids(server))
        wait_for(lambda: set(_frozen(server)) == workers)
        assert all(count > 10_000 for count in _frozen(server).values()), _frozen(server)
        connection = server.connection()
        assert review_over(connection, alice)["body"]["response"]["allowed"]
        connection.close()


def _frozen(server: RunningServer) -> dict[int, int]:
    """pid -> objects frozen, from the workers' "heap frozen" lines of the debug log."""
    found = {}
    for line in server.log().splitlines():
        if "] heap frozen: " in line:  # [time] [pid] [DEBUG] heap frozen: N objects
            pid = int(line.split("] [", 2)[1])
            found[pid] = int(line.rsplit(": ", 1)[1].split()[0])
    return found
