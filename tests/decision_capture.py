"""The decision log as `serve` configures it (bare JSON lines to a stream, no propagation),
for one block of a test, and put back as it was afterwards: a test that left the logger
unpropagated would hide every later test's decision record from caplog."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import pytest

from webhook.serving import logs


@contextmanager
def configured_decision_log(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Yields the stream the decision lines are written to; caplog sees the same records."""
    stream = io.StringIO()
    with decision_log_to(stream):
        logs.decision_log.addHandler(caplog.handler)
        yield stream


@contextmanager
def decision_log_to(stream: TextIO) -> Iterator[logs.DecisionLineHandler]:
    """The decision log writing to `stream` alone, as under `serve`."""
    with logs.decision_log_kept():
        logs.decision_log.handlers[:] = []  # whatever an in-process `serve` or a test left
        handler = logs.configure_decision_log(stream)
        assert isinstance(handler, logs.DecisionLineHandler)
        yield handler
