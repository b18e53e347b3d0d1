"""bench.gil_release: a row per call, each timed alone and beside a busy thread, with the share
of slow calls (the figures themselves are a benchmark's, not a test's), and a usage error for
no calls."""

from __future__ import annotations

import pytest

from bench import gil_release


def test_each_call_is_timed_alone_and_beside_a_busy_thread() -> None:
    rows = gil_release.measure(1)
    assert [row["call"] for row in rows] == list(gil_release.calls())
    assert all(row["alone_us"] > 0 and row["beside_busy_us"] > 0 for row in rows)  # type: ignore[operator]
    assert all(row["slow_share"] in (0.0, 1.0) for row in rows)  # one call: none or all
    table = gil_release.format_table(rows)
    assert table.count("\n") == len(rows) and "is_signature_valid (ECDSA P-256)" in table


def test_no_calls_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        gil_release.main(["--calls", "0"])
    assert stopped.value.code == 2
    assert "--calls must be at least 1" in capsys.readouterr().err
