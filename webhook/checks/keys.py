"""constraints.keys (docs/policy-reference.md §3.6): key type, RSA size and exponent, ECDSA curve.

Codes: key.type_not_allowed (DSA and unknown types always), key.rsa_size, key.rsa_exponent
(anything but 65537), key.curve_not_allowed.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.policy.model import Rule

CODES = frozenset(
    {
        "key.type_not_allowed",
        "key.rsa_size",
        "key.rsa_exponent",
        "key.curve_not_allowed",
    }
)

_FIELD = "spec.request.publicKey"
_RSA_EXPONENT = 65537


def _accepted(rule: Rule) -> list[str]:
    rules = rule.constraints.keys
    names = []
    if rules.rsa is not None:
        names.append(f"RSA {rules.rsa[0]}-{rules.rsa[1]} bits")
    if rules.ecdsa_curves:
        names.append(f"ECDSA {'/'.join(sorted(rules.ecdsa_curves))}")
    if rules.ed25519:
        names.append("Ed25519")
    if rules.ed448:
        names.append("Ed448")
    return names


def check(ctx: CreateContext) -> Iterator[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    key = ctx.csr.key
    rules = rule.constraints.keys
    accepted = ", ".join(_accepted(rule)) or "none"
    allowed_type = {
        "rsa": rules.rsa is not None,
        "ecdsa": bool(rules.ecdsa_curves),
        "ed25519": rules.ed25519,
        "ed448": rules.ed448,
    }.get(key.type, False)
    if not allowed_type:
        size = f" {key.bits}-bit" if key.bits else ""
        yield Violation(
            code="key.type_not_allowed",
            field=_FIELD,
            message=f"{key.type.upper()}{size} keys are not allowed (accepted: {accepted})",
        )
        return
    if key.type == "rsa" and rules.rsa is not None:
        low, high = rules.rsa
        if key.bits is None or not low <= key.bits <= high:
            yield Violation(
                code="key.rsa_size",
                field=_FIELD,
                message=f"RSA key of {key.bits} bits; allowed {low}-{high} bits",
            )
        if key.exponent != _RSA_EXPONENT:
            yield Violation(
                code="key.rsa_exponent",
                field=_FIELD,
                message=f"RSA public exponent {key.exponent}; only 65537 is allowed",
            )
    if key.type == "ecdsa" and rules.ecdsa_curves and key.curve not in rules.ecdsa_curves:
        yield Violation(
            code="key.curve_not_allowed",
            field=_FIELD,
            message=f"ECDSA curve {key.curve} is not allowed "
            f"(allowed: {', '.join(sorted(rules.ecdsa_curves))})",
        )
