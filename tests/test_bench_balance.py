"""bench.compare.balance: how evenly each kind of benchmark round spread over the workers."""

from __future__ import annotations

from typing import Any

from bench.compare import balance, balance_text


def attempt(
    config: str, split: list[float], skewed: bool, rate: float | None = None
) -> dict[str, Any]:
    kind = {"kind": "closed"} if rate is None else {"kind": "rate", "rate": rate}
    return {"config": config, "worker_split": split, "skewed": skewed} | kind


ROUNDS = [
    attempt("real", [1.0, 0.0], True),
    attempt("real", [0.6, 0.4], False),
    attempt("real", [0.52, 0.48], False),
    attempt("real", [0.75, 0.25], True, rate=500.0),
    attempt("real", [0.5, 0.5], False, rate=500.0),
    attempt("noop", [0.8, 0.2], True),
    attempt("noop", [], False),  # a round whose workers changed: no split
]


def test_every_attempt_counts_per_kind_with_the_median_busiest_share() -> None:
    assert balance(ROUNDS, "real") == {
        "closed": {"busiest_pct": 60.0, "skewed": 1, "attempts": 3},
        "500": {"busiest_pct": 62.5, "skewed": 1, "attempts": 2},
    }
    assert balance(ROUNDS, "noop") == {"closed": {"busiest_pct": 80.0, "skewed": 1, "attempts": 1}}
    assert balance_text(ROUNDS, "real") == "closed 60 % (1 of 3 skewed), 500/s 62 % (1 of 2 skewed)"
