"""The approval controller's work queue, keyed by CSR name, as client-go's workqueue behaves.

A name waiting is queued once however often it is added (dedupe); a name being processed is
never handed to a second worker: added again meanwhile, it is queued when `done` is called.
`add_rate_limited` requeues a name after its own exponential backoff (base * 2^failures,
capped; client-go's ItemExponentialFailureRateLimiter) or the overall token bucket's delay,
whichever is longer (client-go's DefaultControllerRateLimiter); `forget` resets a name's
failures. No I/O, no Kubernetes: names in, names out.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable


class ItemBackoff:
    """Per-name exponential backoff: the n-th consecutive failure waits base * 2^(n-1), at
    most `cap` seconds."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[str, int] = {}

    def when(self, name: str) -> float:
        failures = self._failures.get(name, 0)
        self._failures[name] = failures + 1
        # 2.0 ** 1100 overflows a float: past the cap the exponent stops mattering.
        return min(self.cap, self.base * 2.0 ** min(failures, 64))

    def failures(self, name: str) -> int:
        return self._failures.get(name, 0)

    def forget(self, name: str) -> None:
        self._failures.pop(name, None)


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved; `reserve` takes one and says how long
    to wait until it is there (golang.org/x/time/rate's Reserve().Delay())."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def reserve(self) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class WorkQueue:
    """Names to process. `get` blocks until a name is ready (or the queue is shut down:
    None); every name `get` returns must be given back with `done`."""

    def __init__(
        self,
        *,
        backoff_base: float = 0.5,
        backoff_cap: float = 300.0,
        rate: float = 10.0,
        burst: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._backoff = ItemBackoff(backoff_base, backoff_cap)
        self._bucket = TokenBucket(rate, burst, clock)
        self._ready: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._waiting: list[tuple[float, int, str]] = []  # heap of (ready at, order, name)
        self._order = 0
        self._closed = False
        self._lock = threading.Condition()

    def add(self, name: str) -> None:
        with self._lock:
            if self._closed or name in self._dirty:
                return
            self._dirty.add(name)
            if name not in self._processing:
                self._ready.append(name)
                self._lock.notify()

    def add_after(self, name: str, delay: float) -> None:
        if delay <= 0:
            self.add(name)
            return
        with self._lock:
            if self._closed:
                return
            self._order += 1
            heapq.heappush(self._waiting, (self._clock() + delay, self._order, name))
            self._lock.notify()

    def add_rate_limited(self, name: str) -> float:
        """Requeue `name` after its backoff; returns the delay chosen."""
        with self._lock:
            delay = max(self._backoff.when(name), self._bucket.reserve())
        self.add_after(name, delay)
        return delay

    def forget(self, name: str) -> None:
        with self._lock:
            self._backoff.forget(name)

    def failures(self, name: str) -> int:
        with self._lock:
            return self._backoff.failures(name)

    def get(self, timeout: float | None = None) -> str | None:
        end = None if timeout is None else self._clock() + timeout
        with self._lock:
            while True:
                self._promote_due()
                if self._ready:
                    name = self._ready.popleft()
                    self._dirty.discard(name)
                    self._processing.add(name)
                    return name
                if self._closed:
                    return None
                waits = [w for w in (self._next_due(), end) if w is not None]
                wait = max(0.0, min(waits) - self._clock()) if waits else None
                if end is not None and self._clock() >= end:
                    return None
                self._lock.wait(wait)

    def done(self, name: str) -> None:
        with self._lock:
            self._processing.discard(name)
            if name in self._dirty:
                self._ready.append(name)
                self._lock.notify()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    @property
    def depth(self) -> int:
        """Names ready to process now (client-go's workqueue depth)."""
        with self._lock:
            self._promote_due()
            return len(self._ready)

    @property
    def waiting(self) -> int:
        """Names waiting out a backoff."""
        with self._lock:
            return len(self._waiting)

    def _next_due(self) -> float | None:
        return self._waiting[0][0] if self._waiting else None

    def _promote_due(self) -> None:
        now = self._clock()
        while self._waiting and self._waiting[0][0] <= now:
            _, _, name = heapq.heappop(self._waiting)
            if name not in self._dirty:
                self._dirty.add(name)
                if name not in self._processing:
                    self._ready.append(name)
