"""A list+watch cache of one kind of Kubernetes object, kept by a daemon thread.

The thread lists (paged), then watches from the list's resourceVersion with bookmarks, and
stores only what `keep` makes of each raw JSON object. It relists on 410 Gone and, after a
capped, jittered backoff, on any other failure; nothing the API server sends stops the thread.
Reads are thread-safe. It knows no particular kind and makes no policy decision.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from webhook.cluster.client import read_json

T = TypeVar("T")

log = logging.getLogger("csr_webhook.cluster")

# A watch event line longer than this is no event we can use (a Node with thousands of
# images is some hundred KiB); reading stops there and the informer relists.
MAX_EVENT_BYTES = 16 * 1024 * 1024
# The read timeout is the watch's own timeout plus this: the API server ends a healthy watch
# at timeoutSeconds, so a connection silent for longer than that is dead.
READ_GRACE_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0


class _QuietEndError(Exception):
    """A watch that ended early without a line: retried after the backoff, from a new list."""


class _RelistError(Exception):
    """The watch cannot go on from its resourceVersion: list again (410 Gone, a garbage line)."""


class Informer(Generic[T]):
    """The objects `list_call` lists, as `keep` makes them, kept current by a watch.

    `list_call` is a kubernetes client list method (CoreV1Api.list_node, ...); it is called
    with _preload_content=False and its raw JSON read, never deserialised into models.
    `on_change(key, kept or None)` is called, outside the lock and from the informer's thread,
    for every add, update and delete a watch shows and for every difference a relist finds;
    for the first list, before `synced` is set.
    The key is metadata.name (namespace/name for a namespaced object).
    """

    def __init__(
        self,
        *,
        name: str,
        list_call: Callable[..., Any],
        keep: Callable[[dict[str, Any]], T],
        on_change: Callable[[str, T | None], None] | None = None,
        watch_seconds: int = 300,
        page_size: int = 500,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.watch_seconds = watch_seconds
        self._list_call = list_call
        self._keep = keep
        self._on_change = on_change
        self._page_size = page_size
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, T] = {}
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._last_contact: float | None = None
        self._error = ""
        self._since_error: float | None = None
        self._response: Any = None
        self._thread: threading.Thread | None = None
        self._failures = 0

    # -- reading -------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """A full list has completed (it stays so across later relists)."""
        return self._synced.is_set()

    @property
    def last_contact(self) -> float | None:
        """`clock()` of the last list page, watch event, bookmark or watch that ended cleanly."""
        with self._lock:
            return self._last_contact

    @property
    def error(self) -> str:
        """The last failure, "" once a list or watch has succeeded since."""
        with self._lock:
            return self._error

    @property
    def quiet_bound(self) -> float:
        """The longest a healthy informer goes without contact: a watch with no events ends
        at watch_seconds; a silent connection is given up READ_GRACE_SECONDS later."""
        return self.watch_seconds + READ_GRACE_SECONDS

    def get(self, name: str) -> T | None:
        with self._lock:
            return self._items.get(name)

    def values(self) -> list[T]:
        with self._lock:
            return list(self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        response = self._response
        if response is not None:
            _interrupt(response)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        resource_version = ""
        while not self._stopping.is_set():
            try:
                if not resource_version:
                    resource_version = self._list()
                resource_version = self._watch(resource_version)
            except _RelistError as relist:
                log.info("informer %s relists: %s", self.name, relist)
                if self._failures:
                    self._record_failure(str(relist))
                    self._sleep_backoff()
                self._failures += 1
                resource_version = ""
            except Exception as error:
                if self._stopping.is_set():
                    return
                if getattr(error, "status", None) == 410 and not self._failures:
                    # The watch's resourceVersion (or a list's continue token) expired: the
                    # API's ordinary way to say "list again", answered as an HTTP status.
                    log.info("informer %s relists: %s", self.name, _describe(error))
                    self._failures += 1
                    resource_version = ""
                    continue
                message = _describe(error)
                log.warning("informer %s: %s", self.name, message)
                self._record_failure(message)
                self._failures += 1
                self._sleep_backoff()
                resource_version = ""

    def _sleep_backoff(self) -> None:
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** min(self._failures, 20))
        self._stopping.wait(random.uniform(ceiling / 2, ceiling))

    def _record_failure(self, message: str) -> None:
        with self._lock:
            self._error = message

    def _contact(self) -> None:
        with self._lock:
            self._last_contact = self._clock()
            self._error = ""

    def _list(self) -> str:
        fresh: dict[str, T] = {}
        token: str | None = None
        resource_version = ""
        while True:
            kwargs: dict[str, Any] = {"limit": self._page_size, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            kwargs["_request_timeout"] = (CONNECT_TIMEOUT_SECONDS, 60.0)
            response = self._list_call(**kwargs)
            try:
                page = read_json(response)
            finally:
                _close(response)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise ValueError(f"list {self.name}: the answer is no list (no items array)")
            metadata = page.get("metadata") or {}
            if not resource_version:
                resource_version = str(metadata.get("resourceVersion") or "")
            for raw in page["items"]:
                key = _key_of(raw)
                kept = self._kept(key, raw)
                if key is not None and kept is not None:
                    fresh[key] = kept
            self._contact()
            token = metadata.get("continue") or None
            if not token:
                break
        if not resource_version:
            raise ValueError(f"list {self.name}: the answer has no metadata.resourceVersion")
        changes: list[tuple[str, T | None]] = []
        with self._lock:
            for key, kept in fresh.items():
                if self._items.get(key) != kept:
                    changes.append((key, kept))
            changes.extend((key, None) for key in self._items.keys() - fresh.keys())
            self._items = fresh
        # on_change sees the first list before `synced` is set: an index it feeds (the Node
        # claims, the pending counts) is complete once the informer reports itself synced.
        self._notify(changes)
        self._synced.set()
        log.info("informer %s listed %d objects at %s", self.name, len(fresh), resource_version)
        return resource_version

    def _watch(self, resource_version: str) -> str:
        """Watch until the server ends the watch; the resourceVersion to go on from."""
        response = self._list_call(
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_seconds,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT_SECONDS, self.quiet_bound),
        )
        self._response = response
        started, lines = self._clock(), 0
        try:
            if self._stopping.is_set():
                return resource_version
            self._contact()
            for line in _lines(response):
                if self._stopping.is_set():
                    return resource_version
                resource_version = self._apply(line, resource_version)
                lines += 1
                self._failures = 0
        finally:
            self._response = None
            _close(response)
        lasted = self._clock() - started
        if not lines and lasted < self.watch_seconds / 2:
            # The API server ends a watch at timeout_seconds, with a bookmark first; one that
            # ends at once with nothing (a proxy, a broken server) must neither spin nor pass
            # for contact: a failure, with its backoff, and the facts go stale in time.
            raise _QuietEndError(f"a watch ended after {lasted:.1f}s with no event")
        self._contact()
        self._failures = 0
        return resource_version

    def _apply(self, line: bytes, resource_version: str) -> str:
        try:
            event = json.loads(line)
        except ValueError as error:
            raise _RelistError(f"a watch line that is no JSON ({error})") from None
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise _RelistError("a watch line that is no event (no object)")
        kind = event.get("type")
        raw: dict[str, Any] = event["object"]
        if kind == "ERROR":
            code = raw.get("code")
            if code == 410:
                raise _RelistError(f"410 Gone: {raw.get('message', '')}")
            raise _RelistError(f"watch error {code}: {raw.get('message', '')}")
        metadata = raw.get("metadata")
        version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
        if not isinstance(version, str) or not version:
            log.warning("informer %s: %s event without resourceVersion, skipped", self.name, kind)
            return resource_version
        self._contact()
        if kind == "BOOKMARK":
            return version
        key = _key_of(raw)
        if key is None or kind not in ("ADDED", "MODIFIED", "DELETED"):
            log.warning("informer %s: %s event for %r skipped", self.name, kind, key)
            return version
        kept = None if kind == "DELETED" else self._kept(key, raw)
        with self._lock:
            if kept is None:
                present = self._items.pop(key, None) is not None
            else:
                self._items[key] = kept
                present = True
        if present or kind == "DELETED":
            self._notify([(key, kept)])
        return version

    def _kept(self, key: str | None, raw: dict[str, Any]) -> T | None:
        """keep(raw), or None (the object is dropped) when keep cannot read it."""
        if key is None:
            log.warning("informer %s: an object without metadata.name, skipped", self.name)
            return None
        try:
            return self._keep(raw)
        except Exception as error:
            log.warning("informer %s: %s cannot be read (%s), dropped", self.name, key, error)
            return None

    def _notify(self, changes: list[tuple[str, T | None]]) -> None:
        if self._on_change is None:
            return
        for key, kept in changes:
            try:
                self._on_change(key, kept)
            except Exception:
                log.exception("informer %s: on_change(%s) failed", self.name, key)


def _key_of(raw: object) -> str | None:
    metadata = raw.get("metadata") if isinstance(raw, dict) else None
    if not isinstance(metadata, dict):
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return None
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-separated events of a streamed watch response (the API server sends one
    JSON object a line, in chunked transfer encoding)."""
    parts: list[bytes] = []
    size = 0
    for chunk in response.stream(64 * 1024, decode_content=True):
        rest = chunk
        while rest:
            end = rest.find(b"\n")
            if end < 0:
                parts.append(rest)
                size += len(rest)
                break
            parts.append(rest[:end])
            rest = rest[end + 1 :]
            line = b"".join(parts)
            parts, size = [], 0
            if line.strip():
                yield line
        if size > MAX_EVENT_BYTES:
            raise _RelistError(f"a watch event over {MAX_EVENT_BYTES} bytes")
    line = b"".join(parts)
    if line.strip():
        yield line


def _close(response: Any) -> None:
    try:
        response.close()
        response.release_conn()
    except Exception:
        log.debug("closing a response failed", exc_info=True)


def _interrupt(response: Any) -> None:
    """Wake the thread blocked reading `response`: shut its socket down (closing the response
    from another thread would wait on the lock of the reader it is blocked in)."""
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        log.debug("shutting a watch connection down failed", exc_info=True)


def _describe(error: BaseException) -> str:
    """One line for /readyz and the log: an API status with its reason, or the error."""
    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None)
    if isinstance(status, int) and status:
        return f"HTTP {status} {reason or ''}".rstrip()
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
