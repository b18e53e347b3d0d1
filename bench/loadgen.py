"""A small HTTP/1.1-over-TLS load generator on asyncio, for offered rates wrk cannot do.

Debian ships wrk, not wrk2, and wrk's closed loop cannot hold a fixed rate. `open_loop` sends
request i at its scheduled time t0 + i/rate whatever happened to earlier requests, over a pool
of kept-alive TLS connections (grown on demand, like the API server's transport), and
measures each latency from the *scheduled* time: a request that had to wait for a connection,
or that the client sent late, is charged for the wait (no coordinated omission).
`closed_loop` keeps N requests in flight back to back, to find the capacity.

Every loop is bounded by its duration and a per-request timeout.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 30.0


@dataclass(slots=True)
class Sample:
    index: int
    scheduled: float  # loop time the request was due (closed loop: when it was sent)
    sent: float
    done: float
    status: int  # 0: no HTTP answer (see error)
    error: str | None = None
    body: bytes | None = None
    phase: int = 0

    @property
    def latency(self) -> float:
        return self.done - self.scheduled


@dataclass
class Run:
    samples: list[Sample]
    started: float
    elapsed: float
    connections_opened: int
    max_in_flight: int
    late_sends: int = 0  # sent more than 10 ms after schedule (client lag or no connection)
    extra: dict[str, float] = field(default_factory=dict)

    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.status == 200]

    def errors(self) -> list[Sample]:
        return [s for s in self.samples if s.status != 200]


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    if cafile is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cafile)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, head: bytes, body: bytes) -> tuple[int, bytes, bool]:
        """(status, body, server keeps the connection open)."""
        self.writer.write(head + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, keep = 0, True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload, keep

    def close(self) -> None:
        # Close the TCP connection at once, as Go's TLS client does after its close_notify.
        # Not writer.close(): asyncio then waits for the server's close_notify, which gunicorn
        # never sends, and a connection left open when the event loop stops kept gunicorn's
        # graceful close lingering for 2 s (in the worker's main loop before eed7e13).
        self.writer.transport.abort()


class _Pool:
    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        limit: int,
        loop_time: Callable[[], float],
    ) -> None:
        self.host, self.port, self.context, self.limit = host, port, context, limit
        self.idle: collections.deque[_Connection] = collections.deque()
        self.total = 0
        self.opened = 0
        self.waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self.time = loop_time

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.context, server_hostname="localhost", limit=1 << 22
        )
        self.opened += 1
        return _Connection(reader, writer)

    async def warm(self, count: int) -> None:
        """Open `count` connections up front (handshakes outside any measurement)."""
        batch = 32
        for start in range(0, count, batch):
            size = min(batch, count - start)
            opened = await asyncio.gather(*(self._open() for _ in range(size)))
            self.idle.extend(opened)
            self.total += size

    async def acquire(self) -> _Connection:
        if self.idle:
            return self.idle.popleft()
        if self.total < self.limit:
            self.total += 1
            try:
                return await self._open()
            except BaseException:
                self.total -= 1
                raise
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            connection = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over just as we gave up
                self.release(waiter.result())
            raise
        if connection is None:  # a slot was freed by a broken connection: open a new one
            self.total += 1
            try:
                return await self._open()
            except BaseException:
                self.total -= 1
                raise
        return connection

    def release(self, connection: _Connection | None) -> None:
        """Give back a reusable connection, or None for one that was closed."""
        if connection is None:
            self.total -= 1
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a waiter that timed out is cancelled (done)
                waiter.set_result(connection)
                return
        if connection is not None:
            self.idle.append(connection)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


def _head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


Item = bytes | tuple[str, bytes]  # a body for the run's path, or (path, body)


async def _one(
    pool: _Pool, sample: Sample, path: str, item: Item, *, keep_body: bool, timeout: float
) -> None:
    path, body = item if isinstance(item, tuple) else (path, item)
    connection: _Connection | None = None
    try:
        async with asyncio.timeout(timeout):
            connection = await pool.acquire()
            sample.sent = pool.time()
            status, payload, keep = await connection.exchange(_head(path, len(body)), body)
        sample.status = status
        if keep_body:
            sample.body = payload
        if not keep:
            connection.close()
            connection = None
        pool.release(connection)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
        if connection is not None:
            connection.close()
        pool.release(None)
    finally:
        sample.done = pool.time()


Phase = tuple[float, float]  # (requests per second, seconds)


async def open_loop_async(
    host: str,
    port: int,
    bodies: Sequence[Item],
    phases: Sequence[Phase],
    *,
    path: str = "/validate",
    context: ssl.SSLContext | None = None,
    warm_connections: int = 16,
    max_connections: int = 256,
    keep_bodies: bool = False,
    timeout: float = REQUEST_TIMEOUT,
    offset: int = 0,
) -> Run:
    loop = asyncio.get_running_loop()
    pool = _Pool(host, port, context or client_context(), max_connections, loop.time)
    await pool.warm(min(warm_connections, max_connections))
    samples: list[Sample] = []
    tasks: set[asyncio.Task[None]] = set()
    in_flight = max_in_flight = 0
    late = 0
    index = offset

    def finished(task: asyncio.Task[None]) -> None:
        nonlocal in_flight
        tasks.discard(task)
        in_flight -= 1

    start = loop.time() + 0.05
    phase_start = start
    for number, (rate, seconds) in enumerate(phases):
        count = max(0, round(rate * seconds))
        for i in range(count):
            due = phase_start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            if now - due > 0.010:
                late += 1
            sample = Sample(index, due, now, now, 0, phase=number)
            samples.append(sample)
            body = bodies[index % len(bodies)]
            index += 1
            task = loop.create_task(
                _one(pool, sample, path, body, keep_body=keep_bodies, timeout=timeout)
            )
            tasks.add(task)
            in_flight += 1
            max_in_flight = max(max_in_flight, in_flight)
            task.add_done_callback(finished)
        phase_start += seconds
    if tasks:
        await asyncio.wait(set(tasks), timeout=timeout + 5)
    elapsed = loop.time() - start
    pool.close()
    return Run(samples, start, elapsed, pool.opened, max_in_flight, late)


async def closed_loop_async(
    host: str,
    port: int,
    bodies: Sequence[Item],
    concurrency: int,
    seconds: float,
    *,
    path: str = "/validate",
    context: ssl.SSLContext | None = None,
    keep_bodies: bool = False,
    timeout: float = REQUEST_TIMEOUT,
    requests: int | None = None,
) -> Run:
    """`concurrency` requests in flight for `seconds`, or until `requests` were sent."""
    loop = asyncio.get_running_loop()
    pool = _Pool(host, port, context or client_context(), concurrency, loop.time)
    await pool.warm(concurrency)
    samples: list[Sample] = []
    counter = itertools.count()
    start = loop.time()
    deadline = start + seconds

    async def worker() -> None:
        while loop.time() < deadline:
            index = next(counter)
            if requests is not None and index >= requests:
                return
            now = loop.time()
            sample = Sample(index, now, now, now, 0)
            samples.append(sample)
            item = bodies[index % len(bodies)]
            await _one(pool, sample, path, item, keep_body=keep_bodies, timeout=timeout)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = loop.time() - start
    pool.close()
    return Run(samples, start, elapsed, pool.opened, concurrency)


def open_loop(
    host: str, port: int, bodies: Sequence[Item], phases: Sequence[Phase], **kw: object
) -> Run:
    return asyncio.run(open_loop_async(host, port, bodies, phases, **kw))  # type: ignore[arg-type]


def closed_loop(
    host: str, port: int, bodies: Sequence[Item], concurrency: int, seconds: float, **kw: object
) -> Run:
    return asyncio.run(closed_loop_async(host, port, bodies, concurrency, seconds, **kw))  # type: ignore[arg-type]


def summary(run: Run, samples: Sequence[Sample] | None = None) -> dict[str, float]:
    chosen = run.samples if samples is None else samples
    latencies = [s.latency for s in chosen if s.status == 200]
    return {
        "requests": len(chosen),
        "ok": len(latencies),
        "errors": sum(1 for s in chosen if s.status != 200),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=math.nan) * 1000,
    }
