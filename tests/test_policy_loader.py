"""Policy loading and `check`: every problem in every file, as file:line: path: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.certs import self_signed_ca_pem
from webhook.cli import main
from webhook.policy import schema
from webhook.policy.loader import load_policies, parse_duration
from webhook.policy.model import KeyRules

REPO = Path(__file__).resolve().parent.parent

HEADER = """\
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
"""


def policy(name: str, signer: str = "example.com/signer", body: str = "") -> str:
    rules = (
        body
        or """\
  rules:
    - name: r
      allowed: {usages: ["client auth"]}
"""
    )
    return HEADER + f"metadata: {{name: {name}}}\nspec:\n  signerNames: [{signer!r}]\n" + rules


def problems_of(tmp_path: Path, **files: str) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    result = load_policies([tmp_path])
    return [str(p) for p in result.problems]


def test_shipped_policies_load_cleanly() -> None:
    result = load_policies([REPO / "policies"])
    assert [str(p) for p in result.problems] == []
    assert result.policy_set is not None
    names = {p.name for p in result.policy_set.policies}
    assert names == {
        "kube-apiserver-client",
        "kube-apiserver-client-kubelet",
        "kubelet-serving",
        "spiffe-mesh",
    }


def test_valid_policy_loads_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(policy("p"))
    result = load_policies([tmp_path])
    assert result.policy_set is not None
    [loaded] = result.policy_set.policies
    assert loaded.enforcement.value == "Deny"
    assert loaded.approval.recheck is True
    assert loaded.approval.self_approval is False
    assert loaded.rules[0].constraints.keys.rsa == (2048, 8192)


def test_every_default_is_the_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder restates no default: change one in the schema and the loaded policy follows
    (and so does `csr-webhook schema`, which prints the same declaration)."""
    spec = schema.SIGNER_POLICY["properties"]["spec"]["properties"]
    rule = spec["rules"]["items"]["properties"]
    keys = rule["constraints"]["properties"]["keys"]
    changed = [
        (spec["enforcement"], "Audit"),
        (spec["approval"]["properties"]["recheck"], False),
        (spec["approval"]["properties"]["selfApproval"], "Allow"),
        (keys, {"rsa": {}, "ed448": True}),
        (keys["properties"]["rsa"]["properties"]["minBits"], 3072),
        (rule["constraints"]["properties"]["requireAnySAN"], True),
    ]
    for node, value in changed:
        monkeypatch.setitem(node, "default", value)
    (tmp_path / "p.yaml").write_text(policy("p"))
    result = load_policies([tmp_path])
    assert result.policy_set is not None
    [loaded] = result.policy_set.policies
    assert loaded.enforcement.value == "Audit"
    assert (loaded.approval.recheck, loaded.approval.self_approval) == (False, True)
    constraints = loaded.rules[0].constraints
    assert constraints.require_any_san is True
    assert constraints.keys == KeyRules(
        rsa=(3072, 8192), ecdsa_curves=None, ed25519=False, ed448=True
    )


def test_absent_keys_mean_the_declared_default_key_types(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(policy("p"))
    result = load_policies([tmp_path])
    assert result.policy_set is not None
    keys = result.policy_set.policies[0].rules[0].constraints.keys
    assert keys == KeyRules(
        rsa=(2048, 8192),
        ecdsa_curves=frozenset({"P-256", "P-384", "P-521"}),
        ed25519=True,
        ed448=False,
    )


def test_reports_unknown_keys_with_file_line_and_path(tmp_path: Path) -> None:
    text = policy(
        "p",
        body="""\
  rules:
    - name: r
      allowed:
        usages: ["client auth"]
        dnsNames: {values: ["a.example.com"], maxitems: 3}
  surprise: true
""",
    )
    found = problems_of(tmp_path, **{"p.yaml": text})
    assert found == [
        f"{tmp_path}/p.yaml:10: spec.rules[0].allowed.dnsNames.maxitems: unknown field 'maxitems' "
        "(known: values, required, maxItems, allowWildcardNames)",
        f"{tmp_path}/p.yaml:11: spec.surprise: unknown field 'surprise' "
        "(known: signerNames, enforcement, deny, rules, approval, issuance, "
        "podCertificates)",
    ]


def test_reports_every_problem_in_every_file_at_once(tmp_path: Path) -> None:
    bad_types = policy(
        "a",
        body="""\
  enforcement: Block
  rules:
    - name: r
      allowed: {usages: ["client auth", "teleport"], isCA: "no"}
""",
    )
    bad_yaml = "apiVersion: [unclosed\n"
    found = problems_of(tmp_path, **{"a.yaml": bad_types, "b.yaml": bad_yaml})
    joined = "\n".join(found)
    assert (
        f"{tmp_path}/a.yaml:6: spec.enforcement: must be one of 'Deny', 'Warn', 'Audit'" in joined
    )
    assert f"{tmp_path}/a.yaml:9: spec.rules[0].allowed.usages[1]: must be one of" in joined
    assert "'teleport'" in joined
    assert f"{tmp_path}/a.yaml:9: spec.rules[0].allowed.isCA: must be true or false" in joined
    assert f"{tmp_path}/b.yaml:1:13: YAML syntax error: '[' is not closed" in joined
    assert len(found) == 4


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '  rules:\n    - name: r\n      allowed: {ipAddresses: {values: ["10.1.2.3/8"]}, usages: ["client auth"]}\n',
            "spec.rules[0].allowed.ipAddresses.values[0]:",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {dnsNames: {values: ["a.**.example.com"]}, usages: ["client auth"]}\n',
            "spec.rules[0].allowed.dnsNames.values[0]:",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {dnsNames: {values: ["${nodename}.example.com"]}, usages: ["client auth"]}\n',
            "spec.rules[0].allowed.dnsNames.values[0]:",
        ),
        (
            '  rules:\n    - name: r\n      requesters: {users: ["${username}"]}\n      allowed: {usages: ["client auth"]}\n',
            "spec.rules[0].requesters.users[0]: templates are not allowed here",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n      constraints: {lifetime: {min: 5m}}\n',
            "spec.rules[0].constraints.lifetime.min: '5m' is shorter than 10m",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n      constraints: {lifetime: {min: 2h, max: 1h}}\n',
            "spec.rules[0].constraints.lifetime.min: min '2h' is longer than max '1h'",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n      constraints: {lifetime: {max: 1h, default: 2h}}\n',
            "spec.rules[0].constraints.lifetime.default: default '2h' is longer than max '1h'",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n      constraints: {lifetime: {max: 1 week}}\n',
            "spec.rules[0].constraints.lifetime.max: '1 week' is not a duration",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n      constraints: {lifetime: {onExceed: Clamp}}\n',
            "spec.rules[0].constraints.lifetime.onExceed: onExceed: Clamp needs a max",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n      constraints: {requiredUsages: ["server auth"]}\n',
            "spec.rules[0].constraints.requiredUsages[0]: required usage 'server auth' is not in allowed.usages",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n      constraints: {signatureAlgorithms: ["sha1WithRSAEncryption"]}\n',
            "SHA-1 and MD5 are never accepted",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"], extensions: ["not-an-oid"]}\n',
            "spec.rules[0].allowed.extensions[0]: 'not-an-oid' is not a dotted OID",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n    - name: r\n      allowed: {usages: ["client auth"]}\n',
            "spec.rules[1].name: duplicate rule name 'r'",
        ),
        (
            "  rules: []\n",
            "spec.rules: must have at least 1 item(s)",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n  issuance: {caBundle: "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n"}\n',
            "spec.issuance.caBundle: CA bundle does not parse",
        ),
        (
            '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n  issuance: {caBundleFile: missing-ca.pem}\n',
            "spec.issuance.caBundleFile: cannot read",
        ),
    ],
)
def test_reports_semantic_problems(tmp_path: Path, body: str, expected: str) -> None:
    found = problems_of(tmp_path, **{"p.yaml": policy("p", body=body)})
    assert any(expected in line for line in found), found
    assert all(line.startswith(f"{tmp_path}/p.yaml:") for line in found)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("{}", "no key type is accepted"),
        ("{ed25519: false}", "no key type is accepted"),
        ("{ecdsa: {curves: []}}", "must have at least 1 item(s)"),
    ],
)
def test_rejects_key_constraints_that_accept_nothing(
    tmp_path: Path, keys: str, problem: str
) -> None:
    body = f'  rules:\n    - name: r\n      allowed: {{usages: ["client auth"]}}\n      constraints: {{keys: {keys}}}\n'
    found = problems_of(tmp_path, **{"p.yaml": policy("p", body=body)})
    assert any(problem in line for line in found), found


def test_ecdsa_without_curves_means_every_supported_curve(tmp_path: Path) -> None:
    body = '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n      constraints: {keys: {ecdsa: {}}}\n'
    (tmp_path / "p.yaml").write_text(policy("p", body=body))
    result = load_policies([tmp_path])
    assert result.policy_set is not None
    keys = result.policy_set.policies[0].rules[0].constraints.keys
    assert keys.ecdsa_curves == frozenset({"P-256", "P-384", "P-521"})
    assert keys.rsa is None


def test_accepts_ca_bundle_that_parses(tmp_path: Path) -> None:
    ca = self_signed_ca_pem()
    (tmp_path / "ca.pem").write_bytes(ca)
    body = '  rules:\n    - name: r\n      allowed: {usages: ["client auth"]}\n  issuance: {caBundleFile: ca.pem}\n'
    (tmp_path / "p.yaml").write_text(policy("p", body=body))
    result = load_policies([tmp_path])
    assert result.problems == []
    assert result.policy_set is not None
    assert len(result.policy_set.policies[0].issuance.ca_certificates_der) == 1


def test_rejects_duplicate_policy_names_across_files(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        **{"a.yaml": policy("same", "a.example/x"), "b.yaml": policy("same", "b.example/x")},
    )
    assert len(found) == 1
    assert "duplicate policy name 'same'" in found[0]


def test_rejects_two_policies_for_the_same_exact_signer(tmp_path: Path) -> None:
    found = problems_of(tmp_path, **{"a.yaml": policy("a"), "b.yaml": policy("b")})
    assert len(found) == 1
    assert "signer selection tie" in found[0]


def test_rejects_overlapping_patterns_of_equal_precedence(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        **{"a.yaml": policy("a", "example.com/a-*"), "b.yaml": policy("b", "example.com/*-b")},
    )
    assert len(found) == 1
    assert "'example.com/*-b' of policy 'b'" in found[0]


def test_accepts_patterns_that_cannot_overlap_or_rank_differently(tmp_path: Path) -> None:
    files = {
        "a.yaml": policy("a", "example.com/a-*"),
        "b.yaml": policy("b", "example.com/b-*"),
        "c.yaml": policy("c", "example.com/*"),
        "d.yaml": policy("d", "example.com/a-one"),
    }
    assert problems_of(tmp_path, **files) == []
    result = load_policies([tmp_path])
    assert result.policy_set is not None
    select = result.policy_set.select
    chosen = [select(s) for s in ("example.com/a-one", "example.com/a-two", "example.com/zzz")]
    assert [found.name if found else None for found in chosen] == ["d", "a", "c"]
    assert select("other.com/a-one") is None


def test_rejects_duplicate_yaml_keys(tmp_path: Path) -> None:
    text = policy("p") + "  enforcement: Warn\n  enforcement: Deny\n"
    found = problems_of(tmp_path, **{"p.yaml": text})
    assert found == [f"{tmp_path}/p.yaml:10: spec.enforcement: duplicate key 'enforcement'"]


def test_rejects_alias_bomb_without_expanding_it(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 9)
    ]
    found = problems_of(tmp_path, **{"bomb.yaml": "\n".join(lines) + "\n"})
    assert any("alias bomb" in line for line in found), found


def test_skips_hidden_and_test_files(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(policy("p"))
    (tmp_path / ".hidden.yaml").write_text("garbage: [")
    (tmp_path / "p.test.yaml").write_text("kind: PolicyTest")
    (tmp_path / "notes.txt").write_text("not yaml")
    result = load_policies([tmp_path])
    assert result.problems == []
    assert result.files == [str(tmp_path / "p.yaml")]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h30m", 5400), ("30d", 2592000), (3600, 3600), ("86400", 86400)],
)
def test_parses_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1w", "h", "1h 30m", "-5", "1.5h", True])
def test_rejects_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_check_command_exit_codes_and_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(REPO / "policies")]) == 0
    assert "ok: 4 policies" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text(policy("p", body="  rules: {}\n"))
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out == f"{tmp_path}/bad.yaml:6: spec.rules: must be a list, got a mapping\n"
    assert main(["check", str(tmp_path / "missing")]) == 1
    assert "no such file or directory" in capsys.readouterr().out
