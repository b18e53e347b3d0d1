"""Pattern matching for policy values (docs/policy-reference.md §7): DNS, IP, URI, email, glob,
account, signer.

Owns pattern syntax, template variables and their literal substitution. Every match runs in
time linear in (pattern length x value length): no regular expression is built from a pattern
and nothing backtracks. Pure Python; must not import Flask or prometheus_client.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from functools import lru_cache
from typing import TypeAlias
from urllib.parse import SplitResult, urlsplit

from webhook.errors import PatternError
from webhook.text import join_shown, show

# The requester's (CSR rules) and the pod's (`podCertificates.issued`); the policy builder
# refuses each outside its place (webhook/policy/build.py).
REQUESTER_VARIABLES: frozenset[str] = frozenset(
    {"username", "node", "sa.namespace", "sa.name", "signerName"}
)
POD_VARIABLES: frozenset[str] = frozenset(
    {"pod.namespace", "pod.name", "pod.uid", "pod.serviceAccountName", "node", "signerName"}
)
TEMPLATE_VARIABLES: frozenset[str] = REQUESTER_VARIABLES | POD_VARIABLES

_NODE_PREFIX = "system:node:"
_NODES_GROUP = "system:nodes"
_SA_PREFIX = "system:serviceaccount:"
_LDH_STAR = frozenset(string.ascii_letters + string.digits + "-*")
# ASCII only: Unicode case mapping would let e.g. KELVIN SIGN (U+212A) match a pattern's "k".
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class PatternKind(StrEnum):
    DNS = "dns"
    IP = "ip"
    URI = "uri"
    EMAIL = "email"
    GLOB = "glob"
    SERVICE_ACCOUNT = "serviceAccount"
    SIGNER = "signer"


@dataclass(frozen=True, slots=True)
class Requester:
    username: str
    groups: tuple[str, ...] = ()


# No name the API server authenticates comes near this; a longer value defines no variable,
# so a pattern using it matches nothing, and a hostile review cannot make every SAN match
# cost the length of a megabyte username.
MAX_VARIABLE_CHARS = 1024


def template_variables(requester: Requester, signer_name: str) -> dict[str, str]:
    """Only the variables defined for this requester; patterns using others match nothing."""
    username = requester.username
    out = {"username": username, "signerName": signer_name}
    node = username.removeprefix(_NODE_PREFIX)
    if username.startswith(_NODE_PREFIX) and node and _NODES_GROUP in requester.groups:
        out["node"] = node
    account = _split_service_account(username)
    if account is not None:
        out["sa.namespace"], out["sa.name"] = account
    # Every other value is part of the username.
    if len(username) <= MAX_VARIABLE_CHARS and len(signer_name) <= MAX_VARIABLE_CHARS:
        return out
    return {name: value for name, value in out.items() if len(value) <= MAX_VARIABLE_CHARS}


def _split_service_account(username: str) -> tuple[str, str] | None:
    # Mirrors k8s.io/apiserver/pkg/authentication/serviceaccount.SplitUsername: exactly two parts.
    if not username.startswith(_SA_PREFIX):
        return None
    namespace, sep, name = username.removeprefix(_SA_PREFIX).partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


class _SyntaxError(Exception):
    """Raised while compiling; compile_pattern turns it into a PatternError naming the pattern."""


class _Wild(Enum):
    STAR = "*"  # one or more characters within a segment
    DSTAR = "**"  # one or more whole non-empty segments


@dataclass(frozen=True, slots=True)
class _Var:
    name: str


_Token: TypeAlias = str | _Var | _Wild
# A segment is DSTAR or literal chunks with an implicit one-or-more `*` between neighbours.
_Segment: TypeAlias = tuple[str, ...] | _Wild


def _tokenize(text: str, *, wild: bool, dstar_sep: str | None = None) -> tuple[_Token, ...]:
    out: list[_Token] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise _SyntaxError("unterminated '${' (expected '${name}')")
            name = text[i + 2 : end]
            if name not in TEMPLATE_VARIABLES:
                known = ", ".join(f"${{{v}}}" for v in sorted(TEMPLATE_VARIABLES))
                raise _SyntaxError(f"unknown template variable '${{{name}}}' (known: {known})")
            token: _Token = _Var(name)
            i = end + 1
        elif wild and text[i] == "*":
            whole = (i == 0 or text[i - 1] == dstar_sep) and text[i + 2 : i + 3] in ("", dstar_sep)
            if dstar_sep is not None and text.startswith("**", i) and whole:
                token, i = _Wild.DSTAR, i + 2
            else:
                token, i = _Wild.STAR, i + 1
        else:
            buf.append(text[i])
            i += 1
            continue
        if buf:
            out.append("".join(buf))
            buf = []
        out.append(token)
    if buf:
        out.append("".join(buf))
    return tuple(out)


def _skeleton(tokens: tuple[_Token, ...]) -> str:
    """The pattern with each template replaced by one letter, for syntax checks."""
    return "".join(
        t if isinstance(t, str) else "x" if isinstance(t, _Var) else t.value for t in tokens
    )


def _match_chunks(chunks: tuple[str, ...], value: str) -> bool:
    """chunks[0] * chunks[1] * ... with `*` = one or more characters.

    Greedy leftmost placement of each middle chunk is optimal (an earlier end leaves every later
    chunk at least as much room): the two-pointer wildcard algorithm, never backtracking.
    """
    if len(chunks) == 1:
        return value == chunks[0]
    first, last = chunks[0], chunks[-1]
    if not value.startswith(first):
        return False
    pos = len(first)
    for chunk in chunks[1:-1]:
        found = value.find(chunk, pos + 1)
        if found < 0:
            return False
        pos = found + len(chunk)
    return len(value) - len(last) >= pos + 1 and value.endswith(last)


def _match_segments(segments: list[_Segment], values: list[str]) -> bool:
    if _Wild.DSTAR not in segments:
        if len(segments) != len(values):
            return False
        for segment, value in zip(segments, values, strict=True):
            if not isinstance(segment, tuple) or not _match_chunks(segment, value):
                return False
        return True
    # reach[j]: the segments so far match values[:j]. O(len(segments) * len(values)) steps.
    reach = [True] + [False] * len(values)
    for segment in segments:
        new = [False] * (len(values) + 1)
        for j, value in enumerate(values, start=1):
            if isinstance(segment, _Wild):
                new[j] = bool(value) and (reach[j - 1] or new[j - 1])
            else:
                new[j] = reach[j - 1] and _match_chunks(segment, value)
        reach = new
    return reach[-1]


def _fold(value: str) -> str:
    """ASCII lower case; str.lower is the same on ASCII text and several times faster."""
    return value.lower() if value.isascii() else value.translate(_ASCII_LOWER)


class _Shape(Enum):
    """The forms of a field matched without segments, each a string comparison or two:
    LITERAL (no wildcard: the value equals the substituted text), STAR (`*` + sep + literal
    tail: one label without sep, then the tail), DSTAR (`**` + sep + literal tail: one or more
    non-empty labels, then the tail), ANY (`*` alone: one or more characters without sep).
    Every other field goes through the segment matcher (_match_segments)."""

    LITERAL = "literal"
    STAR = "star"
    DSTAR = "dstar"
    ANY = "any"


def _shape_of(
    tokens: tuple[_Token, ...], sep: str | None
) -> tuple[_Shape | None, tuple[_Token, ...]]:
    """The shape of a field and the tokens of its literal text (the tail after the wildcard
    and its separator), or (None, ()) when the segment matcher must judge it."""
    wild = [t for t in tokens if isinstance(t, _Wild)]
    if not wild:
        return _Shape.LITERAL, tokens
    if tokens == (_Wild.STAR,):
        return _Shape.ANY, ()
    if len(wild) > 1 or sep is None or len(tokens) < 2:
        return None, ()
    head, after = tokens[0], tokens[1]
    if not isinstance(after, str) or not after.startswith(sep):
        return None, ()
    tail = (after[len(sep) :], *tokens[2:])
    if head is _Wild.STAR:
        return _Shape.STAR, tail
    if head is _Wild.DSTAR:
        return _Shape.DSTAR, tail
    return None, ()


@dataclass(frozen=True, slots=True)
class _Field:
    """One component of a pattern: tokens split into segments on `sep` after substitution.
    Most fields have a _Shape, matched by comparing strings; the others by segments."""

    tokens: tuple[_Token, ...]
    sep: str | None = None
    fold: bool = False
    # Segments of a pattern without template variables, expanded once at compile time.
    static: list[_Segment] | None = field(default=None, compare=False)
    shape: _Shape | None = field(default=None, compare=False)
    # The shape's literal text: tokens (folded when `fold`), or the whole text when static.
    text_tokens: tuple[str | _Var, ...] = field(default=(), compare=False)
    text: str | None = field(default=None, compare=False)
    # The last substitution, (variables, text): a review matches all its values against the
    # same variables. Holding the mapping itself (not its id) means no other mapping can be
    # taken for it; one tuple, replaced whole, so threads never see half of one. A review's
    # variables are never changed once made (template_variables, webhook.pod_context).
    memo: tuple[object, str | None] = field(default=(None, None), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not any(isinstance(token, _Var) for token in self.tokens):
            object.__setattr__(self, "static", self._expand({}))
        shape, tail = _shape_of(self.tokens, self.sep)
        if shape is None:
            return
        parts = tuple(
            (_fold(t) if self.fold else t) if isinstance(t, str) else t
            for t in tail
            if not isinstance(t, _Wild)
        )
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "text_tokens", parts)
        if not any(isinstance(t, _Var) for t in parts):
            object.__setattr__(self, "text", "".join(t for t in parts if isinstance(t, str)))

    def _substitute(self, variables: Mapping[str, str]) -> str | None:
        """The shape's literal text with the variables filled in; None when one is undefined."""
        memo = self.memo
        if memo[0] is variables:
            return memo[1]
        text = self._fill(variables)
        object.__setattr__(self, "memo", (variables, text))
        return text

    def _fill(self, variables: Mapping[str, str]) -> str | None:
        out: list[str] = []
        for token in self.text_tokens:
            if isinstance(token, str):
                out.append(token)
                continue
            text = variables.get(token.name)
            if text is None:
                return None
            out.append(_fold(text) if self.fold else text)
        return "".join(out)

    def match(self, value: str, variables: Mapping[str, str]) -> bool:
        if self.shape is None:
            return self.match_segments(value, variables)
        return self.match_folded(_fold(value) if self.fold else value, variables)

    def match_folded(self, value: str, variables: Mapping[str, str]) -> bool:
        """`match` of a value already folded when the field folds (PatternList folds once)."""
        shape = self.shape
        if shape is None:
            return self.match_segments(value, variables)
        if shape is _Shape.ANY:
            return bool(value) and (self.sep is None or self.sep not in value)
        text = self.text if self.text is not None else self._substitute(variables)
        if text is None:
            return False
        if shape is _Shape.LITERAL:
            return value == text
        sep = self.sep
        assert sep is not None, "STAR and DSTAR shapes have a separator"
        cut = len(value) - len(text) - len(sep)
        if cut <= 0 or not value.endswith(text) or not value.startswith(sep, cut):
            return False
        head = value[:cut]
        if shape is _Shape.STAR:
            return sep not in head
        # DSTAR: one or more labels, none empty.
        return not head.startswith(sep) and not head.endswith(sep) and sep + sep not in head

    def match_segments(self, value: str, variables: Mapping[str, str]) -> bool:
        """The reference matcher, by segments; `match` agrees with it on every input."""
        segments = self.static if self.static is not None else self._expand(variables)
        if segments is None:
            return False
        if self.fold:
            value = value.translate(_ASCII_LOWER)
        return _match_segments(segments, value.split(self.sep) if self.sep else [value])

    def _expand(self, variables: Mapping[str, str]) -> list[_Segment] | None:
        segments: list[_Segment] = []
        chunks: list[str] = []
        current: list[str] = []
        after_dstar = False  # the separator following `**` closes no new segment
        for token in self.tokens:
            if token is _Wild.STAR:
                chunks.append("".join(current))
                current = []
                continue
            if token is _Wild.DSTAR:
                segments.append(token)
                after_dstar = True
                continue
            text = token if isinstance(token, str) else variables.get(token.name)
            if text is None:
                return None
            if self.fold:
                text = text.translate(_ASCII_LOWER)
            # Substituted text is literal; a separator in it must meet a separator in the value.
            first, *rest = text.split(self.sep) if self.sep else [text]
            current.append(first)
            for part in rest:
                if not after_dstar:
                    chunks.append("".join(current))
                    segments.append(tuple(chunks))
                after_dstar = False
                chunks, current = [], [part]
        if not after_dstar:
            chunks.append("".join(current))
            segments.append(tuple(chunks))
        return segments


def _dns_field(text: str, what: str = "") -> _Field:
    tokens = _tokenize(text, wild=True, dstar_sep=".")
    skeleton = _skeleton(tokens)
    where = f" in {what}" if what else ""
    if not skeleton:
        raise _SyntaxError(f"empty {what or 'pattern'}")
    if skeleton.endswith("."):
        raise _SyntaxError(f"trailing dot{where}")
    for index, label in enumerate(skeleton.split(".")):
        if not label:
            raise _SyntaxError(f"empty label{where}")
        if "***" in label:
            raise _SyntaxError("'***' is not a wildcard; use '*' within a label or '**' as a label")
        if "**" in label and (index or label != "**"):
            raise _SyntaxError("'**' is allowed only as the whole left-most label")
        bad = sorted(set(label) - _LDH_STAR)
        if bad:
            raise _SyntaxError(f"invalid character {bad[0]!r} (allowed: letters, digits, '-', '*')")
    return _Field(tokens, ".", fold=True)


def _literal_field(text: str) -> _Field:
    return _Field(_tokenize(text, wild=False))


@dataclass(frozen=True, slots=True)
class _IpMatcher:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    # The network as integers, compared by mask: (version, network address, netmask).
    version: int = field(init=False, compare=False)
    base: int = field(init=False, compare=False)
    mask: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", self.network.version)
        object.__setattr__(self, "base", int(self.network.network_address))
        object.__setattr__(self, "mask", int(self.network.netmask))

    def match(self, value: str, variables: Mapping[str, str]) -> bool:
        address = address_number(value)
        if address is None:
            return False
        return address[0] == self.version and address[1] & self.mask == self.base


@lru_cache(maxsize=4096)
def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a value names, IPv4-mapped IPv6 as IPv4; None when it is no address."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_MAPPED_PREFIX = 0xFFFF << 32


@lru_cache(maxsize=4096)
def address_number(value: str) -> tuple[int, int] | None:
    """(version, integer) of the address `value` names as _address reads it (IPv4-mapped IPv6
    as IPv4), None when it is no address. A value in the form the C library writes back
    unchanged (every IP SAN: the parser renders them from their bytes) is read by
    inet_pton; anything else, by ipaddress."""
    family = socket.AF_INET6 if ":" in value else socket.AF_INET
    try:
        packed = socket.inet_pton(family, value)
        canonical = socket.inet_ntop(family, packed) == value
    except (OSError, ValueError):
        canonical = False
    if not canonical:
        address = _address(value)
        return None if address is None else (address.version, int(address))
    number = int.from_bytes(packed)
    if family == socket.AF_INET:
        return 4, number
    if number >> 32 == 0xFFFF:
        return 4, number - _MAPPED_PREFIX
    return 6, number


@dataclass(frozen=True, slots=True)
class _ServiceAccountMatcher:
    namespace: _Field
    name: _Field

    def match(self, value: str, variables: Mapping[str, str]) -> bool:
        account = _split_service_account(value)
        return account is not None and (
            self.namespace.match(account[0], variables) and self.name.match(account[1], variables)
        )


@dataclass(frozen=True, slots=True)
class _EmailMatcher:
    local: _Field
    domain: _Field

    def match(self, value: str, variables: Mapping[str, str]) -> bool:
        if value.count("@") != 1:
            return False
        local, _, domain = value.partition("@")
        return self.local.match(local, variables) and self.domain.match(domain, variables)


_UriParts: TypeAlias = tuple[SplitResult, str | None, str, str | None]  # userinfo, host, port


def _split_uri(text: str) -> _UriParts | None:
    # urlsplit silently strips leading C0/space and deletes tab/CR/LF anywhere, so a value
    # containing them would be compared as a different URI; such values are refused outright.
    if any(c <= " " or c == "\x7f" for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    userinfo: str | None = None
    port: str | None = None
    hostport = parts.netloc
    if "@" in hostport:
        userinfo, _, hostport = hostport.rpartition("@")
    if ":" in hostport:
        hostport, _, port = hostport.rpartition(":")
    return parts, userinfo, hostport, port


@dataclass(frozen=True, slots=True)
class _UriMatcher:
    scheme: str
    userinfo: _Field | None
    host: _Field
    port: str | None
    path: _Field
    query: _Field
    fragment: _Field

    def match(self, value: str, variables: Mapping[str, str]) -> bool:
        split = _split_uri(value)
        if split is None:
            return False
        parts, userinfo, host, port = split
        if parts.scheme != self.scheme or port != self.port or host.startswith("["):
            return False
        if (userinfo is None) != (self.userinfo is None):
            return False
        if self.userinfo is not None and not self.userinfo.match(userinfo or "", variables):
            return False
        return (
            self.host.match(host, variables)
            and self.path.match(parts.path, variables)
            and self.query.match(parts.query, variables)
            and self.fragment.match(parts.fragment, variables)
        )


_NO_VARIABLES: Mapping[str, str] = {}
_Matcher: TypeAlias = _IpMatcher | _Field | _ServiceAccountMatcher | _EmailMatcher | _UriMatcher


def _compile_ip(text: str) -> _IpMatcher:
    if "${" in text:
        raise _SyntaxError("templates are not allowed in IP patterns")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise _SyntaxError("not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)") from None
        raise _SyntaxError(f"host bits set; the network is {loose}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return _IpMatcher(ipaddress.IPv4Network((mapped, network.prefixlen - 96)))
    return _IpMatcher(network)


def _compile_uri(text: str) -> _UriMatcher:
    split = _split_uri(text)
    if split is None:
        raise _SyntaxError("contains whitespace or a control character, or cannot be parsed")
    parts, userinfo, host, port = split
    if "[" in parts.netloc:
        raise _SyntaxError("IP-literal hosts ('[...]') are not supported in URI patterns")
    if not parts.scheme:
        raise _SyntaxError("missing or invalid scheme (expected scheme://host/path)")
    if not host:
        raise _SyntaxError("missing host (expected scheme://host/path)")
    if port is not None and not all(c in string.digits for c in port):
        raise _SyntaxError(f"port {port!r} is not a number (ports match literally)")
    path = _tokenize(parts.path, wild=True, dstar_sep="/")
    for segment in _skeleton(path).split("/"):
        if "**" in segment and segment != "**":
            raise _SyntaxError("'**' is allowed only as a whole path segment")
    return _UriMatcher(
        scheme=parts.scheme,
        userinfo=None if userinfo is None else _literal_field(userinfo),
        host=_dns_field(host, "host"),
        port=port,
        path=_Field(path, "/"),
        query=_literal_field(parts.query),
        fragment=_literal_field(parts.fragment),
    )


def _compile_email(text: str) -> _EmailMatcher:
    if text.count("@") != 1:
        raise _SyntaxError("must contain exactly one '@' (local@domain)")
    local, _, domain = text.partition("@")
    if not local:
        raise _SyntaxError("empty local part")
    return _EmailMatcher(_Field(_tokenize(local, wild=True)), _dns_field(domain, "domain"))


def _compile_service_account(text: str) -> _ServiceAccountMatcher:
    namespace, sep, name = text.partition("/")
    if not sep or "/" in name or not namespace or not name:
        raise _SyntaxError("expected 'namespace/name': exactly one '/', both parts non-empty")
    namespace_tokens = _tokenize(namespace, wild=True)
    name_tokens = _tokenize(name, wild=True)
    if ":" in _skeleton(namespace_tokens) + _skeleton(name_tokens):
        raise _SyntaxError("':' cannot appear in a namespace or a service account name")
    return _ServiceAccountMatcher(_Field(namespace_tokens, ":"), _Field(name_tokens, ":"))


def _compile(kind: PatternKind, text: str) -> _Matcher:
    if kind is PatternKind.IP:
        return _compile_ip(text)
    if kind is PatternKind.URI:
        return _compile_uri(text)
    if kind is PatternKind.EMAIL:
        return _compile_email(text)
    if kind is PatternKind.SERVICE_ACCOUNT:
        return _compile_service_account(text)
    if kind is PatternKind.DNS:
        return _dns_field(text)
    if not text:
        raise _SyntaxError("empty pattern")
    sep = "/" if kind is PatternKind.SIGNER else None
    return _Field(_tokenize(text, wild=True), sep)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern; build it with compile_pattern. Equal when kind and text are equal."""

    kind: PatternKind
    text: str
    variables: frozenset[str] = field(compare=False)
    literal_chars: int = field(compare=False)
    is_literal: bool = field(compare=False)
    _matcher: _Matcher = field(compare=False, repr=False)

    def matches(self, value: str, variables: Mapping[str, str] | None = None) -> bool:
        """False (never an exception) for any value; an undefined variable matches nothing."""
        defined = variables if variables is not None else _NO_VARIABLES
        for name in self.variables:
            if name not in defined:
                return False
        return self._matcher.match(value, defined)

    def expand(self, variables: Mapping[str, str] | None = None) -> str | None:
        """The pattern text with this requester's template variables filled in, as it is
        matched; None when one of them is undefined for the requester (it matches nothing)."""
        if not self.variables:
            return self.text
        defined = variables if variables is not None else {}
        if not all(name in defined for name in self.variables):
            return None
        # Every `${` of a compiled pattern opens a known variable (compile_pattern refused others).
        parts, start = [], 0
        while (opening := self.text.find("${", start)) >= 0:
            closing = self.text.index("}", opening)
            parts += [self.text[start:opening], defined[self.text[opening + 2 : closing]]]
            start = closing + 1
        parts.append(self.text[start:])
        return "".join(parts)


@lru_cache(maxsize=4096)
def compile_pattern(kind: PatternKind, text: str) -> Pattern:
    kind = PatternKind(kind)
    try:
        matcher = _compile(kind, text)
    except _SyntaxError as exc:
        raise PatternError(kind.value, text, str(exc)) from None
    parts = [getattr(matcher, f.name) for f in dataclasses.fields(matcher)]
    tokens = [t for f in [matcher, *parts] if isinstance(f, _Field) for t in f.tokens]
    variables = frozenset(t.name for t in tokens if isinstance(t, _Var))
    if isinstance(matcher, _IpMatcher):
        is_literal = matcher.network.num_addresses == 1
        literal_chars = len(text)
    else:
        is_literal = not variables and not any(isinstance(t, _Wild) for t in tokens)
        literal_chars = len(text) - sum(
            len(t.name) + 3 if isinstance(t, _Var) else len(t.value)
            for t in tokens
            if not isinstance(t, str)
        )
    return Pattern(kind, text, variables, literal_chars, is_literal, matcher)


def matches(
    kind: PatternKind, pattern: str, value: str, variables: Mapping[str, str] | None = None
) -> bool:
    """Compile (cached) and match; raises PatternError only for a bad pattern."""
    return compile_pattern(kind, pattern).matches(value, variables)


def first_match(
    patterns: Iterable[Pattern], value: str, variables: Mapping[str, str] | None = None
) -> Pattern | None:
    """The first of `patterns` that matches `value`, or None: the one loop every allow and
    deny list runs, so a check hands a whole list to the matcher once per value."""
    for pattern in patterns:
        if pattern.matches(value, variables):
            return pattern
    return None


_Test: TypeAlias = Callable[[str, Mapping[str, str]], bool]


@dataclass(frozen=True, slots=True)
class PatternList:
    """A list of patterns compiled once (at policy load) for `first`, which returns the same
    pattern first_match does: plain literal texts are one dict lookup, IP networks one mask
    test each on the value's integer (read once), DNS fields tried on the value folded once,
    every other pattern by its own matcher, in order."""

    patterns: tuple[Pattern, ...]
    # Literal text (ASCII-folded for DNS) -> the index of the first pattern with that text.
    folded: Mapping[str, int] = field(init=False, repr=False, compare=False)
    exact: Mapping[str, int] = field(init=False, repr=False, compare=False)
    # (index, version, network, mask) of each IP pattern.
    networks: tuple[tuple[int, int, int, int], ...] = field(init=False, repr=False, compare=False)
    # (index, test, takes the folded value) of every other pattern, in order.
    others: tuple[tuple[int, _Test, bool], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded: dict[str, int] = {}
        exact: dict[str, int] = {}
        networks: list[tuple[int, int, int, int]] = []
        others: list[tuple[int, _Test, bool]] = []
        for index, pattern in enumerate(self.patterns):
            matcher = pattern._matcher
            if isinstance(matcher, _IpMatcher):
                networks.append((index, matcher.version, matcher.base, matcher.mask))
            elif not isinstance(matcher, _Field):
                others.append((index, pattern.matches, False))
            elif matcher.shape is _Shape.LITERAL and matcher.text is not None:
                (folded if matcher.fold else exact).setdefault(matcher.text, index)
            elif matcher.fold:
                others.append((index, matcher.match_folded, True))
            else:
                others.append((index, matcher.match, False))
        object.__setattr__(self, "folded", folded)
        object.__setattr__(self, "exact", exact)
        object.__setattr__(self, "networks", tuple(networks))
        object.__setattr__(self, "others", tuple(others))

    def first(self, value: str, variables: Mapping[str, str] | None = None) -> Pattern | None:
        defined = variables if variables is not None else _NO_VARIABLES
        best: int | None = None
        lowered = value  # _fold, inline: every value of every list passes here
        if self.folded or self.others:
            lowered = value.lower() if value.isascii() else value.translate(_ASCII_LOWER)
        if self.folded:
            best = self.folded.get(lowered)
        if self.exact and (index := self.exact.get(value)) is not None:
            best = index if best is None else min(best, index)
        if self.networks and (address := address_number(value)) is not None:
            version, number = address
            for index, net_version, base, mask in self.networks:
                if best is not None and index > best:
                    break
                if net_version == version and number & mask == base:
                    best = index
                    break
        for index, test, takes_folded in self.others:
            if best is not None and index > best:
                break
            if test(lowered if takes_folded else value, defined):
                best = index
                break
        return None if best is None else self.patterns[best]


def show_pattern(pattern: Pattern, variables: Mapping[str, str]) -> str:
    """`'${node}.example.com' (here 'worker-1.example.com')` for a pattern with templates:
    what a person needs to see why a value did not match."""
    shown = show(pattern.text)
    if not pattern.variables:
        return shown
    expanded = pattern.expand(variables)
    if expanded is None:
        missing = sorted(name for name in pattern.variables if name not in variables)
        names = ", ".join(f"${{{name}}}" for name in missing)
        return f"{shown} (matches nothing here: {names} undefined for this requester)"
    return f"{shown} (here {show(expanded)})"


def show_patterns(patterns: Iterable[Pattern], variables: Mapping[str, str]) -> str:
    return join_shown([show_pattern(p, variables) for p in patterns])


@dataclass(frozen=True, slots=True, kw_only=True)
class Subjects:
    """Who: used by `requesters`, `approval.approvers` and `issuance.issuers`."""

    users: tuple[Pattern, ...] | None = None
    groups: tuple[Pattern, ...] | None = None
    service_accounts: tuple[Pattern, ...] | None = None

    def includes(self, requester: Requester) -> bool:
        """True when the requester matches any list given: approvers and issuers name
        alternative identities (the approvers of docs/policy-reference.md §3.8 and the deployment
        manifests list a user and a service account that must both be admitted; no single identity
        can match both)."""
        users = self.users or ()
        groups = self.groups or ()
        accounts = self.service_accounts or ()
        return (
            any(p.matches(requester.username) for p in users)
            or any(p.matches(group) for p in groups for group in requester.groups)
            or any(p.matches(requester.username) for p in accounts)
        )

    def admits(self, requester: Requester) -> bool:
        """True when the requester matches every list given (docs/policy-reference.md §5.2,
        `requesters`)."""
        username = requester.username
        if self.users is not None and first_match(self.users, username) is None:
            return False
        if self.groups is not None:
            for group in requester.groups:
                if first_match(self.groups, group) is not None:
                    break
            else:
                return False
        return (
            self.service_accounts is None
            or first_match(self.service_accounts, username) is not None
        )
