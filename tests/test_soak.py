"""Fault and soak tests of a real `csr-webhook serve` under load (marker `soak`; `make soak`).

Not part of `make test`: they take minutes and measure time. Each asserts an invariant and
prints what it measured (run with -s to see it; docs/performance.md records a run):
  * policy reloads and certificate rotations under continuous load fail no request;
  * SIGKILL of a worker: only requests in flight on it fail, a new worker takes over;
  * SIGTERM under load: every accepted request is answered, exit 0 within the grace period;
  * 2x overload for 30 s with ?timeout=2s: no answer later than the timeout (plus a margin)
    after its scheduled send, and latency back to normal within 5 s at half the capacity;
  * a soak (CSR_WEBHOOK_SOAK_MINUTES, default 10): every worker's RSS stays within +-10 % of
    its value after the warm-up, no worker restarts, no unexpected answer.
The load is bench/loadgen.py over the benchmark corpus and policy (every check runs).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bench import loadgen, procstat
from bench.corpus import POLICY_DIR, Corpus, build_corpus, parse_mix
from tests.reviews import create_review
from tests.server import RunningServer, on_worker, review_over, running_server, worker_pids
from tests.test_operations import configmap_dir, make_pair, readyz, served_certificate, wait_for

pytestmark = pytest.mark.soak

SOAK_MINUTES = float(os.environ.get("CSR_WEBHOOK_SOAK_MINUTES", "10"))
POLICY_TEXT = (POLICY_DIR / "bench.yaml").read_text()
# The same policy with a different hash: both allow every corpus review.
POLICY_VARIANT = POLICY_TEXT.replace("maxItems: 8", "maxItems: 9")
OVERLOAD_TIMEOUT = 2
OVERLOAD_MARGIN = 0.5  # seconds past ?timeout= an answer may take: the last evaluation, I/O


# Over twice engine's 1024-entry parse cache: cycled in order, an LRU never hits, as for
# CREATE reviews in production (each arrives once).
CORPUS_SIZE = 2500


@cache
def corpus() -> Corpus:
    return build_corpus(CORPUS_SIZE, parse_mix("ecdsa-p256=0.8,rsa-2048=0.2"), seed=7)


@cache
def bodies() -> list[bytes]:
    return corpus().bodies()


@cache
def heavy_corpus() -> Corpus:
    """P-384 keys: about 1.5x the work per review of the default mix (signature checks)."""
    return build_corpus(CORPUS_SIZE, parse_mix("ecdsa-p384=1"), seed=11)


def report(title: str, **values: Any) -> None:
    shown = ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
    print(f"\n[soak] {title}: {shown}", flush=True)


def answer_problem(
    sample: loadgen.Sample, reviews: Sequence[dict[str, Any]] = (), expected: int = 200
) -> str | None:
    """Why a /validate answer is wrong, or None (uid echoed, allowed)."""
    if sample.status != expected:
        return f"status {sample.status} {sample.error or ''} {(sample.body or b'')[:200]!r}"
    if expected != 200:
        return None
    reviews = reviews or corpus().reviews
    review = reviews[sample.index % len(reviews)]
    response = json.loads(sample.body or b"null")["response"]
    if response["uid"] != review["request"]["uid"]:
        return "uid not echoed"
    if response["allowed"] is not True:
        return f"denied: {response.get('status')}"
    return None


class Background:
    """bench.loadgen in a thread: an open loop with keep-alive connections."""

    def __init__(self, server: RunningServer, phases: Sequence[loadgen.Phase], **kw: Any) -> None:
        self.result: list[loadgen.Run] = []
        self.error: list[BaseException] = []
        kw.setdefault("keep_bodies", True)
        items = kw.pop("items", bodies())

        def run() -> None:
            try:
                self.result.append(loadgen.open_loop("127.0.0.1", server.port, items, phases, **kw))
            except BaseException as exc:  # reported by join()
                self.error.append(exc)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, seconds: float) -> loadgen.Run:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "load generator did not finish"
        assert not self.error, self.error
        return self.result[0]


class FreshClients:
    """N threads, each sending reviews back to back on a new TLS connection per review.

    A connection that cannot be opened (TCP or TLS) is `refused`: no request was sent. Any
    other failure, or a wrong answer, is a `failure`."""

    def __init__(self, server: RunningServer, threads: int = 4, seconds: float = 300) -> None:
        self.server, self.deadline = server, time.monotonic() + seconds
        self.sent = 0
        self.failures: list[str] = []
        self.refused: list[str] = []
        self.completed: list[float] = []  # monotonic time of each good answer
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, offset: int) -> None:
        context = loadgen.client_context()
        index = offset * 101
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            review = corpus().reviews[index % len(corpus().reviews)]
            index += 1
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.server.port, context=context, timeout=30
            )
            try:
                connection.connect()
            except OSError as exc:
                with self._lock:
                    self.refused.append(repr(exc))
                connection.close()
                time.sleep(0.02)
                continue
            problem = None
            try:
                body = json.dumps(review).encode()
                connection.request(
                    "POST", "/validate", body=body, headers={"Content-Type": "application/json"}
                )
                answer = connection.getresponse()
                payload = json.loads(answer.read())
                response = payload.get("response", {})
                if answer.status != 200 or response.get("uid") != review["request"]["uid"]:
                    problem = f"{answer.status} {payload}"
                elif response.get("allowed") is not True:
                    problem = f"denied: {response.get('status')}"
            except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
                problem = repr(exc)
            finally:
                connection.close()
            with self._lock:
                self.sent += 1
                if problem:
                    self.failures.append(problem)
                else:
                    self.completed.append(time.monotonic())

    def __enter__(self) -> FreshClients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    corpus()  # built before any load starts, not by the first load thread
    directory = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, directory)
    return directory


def all_workers(server: RunningServer, count: int = 2) -> list[int]:
    """The workers, once all `count` have booted (/readyz answers as soon as one has)."""
    wait_for(lambda: len(worker_pids(server)) == count, 30)
    return worker_pids(server)


def test_policy_reloads_and_certificate_rotations_under_load_fail_no_request(
    tmp_path: Path,
) -> None:
    corpus()
    policies = configmap_dir(tmp_path / "cm", {"bench.yaml": POLICY_TEXT}, 1)
    tls = tmp_path / "serving"
    cert, key, first = make_pair(tls / "v1", "first")
    live_cert, live_key = tls / "tls.crt", tls / "tls.key"
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    swaps, rotations, serials = 6, 3, [first.serial_number]
    with running_server(
        tmp_path, policies, "--reload-interval", "0.5", tls=(live_cert, live_key)
    ) as server:
        all_workers(server)
        load = Background(server, [(120, 30)])
        with FreshClients(server, threads=3, seconds=60) as fresh:
            time.sleep(2)
            for generation in range(2, 2 + swaps):
                before = readyz(server)["policySetHash"]
                text = POLICY_VARIANT if generation % 2 == 0 else POLICY_TEXT
                configmap_dir(policies, {"bench.yaml": text}, generation)
                wait_for(lambda h=before: readyz(server)["policySetHash"] != h)
                if generation - 2 < rotations:
                    new_cert, new_key, pair = make_pair(tls / f"r{generation}", f"r{generation}")
                    shutil.copy(new_key, tls / "key.tmp")
                    shutil.copy(new_cert, tls / "crt.tmp")
                    os.replace(tls / "key.tmp", live_key)
                    os.replace(tls / "crt.tmp", live_cert)
                    wait_for(
                        lambda s=pair.serial_number: (
                            served_certificate(server.port).serial_number == s
                        )
                    )
                    serials.append(pair.serial_number)
                time.sleep(1.5)
            run = load.join(60)
        log = server.log()
    problems = [p for s in run.samples if (p := answer_problem(s))]
    stats = loadgen.summary(run)
    report(
        "reload+rotation under load",
        policy_swaps=swaps,
        rotations=rotations,
        keepalive_requests=stats["requests"],
        keepalive_p99_ms=stats["p99_ms"],
        fresh_connection_requests=fresh.sent,
        refused_connections=len(fresh.refused),
    )
    assert len(set(serials)) == rotations + 1
    assert problems == []
    assert fresh.sent > 50
    assert fresh.failures == []
    assert fresh.refused == [], "a connection was refused while the server was up"
    assert "WORKER TIMEOUT" not in log


# A worker killed outright takes with it the connections it had accepted but not finished
# the TLS handshake of, in either mode, and with --listeners per-worker also those the kernel
# had queued on its own listener: those clients' connections are reset before a request is
# sent ("refused" here). Measured over 5 runs each with 6 clients connecting back to back:
# per-worker 0, 2, 0, 2, 2; shared 0, 1, 2, 0, 0 (so alike in both modes: most are
# handshakes in progress, not the queue). The bound is the most seen plus 2; a hard one is
# below: a client has one connection at a time.
RESETS_PER_KILL = 4
LISTENERS = pytest.mark.parametrize("listeners", ["per-worker", "shared"])


@LISTENERS
def test_sigkill_of_a_worker_fails_only_its_requests_in_flight(
    tmp_path: Path, policies: Path, listeners: str
) -> None:
    clients = 6
    with running_server(tmp_path, policies, "--listeners", listeners) as server:
        before = all_workers(server)
        with FreshClients(server, threads=clients, seconds=60) as fresh:
            time.sleep(3)
            sent_before = fresh.sent
            victim = before[0]
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: len(set(worker_pids(server)) - set(before)) == 1, 20)
            replaced_after = time.monotonic() - killed_at
            failures_at_replacement = len(fresh.failures)
            refused_at_replacement = len(fresh.refused)
            time.sleep(5)
            after = worker_pids(server)
            with fresh._lock:
                late = [t for t in fresh.completed if t > killed_at + replaced_after + 1]
        [replacement] = set(after) - set(before)
        connection = on_worker(server, replacement)
        on_replacement = review_over(connection, corpus().reviews[0])
        connection.close()
        readiness = readyz(server)
        log = server.log()
    report(
        f"SIGKILL of a worker, --listeners {listeners}",
        requests=fresh.sent,
        before_kill=sent_before,
        failed=len(fresh.failures),
        reset_at_connect=len(fresh.refused),
        replacement_seconds=replaced_after,
        answered_after_replacement=len(late),
    )
    if fresh.refused:
        print(f"[soak] reset at connect: {fresh.refused}", flush=True)
    assert victim not in after and len(after) == 2
    # One request in flight per client thread at most; only those on the victim fail, and
    # as broken connections, never as HTTP errors.
    assert len(fresh.failures) <= clients, fresh.failures
    assert all("status" not in f and not f[:3].isdigit() for f in fresh.failures), fresh.failures
    assert len(fresh.failures) == failures_at_replacement, "failures after the replacement"
    assert len(late) > 20, "the server stopped answering after the kill"
    # All at the kill: none once the replacement is up.
    assert len(fresh.refused) <= RESETS_PER_KILL, fresh.refused
    assert len(fresh.refused) + len(fresh.failures) <= clients, (fresh.refused, fresh.failures)
    assert len(fresh.refused) == refused_at_replacement, "refused after the replacement"
    assert on_replacement["status"] == 200
    assert readiness["status"] == "ready"
    assert f"Worker (pid:{victim})" in log


@LISTENERS
def test_sigterm_under_load_answers_every_accepted_request(
    tmp_path: Path, policies: Path, listeners: str
) -> None:
    with running_server(tmp_path, policies, "--listeners", listeners) as server:
        all_workers(server)
        with FreshClients(server, threads=6, seconds=60) as fresh:
            time.sleep(3)
            sent_before = fresh.sent
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(timeout=45)
            stopped_after = time.monotonic() - started
        log = server.log()
    report(
        f"SIGTERM under load, --listeners {listeners}",
        requests=fresh.sent,
        before_signal=sent_before,
        refused_after=len(fresh.refused),
        failed=len(fresh.failures),
        exit_code=code,
        shutdown_seconds=stopped_after,
    )
    assert code == 0
    assert stopped_after < 30 + 5
    assert sent_before > 20
    assert fresh.failures == [], fresh.failures[:5]
    assert "Shutting down" in log


def _window(samples: Sequence[loadgen.Sample], start: float, end: float) -> list[loadgen.Sample]:
    return [s for s in samples if start <= s.scheduled < end]


@contextmanager
def server_and_client_on_their_own_cpus(server: RunningServer) -> Iterator[None]:
    """The server (master and workers) on CPU 0, this process (the load generator) on the
    others: on a 2-core machine a Python client cannot offer twice the capacity of a server
    that may use both cores, and its lag would be charged to the server."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield
        return
    for pid in [server.process.pid, *worker_pids(server)]:
        os.sched_setaffinity(pid, {cpus[0]})
    os.sched_setaffinity(0, set(cpus[1:]))
    try:
        yield
    finally:
        os.sched_setaffinity(0, set(cpus))


def test_twice_the_capacity_sheds_by_timeout_and_recovers(tmp_path: Path, policies: Path) -> None:
    """Server on one CPU, client on the other. Twice the capacity held for the 2 s timeout is
    2 x capacity x 2 s requests in flight, each on its own HTTP/1.1 connection; gunicorn takes
    at most 1000 connections per worker. The heavier P-384 corpus keeps that within the 2
    workers' 2000 on this machine (docs/performance.md explains the limit)."""
    reviews = heavy_corpus().reviews
    path = f"/validate?timeout={OVERLOAD_TIMEOUT}s"
    items = [(path, body) for body in heavy_corpus().bodies()]
    with running_server(tmp_path, policies) as server, ExitStack() as pinned:
        all_workers(server)
        pinned.enter_context(server_and_client_on_their_own_cpus(server))
        probe = loadgen.closed_loop("127.0.0.1", server.port, items, 8, 6)
        capacity = len(probe.ok()) / probe.elapsed
        calm = loadgen.open_loop("127.0.0.1", server.port, items, [(capacity / 2, 5)])
        calm_p99 = loadgen.summary(calm)["p99_ms"] / 1000
        over, after = 30.0, 15.0
        # Enough kept-alive connections for every request the server may hold for the full
        # timeout, opened before the clock starts: the client must not be what queues. Below
        # gunicorn's 1000 connections per worker (worker_connections), past which a worker
        # stops accepting and requests wait unseen in the listen backlog.
        pool = min(1900, math.ceil(2 * capacity * (OVERLOAD_TIMEOUT + OVERLOAD_MARGIN)))
        run = loadgen.open_loop(
            "127.0.0.1", server.port, items, [(2 * capacity, over), (capacity / 2, after)],
            warm_connections=pool, max_connections=pool, keep_bodies=True,
        )  # fmt: skip
        alive = server.process.poll() is None
        workers_after = worker_pids(server)
        log = server.log()
    start = run.started
    overload = _window(run.samples, start, start + over)
    recovery = _window(run.samples, start + over + 5, start + over + after)
    latest = max(s.latency for s in overload)
    client_wait = [s.sent - s.scheduled for s in overload]
    server_time = [s.done - s.sent for s in overload]
    on_time = sum(1 for wait in client_wait if wait <= 0.05)
    statuses = {s.status for s in run.samples}
    served = sum(1 for s in overload if s.status == 200)
    shed = sum(1 for s in overload if s.status == 503)
    recovery_p99 = loadgen.percentile([s.latency for s in recovery], 99)
    bound = max(4 * calm_p99, 0.25)
    seconds_to_normal = next(
        (
            second
            for second in range(int(after))
            if loadgen.percentile(
                [
                    s.latency
                    for s in _window(run.samples, start + over + second, start + over + after)
                ],
                99,
            )
            <= bound
        ),
        math.inf,
    )
    report(
        "2x overload",
        capacity_rps=capacity,
        calm_p99_ms=calm_p99 * 1000,
        offered_rps=2 * capacity,
        connections=run.connections_opened,
        late_sends=run.late_sends,
        overload_requests=len(overload),
        served_200=served,
        shed_503=shed,
        goodput_rps=served / over,
        latest_answer_s=latest,
        sent_on_time=on_time,
        client_wait_p99_s=loadgen.percentile(client_wait, 99),
        client_wait_max_s=max(client_wait),
        server_time_p99_s=loadgen.percentile(server_time, 99),
        server_time_max_s=max(server_time),
        over_bound=sum(1 for s in overload if s.latency > OVERLOAD_TIMEOUT + OVERLOAD_MARGIN),
        recovery_p99_ms=recovery_p99 * 1000,
        seconds_to_normal=seconds_to_normal,
    )
    assert alive and len(workers_after) == 2
    assert "WORKER TIMEOUT" not in log
    assert statuses <= {200, 503}, [s.error for s in run.samples if s.status == 0][:5]
    assert all(answer_problem(s, reviews) is None for s in run.samples if s.status == 200)
    lag = f"(client: {on_time} of {len(overload)} sent on time, pool {pool})"
    assert max(server_time) <= OVERLOAD_TIMEOUT + OVERLOAD_MARGIN, f"server held one {lag}"
    assert latest <= OVERLOAD_TIMEOUT + OVERLOAD_MARGIN, f"an answer took {latest:.2f}s {lag}"
    assert served > 0.25 * capacity * over, "goodput collapsed under overload"
    assert all(s.status == 200 for s in recovery), "still shedding 5 s after the overload"
    assert recovery_p99 <= bound, f"p99 {recovery_p99 * 1000:.0f} ms 5 s after the overload"


def _mixed_items() -> tuple[list[loadgen.Item], list[int]]:
    """Mostly allowed reviews, some /mutate, denials and malformed bodies; expected statuses."""
    items: list[loadgen.Item] = []
    expected: list[int] = []
    garbage = json.dumps(create_review(b"garbage", signer_name="bench.example/signer")).encode()
    for index, body in enumerate(bodies()):
        kind = index % 20
        if kind == 0:
            items.append(("/validate", garbage))
        elif kind == 1:
            items.append(("/validate", body[: len(body) // 2]))
            expected.append(400)
            continue
        elif kind in (2, 3):
            items.append(("/mutate", body))
        else:
            items.append(("/validate?timeout=10s", body))
        expected.append(200)
    return items, expected


def test_soak_keeps_worker_memory_flat(tmp_path: Path, policies: Path) -> None:
    seconds = SOAK_MINUTES * 60
    warmup = min(60.0, max(20.0, seconds / 6))
    rate = 150.0
    items, expected = _mixed_items()
    with running_server(tmp_path, policies) as server:
        workers = all_workers(server)
        load = Background(server, [(rate, seconds)], items=items, keep_bodies=False)
        samples: dict[int, list[tuple[float, int]]] = {pid: [] for pid in workers}
        started = time.monotonic()
        while load.thread.is_alive() and time.monotonic() - started < seconds + 60:
            elapsed = time.monotonic() - started
            if elapsed >= warmup:
                for pid in workers:
                    samples[pid].append((elapsed, procstat.rss_bytes(pid)))
            load.thread.join(5)
        run = load.join(60)
        workers_after = worker_pids(server)
        log = server.log()
    wrong = [
        (s.index, s.status, s.error)
        for s in run.samples
        if s.status != expected[s.index % len(expected)]
    ]
    stats = loadgen.summary(run)
    drift = {
        pid: max(abs(rss / series[0][1] - 1) for _, rss in series)
        for pid, series in samples.items()
    }
    for pid, series in samples.items():
        trace = " ".join(
            f"{t:.0f}s:{rss / 2**20:.1f}" for t, rss in series[:: max(1, len(series) // 12)]
        )
        print(f"\n[soak] worker {pid} RSS MiB after warm-up: {trace}", flush=True)
    report(
        f"soak {SOAK_MINUTES:g} min at {rate:g}/s",
        requests=len(run.samples),
        p50_ms=stats["p50_ms"],
        p99_ms=stats["p99_ms"],
        max_ms=stats["max_ms"],
        late_sends=run.late_sends,
        rss_samples=sum(len(s) for s in samples.values()),
        max_rss_drift_pct=100 * max(drift.values()),
    )
    assert workers_after == workers, "a worker was restarted during the soak"
    assert "WORKER TIMEOUT" not in log
    assert wrong == [], wrong[:5]
    for pid, series in samples.items():
        assert len(series) >= 3, "too few RSS samples: soak too short"
        assert drift[pid] <= 0.10, f"worker {pid} RSS drifted {drift[pid]:.1%}: {series}"
