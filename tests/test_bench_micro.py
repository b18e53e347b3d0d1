"""bench.micro on a small corpus: every row of its table is measured, and the checks timed on
a parse-cache hit cost less than the engine that parses (so they are hits, not a second parse)."""

from __future__ import annotations

import math

import pytest

from bench import micro
from bench.corpus import DEFAULT_MIX, build_corpus, parse_mix


@pytest.mark.filterwarnings("ignore")
def test_every_phase_is_measured_and_the_parsed_engine_skips_the_parse() -> None:
    corpus = build_corpus(400, parse_mix(DEFAULT_MIX))  # two slices: no review seen twice
    results = micro.measure(corpus.bodies(), corpus.kinds, repeats=1)
    for key, _ in micro.ORDER:
        assert math.isfinite(results[key]["us"]) and results[key]["us"] > 0, key
    parsed, engine = results["engine_parsed"]["us"], results["engine"]["us"]
    assert parsed < engine - results["signature_verify"]["us"] / 2, (parsed, engine)
    table = micro.format_table(results)
    assert "the checks timed alone (CSR parse cached)" in table
