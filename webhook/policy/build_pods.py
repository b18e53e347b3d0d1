"""Build `spec.podCertificates` (a PodCertificates) for PolicyBuilder, recording its problems.

Owns what is particular to PodCertificateRequests: the default requesters (nodes), whether
they admit only nodes (`nodes_only`), the scoping of templates (pod variables only in
`issued`, `${node}` there only for nodes), annotation keys as Kubernetes accepts them, and
pod lifetimes. Identity lists, key rules and CA bundles are the PolicyBuilder's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from webhook.matching.patterns import Pattern, PatternKind
from webhook.matching.variables import POD_VARIABLES
from webhook.policy.model import Lifetime, PodCertificates, PodIssued, Subjects
from webhook.policy.schema import SUBJECT_ATTRIBUTES, parse_duration
from webhook.policy.source import PathKey
from webhook.sankinds import SAN_KINDS

if TYPE_CHECKING:
    from webhook.policy.build import PolicyBuilder

PATH: PathKey = ("spec", "podCertificates")
NODE_USER = "system:node:"
# Kubernetes refuses a pod certificate that lives less than an hour
# (pkg/apis/certificates/validation/validation.go, ValidatePodCertificateRequestStatusUpdate).
MIN_POD_LIFETIME = 3600
# ValidateUserAnnotations: IsDomainPrefixedKey on the lower-cased key, a label key with a
# DNS-1123 subdomain prefix (k8s.io/apimachinery/pkg/api/validate/content).
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_KEY_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NO_VARIABLES: frozenset[str] = frozenset()


def build_pod_certificates(builder: PolicyBuilder, raw: object) -> PodCertificates | None:
    """The PodCertificates of `spec.podCertificates`, or None when the policy has none."""
    if not isinstance(raw, dict):
        return None
    requesters = builder.subjects(
        _mapping(builder.field(raw, PATH, "requesters")), (*PATH, "requesters")
    )
    requesters = requesters if requesters is not None else Subjects()
    nodes_only = nodes_only_requesters(requesters)
    pods = _mapping(raw.get("pods"))
    return PodCertificates(
        requesters=requesters,
        nodes_only=nodes_only,
        namespaces=_optional_patterns(builder, pods, "namespaces", PatternKind.GLOB),
        service_accounts=_optional_patterns(
            builder, pods, "serviceAccounts", PatternKind.SERVICE_ACCOUNT
        ),
        keys=builder.keys(builder.field(raw, PATH, "keys"), (*PATH, "keys")),
        max_expiration_seconds=_seconds(builder, raw, "maxExpirationSeconds", PATH),
        annotations=_annotations(
            builder, _mapping(_mapping(raw.get("annotations")).get("allowed"))
        ),
        issued=_issued(builder, _mapping(raw.get("issued")), nodes_only),
        issuers=None
        if raw.get("issuers") is None
        else builder.subjects(_mapping(raw["issuers"]), (*PATH, "issuers")),
        ca_certificates_der=builder.ca_bundle(raw, PATH),
    )


def nodes_only_requesters(requesters: Subjects) -> bool:
    """`users` is given and every pattern starts with the literal `system:node:` (a glob's
    `*` can only follow it), so every creator admitted is a node: the API server's
    NodeRestriction lets a node create PodCertificateRequests only for its own pods, and
    ${node} (spec.nodeName) names the creator when /status is judged."""
    users = requesters.users
    return users is not None and all(p.text.startswith(NODE_USER) for p in users)


def annotation_key_problem(key: str) -> str | None:
    """Why Kubernetes would refuse `key` in spec.unverifiedUserAnnotations, or None."""
    lowered = key.lower()  # ValidateUserAnnotations lower-cases the key first
    prefix, slash, name = lowered.partition("/")
    if not slash or "/" in name:
        return "it must be a domain-prefixed key such as 'example.com/audience' (exactly one '/')"
    if not prefix or len(prefix) > 253 or not _SUBDOMAIN.fullmatch(prefix):
        return (
            f"its prefix {prefix!r} must be a DNS subdomain of at most 253 characters "
            "(lower-case letters, digits, '-' and '.', such as 'example.com')"
        )
    if not name or len(name) > 63 or not _KEY_NAME.fullmatch(name):
        return (
            f"its name {key.partition('/')[2]!r} must be 1 to 63 letters, digits, '-', '_' or "
            "'.', starting and ending with a letter or digit"
        )
    return None


def _annotations(
    builder: PolicyBuilder, allowed: Mapping[str, object]
) -> dict[str, tuple[Pattern, ...]]:
    path: PathKey = (*PATH, "annotations", "allowed")
    out = {}
    for key, values in allowed.items():
        problem = annotation_key_problem(key)
        if problem is not None:
            builder.problem(
                (*path, key),
                f"annotation key {key!r} can never be sent (Kubernetes refuses it in "
                f"unverifiedUserAnnotations): {problem}",
            )
            continue
        out[key] = builder.patterns(values, (*path, key), PatternKind.GLOB, variables=_NO_VARIABLES)
    return out


def _issued(builder: PolicyBuilder, raw: Mapping[str, object], nodes_only: bool) -> PodIssued:
    path: PathKey = (*PATH, "issued")
    variables = POD_VARIABLES if nodes_only else POD_VARIABLES - {"node"}
    misplaced = _issued_misplaced(nodes_only)
    sans = {
        kind.attribute: builder.patterns(
            raw.get(kind.key),
            (*path, kind.key),
            PatternKind(kind.pattern),
            variables=variables,
            misplaced=misplaced,
        )
        for kind in SAN_KINDS
    }
    subject = {
        attribute: builder.patterns(
            values,
            (*path, "subject", attribute),
            PatternKind.GLOB,
            variables=variables,
            misplaced=misplaced,
        )
        for attribute, values in _mapping(raw.get("subject")).items()
        if attribute in SUBJECT_ATTRIBUTES
    }
    lifetime_path: PathKey = (*path, "lifetime")
    lifetime = _mapping(raw.get("lifetime"))
    low = _seconds(builder, lifetime, "min", lifetime_path, MIN_POD_LIFETIME)
    high = _seconds(builder, lifetime, "max", lifetime_path, MIN_POD_LIFETIME)
    if low is not None and high is not None and low > high:
        builder.problem(
            (*lifetime_path, "min"),
            f"min {lifetime['min']!r} is longer than max {lifetime['max']!r}",
        )
    usages = raw.get("usages")
    return PodIssued(
        **sans,
        subject=subject,
        usages=frozenset(u for u in usages if isinstance(u, str))
        if isinstance(usages, list)
        else frozenset(),
        lifetime=Lifetime(min=low, max=high, clamp=False),
    )


def _issued_misplaced(nodes_only: bool) -> Callable[[str, str], str]:
    pod = ", ".join(f"${{{name}}}" for name in sorted(POD_VARIABLES - {"node"}))

    def misplaced(variable: str, text: str) -> str:
        if variable == "node":
            return (
                f"${{node}} in {text!r} needs requesters that admit only nodes (users: "
                '["system:node:*"]): only then is the creator, the node in spec.nodeName, '
                "known when the signer writes /status"
                + ("" if nodes_only else "; these requesters admit others")
            )
        # Outside POD_VARIABLES, a known variable is a requester's (the tokenizer refused others).
        node = ", ${node}" if nodes_only else " (and ${node} when requesters admit only nodes)"
        return (
            f"${{{variable}}} in {text!r} is a CSR requester's template; "
            f"podCertificates.issued patterns may use {pod}{node}"
        )

    return misplaced


def _optional_patterns(
    builder: PolicyBuilder, raw: Mapping[str, object], key: str, kind: PatternKind
) -> tuple[Pattern, ...] | None:
    if key not in raw:
        return None
    return builder.patterns(raw[key], (*PATH, "pods", key), kind, variables=_NO_VARIABLES)


def _seconds(
    builder: PolicyBuilder,
    raw: Mapping[str, object],
    key: str,
    path: PathKey,
    minimum: int = 0,
) -> int | None:
    if raw.get(key) is None:
        return None
    try:
        seconds = parse_duration(raw[key])
    except ValueError as exc:
        builder.problem((*path, key), str(exc))
        return None
    if seconds < minimum:
        builder.problem(
            (*path, key),
            f"{raw[key]!r} is shorter than 1h: Kubernetes refuses a pod certificate that lives "
            "less than an hour",
        )
    return seconds


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}
