"""Syntactic coverage between two rules: does one permit every CSR the other permits?

Conservative: True only when every field of the wider rule is at least as permissive as the
narrower's, constraint by constraint (a rule without a node binding or a pending quota is
wider than one with). Used by the unreachable-rule lint (webhook.policy.lint). Pure.
"""

from __future__ import annotations

from webhook.policy.model import KeyRules, NodeBinding, Rule, ValueRule
from webhook.sankinds import SAN_KINDS


def _texts(spec: ValueRule) -> set[str]:
    return {p.text for p in spec.values}


def _covers_values(wide: ValueRule | None, narrow: ValueRule | None) -> bool:
    if narrow is None or not narrow.values:
        return wide is None or not wide.required
    if wide is None:
        return False
    bounded = wide.max_items is None or (
        narrow.max_items is not None and narrow.max_items <= wide.max_items
    )
    return (
        _texts(narrow) <= _texts(wide)
        and (narrow.required or not wide.required)
        and bounded
        and (wide.allow_wildcard_names or not narrow.allow_wildcard_names)
    )


def _covers_keys(wide: KeyRules, narrow: KeyRules) -> bool:
    rsa = narrow.rsa is None or (
        wide.rsa is not None and wide.rsa[0] <= narrow.rsa[0] and narrow.rsa[1] <= wide.rsa[1]
    )
    curves = narrow.ecdsa_curves is None or narrow.ecdsa_curves <= (wide.ecdsa_curves or set())
    return rsa and curves and wide.ed25519 >= narrow.ed25519 and wide.ed448 >= narrow.ed448


def _covers_node(wide: NodeBinding | None, narrow: NodeBinding | None) -> bool:
    """`wide` binds no more than `narrow`: it needs the Node only when `narrow` does, and binds
    SANs only when `narrow` does, to at least the address types `narrow` accepts."""
    if wide is None:
        return True
    if narrow is None:
        return False
    exists = not wide.must_exist or narrow.must_exist
    sans = not wide.sans_from_addresses or (
        bool(narrow.sans_from_addresses) and narrow.sans_from_addresses <= wide.sans_from_addresses
    )
    return exists and sans


def covers(wide: Rule, narrow: Rule) -> bool:
    """Syntactically, `wide` permits every CSR `narrow` permits (same requesters assumed)."""
    a, b = wide.allowed, narrow.allowed
    subject = all(
        _covers_values(a.subject.get(name), b.subject.get(name))
        for name in {*a.subject, *b.subject}
    )
    sans = all(
        _covers_values(getattr(a, kind.attribute), getattr(b, kind.attribute)) for kind in SAN_KINDS
    )
    c, d = wide.constraints, narrow.constraints
    low, high = c.lifetime, d.lifetime
    lifetime = (low.min is None or (high.min is not None and low.min <= high.min)) and (
        low.max is None or (high.max is not None and high.max <= low.max)
    )
    algorithms = c.signature_algorithms is None or (
        d.signature_algorithms is not None and d.signature_algorithms <= c.signature_algorithms
    )
    pending = c.max_pending is None or (
        d.max_pending is not None and d.max_pending <= c.max_pending
    )
    return (
        subject
        and sans
        and b.usages <= a.usages
        and (a.is_ca or not b.is_ca)
        and b.extensions <= a.extensions
        and c.required_usages <= d.required_usages
        and (d.require_any_san or not c.require_any_san)
        and lifetime
        and _covers_keys(c.keys, d.keys)
        and algorithms
        and _covers_node(c.node, d.node)
        and pending
    )
