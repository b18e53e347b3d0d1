"""webhook.cluster.informer against tests/fake_apiserver.py, through the real kubernetes client:
paged lists, watch events, and what a real API server rarely shows (410 Gone, a garbage line,
a dropped connection, bookmarks, failing lists). Nothing the server sends stops the informer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kubernetes.client

from tests.fake_apiserver import (
    DROP,
    END,
    NODES,
    Collection,
    bookmark,
    event,
    gone,
    is_true,
    serving,
)
from tests.test_operations import wait_for
from webhook.cluster.informer import Informer


def _name(raw: dict[str, Any]) -> str:
    return str(raw["metadata"]["name"])


def _label(raw: dict[str, Any]) -> str:
    return str(raw.get("spec", {}).get("label", ""))


class Changes:
    """What on_change was called with, in order, from the informer's thread."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def __call__(self, key: str, kept: str | None) -> None:
        with self.lock:
            self.seen.append((key, kept))

    def list(self) -> list[tuple[str, str | None]]:
        with self.lock:
            return list(self.seen)


@contextmanager
def informing(collection: Collection, **options: Any) -> Iterator[Informer[str]]:
    with serving({NODES: collection}) as url:
        api: Any = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url))
        settings: dict[str, Any] = {"keep": _label, "backoff_base": 0.05, "backoff_cap": 0.2}
        informer: Informer[str] = Informer(
            name="nodes",
            list_call=kubernetes.client.CoreV1Api(api).list_node,
            **(settings | options),
        )
        informer.start()
        try:
            yield informer
        finally:
            informer.stop()
            api.close()


def nodes(count: int) -> Collection:
    collection = Collection()
    for index in range(count):
        collection.put(f"n{index}", {"spec": {"label": f"v{index}"}}, notify=False)
    return collection


def test_lists_in_pages_then_follows_adds_updates_and_deletes() -> None:
    collection = nodes(5)
    changes = Changes()
    with informing(collection, page_size=2, on_change=changes) as informer:
        assert informer.wait_synced(10)
        assert sorted(informer.values()) == ["v0", "v1", "v2", "v3", "v4"]
        assert collection.list_count() == 3  # pages of 2, 2 and 1, joined by continue
        wait_for(lambda: collection.watch_count() == 1)
        collection.put("n9", {"spec": {"label": "new"}})
        collection.put("n1", {"spec": {"label": "changed"}})
        collection.delete("n0")
        wait_for(lambda: len(changes.list()) == 8)
        assert changes.list()[5:] == [("n9", "new"), ("n1", "changed"), ("n0", None)]
        assert informer.get("n1") == "changed"
        assert informer.get("n0") is None
        assert informer.error == ""
    [watch] = [query for query in collection.requests if is_true(query, "watch")]
    assert watch["resourceVersion"] == ["6"]  # the list's, so nothing in between is missed
    assert is_true(watch, "allowWatchBookmarks")


def test_on_change_sees_the_first_list_before_the_informer_reports_synced() -> None:
    # An index fed by on_change (ClaimIndex, PendingIndex) is asked as soon as the informer
    # is synced; were it told after, an empty index would answer "no other Node claims it".
    collection = nodes(3)
    synced_when_told: list[bool] = []
    holder: list[Informer[str]] = []
    started = threading.Event()

    def record(key: str, kept: str | None) -> None:
        assert started.wait(10)
        synced_when_told.append(holder[0].synced)

    with informing(collection, on_change=record) as informer:
        holder.append(informer)
        started.set()
        assert informer.wait_synced(10)
        assert synced_when_told == [False, False, False]


def test_410_gone_relists_and_reports_what_changed_in_the_gap() -> None:
    collection = nodes(3)
    changes = Changes()

    def change_unseen() -> None:
        collection.delete("n1", notify=False)
        collection.put("n2", {"spec": {"label": "moved"}}, notify=False)

    collection.watch_scripts.append([change_unseen, gone()])
    with informing(collection, on_change=changes) as informer:
        wait_for(lambda: collection.list_count() == 2)
        wait_for(lambda: len(changes.list()) == 5)
        assert changes.list()[3:] == [("n2", "moved"), ("n1", None)]
        assert sorted(informer.values()) == ["moved", "v0"]
        assert informer.error == ""  # a 410 is the API's ordinary way to say "list again"


def test_a_watch_answered_410_relists_at_once_without_an_error() -> None:
    collection = nodes(1)
    collection.watch_status.append(410)  # kube-apiserver: the resourceVersion is too old
    with informing(collection, backoff_base=60.0, backoff_cap=60.0) as informer:
        wait_for(lambda: collection.list_count() == 2 and collection.watch_count() == 2)
        assert informer.error == ""
        collection.put("n3", {"spec": {"label": "after"}})
        wait_for(lambda: informer.get("n3") == "after")


def test_a_garbage_line_relists_and_the_informer_goes_on() -> None:
    collection = nodes(2)
    collection.watch_scripts.append([b"{not json"])
    with informing(collection) as informer:
        wait_for(lambda: collection.list_count() == 2 and collection.watch_count() == 2)
        collection.put("n7", {"spec": {"label": "after"}})
        wait_for(lambda: informer.get("n7") == "after")


def test_a_dropped_connection_is_an_error_until_the_relist_succeeds() -> None:
    collection = nodes(1)
    collection.watch_scripts.append([DROP])
    with informing(collection) as informer:
        wait_for(lambda: collection.watch_count() == 2)
        assert collection.list_count() == 2
        collection.put("n5", {"spec": {"label": "seen"}})
        wait_for(lambda: informer.get("n5") == "seen")
        assert informer.error == ""


def test_a_bookmark_moves_the_watch_on_without_a_relist() -> None:
    collection = nodes(1)
    collection.watch_scripts.append([bookmark("77"), END])
    with informing(collection) as informer:
        assert informer.wait_synced(10)
        wait_for(lambda: collection.watch_count() == 2)
        assert collection.list_count() == 1
    second = [query for query in collection.requests if is_true(query, "watch")][1]
    assert second["resourceVersion"] == ["77"]


def test_a_watch_that_ends_at_once_with_nothing_backs_off_and_is_no_contact() -> None:
    """A proxy or broken server that answers every watch with an empty 200: the informer
    neither spins on it nor takes it for contact; it says so and waits out its backoff."""
    collection = nodes(1)
    collection.watch_scripts.extend([[END]] * 200)
    with informing(collection, backoff_base=0.5, backoff_cap=0.5) as informer:
        assert informer.wait_synced(10)
        wait_for(lambda: "no event" in informer.error)
        watches = collection.watch_count()
        wait_for(lambda: collection.watch_count() > watches)
        # A hot loop would have used up the 200 empty watches by now.
        assert collection.watch_count() < 50


def test_a_failing_list_is_the_error_and_no_sync_then_recovers() -> None:
    collection = nodes(1)
    collection.list_status.extend([500] * 4)
    with informing(collection, backoff_cap=1.0) as informer:
        wait_for(lambda: informer.error != "")
        assert "HTTP 500" in informer.error
        assert not informer.synced
        assert informer.last_contact is None
        assert informer.wait_synced(20)
        wait_for(lambda: informer.error == "")
        assert informer.values() == ["v0"]


def test_an_object_keep_cannot_read_is_dropped_and_an_event_without_name_skipped() -> None:
    collection = nodes(0)
    collection.put("good", {"spec": {"label": "ok"}}, notify=False)
    collection.put("bad", {"spec": "not a mapping"}, notify=False)
    nameless = event("ADDED", {"metadata": {"resourceVersion": "50"}})
    collection.watch_scripts.append([nameless])
    with informing(collection) as informer:
        assert informer.wait_synced(10)
        assert informer.values() == ["ok"]
        assert informer.get("bad") is None
        wait_for(lambda: collection.watch_count() == 1)
        collection.put("later", {"spec": {"label": "fine"}})
        wait_for(lambda: informer.get("later") == "fine")
        assert collection.list_count() == 1  # the nameless event was skipped, not relisted


def test_stop_ends_a_watch_that_is_waiting_for_events() -> None:
    collection = nodes(1)
    with informing(collection) as informer:
        wait_for(lambda: collection.watch_count() == 1)
        thread = informer._thread
        assert thread is not None
        informer.stop(timeout=5)
        assert not thread.is_alive()
