"""Laws of the API-server simulator (webhook/authoring/reviews.py) that the recorded reviews do
not pin down, and of the certificates the UPDATE vectors issue (tests/update_vectors.py)."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.builders import build_csr
from tests.update_vectors import certificate_of
from webhook.authoring import reviews

PEM = build_csr(common_name="alice", dns_names=["www.apps.example.com"])
ALICE = reviews.user_info("alice", ["system:authenticated"])
SIGNER = reviews.user_info("signer-bot", ["csr-signers"])
STORED = "2026-11-28T07:05:00Z"
NOW = "2026-11-28T08:00:00Z"


def stored(*conditions: dict[str, Any], certificate: bytes | None = None) -> dict[str, Any]:
    created = reviews.created_csr(reviews.sent_csr(PEM), ALICE, now=reviews.CREATED)
    stamped = [{"lastUpdateTime": STORED, "lastTransitionTime": STORED, **c} for c in conditions]
    return reviews.stored_csr(created, conditions=stamped, certificate=certificate)


def new_object(review: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = review["request"]["object"]
    return obj


def test_status_update_puts_back_the_stored_approved_instance() -> None:
    # preserveConditionInstances: same number of Approved -> the stored one, whatever was sent
    old = stored(reviews.condition("Approved", reason="ByCarol"))
    review = reviews.status_review(
        old, SIGNER, conditions=[reviews.condition("Approved", reason="Changed")], now=NOW
    )
    assert new_object(review)["status"]["conditions"] == old["status"]["conditions"]


def test_status_update_keeps_a_changed_count_of_approved_as_sent() -> None:
    old = stored(reviews.condition("Approved"))
    sent = [reviews.condition("Approved"), reviews.condition("Approved", reason="Again")]
    review = reviews.status_review(old, SIGNER, conditions=sent, now=NOW)
    assert [c.get("reason") for c in new_object(review)["status"]["conditions"]] == [None, "Again"]


def test_approval_restamps_update_time_and_keeps_transition_time() -> None:
    old = stored(reviews.condition("Approved"))
    review = reviews.approval_review(old, [reviews.condition("Approved")], ALICE, now=NOW)
    [condition] = new_object(review)["status"]["conditions"]
    assert (condition["lastUpdateTime"], condition["lastTransitionTime"]) == (NOW, STORED)


def test_approval_keeps_the_stored_certificate() -> None:
    old = stored(certificate=b"stored bytes")
    review = reviews.approval_review(old, [reviews.condition("Approved")], ALICE, now=NOW)
    assert base64.b64decode(new_object(review)["status"]["certificate"]) == b"stored bytes"


def test_status_certificate_none_keeps_empty_clears() -> None:
    old = stored(reviews.condition("Approved"), certificate=b"stored bytes")
    kept = reviews.status_review(old, SIGNER, now=NOW)
    cleared = reviews.status_review(old, SIGNER, certificate=b"", now=NOW)
    assert new_object(kept)["status"]["certificate"] == old["status"]["certificate"]
    assert "certificate" not in new_object(cleared)["status"]


def test_main_update_keeps_spec_and_status() -> None:
    old = stored(reviews.condition("Approved"))
    review = reviews.update_review(old, ALICE, labels={"team": "web"}, now=NOW)
    new = new_object(review)
    assert (new["spec"], new["status"]) == (old["spec"], old["status"])
    assert new["metadata"]["labels"] == {"team": "web"}


def test_generate_name_gets_a_name_only_after_admission_of_the_create() -> None:
    sent = reviews.sent_csr(PEM, name=None, generate_name="csr-")
    mutating = reviews.mutating_create_review(sent, ALICE, now=NOW)
    validating = reviews.create_review(sent, ALICE, now=NOW)
    assert "name" not in mutating["request"] and "name" not in new_object(mutating)["metadata"]
    name = new_object(validating)["metadata"]["name"]
    assert validating["request"]["name"] == name
    assert name[:4] == "csr-" and len(name) == 9
    assert set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_updates_are_tracked_only_on_objects_with_managed_fields() -> None:
    untracked = stored()
    review = reviews.approval_review(
        untracked, [reviews.condition("Approved")], ALICE, now=NOW, manager="kubectl"
    )
    assert "managedFields" not in new_object(review)["metadata"]
    sent = reviews.sent_csr(PEM, name=None, generate_name="csr-")
    created = reviews.created_csr(sent, ALICE, now=STORED, manager="kubelet")
    review = reviews.approval_review(
        reviews.stored_csr(created), [reviews.condition("Approved")], ALICE, now=NOW, manager="kcm"
    )
    entries = new_object(review)["metadata"]["managedFields"]
    assert [(e["manager"], e.get("subresource"), e["time"]) for e in entries] == [
        ("kubelet", None, STORED),
        ("kcm", "approval", NOW),
    ]


def test_vector_certificates_a_and_b_are_two_leaves_for_the_csr_key() -> None:
    usages = ["digital signature", "server auth"]
    first, second = (certificate_of(name, PEM, usages, None) for name in ("A", "B"))
    assert first != second
    assert certificate_of("A", PEM, usages, None) == first  # once per run
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    csr_key = x509.load_pem_x509_csr(PEM).public_key().public_bytes(der, spki)
    for pem in (first, second):
        leaf = x509.load_pem_x509_certificate(pem)
        assert leaf.public_key().public_bytes(der, spki) == csr_key
