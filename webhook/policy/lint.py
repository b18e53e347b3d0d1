"""Lint warnings for a built SignerPolicy: legal policies that are probably not what was meant.

Each lint is a pure function of the policy and its document's line map yielding warning
`Problem`s; none changes a decision. The checks are syntactic and conservative: they may miss
a case, never invent one. Policy layer: imports model, matching, breadth, coverage, source and
the SAN kinds only; the lints of `podCertificates` are lint_pods'.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from webhook.errors import PatternError
from webhook.matching.patterns import Pattern, PatternKind, compile_pattern
from webhook.matching.variables import Requester
from webhook.policy.breadth import admits_everything, broad_signer, uri_double_star_inside
from webhook.policy.coverage import covers
from webhook.policy.lint_pods import POD_LINTS
from webhook.policy.model import Rule, SignerPolicy, Subjects, ValueRule
from webhook.policy.source import Document, PathKey, Problem, warning
from webhook.sankinds import SAN_KINDS

YEAR = 365 * 86400
_NODE_USER = "system:node:"
_SA_USER = "system:serviceaccount:"

Lint = Callable[[SignerPolicy, Document], Iterator[Problem]]


_warn = warning


def _raw_index(document: Document, path: PathKey, text: str) -> PathKey:
    """The path of `text` in the raw list at `path` (built tuples drop invalid entries)."""
    node: object = document.value
    for part in path:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return path
    if isinstance(node, list) and text in node:
        return (*path, node.index(text))
    return path


def _rule_path(index: int, *rest: str | int) -> PathKey:
    return ("spec", "rules", index, *rest)


# The SAN kinds a node binding's sansFromAddresses restricts (checks/node.py).
_NODE_BOUND = ("dnsNames", "ipAddresses")
# `csr-webhook approve` runs as this ServiceAccount (manifests/: csr-webhook/csr-webhook-approver).
APPROVER = Requester(
    "system:serviceaccount:csr-webhook:csr-webhook-approver",
    ("system:serviceaccounts", "system:serviceaccounts:csr-webhook", "system:authenticated"),
)


def _binds_sans(rule: Rule) -> bool:
    node = rule.constraints.node
    return node is not None and bool(node.sans_from_addresses)


def lint_admits_everything(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """A SAN pattern admitting every value of its kind. A non-empty deny list for that kind
    marks the breadth as deliberate ("any address except these") and silences it."""
    for index, rule in enumerate(policy.rules):
        for kind in SAN_KINDS:
            key = kind.key
            spec: ValueRule | None = getattr(rule.allowed, kind.attribute)
            if spec is None or getattr(policy.deny, kind.attribute):
                continue
            if kind.key in _NODE_BOUND and _binds_sans(rule):
                continue  # every such SAN must be an address of the requesting Node
            for pattern in spec.values:
                what = admits_everything(pattern)
                if what is None:
                    continue
                path = _raw_index(
                    document, _rule_path(index, "allowed", key, "values"), pattern.text
                )
                yield _warn(
                    document,
                    path,
                    f"{pattern.text!r} admits {what}; list the names meant, or add "
                    f"deny.{key} guardrails if the breadth is intended",
                )


def lint_uri_double_star_inside_path(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """`**` before a segment meant to be bound (breadth.uri_double_star_inside)."""
    for index, rule in enumerate(policy.rules):
        for pattern in rule.allowed.uris.values if rule.allowed.uris is not None else ():
            message = uri_double_star_inside(pattern)
            if message is not None:
                where = _rule_path(index, "allowed", "uris", "values")
                yield _warn(document, _raw_index(document, where, pattern.text), message)


def lint_broad_signer(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """A signerNames pattern wider than one domain, or with `**` (breadth.broad_signer)."""
    for pattern in policy.signer_names:
        for message in broad_signer(pattern):
            path = _raw_index(document, ("spec", "signerNames"), pattern.text)
            yield _warn(document, path, message)


def lint_any_usage(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    for index, rule in enumerate(policy.rules):
        if "any" in rule.allowed.usages:
            yield _warn(
                document,
                _raw_index(document, _rule_path(index, "allowed", "usages"), "any"),
                "usage 'any' (anyExtendedKeyUsage) makes a certificate valid for every "
                "purpose; list the usages the workload needs",
            )


def lint_is_ca(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    for index, rule in enumerate(policy.rules):
        if rule.allowed.is_ca:
            yield _warn(
                document,
                _rule_path(index, "allowed", "isCA"),
                f"rule {rule.name!r} lets requesters obtain CA certificates that can sign "
                "others; keep it to a dedicated signer with narrow requesters",
            )


def lint_long_lifetime(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    for index, rule in enumerate(policy.rules):
        high = rule.constraints.lifetime.max
        if high is not None and high > YEAR:
            path = _rule_path(index, "constraints", "lifetime", "max")
            yield _warn(document, path, f"lifetime max {high}s is over a year (365d)")
    high = policy.issuance.max_lifetime
    if high is not None and high > YEAR:
        path = ("spec", "issuance", "maxLifetime")
        yield _warn(document, path, f"maxLifetime {high}s is over a year (365d)")


def _kubernetes_signer(policy: SignerPolicy) -> str | None:
    for pattern in policy.signer_names:
        if pattern.text.count("/") != 1:
            continue  # an error of its own, and it matches no signer
        domain = pattern.text.partition("/")[0]
        try:
            if domain and compile_pattern(PatternKind.GLOB, domain).matches("kubernetes.io"):
                return pattern.text
        except PatternError:
            continue
    return None


def _open(requesters: Subjects | None) -> bool:
    return requesters is None or requesters == Subjects()  # `requesters: {}` admits everyone


def lint_open_builtin_signer(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """A rule open to every requester on a kubernetes.io signer, which the cluster trusts."""
    signer = _kubernetes_signer(policy)
    if signer is None:
        return
    for index, rule in enumerate(policy.rules):
        if _open(rule.requesters):
            path = _rule_path(index) if rule.requesters is None else _rule_path(index, "requesters")
            yield _warn(
                document,
                path,
                f"rule {rule.name!r} has no requesters but serves built-in signer {signer!r}: "
                "anyone RBAC lets create CSRs may use it; name the users, groups or "
                "service accounts",
            )


def _all_texts(patterns: tuple[Pattern, ...] | None, accept: Callable[[str], bool]) -> bool:
    return patterns is not None and all(accept(p.text) for p in patterns)


def _defines_node(requesters: Subjects | None) -> bool:
    """Every admitted requester is system:node:<name> in system:nodes (docs/policy-reference.md
    §7)."""
    return requesters is not None and (
        _all_texts(requesters.users, lambda t: t.startswith(_NODE_USER) and t != _NODE_USER)
        and _all_texts(requesters.groups, lambda t: t == "system:nodes")
    )


def _defines_service_account(requesters: Subjects | None) -> bool:
    return requesters is not None and (
        bool(requesters.service_accounts)
        or _all_texts(requesters.users, lambda t: t.startswith(_SA_USER) and t != _SA_USER)
    )


_NEEDS = {
    "node": (_defines_node, 'users: ["system:node:*"] and groups: ["system:nodes"]'),
    "sa.namespace": (_defines_service_account, "serviceAccounts"),
    "sa.name": (_defines_service_account, "serviceAccounts"),
}


def _value_rules(rule: Rule) -> Iterator[tuple[PathKey, ValueRule]]:
    for attribute, spec in rule.allowed.subject.items():
        yield ("allowed", "subject", attribute, "values"), spec
    for kind in SAN_KINDS:
        spec = getattr(rule.allowed, kind.attribute)
        if spec is not None:
            yield ("allowed", kind.key, "values"), spec


def lint_undefined_template(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """A template the rule's requesters may leave undefined: for them it matches nothing."""
    for index, rule in enumerate(policy.rules):
        for where, spec in _value_rules(rule):
            for pattern in spec.values:
                for name in sorted(pattern.variables & _NEEDS.keys()):
                    defines, fix = _NEEDS[name]
                    if defines(rule.requesters):
                        continue
                    path = _raw_index(document, _rule_path(index, *where), pattern.text)
                    yield _warn(
                        document,
                        path,
                        f"${{{name}}} in {pattern.text!r} is undefined for some requesters rule "
                        f"{rule.name!r} admits, and then matches nothing; restrict requesters "
                        f"({fix})",
                    )


def _subjects_key(requesters: Subjects | None) -> object:
    if requesters is None or _open(requesters):
        return None

    def texts(patterns: tuple[Pattern, ...] | None) -> frozenset[str] | None:
        return None if patterns is None else frozenset(p.text for p in patterns)

    return (texts(requesters.users), texts(requesters.groups), texts(requesters.service_accounts))


def lint_unreachable_rule(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """A rule an earlier rule with structurally equal requesters already covers."""
    for index, rule in enumerate(policy.rules):
        key = _subjects_key(rule.requesters)
        for earlier_index, earlier in enumerate(policy.rules[:index]):
            if _subjects_key(earlier.requesters) == key and covers(earlier, rule):
                yield _warn(
                    document,
                    _rule_path(index),
                    f"rule {rule.name!r} is unreachable: rule {earlier.name!r} "
                    f"(spec.rules[{earlier_index}]) has the same requesters and permits "
                    "everything it permits",
                )
                break


def lint_node_binding_for_non_nodes(policy: SignerPolicy, document: Document) -> Iterator[Problem]:
    """constraints.node on a rule whose requesters admit users that are no node: they can never
    pass it (node.not_found)."""
    for index, rule in enumerate(policy.rules):
        if rule.constraints.node is not None and not _defines_node(rule.requesters):
            yield _warn(
                document,
                _rule_path(index, "constraints", "node"),
                f"rule {rule.name!r} binds CSRs to the requesting Node, but its requesters admit "
                "users that are no node, whose CSRs it always denies (node.not_found); restrict "
                'requesters (users: ["system:node:*"] and groups: ["system:nodes"])',
            )


def lint_auto_approval_without_the_controller(
    policy: SignerPolicy, document: Document
) -> Iterator[Problem]:
    """approval.auto set while approval.approvers shuts out the controller's identity: every
    approval or denial it makes is refused (approval.not_approver)."""
    auto, approvers = policy.approval.auto, policy.approval.approvers
    if auto is None or not (auto.approve or auto.deny) or approvers is None:
        return
    if approvers.includes(APPROVER):
        return
    yield _warn(
        document,
        ("spec", "approval", "approvers"),
        f"approval.auto is set, but approval.approvers does not admit the approval controller "
        f"{APPROVER.username!r}, so its decisions are refused (approval.not_approver); add "
        'serviceAccounts: ["csr-webhook/csr-webhook-approver"]',
    )


LINTS: tuple[Lint, ...] = (
    lint_broad_signer,
    lint_admits_everything,
    lint_uri_double_star_inside_path,
    lint_any_usage,
    lint_is_ca,
    lint_long_lifetime,
    lint_open_builtin_signer,
    lint_undefined_template,
    lint_unreachable_rule,
    lint_node_binding_for_non_nodes,
    lint_auto_approval_without_the_controller,
    *POD_LINTS,
)


def lint_policy(policy: SignerPolicy, document: Document) -> list[Problem]:
    """Every warning for one built policy, in lint order."""
    return [problem for lint in LINTS for problem in lint(policy, document)]
