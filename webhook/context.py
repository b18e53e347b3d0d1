"""What a CREATE check sees: the parsed CSR, the request fields, the rule and the requester.

Shared by the engine and every check module (checks never import each other).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from webhook.csr import ParsedCSR
from webhook.matching import Requester
from webhook.policy.model import Rule, SignerPolicy
from webhook.resource import CSRObject


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateContext:
    csr: ParsedCSR
    obj: CSRObject
    requester: Requester
    variables: Mapping[str, str]
    policy: SignerPolicy
    rule: Rule
