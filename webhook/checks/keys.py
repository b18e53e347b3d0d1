"""constraints.keys (docs/policy-reference.md §3.6): key type, RSA size and exponent, ECDSA curve,
judged by webhook.key_rules (shared with the PodCertificateRequest key check).

Codes: key.type_not_allowed (DSA and unknown types always), key.rsa_size, key.rsa_exponent
(anything but 65537), key.curve_not_allowed.
"""

from __future__ import annotations

from collections.abc import Iterable

from webhook import key_rules
from webhook.context import CreateContext
from webhook.decision import Violation

CODES = key_rules.CODES

_FIELD = "spec.request.publicKey"


def check(ctx: CreateContext) -> Iterable[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    key, rules = ctx.csr.key, rule.constraints.keys
    # The two keys nearly every CSR has, told allowed without a generator; key_violations
    # reports nothing for them either.
    if key.type == "ecdsa" and rules.ecdsa_curves and key.curve in rules.ecdsa_curves:
        return ()
    if (
        key.type == "rsa"
        and rules.rsa is not None
        and key.bits is not None
        and rules.rsa[0] <= key.bits <= rules.rsa[1]
        and key.exponent == key_rules.RSA_EXPONENT
    ):
        return ()
    return key_rules.key_violations(key, rules, _FIELD)
