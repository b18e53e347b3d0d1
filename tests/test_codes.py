"""webhook/codes.py is the one table of violation codes: equal, word for word, to the catalogue
in docs/policy-reference.md, and to the union of the codes every check (and the engine and the
parse step) declares as `CODES`, each a subset of it. That each code is produced by some test
and none is produced undeclared is checked at the end of the session (tests/observed_codes.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

from tests.observed_codes import OBSERVED
from webhook import codes, engine, parse_cache, pod_engine
from webhook.admission import parse_csr_object
from webhook.codes import CATALOGUE, KNOWN_CODES, is_known, nearest
from webhook.engine import CREATE_CHECKS, UPDATE_CHECKS, EngineOptions, evaluate_create
from webhook.matching.variables import Requester
from webhook.policy.model import PolicySet

DOC = (Path(__file__).parent.parent / "docs" / "policy-reference.md").read_text(encoding="utf-8")


POD_CHECKS = (
    *pod_engine.POD_CREATE_CHECKS,
    *pod_engine.POD_TRANSITION_CHECKS,
    *pod_engine.POD_GATE_CHECKS,
)


def _check_modules() -> list[ModuleType]:
    modules = {check.__module__ for check in (*CREATE_CHECKS, *UPDATE_CHECKS, *POD_CHECKS)}
    return [__import__(name, fromlist=["CODES"]) for name in sorted(modules)]


def _declared() -> dict[str, frozenset[str]]:
    declared = {module.__name__: module.CODES for module in _check_modules()}
    declared[engine.__name__] = engine.CODES
    declared[parse_cache.__name__] = parse_cache.CODES
    declared[pod_engine.__name__] = pod_engine.CODES
    return declared


def test_the_documented_catalogue_is_the_table_word_for_word() -> None:
    body = DOC[DOC.index("<!-- codes -->") : DOC.index("<!-- /codes -->")]
    documented = re.findall(r"^- `([^`]+)`: (.*)$", body, flags=re.MULTILINE)
    assert len(documented) == len(dict(documented)), "a code is documented twice"
    assert dict(documented) == CATALOGUE
    assert [code for code, _ in documented] == list(CATALOGUE), "the table keeps the docs' order"


def test_every_check_declares_frozen_codes_from_the_table() -> None:
    for name, declared in _declared().items():
        assert isinstance(declared, frozenset) and declared, name
        assert sorted(declared - KNOWN_CODES) == [], f"{name} declares codes outside the table"


def test_the_declared_codes_are_exactly_the_table() -> None:
    union = frozenset().union(*_declared().values())
    assert sorted(KNOWN_CODES - union) == [], "catalogued but declared by no check"
    assert union == KNOWN_CODES


def test_every_check_of_the_engine_lists_is_a_check_function() -> None:
    for check in (*CREATE_CHECKS, *UPDATE_CHECKS, *POD_CHECKS):
        assert check.__name__ == "check", check
        assert check.__module__.startswith("webhook.checks."), check


def test_the_session_records_the_codes_the_engine_produces() -> None:
    """The recorder tests/observed_codes.py relies on sees a Decision built anywhere."""
    obj = parse_csr_object({"spec": {"signerName": "nobody.example/none"}})
    OBSERVED.discard("signer.unmatched")
    decision = evaluate_create(obj, Requester("alice"), PolicySet(), EngineOptions())
    assert [v.code for v in decision.violations] == ["signer.unmatched"]
    assert "signer.unmatched" in OBSERVED


def test_every_code_has_a_description() -> None:
    assert [code for code, text in codes.CATALOGUE.items() if not text.strip()] == []


def test_families_are_known_by_prefix() -> None:
    assert is_known("dns.") and is_known("issuance.") and is_known("transition.")
    assert not is_known("dsn.") and not is_known("dns.not_alowed")


def test_nearest_suggests_the_intended_code() -> None:
    assert nearest("dns.not_alowed") == "dns.not_allowed"
    assert nearest("approval.selfapproval") == "approval.self_approval"
    assert nearest("issuance.untrusted") == "issuance.untrusted_issuer"
    assert nearest("dsn.") == "dns."
    assert nearest("completely.unrelated_words_here") is None
