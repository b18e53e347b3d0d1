"""The mutating endpoint's JSON Patch (SPEC §3.7): default and clamp spec.expirationSeconds.

Pure and idempotent: applying the patch and asking again yields no patch. Never denies.
"""

from __future__ import annotations

from typing import Any

from webhook.policy.model import Lifetime

_PATH = "/spec/expirationSeconds"


def lifetime_patch(obj: dict[str, Any], lifetime: Lifetime) -> list[dict[str, Any]]:
    """JSON Patch operations that bring the object's lifetime within the rule's."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []  # a patch into a missing /spec would fail to apply: a 500, not a failurePolicy
    requested = spec.get("expirationSeconds")
    if requested is None:
        if lifetime.default is not None:
            return [{"op": "add", "path": _PATH, "value": lifetime.default}]
        return []
    if (
        isinstance(requested, int)
        and lifetime.clamp
        and lifetime.max is not None
        and requested > lifetime.max
    ):
        return [{"op": "replace", "path": _PATH, "value": lifetime.max}]
    return []
