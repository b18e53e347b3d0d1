"""The decision log as `serve` configures it (bare JSON lines to a stream, no propagation),
for one block of a test, and put back as it was afterwards: a test that left the logger
unpropagated would hide every later test's decision record from caplog."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from webhook.serving import logs


@contextmanager
def configured_decision_log(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Yields the stream the decision lines are written to; caplog sees the same records."""
    log = logs.decision_log
    saved = (log.propagate, log.level, list(log.handlers))
    stream = io.StringIO()
    logs.configure_decision_log(stream)
    log.addHandler(caplog.handler)
    try:
        yield stream
    finally:
        log.propagate = saved[0]
        log.setLevel(saved[1])
        log.handlers[:] = saved[2]
