"""The shape of the core (issue 14, point 7): one recorded CREATE review, followed from the
view to the response by bench.module_walk, enters each module once; only the matcher is
called back into. A check that reached back into the engine, the table of SAN kinds or the
policy model on every value would fail here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import module_walk

RECORDED = sorted(
    Path(module_walk.ROOT / "tests/vectors/apiserver").glob("*/*-validate-create.json")
)


def test_there_are_recorded_create_reviews_to_follow() -> None:
    assert module_walk.DEFAULT_VECTOR is not None
    assert len(RECORDED) >= 5


@pytest.mark.parametrize("vector", RECORDED, ids=lambda p: p.name[:3])
def test_one_create_review_enters_each_module_once(vector: Path) -> None:
    modules = module_walk.walk(vector)
    returns = module_walk.returns_to_left_modules(modules)
    assert [m for m in returns if m not in module_walk.MAY_RETURN] == [], modules
    # The whole way: the view, the wire parse, the engine, the checks and the response.
    for expected in (
        "webhook.serving.views",
        "webhook.admission",
        "webhook.engine",
        "webhook.checks.sans",
        "webhook.response",
    ):
        assert expected in modules, modules
    assert modules[0] == "webhook.serving.views"
    assert modules[-1] == "webhook.response"
