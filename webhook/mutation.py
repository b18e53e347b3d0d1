"""The mutating endpoint's JSON Patch (docs/policy-reference.md §5.3): default and clamp
spec.expirationSeconds.

Pure and idempotent: applying the patch and asking again yields no patch. Never denies.
"""

from __future__ import annotations

from typing import Any

from webhook.policy.model import Lifetime
from webhook.resource import CSRObject

_PATH = "/spec/expirationSeconds"


def lifetime_patch(obj: CSRObject, lifetime: Lifetime) -> list[dict[str, Any]]:
    """JSON Patch operations that bring the object's lifetime within the rule's."""
    if not obj.has_spec:
        return []  # a patch into a missing /spec would fail to apply: a 500, not a failurePolicy
    requested = obj.expiration_seconds
    if requested is None:
        if lifetime.default is not None:
            return [{"op": "add", "path": _PATH, "value": lifetime.default}]
        return []
    if lifetime.clamp and lifetime.max is not None and requested > lifetime.max:
        return [{"op": "replace", "path": _PATH, "value": lifetime.max}]
    return []
