"""`csr-webhook schema`: a draft 2020-12 JSON Schema that agrees with the loader on a corpus.

tests/data/schema/README.md describes the corpus: valid/ (and every shipped policy) must pass
both, invalid/ must fail both, beyond-schema/ passes the schema and fails the loader (meaning
no JSON Schema expresses: CIDRs, patterns, duration bounds, cross-field rules).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from webhook.authoring import generate
from webhook.authoring.schema_cli import build_schema
from webhook.authoring.suite_schema import POLICY_TEST
from webhook.cli import main
from webhook.policy import schema
from webhook.policy.loader import is_policy_file, load_policies
from webhook.policy.source import read_documents
from webhook.policy.validation import validate_shape

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "schema"
SCHEMA = build_schema()
VALIDATOR = Draft202012Validator(SCHEMA)

VALID = sorted((DATA / "valid").glob("*.yaml")) + sorted(
    p for p in (REPO / "policies").iterdir() if is_policy_file(p)
)
INVALID = sorted((DATA / "invalid").glob("*.yaml"))
BEYOND = sorted((DATA / "beyond-schema").glob("*.yaml"))


def only_document(path: Path) -> object:
    documents, problems = read_documents(path)
    assert not problems, [str(p) for p in problems]
    assert len(documents) == 1, path
    return documents[0].value


def is_policy_test(value: object) -> bool:
    return isinstance(value, dict) and value.get("kind") == "PolicyTest"


def policy_test_problems(value: object) -> list[str]:
    """What `csr-webhook test` says about a suite's shape (after its subject shorthand)."""
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        generate.listify_subjects(value)
    return [message for _, message in validate_shape(POLICY_TEST, value)]


def loader_accepts(path: Path, value: object) -> bool:
    if is_policy_test(value):
        return not policy_test_problems(value)
    return not load_policies([path]).errors


def schema_errors(value: object) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(value)]


def ids(paths: list[Path]) -> list[str]:
    return [p.stem if p.parent.parent == DATA else f"shipped-{p.stem}" for p in paths]


def test_schema_is_a_valid_draft_2020_12_schema_for_both_kinds() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    definitions = SCHEMA["$defs"]
    assert isinstance(definitions, dict)
    assert set(definitions) == {"SignerPolicy", "PolicyTest"}


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA


@pytest.mark.parametrize("path", VALID, ids=ids(VALID))
def test_valid_documents_pass_schema_and_loader(path: Path) -> None:
    value = only_document(path)
    assert schema_errors(value) == []
    assert loader_accepts(path, value), [str(p) for p in load_policies([path]).errors]


@pytest.mark.parametrize("path", INVALID, ids=ids(INVALID))
def test_invalid_documents_fail_schema_and_loader(path: Path) -> None:
    value = only_document(path)
    assert schema_errors(value) != []
    assert not loader_accepts(path, value)


@pytest.mark.parametrize("path", BEYOND, ids=ids(BEYOND))
def test_meaning_beyond_the_schema_is_left_to_the_loader(path: Path) -> None:
    value = only_document(path)
    assert schema_errors(value) == []
    assert not loader_accepts(path, value)


@pytest.mark.parametrize("path", VALID + INVALID + BEYOND, ids=ids(VALID + INVALID + BEYOND))
def test_draft_07_validators_reach_the_same_verdict(path: Path) -> None:
    """yaml-language-server implements draft-07; the schema must mean the same there."""
    value = only_document(path)
    assert Draft7Validator(SCHEMA).is_valid(value) == VALIDATOR.is_valid(value)


def shape_paths(shape: schema.Schema, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, field in shape.get("properties", {}).items():
        yield (*prefix, key)
        yield from shape_paths(field, (*prefix, key))
    if "items" in shape:
        yield from shape_paths(shape["items"], (*prefix, "[]"))


def value_paths(value: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from value_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for item in value:
            yield from value_paths(item, (*prefix, "[]"))


@pytest.mark.parametrize("kind", ["SignerPolicy", "PolicyTest"])
def test_valid_corpus_uses_every_field(kind: str) -> None:
    shape = POLICY_TEST if kind == "PolicyTest" else schema.SIGNER_POLICY
    values = [only_document(p) for p in VALID]
    used = {
        p for v in values if is_policy_test(v) == (kind == "PolicyTest") for p in value_paths(v)
    }
    assert set(shape_paths(shape)) - used == set()


def object_paths(
    value: object, prefix: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        yield prefix
        for key, item in value.items():
            yield from object_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from object_paths(item, (*prefix, index))


@pytest.mark.parametrize("name", ["every-field", "policytest-every-field"])
def test_unknown_key_at_every_depth_fails_schema_and_shape(name: str) -> None:
    value = only_document(DATA / "valid" / f"{name}.yaml")
    shape = POLICY_TEST if is_policy_test(value) else schema.SIGNER_POLICY
    paths = list(object_paths(value))
    assert len(paths) > 10
    for path in paths:
        mutated = copy.deepcopy(value)
        node = mutated
        for part in path:
            node = node[part]  # type: ignore[index]
        node["surprise"] = 1  # type: ignore[index]
        assert schema_errors(mutated) != [], path
        assert [p for p, _ in validate_shape(shape, mutated)] == [(*path, "surprise")]


def test_kind_dispatch_reports_only_the_named_kind() -> None:
    assert schema_errors({"apiVersion": schema.API_VERSION, "kind": "Policy"}) == [
        "'Policy' is not one of ['SignerPolicy', 'PolicyTest']"
    ]
    errors = schema_errors({"apiVersion": schema.API_VERSION, "kind": "PolicyTest", "spec": {}})
    assert sorted(errors) == ["'cases' is a required property", "'metadata' is a required property"]


def test_shipped_policy_tests_satisfy_the_schema() -> None:
    suites = sorted((REPO / "policies").glob("*.test.yaml"))
    assert suites
    for path in suites:
        value = only_document(path)
        assert not policy_test_problems(value)
        assert schema_errors(value) == [], path
