"""Whether a public key is one a policy's `keys` accept (docs/policy-reference.md §3.6): the
one judgement of key type, RSA size and exponent and ECDSA curve, shared by the CSR key check
(webhook.checks.keys) and the PodCertificateRequest one (webhook.checks.pod_key).

Pure: a PublicKeyInfo and KeyRules in, violations out. Codes: key.type_not_allowed (DSA and
unknown types always), key.rsa_size, key.rsa_exponent (anything but 65537), key.curve_not_allowed.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook.decision import Violation
from webhook.policy.model import KeyRules
from webhook.x509.csr import PublicKeyInfo

CODES = frozenset(
    {"key.type_not_allowed", "key.rsa_size", "key.rsa_exponent", "key.curve_not_allowed"}
)
RSA_EXPONENT = 65537


def accepted(rules: KeyRules) -> list[str]:
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


def key_violations(key: PublicKeyInfo, rules: KeyRules, field: str) -> Iterator[Violation]:
    """Every way `key` breaks `rules`, each naming `field`."""
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
            field=field,
            message=f"{key.type.upper()}{size} keys are not allowed "
            f"(accepted: {', '.join(accepted(rules)) or 'none'})",
        )
        return
    if key.type == "rsa" and rules.rsa is not None:
        low, high = rules.rsa
        if key.bits is None or not low <= key.bits <= high:
            yield Violation(
                code="key.rsa_size",
                field=field,
                message=f"RSA key of {key.bits} bits; allowed {low}-{high} bits",
            )
        if key.exponent != RSA_EXPONENT:
            yield Violation(
                code="key.rsa_exponent",
                field=field,
                message=f"RSA public exponent {key.exponent}; only 65537 is allowed",
            )
    if key.type == "ecdsa" and rules.ecdsa_curves and key.curve not in rules.ecdsa_curves:
        yield Violation(
            code="key.curve_not_allowed",
            field=field,
            message=f"ECDSA curve {key.curve} is not allowed "
            f"(allowed: {', '.join(sorted(rules.ecdsa_curves))})",
        )
