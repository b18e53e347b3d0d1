"""A small HTTP server speaking the Kubernetes list/watch wire format, for the informer's tests.

It serves collections by path (NODES, CSRS): a GET lists one in pages (limit, continue), a GET
with watch=true streams one JSON event a line in chunked encoding, as kube-apiserver does. A
test scripts what a watch does beyond the live events it emits: a 410 Gone, a garbage line, a
dropped connection, a bookmark, a change made while no watch looks. The real control plane is tested in tests/e2e; this one shows
what a real one rarely does.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

NODES = "/api/v1/nodes"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
# A watch script step: bytes to send as they are (a line), a callable to run (server-side,
# before the next step), or one of these.
DROP = "drop"  # close the connection mid-stream, without the terminating chunk
END = "end"  # end the watch cleanly, as the server does at timeoutSeconds
Step = bytes | str | Callable[[], object]


@dataclass
class Collection:
    """The objects served, the resourceVersion counter, and what the tests script."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 1
    list_status: list[int] = field(default_factory=list)  # statuses the next lists answer
    watch_status: list[int] = field(default_factory=list)  # and the next watches
    watch_scripts: list[list[Step]] = field(default_factory=list)
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    watchers: list[queue.Queue[bytes | str]] = field(default_factory=list)
    # (resourceVersion, event) of every notified change: a watch from a resourceVersion sees
    # what came after it, as kube-apiserver's watch cache replays it.
    history: list[tuple[int, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, name: str, body: dict[str, Any] | None = None, *, notify: bool = True) -> None:
        """Create or replace object `name`; live watches see ADDED or MODIFIED."""
        with self.lock:
            self.version += 1
            kind = "MODIFIED" if name in self.objects else "ADDED"
            obj = dict(body or {})
            obj["metadata"] = {"name": name, "resourceVersion": str(self.version)}
            self.objects[name] = obj
        if notify:
            self._record(event(kind, obj))

    def delete(self, name: str, *, notify: bool = True) -> None:
        with self.lock:
            self.version += 1
            obj = self.objects.pop(name)
            obj["metadata"]["resourceVersion"] = str(self.version)
        if notify:
            self._record(event("DELETED", obj))

    def _record(self, line: bytes) -> None:
        with self.lock:
            self.history.append((self.version, line))
            watchers = list(self.watchers)
        for watcher in watchers:
            watcher.put(line)

    def emit(self, line: bytes | str) -> None:
        """Send a line (or DROP / END) to every watch open now."""
        with self.lock:
            watchers = list(self.watchers)
        for watcher in watchers:
            watcher.put(line)

    def watch_count(self) -> int:
        with self.lock:
            return sum(1 for query in self.requests if is_true(query, "watch"))

    def list_count(self) -> int:
        with self.lock:
            return sum(1 for query in self.requests if not is_true(query, "watch"))


def is_true(query: dict[str, list[str]], name: str) -> bool:
    """A boolean query parameter as kube-apiserver reads it (Go's strconv.ParseBool: older
    kubernetes clients send `True`, newer ones `true`)."""
    return query.get(name, [""])[-1] in {"1", "t", "T", "true", "TRUE", "True"}


def event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode()


def gone() -> bytes:
    status = {"kind": "Status", "status": "Failure", "code": 410, "reason": "Expired"}
    return event("ERROR", {**status, "message": "too old resource version"})


def bookmark(version: str) -> bytes:
    return event("BOOKMARK", {"metadata": {"resourceVersion": version}})


def _handler(routes: dict[str, Collection]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            collection = routes.get(url.path)
            if collection is None:
                self._send_json(404, {"kind": "Status", "code": 404, "message": "not served"})
                return
            watch = is_true(query, "watch")
            with collection.lock:
                collection.requests.append(query)
                statuses = collection.watch_status if watch else collection.list_status
                status = statuses.pop(0) if statuses else 200
            if status != 200:
                self._send_json(status, {"kind": "Status", "code": status, "message": "scripted"})
            elif watch:
                self._watch(collection, query)
            else:
                self._list(collection, query)

        def _send_json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _list(self, collection: Collection, query: dict[str, list[str]]) -> None:
            limit = int(query.get("limit", ["500"])[0])
            start = int(query.get("continue", ["0"])[0])
            with collection.lock:
                names = sorted(collection.objects)
                items = [collection.objects[name] for name in names[start : start + limit]]
                version = str(collection.version)
            metadata: dict[str, str] = {"resourceVersion": version}
            if start + limit < len(names):
                metadata["continue"] = str(start + limit)
            self._send_json(200, {"kind": "List", "metadata": metadata, "items": items})

        def _watch(self, collection: Collection, query: dict[str, list[str]]) -> None:
            timeout = float(query.get("timeoutSeconds", ["300"])[0])
            with collection.lock:
                script = collection.watch_scripts.pop(0) if collection.watch_scripts else []
                live: queue.Queue[bytes | str] = queue.Queue()
                collection.watchers.append(live)
                since = int(query.get("resourceVersion", ["0"])[0] or 0)
                for version, line in collection.history:
                    if version > since:
                        live.put(line)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for step in _steps(script, live, time.monotonic() + timeout):
                    if step == DROP:
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return
                    if step == END:
                        break
                    if callable(step):
                        step()
                        continue
                    assert isinstance(step, bytes)
                    line = step + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            finally:
                with collection.lock:
                    collection.watchers.remove(live)
            self.close_connection = True

    return Handler


def _steps(script: list[Step], live: queue.Queue[bytes | str], deadline: float) -> Iterator[Step]:
    yield from script
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield live.get(timeout=min(left, 0.2))
        except queue.Empty:
            continue


@contextmanager
def serving(routes: dict[str, Collection]) -> Iterator[str]:
    """The server's base URL while the block runs; `routes` maps a path to its collection."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(routes))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        for collection in routes.values():
            collection.emit(END)
        server.shutdown()
        server.server_close()


def write_kubeconfig(path: Path, url: str) -> Path:
    """A kubeconfig whose current context is the server at `url`, with a bearer token."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    return path
