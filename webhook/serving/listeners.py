"""The listening sockets: one SO_REUSEPORT listener per worker, the port held by the master.

`--listeners per-worker` (the default) is what follows; `--listeners shared` is gunicorn's
own way, one socket the master opens and every worker accepts on (the operator's choice, and
what per-worker falls back to off Linux). docs/server.md, "Listening", weighs the two.

With one listening socket shared by every worker, the workers race to accept, and the first
to wake after a burst of connections accepts all of them: the API server's few kept-alive
connections then sit on one worker (one core, one GIL) for as long as they live. Instead,
gunicorn's `reuse_port` mode has each worker bind a listener of its own after the fork
(gunicorn.arbiter.Arbiter.spawn_worker), all with SO_REUSEPORT, and the kernel hands each
new connection to one of them by a hash of its addresses and ports: fair and sticky.

In that mode the master has no socket at all. `reserve` gives it one bound to the same
address with SO_REUSEPORT but never listening: the kernel routes no connection to it, yet it
checks the address before any worker starts (a port in use is one clear error, not workers
failing to boot over and over), keeps the port ours while workers are replaced, and fixes the
port before the fork when the bind asks for any free one (port 0).

A listener's backlog dies with its worker: connections the kernel queued on it but the worker
had not accepted are reset when it exits. A worker that stops gracefully therefore accepts
everything queued and closes its listener first (worker.py, `_stop`), so new connections go
to the other workers at once; a worker killed outright loses its queue (a few connections,
since workers accept as soon as connections arrive).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence

from webhook.serving.gunicorn_internals import util


def reserve(addresses: Sequence[object]) -> list[socket.socket]:
    """Bind (never listen on) each TCP address as the workers will, SO_REUSEPORT set.

    `addresses` are gunicorn's parsed binds (`Config.address`): (host, port) pairs. Raises
    OSError (EADDRINUSE, EADDRNOTAVAIL, ...) if one cannot be bound."""
    reserved: list[socket.socket] = []
    try:
        for address in addresses:
            if not isinstance(address, tuple):
                raise ValueError(f"not a TCP address: {address!r}")
            family = socket.AF_INET6 if util.is_ipv6(address[0]) else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            reserved.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
    except BaseException:
        for sock in reserved:
            sock.close()
        raise
    return reserved


def bind_text(sock: socket.socket) -> str:
    """HOST:PORT of a bound socket, as gunicorn's bind setting takes it."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{host}:{port}"


def supported() -> bool:
    """SO_REUSEPORT with load balancing: Linux (elsewhere it may mean something else)."""
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def per_worker(mode: str) -> bool:
    """Whether `--listeners` `mode` gives each worker its own listener: "per-worker" where
    supported; "shared" (or per-worker off Linux) is one socket for every worker."""
    if mode not in ("per-worker", "shared"):
        raise ValueError(f"--listeners must be per-worker or shared, not {mode!r}")
    return mode == "per-worker" and supported()
