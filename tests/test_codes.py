"""webhook/codes.py, the table `csr-webhook test` checks expected codes against, is exactly the
set of codes the checks emit (found in the source as tests/test_docs.py finds them)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_docs import CODE, FSTRING_CODES, NOT_CODES
from webhook.codes import KNOWN_CODES, is_known, nearest

PACKAGE = Path(__file__).parent.parent / "webhook"


def _emitted() -> set[str]:
    found: set[str] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and CODE.fullmatch(node.value)
                and node.value not in NOT_CODES
            ):
                found.add(node.value)
    for template, families in FSTRING_CODES.items():
        found.update(template.replace("{family}", family) for family in families)
    return found


def test_known_codes_are_exactly_the_emitted_codes() -> None:
    emitted = _emitted()
    assert sorted(emitted - KNOWN_CODES) == [], "emitted but missing from webhook/codes.py"
    assert sorted(KNOWN_CODES - emitted) == [], "in webhook/codes.py but never emitted"


def test_families_are_known_by_prefix() -> None:
    assert is_known("dns.") and is_known("issuance.") and is_known("transition.")
    assert not is_known("dsn.") and not is_known("dns.not_alowed")


def test_nearest_suggests_the_intended_code() -> None:
    assert nearest("dns.not_alowed") == "dns.not_allowed"
    assert nearest("approval.selfapproval") == "approval.self_approval"
    assert nearest("issuance.untrusted") == "issuance.untrusted_issuer"
    assert nearest("dsn.") == "dns."
    assert nearest("completely.unrelated_words_here") is None
