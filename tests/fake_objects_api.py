"""A small HTTP server keeping Kubernetes objects by path, for the approver's unit tests.

GET reads an object, POST to a collection creates one (409 AlreadyExists), PUT replaces one
when the body's metadata.resourceVersion is the stored one (else 409 Conflict, as the API
server's optimistic concurrency answers); a PUT to `<object>/approval` changes only its
status.conditions, as that subresource does. Every write bumps one resourceVersion counter.
A test may script answers (a status for the next request matching a method and path) and
reads the log of requests. The real control plane is in tests/e2e; this serves the paths
where a test must control what the server does (two electors, a conflict, a 500).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SUBRESOURCES = ("approval", "status")


@dataclass
class Store:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 100
    # (method, path) -> statuses the next matching requests answer, before the store does
    scripted: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` at `path` (a test's own write: no precondition)."""
        with self.lock:
            return self._store(path, obj)

    def get(self, path: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects.get(path)
            return json.loads(json.dumps(found)) if found is not None else None

    def script(self, method: str, path: str, *statuses: int) -> None:
        with self.lock:
            self.scripted.setdefault((method, path), []).extend(statuses)

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for request in self.requests if request == (method, path))

    def _store(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored: dict[str, Any] = json.loads(json.dumps(obj))
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[path] = stored
        return stored

    def answer(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
            statuses = self.scripted.get((method, path))
            if statuses:
                status = statuses.pop(0)
                return status, _status(status, "Scripted", "scripted answer")
            if method == "GET":
                found = self.objects.get(path)
                return (200, found) if found is not None else (404, _status(404, "NotFound", path))
            assert body is not None
            if method == "POST":
                target = f"{path}/{body.get('metadata', {}).get('name', '')}"
                if target in self.objects:
                    return 409, _status(409, "AlreadyExists", target)
                return 201, self._store(target, body)
            target, _, sub = path.rpartition("/")
            if sub not in SUBRESOURCES:
                target, sub = path, ""
            stored = self.objects.get(target)
            if stored is None:
                return 404, _status(404, "NotFound", target)
            sent = body.get("metadata", {}).get("resourceVersion")
            if sent != stored["metadata"]["resourceVersion"]:
                return 409, _status(409, "Conflict", "the object has been modified")
            if sub == "approval":
                replaced = json.loads(json.dumps(stored))
                conditions = body.get("status", {}).get("conditions", [])
                replaced.setdefault("status", {})["conditions"] = conditions
                return 200, self._store(target, replaced)
            return 200, self._store(target, body)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def _handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = store.answer(method, urlsplit(self.path).path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

    return Handler


@contextmanager
def serving(store: Store) -> Iterator[str]:
    """The server's base URL while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(store))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
