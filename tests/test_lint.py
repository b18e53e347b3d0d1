"""Lint warnings (`check`): each fires with file:line: path, never rejects a set, `--strict` fails."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from webhook.cli import main
from webhook.matching.patterns import PatternKind, compile_pattern
from webhook.matching.variables import Requester, template_variables
from webhook.policy.loader import load_policies

REPO = Path(__file__).resolve().parent.parent

# Warnings the shipped policies are allowed to raise, each with the reason it is accepted.
JUSTIFIED = {
    # Any authenticated user may ask for a client certificate; approval is the gate
    # (selfApproval: Deny). Naming `requesters: {groups: ["system:authenticated"]}` silences it.
    ("kube-apiserver-client.yaml", "spec.rules[0]"),
}


def policy(rules: str, *, signer: str = "example.com/signer", spec: str = "") -> str:
    """A policy whose `rules:` key is on line 6 plus the lines of `spec`; rules follow it."""
    head = textwrap.dedent(
        f"""\
        apiVersion: policy.csr-webhook.io/v1alpha1
        kind: SignerPolicy
        metadata: {{name: p}}
        spec:
          signerNames: ["{signer}"]
        """
    )
    return head + textwrap.indent(textwrap.dedent(spec), "  ") + "  rules:\n" + rules


def rule(name: str = "r", requesters: str = "", allowed: str = "", constraints: str = "") -> str:
    lines = [f"- name: {name}"]
    if requesters:
        lines.append(f"  requesters: {requesters}")
    lines.append("  allowed:")
    lines.extend(f"    {line}" for line in (allowed or 'usages: ["client auth"]').splitlines())
    if constraints:
        lines.append("  constraints:")
        lines.extend(f"    {line}" for line in constraints.splitlines())
    return "".join(f"    {line}\n" for line in lines)


def warnings_of(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "p.yaml"
    file.write_text(text)
    result = load_policies([file], lint=True)
    assert not result.errors, [str(p) for p in result.errors]
    assert result.policy_set is not None
    return [str(p).removeprefix(f"{file}:") for p in result.problems]


NODE = '{users: ["system:node:*"], groups: ["system:nodes"]}'


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (
            'dnsNames: {values: ["a.example.com", "**"]}',
            "9: spec.rules[0].allowed.dnsNames.values[1]: warning: '**' admits every DNS name; "
            "list the names meant, or add deny.dnsNames guardrails if the breadth is intended",
        ),
        (
            'dnsNames: {values: ["*"]}',
            "9: spec.rules[0].allowed.dnsNames.values[0]: warning: '*' admits every "
            "single-label DNS name; list the names meant, or add deny.dnsNames guardrails if "
            "the breadth is intended",
        ),
        (
            'ipAddresses: {values: ["10.0.0.0/8", "::/0"]}',
            "9: spec.rules[0].allowed.ipAddresses.values[1]: warning: '::/0' admits every IPv6 "
            "address; list the names meant, or add deny.ipAddresses guardrails if the breadth "
            "is intended",
        ),
        (
            'uris: {values: ["spiffe://**/**"]}',
            "9: spec.rules[0].allowed.uris.values[0]: warning: 'spiffe://**/**' admits every "
            "spiffe URI; list the names meant, or add deny.uris guardrails if the breadth is "
            "intended",
        ),
        (
            'emailAddresses: {values: ["*@**"]}',
            "9: spec.rules[0].allowed.emailAddresses.values[0]: warning: '*@**' admits every "
            "email address; list the names meant, or add deny.emailAddresses guardrails if "
            "the breadth is intended",
        ),
    ],
)
def test_warns_on_a_pattern_admitting_every_san(
    tmp_path: Path, allowed: str, expected: str
) -> None:
    text = policy(rule(allowed=allowed + '\nusages: ["client auth"]'))
    assert warnings_of(tmp_path, text) == [expected]


@pytest.mark.parametrize(
    "allowed",
    [
        'dnsNames: {values: ["*.example.com", "**.example.com", "${username}"]}',
        'ipAddresses: {values: ["0.0.0.0/1", "::/1", "10.0.0.0/8"]}',
        'uris: {values: ["spiffe://cluster.local/**", "spiffe://**/ns"]}',
        'emailAddresses: {values: ["*@example.com", "admin@*"]}',
    ],
)
def test_narrower_san_patterns_do_not_warn(tmp_path: Path, allowed: str) -> None:
    text = policy(rule(allowed=allowed + '\nusages: ["client auth"]'))
    assert warnings_of(tmp_path, text) == []


def test_deny_guardrails_mark_an_open_san_kind_as_deliberate(tmp_path: Path) -> None:
    text = policy(
        rule(allowed='ipAddresses: {values: ["0.0.0.0/0"]}\nusages: ["client auth"]'),
        spec='deny: {ipAddresses: ["127.0.0.0/8"]}\n',
    )
    assert warnings_of(tmp_path, text) == []


def test_warns_on_any_usage_and_on_ca(tmp_path: Path) -> None:
    text = policy(rule(allowed='usages: ["client auth", "any"]\nisCA: true'))
    assert warnings_of(tmp_path, text) == [
        "9: spec.rules[0].allowed.usages[1]: warning: usage 'any' (anyExtendedKeyUsage) makes "
        "a certificate valid for every purpose; list the usages the workload needs",
        "10: spec.rules[0].allowed.isCA: warning: rule 'r' lets requesters obtain CA "
        "certificates that can sign others; keep it to a dedicated signer with narrow "
        "requesters",
    ]


def test_warns_on_lifetimes_over_a_year(tmp_path: Path) -> None:
    text = policy(
        rule("year", constraints="lifetime: {max: 8760h}")
        + rule("longer", constraints="lifetime:\n  max: 366d"),
        spec="issuance: {maxLifetime: 400d}\n",
    )
    assert warnings_of(tmp_path, text) == [
        "6: spec.issuance.maxLifetime: warning: maxLifetime 34560000s is over a year (365d)",
        "18: spec.rules[1].constraints.lifetime.max: warning: lifetime max 31622400s is over "
        "a year (365d)",
    ]


@pytest.mark.parametrize(
    "signer", ["kubernetes.io/kube-apiserver-client", "kubernetes.io/*", "*.io/kubelet-serving"]
)
def test_warns_on_builtin_signer_rule_without_requesters(tmp_path: Path, signer: str) -> None:
    text = policy(
        rule("open")
        + rule("empty", "{}", 'usages: ["server auth"]')
        + rule("named", "{users: [a]}")
    )
    found = warnings_of(tmp_path, text.replace("example.com/signer", signer))
    assert [w for w in found if "wildcard in the domain" not in w] == [
        f"7: spec.rules[0]: warning: rule 'open' has no requesters but serves built-in signer "
        f"{signer!r}: anyone RBAC lets create CSRs may use it; name the users, groups or "
        "service accounts",
        f"11: spec.rules[1].requesters: warning: rule 'empty' has no requesters but serves "
        f"built-in signer {signer!r}: anyone RBAC lets create CSRs may use it; name the "
        "users, groups or service accounts",
    ]


def test_other_signers_need_no_requesters(tmp_path: Path) -> None:
    assert warnings_of(tmp_path, policy(rule(), signer="example.com/kubernetes.io")) == []


NODE_CN = 'subject:\n  commonName: {values: ["system:node:${node}"]}\nusages: ["client auth"]'
SA_DNS = 'dnsNames: {values: ["${sa.name}.${sa.namespace}.svc"]}\nusages: ["client auth"]'


@pytest.mark.parametrize(
    ("requesters", "allowed", "expected"),
    [
        (
            '{groups: ["system:nodes"]}',
            NODE_CN,
            "11: spec.rules[0].allowed.subject.commonName.values[0]: warning: ${node} in "
            "'system:node:${node}' is undefined for some requesters rule 'r' admits, and then "
            'matches nothing; restrict requesters (users: ["system:node:*"] and groups: '
            '["system:nodes"])',
        ),
        (
            '{users: ["system:node:*"], groups: ["system:nodes", "ops"]}',
            NODE_CN,
            "11: spec.rules[0].allowed.subject.commonName.values[0]: warning: ${node} in "
            "'system:node:${node}' is undefined for some requesters rule 'r' admits, and then "
            'matches nothing; restrict requesters (users: ["system:node:*"] and groups: '
            '["system:nodes"])',
        ),
        (
            '{users: ["alice"]}',
            SA_DNS,
            "10: spec.rules[0].allowed.dnsNames.values[0]: warning: ${sa.name} in "
            "'${sa.name}.${sa.namespace}.svc' is undefined for some requesters rule 'r' admits, "
            "and then matches nothing; restrict requesters (serviceAccounts)",
        ),
    ],
)
def test_warns_on_template_the_requesters_may_not_define(
    tmp_path: Path, requesters: str, allowed: str, expected: str
) -> None:
    warnings = warnings_of(tmp_path, policy(rule(requesters=requesters, allowed=allowed)))
    assert warnings[0] == expected
    assert len(warnings) == (2 if "sa.name" in allowed else 1)  # ${sa.namespace} too


@pytest.mark.parametrize(
    ("requesters", "allowed"),
    [
        (NODE, NODE_CN),
        ('{users: ["system:node:worker-1"], groups: ["system:nodes"]}', NODE_CN),
        ('{serviceAccounts: ["apps/*"]}', SA_DNS),
        ('{users: ["system:serviceaccount:*"]}', SA_DNS),
        ("", 'dnsNames: {values: ["${username}.example.com"]}\nusages: ["client auth"]'),
    ],
)
def test_templates_the_requesters_always_define_do_not_warn(
    tmp_path: Path, requesters: str, allowed: str
) -> None:
    assert warnings_of(tmp_path, policy(rule(requesters=requesters, allowed=allowed))) == []


WIDE = 'subject:\n  commonName: {values: ["*", "x"]}\ndnsNames: {values: ["a", "b"]}\nusages: ["client auth", "server auth"]'
NARROW = 'subject:\n  commonName: {values: ["x"], required: true}\ndnsNames: {values: ["b"], maxItems: 1}\nusages: ["client auth"]'


def test_warns_on_rule_an_earlier_rule_with_same_requesters_covers(tmp_path: Path) -> None:
    text = policy(
        rule("wide", "{groups: [a, b]}", WIDE, "lifetime: {max: 48h}")
        + rule("narrow", "{groups: [b, a]}", NARROW, "lifetime: {max: 24h}\nrequireAnySAN: true")
    )
    assert warnings_of(tmp_path, text) == [
        "16: spec.rules[1]: warning: rule 'narrow' is unreachable: rule 'wide' "
        "(spec.rules[0]) has the same requesters and permits everything it permits"
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (rule("wide", "{groups: [a]}", WIDE), rule("narrow", "{groups: [b]}", NARROW)),
        (rule("wide", "", WIDE), rule("narrow", "{groups: [a]}", NARROW)),
        (rule("narrow", "", NARROW), rule("wide", "", WIDE)),
        (rule("wide", "", WIDE, "lifetime: {max: 1h}"), rule("narrow", "", NARROW)),
        (rule("wide", "", WIDE, "requireAnySAN: true"), rule("narrow", "", NARROW)),
        (rule("wide", "", WIDE, "keys: {ed25519: true}"), rule("narrow", "", NARROW)),
        (
            rule("wide", "", WIDE, 'signatureAlgorithms: ["ecdsa-with-SHA256"]'),
            rule("narrow", "", NARROW),
        ),
    ],
)
def test_rules_reachable_for_some_csr_do_not_warn(tmp_path: Path, first: str, second: str) -> None:
    assert warnings_of(tmp_path, policy(first + second)) == []


def test_warnings_never_reject_the_set_and_only_check_lints(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(policy(rule(allowed='usages: ["any"]')))
    linted = load_policies([file], lint=True)
    assert linted.policy_set is not None
    assert [p.severity for p in linted.problems] == ["warning"]
    assert linted.errors == []
    assert load_policies([file]).problems == []


def test_check_exits_0_with_warnings_and_1_with_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(policy(rule(allowed='usages: ["any"]')))
    warning = (
        f"{file}:9: spec.rules[0].allowed.usages[0]: warning: usage 'any' "
        "(anyExtendedKeyUsage) makes a certificate valid for every purpose; list the usages "
        "the workload needs\n"
    )
    assert main(["check", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (warning, "ok: 1 policies in 1 file(s), 1 warning(s)\n")
    assert main(["check", "--strict", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == (warning, "1 warning(s) in 1 file(s) (--strict)\n")
    file.write_text(policy(rule()))
    assert main(["check", "--strict", str(tmp_path)]) == 0


def test_check_prints_errors_and_warnings_in_line_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.yaml").write_text(
        policy(
            rule(allowed='usages: ["any"]')
            + rule("bad", allowed='dnsNames: {values: ["a..b"]}\nusages: ["server auth"]')
        )
    )
    assert main(["check", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0].rsplit(":", 1)[1] for line in lines] == ["9", "12"]
    assert "warning: usage 'any'" in lines[0]
    assert "empty label" in lines[1]


def test_shipped_policies_raise_only_justified_warnings() -> None:
    result = load_policies([REPO / "policies"], lint=True)
    assert result.errors == []
    found = {(Path(p.file).name, p.path) for p in result.problems}
    assert found <= JUSTIFIED, sorted(found - JUSTIFIED)


SPIFFE_SA = "spiffe://cluster.local/ns/${sa.namespace}/sa/${sa.name}"


def test_warns_on_double_star_inside_a_spiffe_path_and_says_what_to_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(
        policy(
            rule(
                requesters='{serviceAccounts: ["shop/*"]}',
                allowed='uris: {values: ["spiffe://cluster.local/**/sa/${sa.name}"]}\n'
                'usages: ["client auth"]',
            )
        )
    )
    warning = (
        f"{file}:10: spec.rules[0].allowed.uris.values[0]: warning: '**' inside the path of "
        "'spiffe://cluster.local/**/sa/${sa.name}' stands for any one or more path segments, "
        "so a requester may also obtain 'spiffe://cluster.local/ns/another-namespace/sa/"
        "${sa.name}': the identity of its namesake in every other namespace; spell each "
        "segment out and bind the requester's own with templates "
        f"('{SPIFFE_SA}')\n"
    )
    assert main(["check", str(tmp_path)]) == 0
    assert capsys.readouterr().out == warning
    assert main(["check", "--strict", str(tmp_path)]) == 1
    assert capsys.readouterr() == (warning, "1 warning(s) in 1 file(s) (--strict)\n")
    file.write_text(file.read_text().replace("spiffe://cluster.local/**/sa/${sa.name}", SPIFFE_SA))
    assert main(["check", "--strict", str(tmp_path)]) == 0


def test_what_the_double_star_warning_claims_is_true() -> None:
    """shop/web may not obtain payments/web's identity with the suggested pattern, but may
    with the linted one."""
    shop_web = template_variables(Requester("system:serviceaccount:shop:web"), "example.com/s")
    other = "spiffe://cluster.local/ns/payments/sa/web"
    linted = compile_pattern(PatternKind.URI, "spiffe://cluster.local/**/sa/${sa.name}")
    assert linted.matches(other, shop_web)
    assert not compile_pattern(PatternKind.URI, SPIFFE_SA).matches(other, shop_web)
    assert compile_pattern(PatternKind.URI, SPIFFE_SA).matches(
        "spiffe://cluster.local/ns/shop/sa/web", shop_web
    )


def test_warns_on_double_star_before_any_bound_segment(tmp_path: Path) -> None:
    allowed = 'uris: {values: ["https://api.example.com/**/v1/*"]}\nusages: ["client auth"]'
    assert warnings_of(tmp_path, policy(rule(allowed=allowed))) == [
        "9: spec.rules[0].allowed.uris.values[0]: warning: '**' inside the path of "
        "'https://api.example.com/**/v1/*' stands for any one or more path segments, so a "
        "requester may also obtain 'https://api.example.com/any/other/path/v1/*': every other "
        "URI that ends the same way under any prefix; spell each segment out and bind the "
        "requester's own with templates (e.g. ${sa.namespace})"
    ]


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://cluster.local/ns/${sa.namespace}/**",
        "spiffe://cluster.local/ns/*/sa/*",
        "spiffe://cluster.local/**/*",
        "spiffe://**/**",
        SPIFFE_SA,
    ],
)
def test_double_star_ending_a_uri_path_does_not_warn(tmp_path: Path, uri: str) -> None:
    allowed = f'uris: {{values: ["{uri}"]}}\nusages: ["client auth"]'
    found = warnings_of(tmp_path, policy(rule("r", '{serviceAccounts: ["a/b"]}', allowed)))
    assert [w for w in found if "'**' inside" in w] == []


BROAD_DOMAIN = (
    "{pattern!r} has a wildcard in the domain {domain!r}, so this policy governs signers of "
    "domains that are not yours{also}: each one no other policy claims gets this policy's "
    "rules instead of the --unmatched-signers setting; name your own domain (e.g. "
    "'example.com/*' or '*.example.com/mtls')"
)


@pytest.mark.parametrize(
    ("pattern", "domain", "also"),
    [
        ("*/*", "*", ", the cluster's own 'kubernetes.io/kube-apiserver-client' included"),
        ("*.io/*", "*.io", ", the cluster's own 'kubernetes.io/kube-apiserver-client' included"),
        (
            "*.io/kubelet-serving",
            "*.io",
            ", the cluster's own 'kubernetes.io/kubelet-serving' included",
        ),
        ("example.*/issuer", "example.*", ""),
        ("*example.com/issuer", "*example.com", ""),
    ],
)
def test_warns_on_signer_pattern_wider_than_one_domain(
    tmp_path: Path, pattern: str, domain: str, also: str
) -> None:
    expected = BROAD_DOMAIN.format(pattern=pattern, domain=domain, also=also)
    found = warnings_of(tmp_path, policy(rule(requesters="{users: [a]}"), signer=pattern))
    assert found == [f"5: spec.signerNames[0]: warning: signer pattern {expected}"]


def test_warns_on_double_star_in_a_signer_pattern(tmp_path: Path) -> None:
    text = policy(rule(), signer="example.com/**").replace(
        '["example.com/**"]', '["example.com/exact", "example.com/**"]'
    )
    assert warnings_of(tmp_path, text) == [
        "5: spec.signerNames[1]: warning: '**' in signer pattern 'example.com/**' is not a "
        "multi-segment wildcard: a signer name is exactly 'domain/name', and there '**' is just "
        "two '*' (two or more characters, never '/'), so the pattern claims every matching "
        "signer, ones added later included; write 'example.com/*' if that is meant, or list "
        "the signers"
    ]


@pytest.mark.parametrize(
    "pattern",
    ["example.com/*", "example.com/team-*", "*.example.com/mtls", "eu.*.example.com/x"],
)
def test_signer_patterns_within_one_domain_do_not_warn(tmp_path: Path, pattern: str) -> None:
    assert warnings_of(tmp_path, policy(rule(), signer=pattern)) == []


@pytest.mark.parametrize("pattern", ["*", "**"])
def test_a_signer_pattern_without_a_domain_is_an_error_that_says_it_matches_nothing(
    tmp_path: Path, pattern: str
) -> None:
    (tmp_path / "p.yaml").write_text(policy(rule(), signer=pattern))
    result = load_policies([tmp_path], lint=True)
    assert [str(p).removeprefix(f"{tmp_path}/") for p in result.problems] == [
        f"p.yaml:5: spec.signerNames[0]: signer name {pattern!r} must have the form "
        "'example.com/signer-name'; '*' never crosses '/', so this pattern matches no signer: "
        "write 'example.com/*' for every signer of one domain"
    ]
    assert not any(
        compile_pattern(PatternKind.SIGNER, pattern).matches(signer)
        for signer in ("example.com/a", "kubernetes.io/kubelet-serving", "example.com/ab")
    )


# ---- node binding and automatic approval ---------------------------------------------------------

BOUND = "node: {sansFromAddresses: [InternalIP, Hostname]}"


def test_warns_on_a_node_binding_whose_requesters_admit_non_nodes(tmp_path: Path) -> None:
    text = policy(
        rule("open", '{groups: ["system:authenticated"]}', constraints="node: {}")
        + rule("nodes", NODE, constraints="node: {}")
    )
    assert warnings_of(tmp_path, text) == [
        "12: spec.rules[0].constraints.node: warning: rule 'open' binds CSRs to the requesting "
        "Node, but its requesters admit users that are no node, whose CSRs it always denies "
        '(node.not_found); restrict requesters (users: ["system:node:*"] and groups: '
        '["system:nodes"])'
    ]


def test_a_node_binding_of_sans_marks_an_open_dns_or_ip_pattern_as_deliberate(
    tmp_path: Path,
) -> None:
    allowed = (
        'dnsNames: {values: ["**"]}\nipAddresses: {values: ["0.0.0.0/0"]}\nusages: ["server auth"]'
    )
    assert warnings_of(tmp_path, policy(rule("r", NODE, allowed, BOUND))) == []
    found = warnings_of(tmp_path, policy(rule("r", NODE, allowed, "node: {}")))
    assert [w.split(": warning: ")[1].split(";")[0] for w in found] == [
        "'**' admits every DNS name",
        "'0.0.0.0/0' admits every IPv4 address",
    ]


APPROVAL_SA = '["csr-webhook/csr-webhook-approver"]'


@pytest.mark.parametrize(
    ("approval", "warns"),
    [
        ("approvers: {groups: [system:masters]}\n    auto: {approve: true}", True),
        ("approvers: {users: [carol]}\n    auto: {deny: true}", True),
        (f"approvers: {{serviceAccounts: {APPROVAL_SA}}}\n    auto: {{approve: true}}", False),
        (
            "approvers: {groups: [system:serviceaccounts:csr-webhook]}\n    auto: {approve: true}",
            False,
        ),
        ("auto: {approve: true}", False),  # approvers: whoever RBAC allows
        ("approvers: {users: [carol]}\n    auto: {approve: false, deny: false}", False),
    ],
)
def test_warns_on_auto_approval_the_approvers_refuse(
    tmp_path: Path, approval: str, warns: bool
) -> None:
    text = policy(rule("r", NODE), spec=f"approval:\n  {approval.replace('    ', '  ')}\n")
    found = warnings_of(tmp_path, text)
    expected = [
        "7: spec.approval.approvers: warning: approval.auto is set, but approval.approvers "
        "does not admit the approval controller "
        "'system:serviceaccount:csr-webhook:csr-webhook-approver', so its decisions are refused "
        '(approval.not_approver); add serviceAccounts: ["csr-webhook/csr-webhook-approver"]'
    ]
    assert found == (expected if warns else [])


@pytest.mark.parametrize(
    ("wide", "narrow"),
    [
        ("node: {}", ""),
        (BOUND, "node: {mustExist: false, sansFromAddresses: [ExternalDNS]}"),
        (BOUND, "node: {sansFromAddresses: [InternalIP, ExternalIP]}"),
        ("maxPending: 2", ""),
        ("maxPending: 2", "maxPending: 3"),
    ],
)
def test_a_stricter_node_binding_or_quota_keeps_a_later_rule_reachable(
    tmp_path: Path, wide: str, narrow: str
) -> None:
    text = policy(rule("wide", NODE, WIDE, wide) + rule("narrow", NODE, NARROW, narrow))
    assert warnings_of(tmp_path, text) == []


@pytest.mark.parametrize(
    ("wide", "narrow"),
    [
        ("", BOUND),
        ("node: {}", BOUND),
        (BOUND, "node: {sansFromAddresses: [Hostname]}"),
        ("maxPending: 3", "maxPending: 2"),
    ],
)
def test_a_looser_node_binding_or_quota_covers_a_later_rule(
    tmp_path: Path, wide: str, narrow: str
) -> None:
    text = policy(rule("wide", NODE, WIDE, wide) + rule("narrow", NODE, NARROW, narrow))
    assert [w.split(": warning: ")[1][:35] for w in warnings_of(tmp_path, text)] == [
        "rule 'narrow' is unreachable: rule "
    ]
