"""The gunicorn worker: a thread pool that only ever serves complete requests.

gthread gives a connection a thread for its TLS handshake and for reading the request, so a
client that sends a few bytes and stalls holds a thread. Here every connection is handled
non-blocking in the worker's poller until its request has fully arrived: the handshake, then
the request read into a bounded buffer (webhook/serving/framing.py says where it ends), all
within one deadline per request. Only then does a thread parse and serve it, into memory
(webhook/serving/rendering.py); the poller writes the response non-blocking, within one deadline.
Idle kept-alive connections and connections being closed wait in the poller too. When the
worker is full, it evicts the oldest connection that has no request in a thread instead of
refusing the new one. The gthread internals it builds on are listed in
webhook/serving/gunicorn_internals.py.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import ssl
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from functools import partial
from typing import Any

from webhook.errors import FramingError
from webhook.serving import heap
from webhook.serving.connection import (
    BUFFER_BUDGET_BYTES,
    BUSY,
    HANDSHAKE,
    IDLE,
    LINGER,
    LINGER_MAX_BYTES,
    LINGER_SECONDS,
    READING,
    REQUEST_DEADLINE_SECONDS,
    RESPONSE_DEADLINE_SECONDS,
    WRITING,
    Connection,
    error_response,
    new_framer,
    raise_fd_limit,
)
from webhook.serving.framing import Complete
from webhook.serving.gunicorn_internals import ThreadWorker, util
from webhook.serving.gunicorn_internals import sock as gunicorn_sock
from webhook.serving.rendering import render

READ_SIZE = 65536
WRITE_SIZE = 256 * 1024
ACCEPT_BATCH = 64

arrival = threading.local()  # .value: when the request being served began to arrive


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Stands in for gunicorn's `util.write_error` (an HTML page): the request gunicorn could
    not parse, or whose application crashed, is answered in the views' JSON error shape."""
    util.write_nonblock(sock, error_response(status_int, mesg or reason))


class WebhookWorker(ThreadWorker):  # type: ignore[misc]
    """gthread's thread pool and request handling, with its own connection handling."""

    def init_process(self) -> None:
        # gunicorn's handle_error answers through `util.write_error`, looked up at each call;
        # replaced here, in the worker process only.
        util.write_error = write_json_error
        self.worker_connections = raise_fd_limit(self.cfg.worker_connections)
        self.max_keepalived = self.worker_connections - self.cfg.threads
        # Each ordered by deadline: all of one kind get the same time limit from when they
        # enter, so the first is always the next to expire (and the oldest, for eviction).
        self.waiting: OrderedDict[Connection, None] = OrderedDict()  # handshake and reading
        self.writing: OrderedDict[Connection, None] = OrderedDict()
        self.idle: OrderedDict[Connection, None] = OrderedDict()
        self.lingering: OrderedDict[Connection, None] = OrderedDict()
        self.keepalived_conns = self.idle  # gthread's handle_request counts them
        self.buffered = 0
        self.evicted = 0
        super().init_process()

    # --- the main loop ------------------------------------------------------------------

    def run(self) -> None:
        # Everything is loaded: out of the cyclic collector's walk from now on (heap.py).
        self.log.debug("heap frozen: %d objects", heap.freeze_survivors())
        self.poller.register(
            self.method_queue.fileno(), selectors.EVENT_READ, self.method_queue.run_callbacks
        )
        self.set_accept_enabled(True)
        while self.alive:
            self.notify()
            self.set_accept_enabled(self._can_accept())
            self._dispatch_events(self._next_timeout())
            if not self.is_parent_alive():
                break
            self._expire()
        self._stop()

    def _stop(self) -> None:
        """Finish what was accepted, within the graceful timeout: requests being read keep
        their deadline, connections without a request byte get LINGER_SECONDS. The worker's
        listener is its own (webhook/serving/listeners.py): what its backlog holds is accepted
        now, and closing it sends new connections to the other workers."""
        self.set_accept_enabled(False)
        self._close_listeners()
        soon = time.monotonic() + LINGER_SECONDS
        for conn in list(self.waiting):
            if not conn.buffer:
                conn.deadline = min(conn.deadline, soon)
        self._reorder(self.waiting)
        for conn in self.idle:
            conn.deadline = min(conn.deadline, soon)
        give_up = time.monotonic() + self.cfg.graceful_timeout
        while self.nr_conns > 0 and time.monotonic() < give_up:
            self.notify()
            self._dispatch_events(self._next_timeout())
            self._expire()
        for pool in (self.waiting, self.writing, self.idle, self.lingering):
            for conn in list(pool):
                self._close(conn)
        self.tpool.shutdown(wait=False)
        self.poller.close()
        self.method_queue.close()

    def _close_listeners(self) -> None:
        """Accept what the listeners' backlogs hold (the kernel would reset it with them when
        they close), then close them. A listener shared with other workers (no SO_REUSEPORT)
        is left to them: closing this process's copy of it changes nothing for the others."""
        for listener in self.sockets:
            if self.cfg.reuse_port:
                while self.accept(listener):
                    pass
            listener.close()

    @staticmethod
    def _reorder(pool: OrderedDict[Connection, None]) -> None:
        for conn in sorted(pool, key=lambda c: c.deadline):
            pool.move_to_end(conn)

    def _dispatch_events(self, timeout: float) -> None:
        try:
            events = self.poller.select(timeout)
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
            return
        for key, _ in events:
            key.data(key.fileobj)

    def _next_timeout(self) -> float:
        now, timeout = time.monotonic(), 1.0
        for pool in (self.waiting, self.writing, self.idle, self.lingering):
            if pool:
                timeout = min(timeout, next(iter(pool)).deadline - now)
        return max(timeout, 0.0)

    def _expire(self) -> None:
        now = time.monotonic()
        while self.waiting and (conn := next(iter(self.waiting))).deadline <= now:
            if conn.buffer:
                self.log.info("request from %s not complete within its deadline", conn.client)
                self._refuse(
                    conn, 408, f"request not complete within {REQUEST_DEADLINE_SECONDS:g} s"
                )
            else:
                self._close(conn)
        while self.writing and (conn := next(iter(self.writing))).deadline <= now:
            self.log.info("response to %s not read within its deadline; closing", conn.client)
            self._close(conn)
        for pool in (self.idle, self.lingering):
            while pool and (conn := next(iter(pool))).deadline <= now:
                self._close(conn)

    # --- accepting and evicting ---------------------------------------------------------

    def _can_accept(self) -> bool:
        if self.nr_conns < self.worker_connections:
            return True
        return bool(self.lingering or self.waiting or self.writing or self.idle)

    def accept(self, listener: Any) -> int:
        """Accept up to ACCEPT_BATCH connections; how many (0: none waiting, or no room)."""
        server, accepted = listener.getsockname(), 0
        for _ in range(ACCEPT_BATCH):
            if self.nr_conns >= self.worker_connections and not self._evict_one():
                return accepted
            try:
                sock, client = listener.accept()
            except (BlockingIOError, InterruptedError):
                return accepted
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log.warning("cannot accept: %s; evicting a connection", exc)
                    if not self._evict_one():
                        self.set_accept_enabled(False)
                    return accepted
                if exc.errno == errno.ECONNABORTED:
                    continue
                raise
            accepted += 1
            sock.setblocking(False)
            self.nr_conns += 1
            phase = HANDSHAKE if self.cfg.is_ssl else READING
            conn = Connection(
                sock, client, server, phase, time.monotonic() + REQUEST_DEADLINE_SECONDS
            )
            self.waiting[conn] = None
            self._watch(conn, selectors.EVENT_READ)
        return accepted

    def _evict_one(self) -> bool:
        """Close the oldest connection that is not being served: lingering first, then one
        still without a complete request, then one whose response is not read, then the least
        recently used kept-alive one."""
        for pool in (self.lingering, self.waiting, self.writing, self.idle):
            if pool:
                conn = next(iter(pool))
                self.evicted += 1
                if self.evicted in (1, 10, 100) or self.evicted % 1000 == 0:
                    self.log.warning(
                        "%d connections evicted so far: %d open is this worker's limit",
                        self.evicted,
                        self.worker_connections,
                    )
                self._close(conn)
                return True
        return False

    # --- connection events --------------------------------------------------------------

    def _watch(self, conn: Connection, events: int) -> None:
        if conn.watching == events:
            return
        callback = partial(self._on_event, conn)
        if conn.watching:
            self.poller.modify(conn.sock, events, callback)
        else:
            self.poller.register(conn.sock, events, callback)
        conn.watching = events

    def _unwatch(self, conn: Connection) -> None:
        if conn.watching:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
            conn.watching = 0

    def _on_event(self, conn: Connection, _fileobj: Any) -> None:
        if conn.phase == HANDSHAKE:
            self._handshake(conn)
        elif conn.phase == READING:
            self._read(conn)
        elif conn.phase == WRITING:
            self._write(conn)
        elif conn.phase == IDLE:
            del self.idle[conn]
            self._begin_request(conn)
            self._read(conn)
        elif conn.phase == LINGER:
            self._drain(conn)

    def _handshake(self, conn: Connection) -> None:
        try:
            if not conn.wrapped:
                self._unwatch(conn)  # wrapping detaches the plain socket object
                conn.wrapped = True
                conn.sock = gunicorn_sock.ssl_context(self.cfg).wrap_socket(
                    conn.sock,
                    server_side=True,
                    do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
                )
                conn.sock.setblocking(False)
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            self.log.debug("connection from %s closed during the handshake: %s", conn.client, exc)
            self._close(conn)
            return
        except ssl.SSLError as exc:  # e.g. a client certificate from another CA
            self.log.warning("TLS handshake from %s refused: %s", conn.client, exc)
            self._close(conn)
            return
        except (OSError, ValueError) as exc:
            self.log.debug("connection from %s lost during the handshake: %s", conn.client, exc)
            self._close(conn)
            return
        conn.phase = READING
        self._read(conn)

    def _begin_request(self, conn: Connection) -> None:
        """A request starts (its first byte arrived): it has a deadline of its own."""
        conn.phase = READING
        conn.deadline = time.monotonic() + REQUEST_DEADLINE_SECONDS
        conn.arrival = time.monotonic() if conn.buffer else None
        conn.framer, conn.continued = new_framer(), False
        self.waiting[conn] = None

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                complete = conn.framer.advance(conn.buffer)
            except FramingError as exc:
                self.log.info("request from %s refused: %s", conn.client, exc.message)
                self._refuse(conn, exc.status, exc.message)
                return
            if complete is not None:
                self._hand_over(conn, complete)
                return
            if conn.framer.expects_continue and not conn.continued:
                conn.continued = True
                self._send_quietly(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                data = conn.sock.recv(READ_SIZE)
            except (ssl.SSLWantReadError, BlockingIOError):
                self._watch(conn, selectors.EVENT_READ)
                return
            except ssl.SSLWantWriteError:
                self._watch(conn, selectors.EVENT_WRITE)
                return
            except (OSError, ValueError) as exc:
                self.log.debug("connection from %s lost while reading: %s", conn.client, exc)
                self._close(conn)
                return
            if not data:
                self._close(conn)
                return
            if not self._charge(conn, len(data)):
                return
            if conn.arrival is None:
                conn.arrival = time.monotonic()
            conn.buffer += data

    def _charge(self, conn: Connection, size: int, what: str = "requests") -> bool:
        """Keep the bytes held by all connections within the budget: evict the oldest
        incomplete request or unread response, or refuse this one if only requests in
        threads hold it."""
        while self.buffered + size > BUFFER_BUDGET_BYTES:
            reading = next((c for c in self.waiting if c.buffer and c is not conn), None)
            writing = next((c for c in self.writing if c is not conn), None)
            candidates = [c for c in (reading, writing) if c is not None]
            if not candidates:
                self._refuse(conn, 503, f"the server holds too many large {what}; retry")
                return False
            victim = min(candidates, key=lambda c: c.deadline)
            kind = "request from" if victim is reading else "unread response to"
            self.log.warning("evicting %s %s: request buffers full", kind, victim.client)
            self._close(victim)
        self.buffered += size
        conn.held += size
        return True

    def _hand_over(self, conn: Connection, complete: Complete) -> None:
        request = conn.framer.request(conn.buffer)
        del conn.buffer[: complete.end]
        del self.waiting[conn]
        self._unwatch(conn)
        conn.phase, conn.in_thread = BUSY, complete.end
        future = self.tpool.submit(self._serve, conn, request)
        future.add_done_callback(lambda f: self.method_queue.defer(self._served, conn, f))

    def _served(self, conn: Connection, future: Future[tuple[bytes, bool]]) -> None:
        """Back on the main thread with the response: write it."""
        self.buffered -= conn.in_thread
        conn.held -= conn.in_thread
        conn.in_thread = 0
        failed = future.cancelled() or future.exception() is not None
        response, keep = (b"", False) if failed else future.result()
        if not response:
            self._linger(conn)
            return
        if not self._charge(conn, len(response), "responses"):
            return
        conn.phase, conn.outgoing, conn.sent, conn.keep = WRITING, response, 0, keep
        conn.deadline = time.monotonic() + RESPONSE_DEADLINE_SECONDS
        self.writing[conn] = None
        self._write(conn)

    def _write(self, conn: Connection) -> None:
        view = memoryview(conn.outgoing)
        while conn.sent < len(view):
            try:
                conn.sent += conn.sock.send(view[conn.sent : conn.sent + WRITE_SIZE])
            except (ssl.SSLWantWriteError, BlockingIOError):
                self._watch(conn, selectors.EVENT_WRITE)
                return
            except ssl.SSLWantReadError:
                self._watch(conn, selectors.EVENT_READ)
                return
            except (OSError, ValueError) as exc:
                self.log.debug("connection to %s lost while answering: %s", conn.client, exc)
                self._close(conn)
                return
        del self.writing[conn]
        self.buffered -= len(conn.outgoing)
        conn.held -= len(conn.outgoing)
        conn.outgoing = b""
        if not conn.keep:
            self._linger(conn)
            return
        if conn.buffer:  # the client sent its next request already
            self._begin_request(conn)
            conn.arrival = time.monotonic()
            self._read(conn)
            return
        conn.phase = IDLE
        conn.deadline = time.monotonic() + (self.cfg.keepalive if self.alive else LINGER_SECONDS)
        self.idle[conn] = None
        self._watch(conn, selectors.EVENT_READ)

    def _linger(self, conn: Connection) -> None:
        """Close like RFC 9112 §9.6: stop sending, read what the client still sends (so the
        kernel does not reset the connection under the response), then close."""
        for pool in (self.waiting, self.writing, self.idle):
            pool.pop(conn, None)
        self._release(conn)
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            self._close(conn)
            return
        conn.phase, conn.deadline, conn.drained = LINGER, time.monotonic() + LINGER_SECONDS, 0
        self.lingering[conn] = None
        self._watch(conn, selectors.EVENT_READ)

    def _drain(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except (OSError, ValueError):
            data = b""
        conn.drained += len(data)
        if not data or conn.drained > LINGER_MAX_BYTES:
            self._close(conn)

    def _refuse(self, conn: Connection, status: int, message: str) -> None:
        self._send_quietly(conn, error_response(status, message))
        self._linger(conn)

    def _send_quietly(self, conn: Connection, data: bytes) -> None:
        """A small answer on a non-blocking socket: the kernel takes it whole or it is lost."""
        try:
            conn.sock.send(data)
        except (OSError, ValueError, ssl.SSLError) as exc:
            self.log.debug("could not answer %s: %s", conn.client, exc)

    def _release(self, conn: Connection) -> None:
        self.buffered -= conn.held - conn.in_thread
        conn.held = conn.in_thread
        conn.buffer, conn.outgoing = bytearray(), b""

    def _close(self, conn: Connection) -> None:
        for pool in (self.waiting, self.writing, self.idle, self.lingering):
            pool.pop(conn, None)
        self._unwatch(conn)
        self._release(conn)
        util.close(conn.sock)
        self.nr_conns -= 1

    # --- in a thread --------------------------------------------------------------------

    def _serve(self, conn: Connection, request: bytes) -> tuple[bytes, bool]:
        """Parse and answer one complete request, into memory: the poller writes it."""
        arrival.value = conn.arrival
        return render(self, conn.client, conn.server, request)
