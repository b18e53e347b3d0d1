"""Leader election on a Lease, against tests/fake_objects_api (optimistic concurrency as the API
server answers it). The clock is the test's: expiry is judged by local monotonic time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.approver_setting import api_client
from tests.fake_objects_api import Store, serving
from webhook.approver.lease import LeaderElector

LEASE = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/approver"


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def client(store: Store) -> Iterator[Any]:
    with serving(store) as url:
        yield api_client(url)


def elector(
    client: Any, identity: str, clock: Clock | None = None, **timing: float
) -> LeaderElector:
    settings = {"lease_duration": 15.0, "renew_deadline": 10.0, "retry_period": 2.0, **timing}
    return LeaderElector(
        client,
        namespace="ns",
        name="approver",
        identity=identity,
        clock=clock or time.monotonic,
        **settings,  # type: ignore[arg-type]
    )


def spec(store: Store) -> dict[str, Any]:
    lease = store.get(LEASE)
    assert lease is not None
    return dict(lease["spec"])


def test_first_candidate_creates_the_lease_and_leads(store: Store, client: Any) -> None:
    clock = Clock()
    a = elector(client, "a", clock)
    assert a.try_acquire_or_renew()
    assert a.is_leader()
    written = spec(store)
    assert written["holderIdentity"] == "a"
    assert written["leaseDurationSeconds"] == 15
    assert written["leaseTransitions"] == 0
    assert written["acquireTime"] == written["renewTime"]
    assert store.count("POST", LEASE.rsplit("/", 1)[0]) == 1


def test_a_held_lease_is_taken_only_after_it_stayed_unchanged_for_its_duration(
    store: Store, client: Any
) -> None:
    clock = Clock()
    a, b = elector(client, "a", clock), elector(client, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b first sees the record now
    clock.now += 10
    assert a.try_acquire_or_renew()  # renewed: b's wait starts again when it sees that
    clock.now += 10
    assert not b.try_acquire_or_renew()
    clock.now += 14.9
    assert not b.try_acquire_or_renew()
    clock.now += 0.2
    assert b.try_acquire_or_renew()
    written = spec(store)
    assert written["holderIdentity"] == "b"
    assert written["leaseTransitions"] == 1
    assert written["acquireTime"] == written["renewTime"]
    assert not a.is_leader()  # a's last renewal is more than its renew deadline ago


def test_remote_timestamps_are_never_compared_with_the_local_clock(
    store: Store, client: Any
) -> None:
    """A renewTime from long ago (a skewed clock) does not make the Lease expired: only
    watching it stay unchanged for leaseDurationSeconds does."""
    clock = Clock()
    store.put(
        LEASE,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "approver", "namespace": "ns"},
            "spec": {
                "holderIdentity": "elsewhere",
                "leaseDurationSeconds": 15,
                "acquireTime": "2001-01-01T00:00:00.000000Z",
                "renewTime": "2001-01-01T00:00:00.000000Z",
                "leaseTransitions": 4,
            },
        },
    )
    b = elector(client, "b", clock)
    assert not b.try_acquire_or_renew()
    clock.now += 14
    assert not b.try_acquire_or_renew()
    clock.now += 2
    assert b.try_acquire_or_renew()
    assert spec(store)["leaseTransitions"] == 5


def test_of_two_candidates_with_one_stale_read_only_one_writes(store: Store, client: Any) -> None:
    """b read the Lease before a's write: its write carries the old resourceVersion and the
    API server refuses it (409), so b does not lead."""
    clock = Clock()
    a, b = elector(client, "a", clock), elector(client, "b", clock)
    assert a.try_acquire_or_renew()
    stale = store.get(LEASE)
    assert a.try_acquire_or_renew()  # a renews: new resourceVersion
    current = store.get(LEASE)
    assert stale is not None and current is not None
    store.objects[LEASE] = {**stale, "metadata": current["metadata"]}  # b will read the old record
    clock.now += 16
    assert not b.try_acquire_or_renew()  # first sight of this record
    store.script("PUT", LEASE, 409)
    clock.now += 16
    assert not b.try_acquire_or_renew()
    assert not b.is_leader()
    assert "409" in b.last_error


def test_released_lease_is_taken_at_once(store: Store, client: Any) -> None:
    clock = Clock()
    a, b = elector(client, "a", clock), elector(client, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.release()
    assert not a.is_leader()
    assert "holderIdentity" not in spec(store)
    assert b.try_acquire_or_renew()  # no wait: nobody holds it
    assert spec(store)["holderIdentity"] == "b"
    assert spec(store)["leaseTransitions"] == 1


def test_a_leader_that_sees_another_holder_stops_at_once(store: Store, client: Any) -> None:
    clock = Clock()
    a = elector(client, "a", clock)
    assert a.try_acquire_or_renew()
    lease = store.get(LEASE)
    assert lease is not None
    lease["spec"]["holderIdentity"] = "usurper"
    store.put(LEASE, lease)
    assert not a.try_acquire_or_renew()
    assert not a.is_leader()


def test_leader_gives_up_when_no_renewal_succeeds_within_the_renew_deadline(
    store: Store, client: Any
) -> None:
    a = elector(client, "a", lease_duration=2.0, renew_deadline=0.6, retry_period=0.1)
    assert a.try_acquire_or_renew()
    store.script("GET", LEASE, *([500] * 1000))
    stop = threading.Event()
    started = time.monotonic()
    assert a.keep_renewing(stop) is False
    assert time.monotonic() - started >= 0.6 - 0.1  # not before the deadline...
    assert not a.is_leader()
    assert "500" in a.last_error


def test_keep_renewing_renews_until_stopped(store: Store, client: Any) -> None:
    a = elector(client, "a", lease_duration=2.0, renew_deadline=0.6, retry_period=0.05)
    assert a.try_acquire_or_renew()
    first = spec(store)["renewTime"]
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    assert a.keep_renewing(stop) is True
    assert spec(store)["renewTime"] != first
    assert spec(store)["acquireTime"] != spec(store)["renewTime"]
    assert spec(store)["leaseTransitions"] == 0


def test_timings_that_cannot_work_are_refused(client: Any) -> None:
    with pytest.raises(ValueError, match="lease duration"):
        elector(client, "a", lease_duration=10.0, renew_deadline=10.0)
    with pytest.raises(ValueError, match="retry period"):
        elector(client, "a", renew_deadline=2.0, retry_period=2.0)
