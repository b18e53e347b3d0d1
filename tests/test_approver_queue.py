"""The approval controller's work queue: dedupe, one worker per name, backoff, rate limit."""

from __future__ import annotations

import threading

from webhook.approver.queue import ItemBackoff, TokenBucket, WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_name_added_twice_is_queued_once() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert queue.depth == 2
    assert [queue.get(0), queue.get(0), queue.get(0)] == ["a", "b", None]


def test_a_name_in_process_is_not_handed_out_again_until_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    assert queue.get(0) == "a"
    queue.add("a")  # changed while a worker holds it
    assert queue.depth == 0
    assert queue.get(0.05) is None
    queue.done("a")
    assert queue.get(0) == "a"  # processed again, once
    queue.done("a")
    assert queue.get(0) is None


def test_two_workers_never_hold_one_name() -> None:
    queue = WorkQueue()
    held: set[str] = set()
    overlaps: list[str] = []
    handled: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while (name := queue.get(0.5)) is not None:
            with lock:
                if name in held:
                    overlaps.append(name)
                held.add(name)
                handled.append(name)
            threading.Event().wait(0.001)
            with lock:
                held.discard(name)
            queue.done(name)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for round_ in range(200):
        queue.add(f"csr-{round_ % 5}")
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert set(handled) == {f"csr-{i}" for i in range(5)}


def test_item_backoff_doubles_per_failure_up_to_the_cap_and_forget_resets_it() -> None:
    backoff = ItemBackoff(0.5, 10.0)
    assert [backoff.when("a") for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.when("b") == 0.5  # per name
    backoff.forget("a")
    assert backoff.when("a") == 0.5
    for _ in range(5000):  # no float overflow however long a name keeps failing
        assert backoff.when("c") <= 10.0


def test_token_bucket_delays_requests_beyond_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert round(bucket.reserve(), 6) == 0.1
    assert round(bucket.reserve(), 6) == 0.2  # each request beyond waits for its own token
    clock.now += 10
    assert bucket.reserve() == 0.0  # refilled, never beyond the burst


def test_rate_limited_requeue_waits_its_backoff() -> None:
    clock = Clock()
    queue = WorkQueue(backoff_base=2.0, backoff_cap=60.0, clock=clock)
    assert queue.add_rate_limited("a") == 2.0
    assert queue.waiting == 1
    assert queue.depth == 0
    clock.now += 1.9
    assert queue.depth == 0
    clock.now += 0.2
    assert queue.depth == 1
    assert queue.get(0) == "a"
    queue.done("a")
    assert queue.add_rate_limited("a") == 4.0  # the second failure in a row
    assert queue.failures("a") == 2
    queue.forget("a")
    assert queue.failures("a") == 0


def test_shutdown_wakes_a_waiting_worker() -> None:
    queue = WorkQueue()
    got: list[str | None] = []
    thread = threading.Thread(target=lambda: got.append(queue.get()))
    thread.start()
    queue.shutdown()
    thread.join(5)
    assert not thread.is_alive()
    assert got == [None]
