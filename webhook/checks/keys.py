"""constraints.keys (docs/policy-reference.md §3.6): key type, RSA size and exponent, ECDSA curve,
judged by webhook.key_rules (shared with the PodCertificateRequest key check).

Codes: key.type_not_allowed (DSA and unknown types always), key.rsa_size, key.rsa_exponent
(anything but 65537), key.curve_not_allowed.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook import key_rules
from webhook.context import CreateContext
from webhook.decision import Violation

CODES = key_rules.CODES

_FIELD = "spec.request.publicKey"


def check(ctx: CreateContext) -> Iterator[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    yield from key_rules.key_violations(ctx.csr.key, rule.constraints.keys, _FIELD)
