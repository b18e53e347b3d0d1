"""UPDATE and DELETE vector cases (tests/vectors/*.yaml with `update:`) turned into reviews.

A case names the stored CSR (conditions, certificate), the endpoint, the caller and what the
client submits; the review is what the API-server simulator (webhook/authoring/reviews.py) makes
of it, after the endpoint's PrepareForUpdate unless `strategy: false`. Certificates are issued
at run time by webhook/authoring/issue.py from knobs; no key is ever written. The format is in
tests/vectors/README.md.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import re
from collections.abc import Callable
from typing import Any

from cryptography import x509

from tests.issuance_builders import (
    TestCA,
    end_entity_of_root,
    impostor_intermediate_ca,
    impostor_root_ca,
    intermediate_ca,
    root_ca,
    unrelated_root_ca,
)
from webhook.authoring import issue, reviews
from webhook.authoring.generate import KeyCache
from webhook.policy.build import parse_duration
from webhook.policy.source import PathKey
from webhook.x509.oids import SUBJECT_NAMES

SUBJECT_OIDS = {name: x509.ObjectIdentifier(dotted) for dotted, name in SUBJECT_NAMES.items()}

UPDATE_KEYS = {
    "update",
    "strategy",
    "caller",
    "stored",
    "submit",
    "edit",
    "fields",
    "messages",
    "signerNames",
}
ENDPOINTS = {"main": "", "approval": "approval", "status": "status", "delete": ""}
CALLERS = {
    "main": {"username": "alice", "groups": ["system:authenticated"]},
    "delete": {"username": "alice", "groups": ["system:authenticated"]},
    "approval": {"username": "carol", "groups": ["csr-approvers", "system:authenticated"]},
    "status": {"username": "signer-bot", "groups": ["csr-signers", "system:authenticated"]},
}
STORED_TIME = "2026-11-28T07:05:00Z"
# the conditions a token names: `Approved`, `Denied`, `Failed`; `Approved2` is the same type
# with another reason (a modification)
_REASONS = {
    "Approved": "ApprovedByTest",
    "Denied": "DeniedByTest",
    "Failed": "SignerValidationFailure",
}
_VERBS = {"Approved": "approved", "Denied": "denied", "Failed": "failed"}


# The test CAs a vector names (`ca:`, `chain:`, `<<ca:name>>` in a policy), each made once per
# run, keys in memory only. `root` signs by default and is the one the suites trust.
TEST_CAS: dict[str, Callable[[], TestCA]] = {
    "root": root_ca,
    "intermediate": intermediate_ca,
    "unrelated": unrelated_root_ca,
    "impostor-root": impostor_root_ca,
    "impostor-intermediate": impostor_intermediate_ca,
    "end-entity-of-root": end_entity_of_root,
}
_PLACEHOLDER = re.compile(r"<<ca:([a-z,-]+)>>")
_KNOBS = {"ca", "chain", "subject", "backdate", "keyUsage", "extendedKeyUsage"}


def ca_bundle(names: str) -> bytes:
    """The PEM bundle of these comma-separated test CAs."""
    return b"".join(TEST_CAS[name]().pem for name in names.split(","))


def with_test_cas(text: str) -> str:
    """A policy text with each `<<ca:a,b>>` replaced by those CAs' PEM, as a YAML string."""
    return _PLACEHOLDER.sub(lambda m: json.dumps(ca_bundle(m.group(1)).decode()), text)


_OTHER_KEYS = KeyCache()
_ISSUED: dict[tuple[bytes, str], bytes] = {}


def condition_of(item: str | dict[str, Any]) -> dict[str, Any]:
    """A condition as a client submits it, from a token or a mapping (type, status, reason,
    message; reason and message default to the token's)."""
    if isinstance(item, str):
        type_ = item.rstrip("2")
        reason = "Other" if item.endswith("2") else _REASONS.get(type_, "")
        if type_ not in _VERBS:
            return reviews.condition(type_)
        return reviews.condition(type_, reason=reason, message=f"{_VERBS[type_]} in a test")
    base = condition_of(item["type"]) if item["type"] in _REASONS else {"type": item["type"]}
    return {**base, "status": "True", **item}


def certificate_of(
    value: Any, pem: bytes, usages: list[str], expiration_seconds: int | None
) -> bytes:
    """`A`/`B`: two certificates issued in-tree for the CSR (each once per run); `{text: ...}`:
    these bytes; `{issue: {knobs}}`: issued with the PolicyTest knobs of issue.py; "": none."""
    if value in (None, ""):
        return b""
    if isinstance(value, str):
        key = (pem, value)
        if key not in _ISSUED:
            _ISSUED[key] = _issue(pem, {}, usages, expiration_seconds)
        return _ISSUED[key]
    if "text" in value:
        return str(value["text"]).encode()
    return _issue(pem, value["issue"], usages, expiration_seconds)


def _issue(
    pem: bytes, knobs: dict[str, Any], usages: list[str], expiration_seconds: int | None
) -> bytes:
    """issue.py's PolicyTest knobs (lifetime, extraSANs, isCA, usages, key: other), and the
    vectors' own: `ca` (a TEST_CAS name), `chain` (CAs appended as PEM blocks), `subject`
    (replaces the CSR's), `backdate`, `keyUsage`, `extendedKeyUsage` (replace what usages imply)."""
    path: PathKey = ("certificate",)
    spec = issue.parse_certificate_spec({k: v for k, v in knobs.items() if k not in _KNOBS}, path)
    spec = dataclasses.replace(
        spec,
        subject=subject_name(knobs["subject"]) if "subject" in knobs else None,
        backdate=datetime.timedelta(seconds=parse_duration(knobs.get("backdate", "5m"))),
        key_usage=tuple(knobs["keyUsage"]) if "keyUsage" in knobs else None,
        extended_key_usage=(
            tuple(knobs["extendedKeyUsage"]) if "extendedKeyUsage" in knobs else None
        ),
    )
    test_ca = TEST_CAS[knobs.get("ca", "root")]()
    signer = issue.SigningCA(test_ca.certificate, test_ca.key)
    csr = x509.load_pem_x509_csr(pem)
    leaf = issue.issue_certificate(csr, spec, usages, expiration_seconds, signer, _OTHER_KEYS)
    return leaf + b"".join(TEST_CAS[name]().pem for name in knobs.get("chain", []))


def update_review(
    case: dict[str, Any],
    pem: bytes,
    *,
    signer_name: str,
    requester: dict[str, Any],
    usages: list[str],
    expiration_seconds: int | None,
) -> dict[str, Any]:
    """The UPDATE (or DELETE) review this case describes."""
    endpoint = case["update"]
    assert endpoint in ENDPOINTS, f"update: one of {sorted(ENDPOINTS)}"
    cert: Callable[[Any], bytes] = lambda value: certificate_of(  # noqa: E731
        value, pem, usages, expiration_seconds
    )
    caller = reviews.user_info(**case.get("caller", CALLERS[endpoint]))
    stored_spec = case.get("stored", {})
    sent = reviews.sent_csr(
        pem, signer_name=signer_name, usages=usages, expiration_seconds=expiration_seconds
    )
    created = reviews.created_csr(sent, requester, now=reviews.CREATED)
    for key, value in stored_spec.get("spec", {}).items():
        created["spec"][key] = value
    conditions = [
        {"lastUpdateTime": STORED_TIME, "lastTransitionTime": STORED_TIME, **condition_of(c)}
        for c in stored_spec.get("conditions", [])
    ]
    old = reviews.stored_csr(
        created, conditions=conditions, certificate=cert(stored_spec.get("certificate")) or None
    )
    if endpoint == "delete":
        return reviews.delete_review(old, caller)
    submit = case.get("submit", {})
    submitted = _submitted(submit, old) if "conditions" in submit else None
    certificate = cert(submit["certificate"]) if "certificate" in submit else None
    subresource = ENDPOINTS[endpoint]
    if not case.get("strategy", True):
        new = reviews.with_status(old, conditions=submitted, certificate=certificate)
        for key in ("labels", "annotations", "finalizers"):
            if key in submit:
                new["metadata"][key] = copy.deepcopy(submit[key])
        review = reviews.raw_update_review(old, new, subresource, caller)
    elif endpoint == "approval":
        review = reviews.approval_review(old, submitted or [], caller)
    elif endpoint == "status":
        review = reviews.status_review(old, caller, certificate=certificate, conditions=submitted)
    else:
        metadata = {k: submit[k] for k in ("labels", "annotations", "finalizers") if k in submit}
        review = reviews.update_review(old, caller, **metadata)
    _edit(review["request"]["object"], case.get("edit", {}))
    return review


def _submitted(submit: dict[str, Any], old: dict[str, Any]) -> list[dict[str, Any]]:
    """The submitted conditions: `{stored: Type}` is each stored condition of that type exactly
    as a client reads and resubmits it; any other item is a new condition."""
    result = []
    for item in submit["conditions"]:
        if isinstance(item, dict) and "stored" in item:
            result += [
                copy.deepcopy(c)
                for c in old["status"].get("conditions", [])
                if c["type"] == item["stored"]
            ]
        else:
            result.append(condition_of(item))
    return result


def _edit(obj: dict[str, Any], edit: dict[str, Any]) -> None:
    """Changes to the new object beyond what the strategy keeps (a server that did not restore
    the spec): `spec: {key: value}` sets, `null` removes; `resourceVersion` sets it."""
    for key, value in edit.get("spec", {}).items():
        if value is None:
            obj["spec"].pop(key, None)
        else:
            obj["spec"][key] = value
    if "resourceVersion" in edit:
        obj["metadata"]["resourceVersion"] = edit["resourceVersion"]


def subject_name(subject: dict[str, str | list[str]]) -> x509.Name:
    """One RDN per value, in the order given (policy attribute names or dotted OIDs)."""
    attributes = []
    for key, values in subject.items():
        attribute_oid = SUBJECT_OIDS.get(key) or x509.ObjectIdentifier(key)
        for value in [values] if isinstance(values, str) else values:
            attributes.append(x509.NameAttribute(attribute_oid, value))
    return x509.Name(attributes)
