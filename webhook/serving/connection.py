"""A client connection as the worker sees it, and the limits every connection lives under.

Plain data and small pure helpers: the worker (webhook/serving/worker.py) owns all the I/O.
The limits are documented in docs/deploy.md, "Slow and hostile clients".
"""

from __future__ import annotations

import json
import resource
from http import HTTPStatus
from typing import Any

from webhook.serving.framing import RequestFramer
from webhook.serving.views import MAX_BODY_BYTES

# The API server sends a review at once and waits at most 30 s (its webhook timeout);
# a request that needs longer to arrive (or a handshake) is not worth waiting for.
REQUEST_DEADLINE_SECONDS = 10.0
MAX_HEADER_BYTES = 64 * 1024
CONNECTIONS_PER_WORKER = 4096
# A response: a review's answer stays under 64 KiB besides the request's uid, echoed whole,
# which the body limit bounds.
MAX_RESPONSE_BYTES = MAX_BODY_BYTES + MAX_HEADER_BYTES
# The whole response must be written within this, from when its first byte could be sent.
RESPONSE_DEADLINE_SECONDS = 10.0
# Bytes held per worker (requests being read, queued or served; responses being written):
# 10 of the largest.
BUFFER_BUDGET_BYTES = 10 * (MAX_BODY_BYTES + MAX_HEADER_BYTES)
LINGER_SECONDS = 2.0  # after the response, how long the peer may keep sending before the close
LINGER_MAX_BYTES = MAX_BODY_BYTES + MAX_HEADER_BYTES
RESERVED_FDS = 64  # listeners, pipes, policy and certificate files, logs
HANDSHAKE, READING, BUSY, WRITING = "handshake", "reading", "busy", "writing"
IDLE, LINGER = "idle", "linger"


class Connection:
    """One client connection and where it is in its life; owned by the worker's main thread
    except while BUSY, when only the thread serving its request touches it."""

    __slots__ = (
        "arrival",
        "buffer",
        "client",
        "continued",
        "deadline",
        "drained",
        "framer",
        "held",
        "in_thread",
        "keep",
        "outgoing",
        "phase",
        "sent",
        "server",
        "sock",
        "watching",
        "wrapped",
    )

    def __init__(self, sock: Any, client: Any, server: Any, phase: str, deadline: float) -> None:
        self.sock, self.client, self.server = sock, client, server
        self.phase, self.deadline = phase, deadline
        self.wrapped = False
        self.watching = 0  # the selector events registered, 0 when not registered
        self.buffer = bytearray()
        self.held = 0  # bytes charged to the worker's buffer budget
        self.in_thread = 0  # of which the request a thread is serving
        self.outgoing = b""  # WRITING: the response (charged too), of which `sent` are written
        self.sent = 0
        self.keep = False  # WRITING: whether the connection stays open after the response
        self.arrival: float | None = None
        self.framer = new_framer()
        self.continued = False
        self.drained = 0


def new_framer() -> RequestFramer:
    return RequestFramer(max_header_bytes=MAX_HEADER_BYTES, max_body_bytes=MAX_BODY_BYTES)


def raise_fd_limit(connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE toward the hard limit so that `connections` sockets fit;
    return how many connections do fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if new > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(1, min(connections, soft - RESERVED_FDS))


def error_response(status: int, message: str) -> bytes:
    """The views' JSON error shape, for a request refused before it reached the app."""
    body = json.dumps({"error": message, "code": status}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body
