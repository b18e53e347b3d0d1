"""metadata.managedFields as kube-apiserver's field manager keeps them, as recorded from v1.37.2.

A CREATE gets an entry for the metadata its manager set (name is not tracked; spec and status
are reset fields of the CSR strategy, so a name-only CSR gets no entry at all). An UPDATE is
tracked only when the stored object already has managedFields (kubectl-created CSRs never get
any). Entries are sorted by operation, time, manager, subresource (sortEncodedManagedFields).
Part of the API-server simulator (reviews.py); the webhook never reads these fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def track_create(obj: dict[str, Any], manager: str, now: str) -> None:
    metadata = obj["metadata"]
    owned: dict[str, Any] = {}
    if "generateName" in metadata:
        owned["f:generateName"] = {}
    for key in ("labels", "annotations"):
        if metadata.get(key):
            owned[f"f:{key}"] = {".": {}, **{f"f:{k}": {} for k in metadata[key]}}
    if manager and owned:
        metadata["managedFields"] = [_entry(manager, "", {"f:metadata": owned}, now)]


def track_update(
    old: Mapping[str, Any], new: dict[str, Any], manager: str, subresource: str, now: str
) -> None:
    entries = old.get("metadata", {}).get("managedFields")
    if not manager or not entries:
        return
    owned = _changed_fields(old, new)
    if not owned:
        return
    kept = [
        e for e in entries if (e["manager"], e.get("subresource", "")) != (manager, subresource)
    ]
    kept.append(_entry(manager, subresource, owned, now))
    kept.sort(key=lambda e: (e["operation"], e["time"], e["manager"], e.get("subresource", "")))
    new["metadata"]["managedFields"] = kept


def _entry(manager: str, subresource: str, fields: dict[str, Any], now: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "apiVersion": "certificates.k8s.io/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
        "time": now,
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The FieldsV1 set of what this update changed."""
    owned: dict[str, Any] = {}
    old_status, new_status = old.get("status", {}), new.get("status", {})
    old_conditions = old_status.get("conditions", [])
    changed = [c for c in new_status.get("conditions", []) if c not in old_conditions]
    status: dict[str, Any] = {}
    if changed:
        keyed: dict[str, Any] = {
            f'k:{{"type":"{c["type"]}"}}': {".": {}, **{f"f:{k}": {} for k in sorted(c)}}
            for c in changed
        }
        status["f:conditions"] = {**({} if old_conditions else {".": {}}), **keyed}
    if old_status.get("certificate") != new_status.get("certificate"):
        status["f:certificate"] = {}
    if status:
        owned["f:status"] = status
    metadata: dict[str, Any] = {}
    old_meta, new_meta = old.get("metadata", {}), new.get("metadata", {})
    for key in ("labels", "annotations"):
        before, after = old_meta.get(key) or {}, new_meta.get(key) or {}
        added: dict[str, Any] = {f"f:{k}": {} for k, v in after.items() if before.get(k) != v}
        if added:
            metadata[f"f:{key}"] = {**({} if before else {".": {}}), **added}
    finalizers = [
        f for f in new_meta.get("finalizers", []) if f not in old_meta.get("finalizers", [])
    ]
    if finalizers:
        metadata["f:finalizers"] = {".": {}, **{f'v:"{f}"': {} for f in finalizers}}
    if metadata:
        owned["f:metadata"] = metadata
    return owned
