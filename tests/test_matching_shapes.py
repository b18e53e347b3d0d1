"""The string-comparison shapes of webhook.matching (literal, `*.tail`, `**.tail`, `*`) and the
integer IP matcher agree with the reference matchers on generated patterns and values, and
stay linear in the value."""

from __future__ import annotations

import ipaddress
import time

from hypothesis import given, reject, settings
from hypothesis import strategies as st

from webhook.errors import PatternError
from webhook.matching.fields import Field
from webhook.matching.ip import IpMatcher, address_number
from webhook.matching.lists import PatternList
from webhook.matching.patterns import PatternKind, compile_pattern, first_match

DNS = PatternKind.DNS
# Labels and template variables whose values bring dots, stars, case and emptiness.
dns_labels = st.sampled_from(["a", "B", "ab", "*", "a*", "**", "${node}", "${username}", "x-1"])
variable_values = st.text(alphabet="aAb.*-", max_size=6)
dns_values = st.text(alphabet="aAbB.*-1x", max_size=14)


def _fields(kind: PatternKind, text: str) -> list[Field]:
    matcher = compile_pattern(kind, text).matcher
    if isinstance(matcher, Field):
        return [matcher]
    return [v for v in (getattr(matcher, n) for n in matcher.__slots__) if isinstance(v, Field)]


@settings(deadline=None, max_examples=400)
@given(
    labels=st.lists(dns_labels, min_size=1, max_size=4),
    node=variable_values,
    username=variable_values,
    value=dns_values,
)
def test_dns_shapes_agree_with_the_segment_matcher(
    labels: list[str], node: str, username: str, value: str
) -> None:
    try:
        (field,) = _fields(DNS, ".".join(labels))
    except PatternError:
        reject()
    for variables in ({"node": node, "username": username}, {"node": node}, {}):
        assert field.match(value, variables) is field.match_segments(value, variables)
        # The value built from the pattern itself, so that matches are common too.
        built = ".".join(variables.get(label[2:-1], label) for label in labels).replace("*", "q")
        for candidate in (built, "z." + built, "z..y." + built, "." + built, built.upper()):
            assert field.match(candidate, variables) is field.match_segments(candidate, variables)


@settings(deadline=None, max_examples=300)
@given(
    pattern=st.text(alphabet="ab*:/", min_size=1, max_size=6),
    value=st.text(alphabet="ab:/", max_size=8),
    kind=st.sampled_from([PatternKind.GLOB, PatternKind.SIGNER, PatternKind.SERVICE_ACCOUNT]),
)
def test_other_kinds_agree_with_the_segment_matcher(
    pattern: str, value: str, kind: PatternKind
) -> None:
    try:
        fields = _fields(kind, pattern)
    except PatternError:
        reject()
    for field in fields:
        for part in (value, *value.split("/")):
            assert field.match(part, {}) is field.match_segments(part, {})


def _reference_ip(network: str, value: str) -> bool:
    net = ipaddress.ip_network(network)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            net = ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return address.version == net.version and address in net


ip_values = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.integers(0, 2**32 - 1).map(lambda n: f"::ffff:{ipaddress.IPv4Address(n)}"),
    st.sampled_from(["01.2.3.4", "1.2.3", "fe80::1%eth0", "::ffff:10.1.2.3", "10.0.0.1 ", ""]),
)
networks = st.sampled_from(
    ["10.0.0.0/8", "fd00::/8", "::ffff:10.0.0.0/104", "0.0.0.0/0", "::/0", "10.1.2.3/32"]
)


@settings(deadline=None, max_examples=400)
@given(network=networks, value=ip_values)
def test_integer_ip_matcher_agrees_with_ipaddress(network: str, value: str) -> None:
    matcher = compile_pattern(PatternKind.IP, network).matcher
    assert isinstance(matcher, IpMatcher)
    assert matcher.match(value, {}) is _reference_ip(network, value)


def test_address_number_reads_mapped_addresses_as_ipv4() -> None:
    assert address_number("::ffff:10.1.2.3") == (4, int(ipaddress.IPv4Address("10.1.2.3")))
    assert address_number("::ffff:a01:203") == (4, int(ipaddress.IPv4Address("10.1.2.3")))
    assert address_number("fd00::1") == (6, int(ipaddress.IPv6Address("fd00::1")))
    assert address_number("01.2.3.4") is None


def _seconds(pattern: str, value: str) -> float:
    compiled = compile_pattern(DNS, pattern)
    listed = PatternList((compile_pattern(DNS, "${node}.x"), compiled))
    start = time.perf_counter()
    for _ in range(20):
        compiled.matches(value)
        listed.first(value, {"node": "n"})
    return time.perf_counter() - start


def test_shapes_stay_linear_in_the_value() -> None:
    """Ten times the value costs well under a hundred times as much (a quadratic matcher
    would): a ratio, measured several times, the best taken."""
    for pattern in ("**.example.com", "*.example.com", "a.example.com"):
        short = "a." * 5_000 + "b.example.com"
        long = "a." * 50_000 + "b.example.com"
        ratio = min(_seconds(pattern, long) / max(_seconds(pattern, short), 1e-9) for _ in range(5))
        assert ratio < 40, (pattern, ratio)


POOL = [
    (DNS, "a.example"),
    (DNS, "A.Example"),
    (DNS, "*.example"),
    (DNS, "**.example"),
    (DNS, "${node}.example"),
    (DNS, "*.${node}.example"),
    (DNS, "a*.example"),
    (PatternKind.IP, "10.0.0.0/8"),
    (PatternKind.IP, "10.1.2.3"),
    (PatternKind.IP, "fd00::/8"),
    (PatternKind.GLOB, "bench"),
    (PatternKind.GLOB, "b*"),
    (PatternKind.GLOB, "${username}"),
    (PatternKind.EMAIL, "*@example"),
    (PatternKind.SERVICE_ACCOUNT, "bench/*"),
]
VALUES = [
    "a.example",
    "A.EXAMPLE",
    "n.example",
    "x.n.example",
    "b.a.example",
    "example",
    "10.1.2.3",
    "10.9.9.9",
    "fd00::1",
    "::ffff:10.1.2.3",
    "bench",
    "bx",
    "u@example",
    "system:serviceaccount:bench:x",
    "",
]


@settings(deadline=None, max_examples=400)
@given(
    chosen=st.lists(st.sampled_from(POOL), max_size=6),
    value=st.sampled_from(VALUES),
    defined=st.booleans(),
)
def test_pattern_list_finds_the_pattern_first_match_finds(
    chosen: list[tuple[PatternKind, str]], value: str, defined: bool
) -> None:
    patterns = tuple(compile_pattern(kind, text) for kind, text in chosen)
    variables = {"node": "n", "username": "bench"} if defined else {}
    expected = first_match(patterns, value, variables)
    assert PatternList(patterns).first(value, variables) is expected


@settings(deadline=None, max_examples=400)
@given(
    lists=st.lists(st.lists(dns_labels, min_size=1, max_size=4), min_size=1, max_size=6),
    node=variable_values,
    username=variable_values,
    values=st.lists(dns_values, min_size=1, max_size=4),
)
def test_dns_lists_find_the_pattern_first_match_finds(
    lists: list[list[str]], node: str, username: str, values: list[str]
) -> None:
    """The pattern PatternList finds is first_match's, whatever the variables, also when one
    list is asked with several reviews' variables in turn (the fields' memos)."""
    patterns = []
    for labels in lists:
        try:
            patterns.append(compile_pattern(DNS, ".".join(labels)))
        except PatternError:
            continue
    if not patterns:
        reject()
    compiled = PatternList(tuple(patterns))
    reviews = [{"node": node, "username": username}, {"node": node}, {}, {"node": username}]
    for variables in reviews + reviews[::-1]:
        for value in values:
            built = [
                ".".join(variables.get(label[2:-1], label) for label in labels).replace("*", "q")
                for labels in lists
            ]
            near = [w + b for b in built for w in ("", "z.", "z.y.", "z..y.", ".", "z.y..")]
            for candidate in (value, value.upper(), *near, *(b.upper() for b in built)):
                expected = first_match(tuple(patterns), candidate, variables)
                assert compiled.first(candidate, variables) is expected, (candidate, variables)
