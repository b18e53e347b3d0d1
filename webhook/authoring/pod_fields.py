"""metadata.managedFields of a PodCertificateRequest as kube-apiserver's field manager keeps
them (recorded from v1.37.2, tests/vectors/apiserver-pods/). Unlike a CSR's, the spec is no
reset field: a CREATE's entry holds every spec field the client set (null ones are unset) and
the metadata it chose; a /status update adds the writer's entry for the status fields it
changed, in the version it wrote. Entries carry the version of their request and are sorted
by operation, time, manager, subresource. Part of the simulator (pod_reviews.py); the webhook
never reads these fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_STATUS_FIELDS = ("certificateChain", "notBefore", "beginRefreshAt", "notAfter")


def _entry(
    manager: str, subresource: str, fields: dict[str, Any], now: str, api_version: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "apiVersion": api_version,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
        "time": now,
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {".": {}, **{f"f:{key}": {} for key in mapping}}


def track_create(obj: dict[str, Any], manager: str, now: str) -> None:
    """The CREATE's entry (none without a manager, or when the client set nothing)."""
    metadata, spec = obj["metadata"], obj.get("spec") or {}
    owned_metadata: dict[str, Any] = {}
    if "generateName" in metadata:
        owned_metadata["f:generateName"] = {}
    for key in ("labels", "annotations"):
        if metadata.get(key):
            owned_metadata[f"f:{key}"] = _keys(metadata[key])
    owners = metadata.get("ownerReferences") or []
    if owners:
        owned_metadata["f:ownerReferences"] = {
            ".": {},
            **{f'k:{{"uid":"{owner["uid"]}"}}': {} for owner in owners},
        }
    owned_spec: dict[str, Any] = {}
    for key, value in spec.items():
        if value is None:
            continue
        owned_spec[f"f:{key}"] = _keys(value) if key == "unverifiedUserAnnotations" else {}
    owned = {
        **({"f:metadata": owned_metadata} if owned_metadata else {}),
        **({"f:spec": owned_spec} if owned_spec else {}),
    }
    if manager and owned:
        metadata["managedFields"] = [_entry(manager, "", owned, now, obj["apiVersion"])]


def track_status(old: Mapping[str, Any], new: dict[str, Any], manager: str, now: str) -> None:
    """A /status update's entry for what it changed, when the stored object has entries."""
    entries = old.get("metadata", {}).get("managedFields")
    if not manager or not entries:
        return
    old_status, new_status = old.get("status") or {}, new.get("status") or {}
    owned: dict[str, Any] = {}
    old_conditions = old_status.get("conditions", [])
    changed = [c for c in new_status.get("conditions", []) if c not in old_conditions]
    if changed:
        keyed = {f'k:{{"type":"{c["type"]}"}}': _keys(dict(sorted(c.items()))) for c in changed}
        owned["f:conditions"] = {**({} if old_conditions else {".": {}}), **keyed}
    for key in _STATUS_FIELDS:
        if key in new_status and new_status[key] != old_status.get(key):
            owned[f"f:{key}"] = {}
    if not owned:
        return
    kept = [e for e in entries if (e["manager"], e.get("subresource", "")) != (manager, "status")]
    kept.append(_entry(manager, "status", {"f:status": owned}, now, new["apiVersion"]))
    kept.sort(key=lambda e: (e["operation"], e["time"], e["manager"], e.get("subresource", "")))
    new["metadata"]["managedFields"] = kept
