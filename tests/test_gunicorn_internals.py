"""The gunicorn internals listed in webhook/serving/gunicorn_internals.py exist in the installed
gunicorn, with the parameters the server and the worker pass them."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from typing import Any

import pytest

from webhook.serving import gunicorn_internals as gi


def _resolve(dotted: str) -> Any:
    """A module, or a class inside one ("gunicorn.workers.gthread.ThreadWorker")."""
    module, _, attribute = dotted.rpartition(".")
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError:
        return getattr(importlib.import_module(module), attribute)


def _leading(parameters: list[inspect.Parameter], count: int) -> tuple[str, ...]:
    names = []
    for p in parameters[:count]:
        names.append(f"*{p.name}" if p.kind is inspect.Parameter.VAR_POSITIONAL else p.name)
    return tuple(names)


def _signature_problem(internal: gi.Internal) -> str | None:
    where = f"{internal.owner}.{internal.name}"
    owner = _resolve(internal.owner)
    function = inspect.getattr_static(owner, internal.name, None)
    if function is None:
        return f"{where} is missing (used for: {internal.why})"
    if isinstance(function, staticmethod | classmethod):
        function = function.__func__
    if not callable(function):
        return f"{where} is not callable"
    parameters = list(inspect.signature(function).parameters.values())
    found = _leading(parameters, len(internal.parameters))
    if found != internal.parameters:
        return f"{where} takes ({', '.join(found)}), expected ({', '.join(internal.parameters)})"
    rest = parameters[len(internal.parameters) :]
    required = [
        p.name
        for p in rest
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if required:
        return f"{where} also requires {', '.join(required)}, which we never pass"
    return None


@pytest.mark.parametrize("internal", gi.INTERNALS, ids=lambda i: f"{i.owner}.{i.name}")
def test_internal_exists_with_the_parameters_we_pass(internal: gi.Internal) -> None:
    assert _signature_problem(internal) is None, _signature_problem(internal)


def test_thread_worker_sets_the_attributes_the_worker_uses(tmp_path: Any) -> None:
    cfg = gi.Config()
    cfg.set("worker_tmp_dir", str(tmp_path))
    worker = gi.ThreadWorker(0, os.getpid(), [], None, 30, cfg, logging.getLogger("test"))
    try:
        missing = [name for name in gi.WORKER_ATTRIBUTES if not hasattr(worker, name)]
        assert missing == [], f"ThreadWorker no longer sets {missing}"
        assert isinstance(
            worker.method_queue, _resolve("gunicorn.workers.gthread.PollableMethodQueue")
        )
        assert len(worker.keepalived_conns) == 0
        assert worker.max_keepalived == cfg.worker_connections - cfg.threads
        pool = worker.get_thread_pool()
        assert pool.submit(lambda: 7).result(timeout=10) == 7
        pool.shutdown(wait=False)
    finally:
        worker.tmp.close()


def test_config_has_every_setting_the_server_sets_and_the_worker_reads() -> None:
    cfg = gi.Config()
    missing = [name for name in gi.CONFIG_SET if name not in cfg.settings]
    assert missing == [], f"gunicorn has no setting {missing}"
    unreadable = [name for name in gi.CONFIG_READ if not hasattr(cfg, name)]
    assert unreadable == [], f"gunicorn's Config has no {unreadable}"
    # The ssl_context setting is a hook called as hook(config, default_factory).
    hook_arity = len(inspect.signature(cfg.settings["ssl_context"].default).parameters)
    assert hook_arity == 2


def test_parser_reads_a_request_held_in_memory_and_reports_nothing_left_over() -> None:
    body = b'{"a": 1}'
    request = (
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    parser = gi.http.get_parser(gi.Config(), [request], ("127.0.0.1", 1))
    req = next(parser)
    assert (req.method, req.path) == ("POST", "/validate")
    assert req.body.read() == body
    assert parser.finish_body()
    assert parser.unreader.take_buffered() == b""


def test_parser_keeps_bytes_past_the_request_for_take_buffered() -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    parser = gi.http.get_parser(gi.Config(), [request + b"GET /next"], ("127.0.0.1", 1))
    next(parser)
    assert parser.finish_body()
    assert parser.unreader.take_buffered() == b"GET /next"


def test_truncated_request_raises_no_more_data() -> None:
    parser = gi.http.get_parser(gi.Config(), [b"GET / HTTP/1.1\r\nHost: loc"], ("127.0.0.1", 1))
    with pytest.raises(gi.NoMoreData):
        next(parser)


def test_listener_passes_socket_calls_through() -> None:
    """The worker accepts on gunicorn's listener objects as if they were sockets."""
    listener = gi.sock.TCPSocket(("127.0.0.1", 0), gi.Config(), logging.getLogger("test"))
    try:
        host, port = listener.getsockname()
        assert host == "127.0.0.1" and port > 0
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
