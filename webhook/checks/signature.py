"""constraints.signatureAlgorithms (docs/policy-reference.md §3.6): the CSR's signature algorithm.

Codes: signature.weak (SHA-1 or MD5, never accepted), signature.not_allowed (outside the
policy's list, or the default set when the policy gives none).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set

from webhook.context import CreateContext
from webhook.decision import Violation
from webhook.x509.oids import ACCEPTABLE_SIGNATURE_ALGORITHMS

CODES = frozenset({"signature.weak", "signature.not_allowed"})

DEFAULT_ALGORITHMS = ACCEPTABLE_SIGNATURE_ALGORITHMS
_WEAK_HASHES = frozenset({"md5", "sha1"})
_STRONG_PSS_HASHES = frozenset({"sha256", "sha384", "sha512"})
# Algorithms whose name fixes a strong hash, with that hash: when the CSR's are these two and
# the algorithm is allowed, neither code applies, and the check returns without a generator.
_NAMED_HASHES = {
    "sha256WithRSAEncryption": "sha256",
    "sha384WithRSAEncryption": "sha384",
    "sha512WithRSAEncryption": "sha512",
    "ecdsa-with-SHA256": "sha256",
    "ecdsa-with-SHA384": "sha384",
    "ecdsa-with-SHA512": "sha512",
}


def check(ctx: CreateContext) -> Iterable[Violation]:
    rule = ctx.rule
    assert rule is not None, "a rule check runs with the rule it judges"
    algorithm, digest = ctx.csr.signature_algorithm, ctx.csr.signature_hash
    allowed = rule.constraints.signature_algorithms or DEFAULT_ALGORITHMS
    if digest is not None and _NAMED_HASHES.get(algorithm) == digest and algorithm in allowed:
        return ()
    return _violations(algorithm, digest, allowed)


def _violations(algorithm: str, digest: str | None, allowed: Set[str]) -> Iterator[Violation]:
    if digest in _WEAK_HASHES or "sha1" in algorithm.lower() or "md5" in algorithm.lower():
        yield Violation(
            code="signature.weak",
            field="spec.request.signatureAlgorithm",
            message=f"signature algorithm {algorithm} uses {digest or 'a broken hash'}; "
            "SHA-1 and MD5 are never accepted",
        )
        return
    pss_ok = algorithm != "rsassaPss" or digest in _STRONG_PSS_HASHES
    if algorithm not in allowed or not pss_ok:
        what = f"{algorithm} with {digest}" if algorithm == "rsassaPss" else algorithm
        yield Violation(
            code="signature.not_allowed",
            field="spec.request.signatureAlgorithm",
            message=f"signature algorithm {what} is not allowed "
            f"(allowed: {', '.join(sorted(allowed))})",
        )
