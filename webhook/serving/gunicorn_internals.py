"""Every part of gunicorn that csr-webhook builds on, in one place, with the versions checked.

The server (webhook/serving/server.py) and the worker (webhook/serving/worker.py) import
gunicorn only through this module. Beyond gunicorn's documented settings and
BaseApplication, the worker builds on gthread's ThreadWorker and on the HTTP parser, which
are not a public API and change between releases: INTERNALS lists each name with the
parameters we pass it, and tests/test_gunicorn_internals.py checks them against the installed
gunicorn. To allow a new gunicorn release, run that test and `make test` on it, then add it
to CHECKED_VERSIONS.
"""

from __future__ import annotations

from dataclasses import dataclass

from gunicorn import http, sock, util
from gunicorn.app.base import BaseApplication
from gunicorn.config import Config
from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker

__all__ = [
    "CHECKED_VERSIONS",
    "CONFIG_READ",
    "CONFIG_SET",
    "INTERNALS",
    "WORKER_ATTRIBUTES",
    "BaseApplication",
    "Config",
    "Internal",
    "NoMoreData",
    "ThreadWorker",
    "http",
    "sock",
    "util",
]

# 26.2.0 is the first with Unreader.take_buffered; 26.1.0 and older fail the test. The
# pyproject.toml range (>=26.2,<28) is this list's span.
CHECKED_VERSIONS = ("26.2.0", "27.0.0", "27.0.1")


@dataclass(frozen=True, slots=True)
class Internal:
    """A callable we call (or override and call through super()): `parameters` are the
    leading ones we pass positionally, "*args" for a variadic one; any further ones must
    have defaults."""

    owner: str  # dotted path of the module or class that holds it
    name: str
    parameters: tuple[str, ...]
    why: str


INTERNALS: tuple[Internal, ...] = (
    Internal(
        "gunicorn.workers.gthread.ThreadWorker",
        "init_process",
        ("self",),
        "overridden; super() creates tpool, poller and method_queue, then runs run()",
    ),
    Internal(
        "gunicorn.workers.gthread.ThreadWorker",
        "run",
        ("self",),
        "overridden: the worker's own main loop",
    ),
    Internal(
        "gunicorn.workers.gthread.ThreadWorker",
        "accept",
        ("self", "listener"),
        "overridden; set_accept_enabled registers it as the listeners' poller callback",
    ),
    Internal(
        "gunicorn.workers.gthread.ThreadWorker",
        "set_accept_enabled",
        ("self", "enabled"),
        "called to stop and resume accepting",
    ),
    Internal(
        "gunicorn.workers.gthread.ThreadWorker",
        "is_parent_alive",
        ("self",),
        "called each loop: the master went away",
    ),
    Internal(
        "gunicorn.workers.gthread.ThreadWorker",
        "get_thread_pool",
        ("self",),
        "creates tpool (an Executor: submit, shutdown(wait=False))",
    ),
    Internal(
        "gunicorn.workers.gthread.ThreadWorker",
        "handle_request",
        ("self", "req", "conn"),
        "serves one parsed request through the WSGI app; reads conn.sock, conn.client, "
        "conn.server and len(self.keepalived_conns); True keeps the connection",
    ),
    Internal(
        "gunicorn.workers.base.Worker",
        "handle_error",
        ("self", "req", "client", "addr", "exc"),
        "answers a request gunicorn cannot parse (400) or an app error (500)",
    ),
    Internal(
        "gunicorn.workers.base.Worker",
        "notify",
        ("self",),
        "the heartbeat to the master, each loop",
    ),
    Internal(
        "gunicorn.workers.gthread.PollableMethodQueue",
        "defer",
        ("self", "callback", "*args"),
        "runs a callback on the worker's main thread after a request thread finishes",
    ),
    Internal(
        "gunicorn.workers.gthread.PollableMethodQueue",
        "run_callbacks",
        ("self", "_fileobj"),
        "the poller callback of method_queue.fileno()",
    ),
    Internal(
        "gunicorn.workers.gthread.PollableMethodQueue",
        "fileno",
        ("self",),
        "registered with the poller",
    ),
    Internal(
        "gunicorn.workers.gthread.PollableMethodQueue",
        "close",
        ("self",),
        "at the worker's stop",
    ),
    Internal(
        "gunicorn.http",
        "get_parser",
        ("cfg", "source", "source_addr"),
        "parses a complete request held in memory (source: a list of bytes)",
    ),
    Internal(
        "gunicorn.http.parser.Parser",
        "finish_body",
        ("self",),
        "after the response: true if the request's body was consumed whole",
    ),
    Internal(
        "gunicorn.http.unreader.Unreader",
        "take_buffered",
        ("self",),
        "after the response: bytes gunicorn read past the request (must be none)",
    ),
    Internal(
        "gunicorn.sock",
        "create_sockets",
        ("conf", "log"),
        "with reuse_port set, the arbiter calls it in each worker after the fork and never in "
        "the master: each worker's own listener, as worker.sockets (webhook/serving/listeners.py)",
    ),
    Internal(
        "gunicorn.util",
        "is_ipv6",
        ("addr",),
        "the address family of a bind, as gunicorn's sockets choose it",
    ),
    Internal(
        "gunicorn.util",
        "close",
        ("sock",),
        "closes a socket, ignoring OSError",
    ),
    Internal(
        "gunicorn.sock",
        "ssl_context",
        ("conf",),
        "the serving SSLContext, through the ssl_context setting's hook",
    ),
    Internal(
        "gunicorn.app.base.BaseApplication",
        "load_config",
        ("self",),
        "overridden: sets every setting in CONFIG_SET",
    ),
    Internal(
        "gunicorn.app.base.BaseApplication",
        "load",
        ("self",),
        "overridden: builds the WSGI app in each worker",
    ),
    Internal(
        "gunicorn.app.base.BaseApplication",
        "run",
        ("self",),
        "starts the master",
    ),
)

# Instance attributes of ThreadWorker (set by its __init__) that the worker reads or replaces;
# tpool and poller are None until init_process, which the test cannot run (it ends in run()).
WORKER_ATTRIBUTES = (
    "cfg",
    "log",
    "alive",
    "sockets",  # gunicorn.sock listeners: they pass accept, getsockname, close to the socket
    "nr_conns",
    "tpool",
    "poller",
    "method_queue",
    "keepalived_conns",  # replaced by the idle connections; handle_request takes its len()
    "max_keepalived",  # handle_request closes after the response past this many idle
    "worker_connections",
)

# Settings the server sets (webhook/serving/server.py, load_config) ...
CONFIG_SET = (
    "bind",
    "workers",
    "reuse_port",
    "worker_class",
    "threads",
    "worker_connections",
    "keepalive",
    "graceful_timeout",
    "timeout",
    "certfile",
    "keyfile",
    "ssl_context",
    "loglevel",
    "accesslog",
    "errorlog",
    "proc_name",
    "on_starting",
    "when_ready",
    "child_exit",
    "on_exit",
    "control_socket_disable",
)
# ... and the Config attributes the server and the worker read.
CONFIG_READ = (
    "reuse_port",
    "address",
    "worker_connections",
    "threads",
    "is_ssl",
    "suppress_ragged_eofs",
    "keepalive",
    "graceful_timeout",
)
