"""Unit and property tests for webhook.matching (docs/policy-reference.md §7 patterns and templates)."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

from webhook.errors import PatternError
from webhook.matching.patterns import PatternKind, compile_pattern, matches
from webhook.matching.variables import TEMPLATE_VARIABLES, Requester, template_variables

DNS = PatternKind.DNS
IP = PatternKind.IP
URI = PatternKind.URI
EMAIL = PatternKind.EMAIL
GLOB = PatternKind.GLOB
SA = PatternKind.SERVICE_ACCOUNT
SIGNER = PatternKind.SIGNER


def dns(pattern: str, value: str, variables: dict[str, str] | None = None) -> bool:
    return matches(DNS, pattern, value, variables)


# --- DNS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a.example.com", True), ("example.com", False), ("a.b.example.com", False)],
)
def test_single_star_label_matches_exactly_one_label(value: str, expected: bool) -> None:
    assert dns("*.example.com", value) is expected


def test_single_star_never_spans_a_dot() -> None:
    assert not dns("foo*.example.com", "foo.bar.example.com")
    assert not dns("a*b.example.com", "a.b.example.com")
    assert not dns("*", "a.b")


def test_single_star_means_one_or_more_characters() -> None:
    assert dns("foo*.example.com", "foobar.example.com")
    assert not dns("foo*.example.com", "foo.example.com")
    assert dns("a*b.example.com", "axyzb.example.com")
    assert not dns("a*b.example.com", "ab.example.com")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a.example.com", True),
        ("a.b.example.com", True),
        ("x.y.z.example.com", True),
        ("example.com", False),
        (".example.com", False),
        ("a..example.com", False),
        ("aexample.com", False),
    ],
)
def test_double_star_matches_one_or_more_whole_labels(value: str, expected: bool) -> None:
    assert dns("**.example.com", value) is expected


def test_dns_matching_is_case_insensitive() -> None:
    assert dns("*.Example.COM", "WWW.example.com")
    assert dns("www.example.com", "WWW.EXAMPLE.COM")
    assert dns("**.EXAMPLE.com", "A.b.Example.Com")


def test_dns_case_folding_is_ascii_only() -> None:
    # KELVIN SIGN lower-cases to "k" under Unicode rules; it must not pass for a "k".
    assert not dns("kube.example.com", "\u212aube.example.com")


def test_requested_wildcard_name_is_just_a_value() -> None:
    assert dns("*.example.com", "*.example.com")
    assert not dns("x.example.com", "*.example.com")
    assert dns("**.example.com", "*.example.com")


def test_dns_value_with_trailing_dot_does_not_match() -> None:
    assert not dns("a.example.com", "a.example.com.")
    assert not dns("*.example.com", "a.example.com.")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "empty pattern"),
        ("a..example.com", "empty label"),
        (".example.com", "empty label"),
        ("example.com.", "trailing dot"),
        ("a.**.example.com", "'**' is allowed only as the whole left-most label"),
        ("**a.example.com", "'**' is allowed only as the whole left-most label"),
        ("a**.example.com", "'**' is allowed only as the whole left-most label"),
        ("***.example.com", "'***'"),
        ("a_b.example.com", "invalid character '_'"),
        ("a b.example.com", "invalid character ' '"),
        ("${nodes}.example.com", "unknown template variable '${nodes}'"),
        ("${node.example.com", "unterminated '${'"),
    ],
)
def test_dns_pattern_syntax_errors_name_the_problem(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(DNS, pattern)
    message = str(info.value)
    assert problem in message
    assert repr(pattern) in message
    assert "\n" not in message


def test_unknown_template_variable_lists_the_known_ones() -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(GLOB, "${user}")
    for name in TEMPLATE_VARIABLES:
        assert f"${{{name}}}" in str(info.value)


def test_pattern_error_carries_kind_pattern_and_problem() -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(DNS, "a..b")
    assert (info.value.kind, info.value.pattern, info.value.problem) == (
        "dns",
        "a..b",
        "empty label",
    )
    assert isinstance(info.value, ValueError)


# --- IP ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("10.1.2.3", "10.1.2.3", True),
        ("10.1.2.3", "10.1.2.4", False),
        ("fd00::/8", "fd12::1", True),
        ("fd00::/8", "fe80::1", False),
        ("10.0.0.0/8", "::ffff:10.1.2.3", True),
        ("::ffff:10.1.2.3", "10.1.2.3", True),
        ("::ffff:10.0.0.0/104", "10.200.0.1", True),
        ("10.0.0.0/8", "fd00::a01:203", False),
        ("fd00::/8", "10.1.2.3", False),
    ],
)
def test_ip_pattern_is_an_address_or_cidr(pattern: str, value: str, expected: bool) -> None:
    assert matches(IP, pattern, value) is expected


@pytest.mark.parametrize(
    "value", ["", "not-an-ip", "10.0.0", "10.0.0.1/32", " 10.0.0.1", "010.0.0.1"]
)
def test_malformed_ip_value_matches_nothing(value: str) -> None:
    assert not matches(IP, "0.0.0.0/0", value)


def test_ip_cidr_with_host_bits_names_the_network() -> None:
    with pytest.raises(PatternError, match=r"host bits set; the network is 10\.0\.0\.0/8"):
        compile_pattern(IP, "10.1.2.3/8")


@pytest.mark.parametrize("pattern", ["", "10.0.0.256", "example.com", "10.0.0.0/33"])
def test_invalid_ip_pattern_is_rejected(pattern: str) -> None:
    with pytest.raises(PatternError, match="not an IP address or CIDR"):
        compile_pattern(IP, pattern)


def test_templates_are_rejected_in_ip_patterns() -> None:
    with pytest.raises(PatternError, match="templates are not allowed"):
        compile_pattern(IP, "${node}")


def test_single_ip_address_is_literal_and_cidr_is_not() -> None:
    assert compile_pattern(IP, "10.1.2.3").is_literal
    assert not compile_pattern(IP, "10.0.0.0/8").is_literal


# --- URI ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("spiffe://cluster.local/ns/*/sa/*", "spiffe://cluster.local/ns/default/sa/web", True),
        ("spiffe://cluster.local/ns/*/sa/*", "spiffe://cluster.local/ns/a/b/sa/web", False),
        ("spiffe://cluster.local/ns/*/sa/*", "spiffe://cluster.local/ns//sa/web", False),
        ("spiffe://example.org/**", "spiffe://example.org/a/b/c", True),
        ("spiffe://example.org/**", "spiffe://example.org/a", True),
        ("spiffe://example.org/**", "spiffe://example.org/", False),
        ("spiffe://example.org/**", "spiffe://example.org", False),
        ("spiffe://example.org/a/**/z", "spiffe://example.org/a/b/c/z", True),
        ("spiffe://example.org/a/**/z", "spiffe://example.org/a/z", False),
        ("SPIFFE://Example.ORG/ns/x", "spiffe://example.org/ns/x", True),
        ("spiffe://example.org/ns/x", "spiffe://example.org/NS/x", False),
        ("spiffe://*.example.org/x", "spiffe://a.example.org/x", True),
        ("spiffe://*.example.org/x", "spiffe://a.b.example.org/x", False),
        ("spiffe://**.example.org/x", "spiffe://a.b.example.org/x", True),
        ("https://example.org:8443/x", "https://example.org:8443/x", True),
        ("https://example.org:8443/x", "https://example.org/x", False),
        ("https://example.org/x", "https://example.org:443/x", False),
        ("https://u@example.org/x", "https://u@example.org/x", True),
        ("https://u@example.org/x", "https://v@example.org/x", False),
        ("https://example.org/x", "https://u@example.org/x", False),
        ("https://example.org/x?a=*", "https://example.org/x?a=*", True),
        ("https://example.org/x?a=*", "https://example.org/x?a=b", False),
        ("https://example.org/x#f", "https://example.org/x#f", True),
        ("https://example.org/x#f", "https://example.org/x#F", False),
        ("https://example.org/x", "https://example.org/x#f", False),
    ],
)
def test_uri_pattern_semantics(pattern: str, value: str, expected: bool) -> None:
    assert matches(URI, pattern, value) is expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not a uri",
        "spiffe://example.org/a\n",
        "spiffe://exa\tmple.org/a",
        " spiffe://example.org/a",
        "spiffe://[::1/a",
        "spiffe://[::1]/a",
        "example.org/a",
    ],
)
def test_malformed_uri_value_matches_nothing(value: str) -> None:
    assert not matches(URI, "spiffe://*.org/**", value)
    assert not matches(URI, "spiffe://example.org/a", value)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("example.org/x", "missing or invalid scheme"),
        ("spiffe:/x", "missing host"),
        ("spiffe://example.org/a**/b", "whole path segment"),
        ("spiffe://a..org/x", "empty label in host"),
        ("spiffe://a.**.org/x", "'**' is allowed only as the whole left-most label"),
        ("https://example.org:http/x", "is not a number"),
        ("spiffe://example.org/ x", "whitespace"),
        ("spiffe://example.org/${bogus}", "unknown template variable"),
        ("spiffe://example.org/${node", "unterminated"),
        ("https://[::1]/x", "IP-literal hosts"),
    ],
)
def test_uri_pattern_syntax_errors_name_the_problem(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError, match=problem.replace("*", r"\*")):
        compile_pattern(URI, pattern)


def test_uri_templates_substitute_literally() -> None:
    pattern = "spiffe://cluster.local/ns/${sa.namespace}/sa/${sa.name}"
    variables = {"sa.namespace": "prod", "sa.name": "web"}
    assert matches(URI, pattern, "spiffe://cluster.local/ns/prod/sa/web", variables)
    assert not matches(URI, pattern, "spiffe://cluster.local/ns/dev/sa/web", variables)
    assert not matches(URI, pattern, "spiffe://cluster.local/ns/prod/sa/web", {})


# --- email -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*@example.com", "alice@example.com", True),
        ("*@example.com", "@example.com", False),
        ("*@example.com", "alice@EXAMPLE.com", True),
        ("Alice@example.com", "alice@example.com", False),
        ("alice@*.example.com", "alice@mail.example.com", True),
        ("alice@*.example.com", "alice@a.mail.example.com", False),
        ("alice@**.example.com", "alice@a.mail.example.com", True),
        ("*@example.com", "a@b@example.com", False),
        ("*@example.com", "alice.example.com", False),
    ],
)
def test_email_local_part_is_case_sensitive_and_domain_is_dns(
    pattern: str, value: str, expected: bool
) -> None:
    assert matches(EMAIL, pattern, value) is expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("example.com", "exactly one '@'"),
        ("a@b@example.com", "exactly one '@'"),
        ("@example.com", "empty local part"),
        ("alice@", "empty domain"),
        ("alice@example..com", "empty label in domain"),
    ],
)
def test_email_pattern_syntax_errors_name_the_problem(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError, match=problem):
        compile_pattern(EMAIL, pattern)


# --- glob, service account, signer -------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("system:node:*", "system:node:worker-1", True),
        ("system:node:*", "system:node:", False),
        ("*", "anything at all / with : and .", True),
        ("*", "", False),
        ("Acme*", "acme corp", False),
        ("a*c", "a/b.c", True),
        ("**", "a", False),
        ("**", "ab", True),
    ],
)
def test_glob_star_is_one_or_more_of_any_character(
    pattern: str, value: str, expected: bool
) -> None:
    assert matches(GLOB, pattern, value) is expected


def test_empty_glob_pattern_is_rejected() -> None:
    with pytest.raises(PatternError, match="empty pattern"):
        compile_pattern(GLOB, "")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("default/web", "system:serviceaccount:default:web", True),
        ("default/*", "system:serviceaccount:default:web", True),
        ("*/web", "system:serviceaccount:kube-system:web", True),
        ("*/*", "system:serviceaccount:a:b", True),
        ("default/*", "system:serviceaccount:other:web", False),
        ("default/*", "system:serviceaccount:default:", False),
        ("*/*", "system:serviceaccount:a:b:c", False),
        ("default/web", "default/web", False),
        ("default/web", "system:node:web", False),
    ],
)
def test_service_account_pattern_matches_usernames(
    pattern: str, value: str, expected: bool
) -> None:
    assert matches(SA, pattern, value) is expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("default", "exactly one '/'"),
        ("a/b/c", "exactly one '/'"),
        ("/web", "both parts non-empty"),
        ("default/", "both parts non-empty"),
        ("a:b/c", "':' cannot appear"),
    ],
)
def test_service_account_pattern_syntax_errors(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError, match=problem):
        compile_pattern(SA, pattern)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("example.com/*", "example.com/serving", True),
        ("example.com/*", "example.com/a/b", False),
        ("example.com/*", "example.com/", False),
        ("*.example.com/x", "a.b.example.com/x", True),
        ("kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client", True),
        ("kubernetes.io/kube-apiserver-client", "kubernetes.io/Kube-apiserver-client", False),
    ],
)
def test_signer_star_never_spans_a_slash(pattern: str, value: str, expected: bool) -> None:
    assert matches(SIGNER, pattern, value) is expected


def test_literal_chars_ignore_wildcards_and_templates() -> None:
    assert compile_pattern(SIGNER, "example.com/*").literal_chars == len("example.com/")
    assert compile_pattern(SIGNER, "example.com/serving").literal_chars == 19
    assert compile_pattern(DNS, "**.${node}.x").literal_chars == 3
    assert compile_pattern(DNS, "a.example.com").is_literal
    assert not compile_pattern(DNS, "*.example.com").is_literal
    assert not compile_pattern(GLOB, "${username}").is_literal


def test_pattern_reports_the_variables_it_uses() -> None:
    pattern = compile_pattern(URI, "spiffe://${node}/ns/${sa.namespace}/sa/${sa.name}")
    assert pattern.variables == {"node", "sa.namespace", "sa.name"}
    assert compile_pattern(DNS, "a.example.com").variables == frozenset()


def test_compile_pattern_is_cached_and_patterns_compare_by_text() -> None:
    assert compile_pattern(DNS, "a.example.com") is compile_pattern(DNS, "a.example.com")
    assert compile_pattern(DNS, "a.b") != compile_pattern(GLOB, "a.b")


# --- templates ---------------------------------------------------------------------------


def test_node_is_defined_only_for_node_users_in_the_nodes_group() -> None:
    node = Requester("system:node:worker-1", ("system:nodes", "system:authenticated"))
    assert template_variables(node, "s")["node"] == "worker-1"
    assert "node" not in template_variables(Requester("system:node:worker-1"), "s")
    assert "node" not in template_variables(Requester("system:node:", ("system:nodes",)), "s")
    assert "node" not in template_variables(Requester("alice", ("system:nodes",)), "s")


def test_service_account_variables_need_both_parts() -> None:
    sa = template_variables(Requester("system:serviceaccount:prod:web"), "s")
    assert (sa["sa.namespace"], sa["sa.name"]) == ("prod", "web")
    for username in (
        "system:serviceaccount:prod",
        "system:serviceaccount::web",
        "system:serviceaccount:prod:",
        "system:serviceaccount:prod:web:x",
    ):
        assert "sa.name" not in template_variables(Requester(username), "s")


def test_username_and_signer_name_are_always_defined() -> None:
    variables = template_variables(Requester("alice"), "example.com/serving")
    assert variables == {"username": "alice", "signerName": "example.com/serving"}


def test_undefined_variable_matches_nothing() -> None:
    variables = template_variables(Requester("alice"), "example.com/x")
    assert not dns("${node}.example.com", "alice.example.com", variables)
    assert not matches(GLOB, "${sa.name}", "alice", variables)
    assert not matches(GLOB, "${username}", "alice")


def test_substituted_username_matches_literally() -> None:
    assert not matches(GLOB, "${username}", "abc", {"username": "a*"})
    assert matches(GLOB, "${username}", "a*", {"username": "a*"})
    assert not dns("${username}.example.com", "abc.example.com", {"username": "a*"})
    assert dns("${username}.example.com", "a*.example.com", {"username": "a*"})
    assert not matches(EMAIL, "${username}@example.com", "abc@example.com", {"username": "a*"})


def test_node_template_may_contain_dots() -> None:
    variables = {"node": "ip-10-0-0-1.ec2.internal"}
    pattern = "${node}.*.internal"
    assert dns(pattern, "ip-10-0-0-1.ec2.internal.pods.internal", variables)
    assert dns(pattern, "IP-10-0-0-1.EC2.internal.x.internal", variables)
    assert not dns(pattern, "ip-10-0-0-1.ec2.internal.a.b.internal", variables)
    assert not dns(pattern, "ip-10-0-0-2.ec2.internal.pods.internal", variables)


def test_templates_combine_with_wildcards_in_one_label() -> None:
    variables = {"node": "worker-1"}
    assert dns("*-${node}.example.com", "pod-worker-1.example.com", variables)
    assert not dns("*-${node}.example.com", "-worker-1.example.com", variables)
    assert matches(
        SA, "${sa.namespace}/*", "system:serviceaccount:prod:web", {"sa.namespace": "prod"}
    )


def test_signer_name_template() -> None:
    variables = {"signerName": "example.com/serving"}
    assert matches(GLOB, "${signerName}", "example.com/serving", variables)


# --- linear time -------------------------------------------------------------------------

PATHOLOGICAL = "*a*a*a*a*a*a*a*a*a*a*b"


def test_pathological_glob_pattern_finishes_without_backtracking() -> None:
    assert not matches(GLOB, PATHOLOGICAL, "a" * 60_000)


def test_pathological_dns_label_pattern_finishes_without_backtracking() -> None:
    assert not dns(PATHOLOGICAL, "a" * 60_000)
    assert not dns(f"{PATHOLOGICAL}.example.com", "a" * 60_000 + ".example.com")


def test_pathological_uri_path_pattern_finishes_without_backtracking() -> None:
    value = "spiffe://example.org/" + "a/" * 3_000 + "b"
    assert not matches(URI, "spiffe://example.org/**/a/**/a/**/a/**/a/**/c", value)
    assert matches(URI, "spiffe://example.org/**/a/**/a/**/b", value)


# --- properties --------------------------------------------------------------------------

labels = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=8)
names = st.lists(labels, min_size=1, max_size=5).map(".".join)


@settings(deadline=None)
@given(name=names, other=names)
def test_literal_dns_pattern_matches_exactly_itself(name: str, other: str) -> None:
    pattern = compile_pattern(DNS, name)
    assert pattern.is_literal
    assert pattern.matches(name)
    assert pattern.matches(name.upper())
    assert pattern.matches(name.swapcase())
    assert pattern.matches(other) is (other.lower() == name.lower())


@settings(deadline=None)
@given(text=st.text(min_size=1), other=st.text())
def test_literal_glob_pattern_matches_exactly_itself(text: str, other: str) -> None:
    assume("*" not in text and "${" not in text)
    pattern = compile_pattern(GLOB, text)
    assert pattern.is_literal
    assert pattern.matches(text)
    assert pattern.matches(other) is (other == text)


@settings(deadline=None)
@given(suffix=names, prefix=st.lists(labels, min_size=2, max_size=4))
def test_single_star_never_matches_a_value_with_an_extra_dot(
    suffix: str, prefix: list[str]
) -> None:
    assert not dns(f"*.{suffix}", ".".join([*prefix, suffix]))


@settings(deadline=None)
@given(suffix=names, value=names)
def test_double_star_matches_iff_value_ends_with_suffix_after_a_label(
    suffix: str, value: str
) -> None:
    expected = value.lower().endswith("." + suffix.lower())
    assert dns(f"**.{suffix}", value) is expected


@settings(deadline=None)
@given(suffix=names, prefix=st.lists(labels, min_size=1, max_size=4))
def test_double_star_matches_any_label_prefix(suffix: str, prefix: list[str]) -> None:
    assert dns(f"**.{suffix}", ".".join([*prefix, suffix]))
    assert not dns(f"**.{suffix}", suffix)


def _oracle(pattern: str, star: str) -> re.Pattern[str]:
    return re.compile("".join(star if c == "*" else re.escape(c) for c in pattern), re.DOTALL)


@settings(deadline=None)
@given(pattern=st.text(alphabet="ab*/", min_size=1, max_size=10), value=st.text("ab/", max_size=12))
def test_glob_and_signer_agree_with_a_regex_oracle(pattern: str, value: str) -> None:
    glob = _oracle(pattern, ".+").fullmatch(value) is not None
    signer = _oracle(pattern, "[^/]+").fullmatch(value) is not None
    assert matches(GLOB, pattern, value) is glob
    assert matches(SIGNER, pattern, value) is signer


@settings(deadline=None)
@given(
    labels=st.lists(st.text(alphabet="ab*", min_size=1, max_size=3), min_size=1, max_size=3),
    value=st.text("aAb.", max_size=12),
)
def test_dns_agrees_with_a_regex_oracle(labels: list[str], value: str) -> None:
    pattern = ".".join(labels)
    try:
        compiled = compile_pattern(DNS, pattern)
    except PatternError:
        reject()
    parts = [_oracle(label, "[^.]+").pattern for label in labels]
    if labels[0] == "**":
        parts[0] = r"[^.]+(?:\.[^.]+)*"
    oracle = re.compile(r"\.".join(parts), re.IGNORECASE)
    assert compiled.matches(value) is (oracle.fullmatch(value) is not None)


ANY_KIND_PATTERNS = [
    (DNS, "**.example.com"),
    (DNS, "a*b.${node}"),
    (IP, "10.0.0.0/8"),
    (IP, "fd00::/8"),
    (URI, "spiffe://*.org/ns/*/**"),
    (URI, "https://u@h:1/p?q#f"),
    (EMAIL, "*@**.example.com"),
    (GLOB, "*a*${username}"),
    (SA, "*/*"),
    (SIGNER, "*/*"),
]


@settings(deadline=None)
@given(value=st.text())
def test_matches_never_raises_on_arbitrary_values(value: str) -> None:
    variables = {"node": "n.x", "username": "*"}
    for kind, pattern in ANY_KIND_PATTERNS:
        assert isinstance(matches(kind, pattern, value, variables), bool)


@settings(deadline=None)
@given(value=st.text(alphabet="ab*./:@[]%#?${}", max_size=30))
def test_matches_never_raises_on_punctuation_heavy_values(value: str) -> None:
    for kind, pattern in ANY_KIND_PATTERNS:
        assert isinstance(matches(kind, pattern, value, {"node": "a"}), bool)
