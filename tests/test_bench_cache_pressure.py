"""bench.cache_pressure on a small corpus: a row per size, the ratios against the unevicted
pass, every review answered and allowed (a denied one stops the measurement), and the sizes
checked before anything is built."""

from __future__ import annotations

import json

import pytest

from bench import cache_pressure
from bench.corpus import DEFAULT_MIX, build_corpus, parse_mix


@pytest.mark.filterwarnings("ignore")
def test_each_size_is_measured_against_the_unevicted_pass() -> None:
    bodies = build_corpus(30, parse_mix(DEFAULT_MIX)).bodies()
    results = cache_pressure.measure(bodies, [0, 64], repeats=1)
    assert results["reviews"] == 30
    assert [row["kib"] for row in results["rows"]] == [0, 64]
    base, evicted = results["rows"]
    assert base["ratio"] == 1.0 and base["us"] > 0 and evicted["us"] > 0
    assert evicted["ratio"] == pytest.approx(evicted["us"] / base["us"])
    assert (base["evicted_bytes"], evicted["evicted_bytes"]) == (0, 30 * 64 * 1024)
    table = cache_pressure.format_table(results)
    assert "evicted KiB" in table and table.count("\n") == 3


@pytest.mark.filterwarnings("ignore")
def test_a_review_the_policy_denies_stops_the_measurement() -> None:
    bodies = build_corpus(3, parse_mix(DEFAULT_MIX)).bodies()
    review = json.loads(bodies[1])
    review["request"]["object"]["spec"]["username"] = "system:serviceaccount:elsewhere:intruder"
    bodies[1] = json.dumps(review).encode()
    with pytest.raises(AssertionError, match="must allow every review"):
        cache_pressure.measure(bodies, [0], repeats=1)


@pytest.mark.parametrize(
    ("evict", "message"),
    [("64,256", "0, the baseline of the ratios, is missing"), ("0,-1", "a size is negative"),
     ("0,big", "invalid literal")],
)  # fmt: skip
def test_the_sizes_are_checked_first(
    evict: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cache_pressure.main(["--evict", evict])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"--evict {evict!r}: " in err and message in err


def test_repeats_below_one_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cache_pressure.main(["--repeats", "0"])
    assert stopped.value.code == 2
    assert "--repeats and --reviews must be at least 1" in capsys.readouterr().err
