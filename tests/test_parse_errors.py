"""Where `check` points for a broken policy file: a YAML syntax error at the line and column of
the offending token (an unclosed bracket where it opens, not where the parser gave up), and a
value of the wrong type reported once, without the knock-on errors of the checks that use it."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from webhook.cli import main
from webhook.policy import schema
from webhook.policy.build import PolicyBuilder
from webhook.policy.loader import load_policies
from webhook.policy.source import Document, PathKey, Problem
from webhook.policy.validation import shape_problems

REPO = Path(__file__).resolve().parent.parent

# Line 18 opens a bracket that is never closed; PyYAML gives up on line 19.
SPIFFE = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata:
  name: spiffe
spec:
  signerNames: ["example.com/spiffe"]
  rules:
    - name: workloads
      requesters:
        serviceAccounts: ["shop/*"]
      allowed:
        uris:
          values: ["spiffe://cluster.local/ns/${sa.namespace}/sa/${sa.name}"]
          required: true
          maxItems: 1
        subject:
          commonName: {values: ["${sa.name}"]}
        usages: ["digital signature", "client auth"
      constraints:
        requiredUsages: ["client auth"]
        lifetime: {max: 24h}
"""


def check_output(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    (tmp_path / "p.yaml").write_text(text)
    assert main(["check", str(tmp_path)]) == 1
    return capsys.readouterr().out.splitlines()


def test_unclosed_bracket_is_reported_where_it_opens_with_its_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_output(tmp_path, SPIFFE, capsys) == [
        f"{tmp_path}/p.yaml:18:17: YAML syntax error: '[' is not closed: expected ',' or ']', "
        "but got '<scalar>' at 19:7"
    ]


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            ("lifetime: {max: 24h}", "lifetime: {max: 24h"),
            "21:19: YAML syntax error: '{' is not closed: expected ',' or '}', but got "
            "'<stream end>' at 22:1",
        ),
        (
            ("lifetime: {max: 24h}", 'lifetime: {max: "24h}'),
            "21:25: YAML syntax error: the quoted scalar is not closed: found unexpected end of "
            "stream at 22:1",
        ),
        (
            ('["digital signature", "client auth"', '["digital signature" "client auth"]'),
            "18:38: YAML syntax error: expected ',' or ']', but got '<scalar>' (while parsing a "
            "flow sequence starting at 18:17)",
        ),
        (
            ("          required: true", "         required: true"),
            "14:10: YAML syntax error: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block mapping starting at 12:9)",
        ),
        (
            ("      requesters:\n", "      requesters\n"),
            "9:7: YAML syntax error: the key has no ':': could not find expected ':' at 10:24",
        ),
        (
            ("maxItems: 1", "maxItems: 1: 2"),
            "15:22: YAML syntax error: mapping values are not allowed here",
        ),
    ],
    ids=[
        "unclosed brace",
        "unclosed quote",
        "missing comma",
        "bad indentation",
        "no colon",
        "colon",
    ],
)
def test_syntax_errors_point_at_the_offending_token(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    broken: tuple[str, str],
    expected: str,
) -> None:
    text = SPIFFE.replace('"client auth"\n', '"client auth"]\n', 1).replace(*broken)
    assert check_output(tmp_path, text, capsys) == [f"{tmp_path}/p.yaml:{expected}"]


def test_the_file_without_the_injected_mistakes_is_clean(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(SPIFFE.replace('"client auth"\n', '"client auth"]\n', 1))
    assert load_policies([tmp_path]).problems == []


KUBELET_SERVING = (REPO / "policies" / "kubelet-serving.yaml").read_text()


def problems_of(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "p.yaml").write_text(text)
    return [str(p).removeprefix(f"{tmp_path}/") for p in load_policies([tmp_path]).problems]


def test_usages_as_a_string_is_one_error(tmp_path: Path) -> None:
    text = KUBELET_SERVING.replace(
        'usages: ["digital signature", "key encipherment", "server auth"]',
        'usages: "server auth"',
    )
    assert text != KUBELET_SERVING
    line = _line_holding(text, 'usages: "server auth"')
    assert problems_of(tmp_path, text) == [
        f"p.yaml:{line}: spec.rules[0].allowed.usages: must be a list, got string 'server auth'"
    ]


def _line_holding(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_an_unknown_usage_does_not_also_fail_required_usages(tmp_path: Path) -> None:
    text = KUBELET_SERVING.replace('"server auth"]', '"server-auth"]', 1)
    [problem] = problems_of(tmp_path, text)
    line = _line_holding(text, '"server-auth"]')
    assert problem.startswith(f"p.yaml:{line}: spec.rules[0].allowed.usages[2]: must be one of ")
    assert problem.endswith(", got 'server-auth'")


RULE = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: p}
spec:
  signerNames: ["example.com/signer"]
  rules:
    - name: r
      allowed:
        subject:
          commonName: {values: "alice", required: true}
        usages: ["client auth"]
      constraints:
        lifetime: {max: [24h], onExceed: Clamp}
        keys: {rsa: {minBits: 2048, maxBits: yes}}
    - name: [one]
      allowed: {usages: ["client auth"]}
    - name: [two]
      allowed: {usages: ["client auth"]}
"""


def test_each_wrong_type_is_one_error_without_knock_ons(tmp_path: Path) -> None:
    assert problems_of(tmp_path, RULE) == [
        "p.yaml:10: spec.rules[0].allowed.subject.commonName.values: must be a list, got "
        "string 'alice'",
        "p.yaml:13: spec.rules[0].constraints.lifetime.max: must be a duration (e.g. 90s, 10m, "
        "24h, 1h30m, 30d) or whole seconds, got a list",
        "p.yaml:14: spec.rules[0].constraints.keys.rsa.maxBits: must be an integer, got a boolean",
        "p.yaml:15: spec.rules[1].name: must be a string, got a list",
        "p.yaml:17: spec.rules[2].name: must be a string, got a list",
    ]


def test_semantic_checks_still_run_beside_a_wrong_type(tmp_path: Path) -> None:
    text = RULE.replace("{max: [24h], onExceed: Clamp}", "{onExceed: Clamp}")
    assert (
        "p.yaml:13: spec.rules[0].constraints.lifetime.onExceed: onExceed: Clamp needs a max"
        in (problems_of(tmp_path, text))
    )


WRONG_VALUES: tuple[object, ...] = ("x y", 5, [1], {"a": 1}, None, True)


def _paths(value: object, path: PathKey = ()) -> Iterator[PathKey]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replaced(document: object, path: PathKey, new: object) -> object:
    copied = copy.deepcopy(document)
    node = copied
    for part in path[:-1]:
        node = node[part]  # type: ignore[index]
    node[path[-1]] = new  # type: ignore[index]
    return copied


SHIPPED = sorted(
    p
    for p in [*(REPO / "policies").glob("*.yaml"), *(REPO / "docs" / "examples").glob("*.yaml")]
    if not p.name.endswith(".test.yaml")
)


@pytest.mark.parametrize("file", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_any_single_wrong_type_in_a_shipped_policy_is_exactly_one_problem(file: Path) -> None:
    """Law: replace one field of a valid policy by a value of the wrong type, and the only
    problem is that field's."""
    original = yaml.safe_load(file.read_text())
    tried = 0
    for path in _paths(original["spec"], ("spec",)):
        for wrong in WRONG_VALUES:
            mutated = _replaced(original, path, wrong)
            shape = list(shape_problems(schema.SIGNER_POLICY, mutated))
            if [(where, wrong_type) for where, _, wrong_type in shape] != [(path, True)]:
                continue  # the value has the right type after all (e.g. a string for strings)
            tried += 1
            problems: list[Problem] = []
            PolicyBuilder(Document(str(file), 0, mutated), problems).build()
            assert [p.message for p in problems] == [shape[0][1]], (path, wrong)
    assert tried > 50


def _broken_rules(count: int) -> Document:
    """`count` rules, each with three wrong types that three semantic checks depend on."""
    rules = [
        {
            "name": f"r{i}",
            "allowed": {
                "usages": "client auth",
                "subject": {"commonName": {"values": "x", "required": True}},
            },
            "constraints": {
                "requiredUsages": ["client auth"],
                "lifetime": {"max": [1], "onExceed": "Clamp"},
            },
        }
        for i in range(count)
    ]
    policy = {
        "apiVersion": schema.API_VERSION,
        "kind": "SignerPolicy",
        "metadata": {"name": "p"},
        "spec": {"signerNames": ["example.com/x"], "rules": rules},
    }
    return Document("p.yaml", 0, policy)


def _build_seconds(count: int) -> tuple[float, int]:
    document = _broken_rules(count)
    best, found = float("inf"), 0
    for _ in range(3):
        built: list[Problem] = []
        started = time.process_time()
        PolicyBuilder(document, built).build()
        best = min(best, time.process_time() - started)
        found = len(built)
    return best, found


def test_suppressing_knock_ons_costs_linear_time() -> None:
    """Every problem is matched against the wrong-typed paths by prefix lookups, not by a scan
    of all of them: ten times the broken rules cost about ten times as much."""
    small, small_count = _build_seconds(300)
    large, large_count = _build_seconds(3_000)
    assert (small_count, large_count) == (900, 9_000)  # one problem per wrong type, no more
    assert large / max(small, 1e-6) < 30, (small, large)


@pytest.mark.parametrize(
    ("lifetime", "message"),
    [
        (
            "1 week",
            "'1 week' is not a duration (use e.g. 90s, 10m, 24h, 1h30m, 30d or whole seconds)",
        ),
        ("-5", "duration -5 is negative"),
        (
            '" 1h"',
            "must be a duration (e.g. 90s, 10m, 24h, 1h30m, 30d) or whole seconds, got string ' 1h'",
        ),
        (
            "1.5",
            "must be a duration (e.g. 90s, 10m, 24h, 1h30m, 30d) or whole seconds, got float 1.5",
        ),
    ],
)
def test_a_malformed_duration_is_one_error_saying_what_a_duration_is(
    tmp_path: Path, lifetime: str, message: str
) -> None:
    """A duration is declared as a oneOf (text or seconds); the value has the right type or
    none, and either way there is one problem, not one per alternative, nor the `Clamp needs a
    max` its loss would cause."""
    text = RULE.replace("{max: [24h], onExceed: Clamp}", f"{{max: {lifetime}, onExceed: Clamp}}")
    found = [p for p in problems_of(tmp_path, text) if ".lifetime." in p]
    assert found == [f"p.yaml:13: spec.rules[0].constraints.lifetime.max: {message}"]


def test_a_float_for_an_integer_is_one_error_without_its_bound(tmp_path: Path) -> None:
    text = RULE.replace("maxBits: yes", "maxBits: 512.5")
    found = [p for p in problems_of(tmp_path, text) if ".rsa." in p]
    assert found == [
        "p.yaml:14: spec.rules[0].constraints.keys.rsa.maxBits: must be an integer, got float 512.5"
    ]
