"""Pytest hooks (imported by tests/conftest.py) that tie the violation codes to the suite.

Every Decision the webhook builds in this process is recorded (its violations' codes): through
the Flask test client, `csr-webhook test` and `eval` run in-process, and the engine called
directly. At the end of the session:

- a recorded code missing from webhook/codes.py fails the run, whatever ran;
- when the whole suite ran (pytest's default paths and marker selection, no -k or --lf, every
  test passed), a catalogued code that no test produced fails it too: each code must be shown
  to happen. (`make e2e` selects other markers: there the check does not apply.)

Recording Decisions, rather than reading the vector files, covers the UPDATE codes wherever
their cases live (Python tables today, vector files later) without knowing their format.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from webhook.codes import KNOWN_CODES
from webhook.decision import Decision

OBSERVED: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    original = Decision.__post_init__

    def recording(self: Decision) -> None:
        original(self)
        OBSERVED.update(v.code for v in self.violations)

    Decision.__post_init__ = recording  # type: ignore[method-assign]


def _default_markers(config: pytest.Config) -> str | None:
    """The -m expression of the configured addopts (what a plain `pytest` selects)."""
    addopts: list[str] = config.getini("addopts")
    for flag, value in itertools.pairwise(addopts):
        if flag == "-m":
            return value
    return None


def _whole_suite(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> bool:
    config = session.config
    return (
        exitstatus == pytest.ExitCode.OK
        and config.option.markexpr == _default_markers(config)
        and config.args == list(config.getini("testpaths"))  # no paths given (pytest >= 6.2)
        and not config.option.keyword
        and not config.option.lf
        and not config.option.collectonly
        and not session.shouldstop
        and session.testscollected > 0
        and len(session.items) == session.testscollected
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    problems: list[str] = []
    undeclared = sorted(OBSERVED - KNOWN_CODES)
    if undeclared:
        problems.append(f"codes produced but not in webhook/codes.py: {undeclared}")
    if _whole_suite(session, exitstatus):
        unseen = sorted(KNOWN_CODES - OBSERVED)
        if unseen:
            problems.append(f"catalogued codes no test produced: {unseen}")
    if problems:
        reporter: Any = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "violation codes", red=True)
            for problem in problems:
                reporter.write_line(problem)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
