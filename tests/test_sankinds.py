"""The SAN-kind table (webhook/sankinds.py) names fields and codes that exist everywhere it is
read: a row whose attribute, pattern kind or code family is missing anywhere fails here, not in
a check at run time."""

from __future__ import annotations

import dataclasses

import pytest

from webhook import codes
from webhook.authoring.schema_cli import build_schema
from webhook.matching.patterns import PatternKind
from webhook.policy.model import Allowed, DenyLists
from webhook.sankinds import SAN_KINDS, SanKind, names
from webhook.x509.csr import ParsedCSR


def fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("kind", SAN_KINDS, ids=lambda k: k.key)
def test_every_kind_names_fields_that_exist(kind: SanKind) -> None:
    assert kind.attribute in fields(ParsedCSR) & fields(Allowed) & fields(DenyLists)
    assert PatternKind(kind.pattern).value == kind.pattern
    for code in ("not_allowed", "required", "too_many"):
        assert codes.is_known(f"{kind.family}.{code}")
    assert codes.is_known(f"deny.{kind.family}")
    assert codes.is_known(f"{kind.family}.wildcard_not_allowed") == kind.wildcards


def test_the_schema_lists_the_kinds_in_allowed_deny_and_policy_tests() -> None:
    policy = build_schema()["$defs"]["SignerPolicy"]["properties"]["spec"]["properties"]  # type: ignore[index]
    allowed = policy["rules"]["items"]["properties"]["allowed"]["properties"]
    keys = [kind.key for kind in SAN_KINDS]
    assert [key for key in allowed if key in keys] == keys
    assert [key for key in policy["deny"]["properties"] if key in keys] == keys
    wildcard = {key for key in keys if "allowWildcardNames" in allowed[key]["properties"]}
    assert wildcard == {kind.key for kind in SAN_KINDS if kind.wildcards}


def test_names_read_as_a_sentence() -> None:
    assert names() == "DNS, IP, URI and email"
