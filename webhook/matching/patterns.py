"""Compiled patterns: compile_pattern turns (kind, text) into a Pattern, once per text, for every
kind (DNS, IP, URI, email, glob, service account, signer); Pattern.matches and first_match match
values one pattern at a time. The URI, email and service-account forms are split here into the
fields webhook.matching.fields matches."""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import TypeAlias
from urllib.parse import SplitResult, urlsplit

from webhook.errors import PatternError
from webhook.matching.fields import (
    Field,
    Var,
    Wild,
    _SyntaxError,
    dns_field,
    literal_field,
    skeleton_of,
    tokenize,
)
from webhook.matching.ip import IpMatcher, compile_ip
from webhook.matching.variables import split_service_account


class PatternKind(StrEnum):
    DNS = "dns"
    IP = "ip"
    URI = "uri"
    EMAIL = "email"
    GLOB = "glob"
    SERVICE_ACCOUNT = "serviceAccount"
    SIGNER = "signer"


@dataclass(frozen=True, slots=True)
class _ServiceAccountMatcher:
    namespace: Field
    name: Field

    def match(self, value: str, variables: Mapping[str, str]) -> bool:
        account = split_service_account(value)
        return account is not None and (
            self.namespace.match(account[0], variables) and self.name.match(account[1], variables)
        )


@dataclass(frozen=True, slots=True)
class _EmailMatcher:
    local: Field
    domain: Field

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
    userinfo: Field | None
    host: Field
    port: str | None
    path: Field
    query: Field
    fragment: Field

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


NO_VARIABLES: Mapping[str, str] = {}
Matcher: TypeAlias = IpMatcher | Field | _ServiceAccountMatcher | _EmailMatcher | _UriMatcher


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
    path = tokenize(parts.path, wild=True, dstar_sep="/")
    for segment in skeleton_of(path).split("/"):
        if "**" in segment and segment != "**":
            raise _SyntaxError("'**' is allowed only as a whole path segment")
    return _UriMatcher(
        scheme=parts.scheme,
        userinfo=None if userinfo is None else literal_field(userinfo),
        host=dns_field(host, "host"),
        port=port,
        path=Field(path, "/"),
        query=literal_field(parts.query),
        fragment=literal_field(parts.fragment),
    )


def _compile_email(text: str) -> _EmailMatcher:
    if text.count("@") != 1:
        raise _SyntaxError("must contain exactly one '@' (local@domain)")
    local, _, domain = text.partition("@")
    if not local:
        raise _SyntaxError("empty local part")
    return _EmailMatcher(Field(tokenize(local, wild=True)), dns_field(domain, "domain"))


def _compile_service_account(text: str) -> _ServiceAccountMatcher:
    namespace, sep, name = text.partition("/")
    if not sep or "/" in name or not namespace or not name:
        raise _SyntaxError("expected 'namespace/name': exactly one '/', both parts non-empty")
    namespace_tokens = tokenize(namespace, wild=True)
    name_tokens = tokenize(name, wild=True)
    if ":" in skeleton_of(namespace_tokens) + skeleton_of(name_tokens):
        raise _SyntaxError("':' cannot appear in a namespace or a service account name")
    return _ServiceAccountMatcher(Field(namespace_tokens, ":"), Field(name_tokens, ":"))


def _compile(kind: PatternKind, text: str) -> Matcher:
    if kind is PatternKind.IP:
        return compile_ip(text)
    if kind is PatternKind.URI:
        return _compile_uri(text)
    if kind is PatternKind.EMAIL:
        return _compile_email(text)
    if kind is PatternKind.SERVICE_ACCOUNT:
        return _compile_service_account(text)
    if kind is PatternKind.DNS:
        return dns_field(text)
    if not text:
        raise _SyntaxError("empty pattern")
    sep = "/" if kind is PatternKind.SIGNER else None
    return Field(tokenize(text, wild=True), sep)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern; build it with compile_pattern. Equal when kind and text are equal."""

    kind: PatternKind
    text: str
    variables: frozenset[str] = field(compare=False)
    literal_chars: int = field(compare=False)
    is_literal: bool = field(compare=False)
    matcher: Matcher = field(compare=False, repr=False)

    def matches(self, value: str, variables: Mapping[str, str] | None = None) -> bool:
        """False (never an exception) for any value; an undefined variable matches nothing."""
        defined = variables if variables is not None else NO_VARIABLES
        for name in self.variables:
            if name not in defined:
                return False
        return self.matcher.match(value, defined)

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
    tokens = [t for f in [matcher, *parts] if isinstance(f, Field) for t in f.tokens]
    variables = frozenset(t.name for t in tokens if isinstance(t, Var))
    if isinstance(matcher, IpMatcher):
        is_literal = matcher.network.num_addresses == 1
        literal_chars = len(text)
    else:
        is_literal = not variables and not any(isinstance(t, Wild) for t in tokens)
        literal_chars = len(text) - sum(
            len(t.name) + 3 if isinstance(t, Var) else len(t.value)
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
