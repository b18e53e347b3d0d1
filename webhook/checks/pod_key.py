"""The key a PodCertificateRequest asks for, at CREATE: the stub CSR (or v1beta1 pkixPublicKey
with its proof of possession) must be readable, and its key one `podCertificates.keys`
accepts (webhook.key_rules, shared with the CSR key check).

Codes: pod.stub_invalid, pod.proof_invalid (read by webhook.pod_stub), key.type_not_allowed,
key.rsa_size, key.rsa_exponent, key.curve_not_allowed.
"""

from __future__ import annotations

from collections.abc import Iterator

from webhook import key_rules, pod_stub
from webhook.decision import Violation
from webhook.pod_context import PodCreateContext

CODES = pod_stub.CODES | key_rules.CODES


def check(ctx: PodCreateContext) -> Iterator[Violation]:
    if ctx.key.problem is not None:
        yield ctx.key.problem
        return
    key = pod_stub.key_of(ctx.key)
    assert key is not None, "a StubKey without a problem has its key"
    yield from key_rules.key_violations(key, ctx.pods.keys, ctx.key.field)
