"""Condition and certificate transitions on every UPDATE, for every signer (SPEC §3.8).

Ground truth: reference §1.6-§1.9 and vectors 11-32 (pkg/apis/certificates/validation). The
table below is vectors 22-30 cell by cell, plus "modify" rows; each cell is sent as the raw
old/new pair the validation function sees, and SPEC §3.8 decides where it is stricter than the
API server (a certificate needs Approved; Failed only via /status; nothing changes once set).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask.testing import FlaskClient

from tests.builders import build_csr
from tests.conftest import MakeApp
from tests.issuance_builders import first_der, pem_block, root_ca, sign_csr
from tests.reviews import user_info
from tests.update_reviews import (
    APPROVER,
    SIGNER,
    approval_update,
    approved,
    codes,
    condition,
    delete_review,
    denied,
    failed,
    fields_of,
    main_update,
    raw_update,
    status_update,
    stored_csr,
    validate,
    with_status,
)

NO_POLICY = "example.com/unmatched"
WITH_POLICY = "example.com/apps"
USAGES = ["digital signature", "server auth"]
REQUESTER = user_info("alice", ["system:authenticated"])

POLICY = """
apiVersion: policy.csr-webhook.io/v1alpha1
kind: SignerPolicy
metadata: {name: apps}
spec:
  signerNames: ["example.com/apps"]
  enforcement: %(enforcement)s
  rules:
    - name: web
      allowed:
        subject:
          commonName: {values: ["${username}"], required: true}
        dnsNames: {values: ["*.apps.example.com"]}
        usages: ["digital signature", "server auth"]
"""

SIGNERS = [pytest.param(NO_POLICY, id="no-policy"), pytest.param(WITH_POLICY, id="policy")]


@pytest.fixture
def client(make_app: MakeApp) -> FlaskClient:
    return make_app(
        {"apps.yaml": POLICY % {"enforcement": "Deny"}}, unmatched_signers="allow"
    ).test_client()


@cache
def request_pem() -> bytes:
    return build_csr(common_name="alice", dns_names=["www.apps.example.com"])


@cache
def certificate(which: str = "A") -> bytes:
    """Two distinct valid certificates for the CSR ('A' and 'B'), issued as in-tree."""
    del which  # only the cache key: each call issues a fresh certificate (new serial)
    return sign_csr(request_pem(), usages=USAGES)


def stored(
    signer: str, conditions: Sequence[dict[str, Any]] = (), cert: bytes = b""
) -> dict[str, Any]:
    return stored_csr(
        request_pem(),
        signer_name=signer,
        usages=USAGES,
        conditions=conditions,
        certificate=cert or None,
    )


def kept(old: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    """The stored conditions of these types, exactly as a client reads and resubmits them."""
    return [copy.deepcopy(c) for c in old["status"].get("conditions", []) if c["type"] in types]


CALLERS = {"": REQUESTER, "approval": APPROVER, "status": SIGNER}


# ---- the transition table (reference vectors 22-30) -------------------------------------------

MAIN = "main_resource_modified"
APPROVAL_ONLY = "approval_subresource_required"
STATUS_ONLY = "status_subresource_required"


@dataclass(frozen=True)
class Row:
    name: str
    old: tuple[str, ...]  # condition tokens: A, D, F, A2/D2/F2 (same type, other reason)
    new: tuple[str, ...]
    old_cert: str = ""  # "", "A", "B", or "garbage"
    new_cert: str = ""
    expected: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path -> codes


def token(t: str) -> dict[str, Any]:
    reason = "Other" if t.endswith("2") else ""
    maker = {"A": approved, "D": denied, "F": failed}[t[0]]
    return maker(reason) if reason else maker()


def cert_of(t: str) -> bytes:
    if t == "garbage":
        return b"no PEM content"
    return certificate(t) if t else b""


ROWS = [
    Row(  # vector 22
        "add Approved",
        (),
        ("A",),
        expected={"": (APPROVAL_ONLY, MAIN), "status": (APPROVAL_ONLY,), "approval": ()},
    ),
    Row(  # vector 23
        "remove Approved",
        ("A",),
        (),
        expected={
            "": ("condition_removed", MAIN),
            "status": ("condition_removed",),
            "approval": ("condition_removed",),
        },
    ),
    Row(
        "modify Approved",
        ("A",),
        ("A2",),
        expected={
            "": ("condition_modified", MAIN),
            "status": ("condition_modified",),
            # the API server allows this on /approval; SPEC §3.8: never changed once present
            "approval": ("condition_modified",),
        },
    ),
    Row(  # vector 24
        "add Denied",
        (),
        ("D",),
        expected={"": (APPROVAL_ONLY, MAIN), "status": (APPROVAL_ONLY,), "approval": ()},
    ),
    Row(  # vector 24
        "remove Denied",
        ("D",),
        (),
        expected={
            "": ("condition_removed", MAIN),
            "status": ("condition_removed",),
            "approval": ("condition_removed",),
        },
    ),
    Row(
        "modify Denied",
        ("D",),
        ("D2",),
        expected={
            "": ("condition_modified", MAIN),
            "status": ("condition_modified",),
            "approval": ("condition_modified",),
        },
    ),
    Row(  # vector 25: the API server allows Failed everywhere; SPEC: only through /status
        "add Failed",
        (),
        ("F",),
        expected={"": (STATUS_ONLY, MAIN), "status": (), "approval": (STATUS_ONLY,)},
    ),
    Row(  # vector 26
        "remove Failed",
        ("F",),
        (),
        expected={
            "": ("condition_removed", MAIN),
            "status": ("condition_removed",),
            "approval": ("condition_removed",),
        },
    ),
    Row(  # §1.8.5: the API server checks no modification of Failed; SPEC does
        "modify Failed",
        ("F",),
        ("F2",),
        expected={
            "": ("condition_modified", MAIN),
            "status": ("condition_modified",),
            "approval": ("condition_modified",),
        },
    ),
    Row(  # vector 27 as upstream (no Approved): the API server allows it on /status
        "set certificate without Approved",
        (),
        (),
        new_cert="A",
        expected={
            "": ("certificate_unapproved", MAIN, STATUS_ONLY),
            "status": ("certificate_unapproved",),
            "approval": ("certificate_unapproved", STATUS_ONLY),
        },
    ),
    Row(  # vector 27 on an approved CSR
        "set certificate on approved CSR",
        ("A",),
        ("A",),
        new_cert="A",
        expected={"": (MAIN, STATUS_ONLY), "status": (), "approval": (STATUS_ONLY,)},
    ),
    Row(  # vector 28 (only /status reaches the format check upstream)
        "set malformed certificate",
        ("A",),
        ("A",),
        new_cert="garbage",
        expected={"status": ("certificate_malformed",)},
    ),
    Row(  # vector 29
        "modify certificate",
        ("A",),
        ("A",),
        old_cert="A",
        new_cert="B",
        expected={
            "": ("certificate_modified", MAIN),
            "status": ("certificate_modified",),
            "approval": ("certificate_modified",),
        },
    ),
    Row(  # vector 29, "-> empty"
        "clear certificate",
        ("A",),
        ("A",),
        old_cert="A",
        new_cert="",
        expected={
            "": ("certificate_modified", MAIN),
            "status": ("certificate_modified",),
            "approval": ("certificate_modified",),
        },
    ),
    Row(  # vector 30
        "add Approved and Denied together",
        (),
        ("A", "D"),
        expected={
            "": (APPROVAL_ONLY, "approved_and_denied", MAIN),
            "status": (APPROVAL_ONLY, "approved_and_denied"),
            "approval": ("approved_and_denied",),
        },
    ),
]

PATH_NAMES = {"": "main", "status": "status", "approval": "approval"}
CELLS = [
    pytest.param(row, path, id=f"{row.name}-{PATH_NAMES[path]}")
    for row in ROWS
    for path in ("", "status", "approval")
    if path in row.expected
]


def cell_review(row: Row, path: str, signer: str) -> dict[str, Any]:
    old = stored(signer, [token(t) for t in row.old], cert_of(row.old_cert))
    old_by_token = dict(zip(row.old, old["status"].get("conditions", []), strict=True))
    new_conditions = [
        copy.deepcopy(old_by_token[t]) if t in old_by_token else token(t) for t in row.new
    ]
    new = with_status(old, conditions=new_conditions, certificate=cert_of(row.new_cert))
    return raw_update(old, new, path, CALLERS[path])


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize(("row", "path"), CELLS)
def test_transition_table(client: FlaskClient, signer: str, row: Row, path: str) -> None:
    response = validate(client, cell_review(row, path, signer))
    expected = sorted(f"transition.{c}" for c in row.expected[path])
    assert codes(response) == expected
    assert response["allowed"] is (not expected)


# ---- what the API server actually presents, after PrepareForUpdate ----------------------------


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_main_update_whose_status_change_the_strategy_dropped(
    client: FlaskClient, signer: str
) -> None:
    old = stored(signer)
    # a client PUT with status.conditions=[Approved] on the main resource: dropped silently
    response = validate(client, main_update(old, labels={"tried": "to-approve"}))
    assert response["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_status_update_whose_approved_change_the_strategy_reverted(
    client: FlaskClient, signer: str
) -> None:
    old = stored(signer, [approved()])
    # submitted Approved with another reason: preserveConditionInstances restores the old one
    review = status_update(old, conditions=[approved("Changed")], certificate=certificate())
    assert review["request"]["object"]["status"]["conditions"] == old["status"]["conditions"]
    assert validate(client, review)["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_approval_through_the_approval_subresource(client: FlaskClient, signer: str) -> None:
    response = validate(client, approval_update(stored(signer), [approved()]))
    assert response["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_issuing_approved_csr_through_status(client: FlaskClient, signer: str) -> None:
    old = stored(signer, [approved()])
    response = validate(client, status_update(old, certificate=certificate()))
    assert response["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_signer_failing_approved_csr_through_status(
    client: FlaskClient, signer: str
) -> None:
    old = stored(signer, [approved()])
    review = status_update(old, conditions=[*kept(old, "Approved"), failed()])
    assert validate(client, review)["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_failed_added_through_approval(client: FlaskClient, signer: str) -> None:
    # reachable through the real API server: /approval keeps submitted conditions as they are
    old = stored(signer, [approved()])
    review = approval_update(old, [*kept(old, "Approved"), failed()])
    assert codes(validate(client, review)) == ["transition.status_subresource_required"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_resubmitting_approved_with_timestamps_restamped(
    client: FlaskClient, signer: str
) -> None:
    # a client that resends Approved without timestamps: the server sets a new lastUpdateTime
    # and copies lastTransitionTime; type, status, reason and message are unchanged
    old = stored(signer, [approved()])
    review = approval_update(old, [approved()])
    new_condition = review["request"]["object"]["status"]["conditions"][0]
    assert (
        new_condition["lastTransitionTime"] == old["status"]["conditions"][0]["lastTransitionTime"]
    )
    assert validate(client, review)["allowed"] is True


# ---- condition status, duplicates, Approved with Denied ---------------------------------------


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize(
    ("path", "submitted"),
    [
        pytest.param("approval", condition("Approved", "False"), id="Approved-False"),
        pytest.param("approval", condition("Denied", "Unknown"), id="Denied-Unknown"),
        pytest.param("status", condition("Failed", "False"), id="Failed-False"),
    ],
)
def test_denies_approved_denied_failed_with_status_other_than_true(
    client: FlaskClient, signer: str, path: str, submitted: dict[str, Any]
) -> None:
    old = stored(signer)
    review = raw_update(old, with_status(old, conditions=[submitted]), path, CALLERS[path])
    assert codes(validate(client, review)) == ["transition.condition_status"]


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize("status", ["True", "False", "Unknown"])
def test_allows_custom_condition_with_any_status(
    client: FlaskClient, signer: str, status: str
) -> None:
    old = stored(signer, [approved()])
    review = status_update(old, conditions=[*kept(old, "Approved"), condition("Queued", status)])
    assert validate(client, review)["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_duplicate_approved(client: FlaskClient, signer: str) -> None:
    review = approval_update(stored(signer), [approved(), approved("Again")])
    assert codes(validate(client, review)) == ["transition.condition_duplicate"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_duplicate_custom_condition(client: FlaskClient, signer: str) -> None:
    # reference §1.6: the duplicate rule applies to every type, custom types included
    old = stored(signer, [approved()])
    review = status_update(
        old, conditions=[*kept(old, "Approved"), condition("Queued"), condition("Queued")]
    )
    assert codes(validate(client, review)) == ["transition.condition_duplicate"]


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize("order", ["AD", "DA"])
def test_denies_approved_and_denied_together(client: FlaskClient, signer: str, order: str) -> None:
    # vector 12, in both orders
    submitted = [approved(), denied()] if order == "AD" else [denied(), approved()]
    review = approval_update(stored(signer), submitted)
    assert codes(validate(client, review)) == ["transition.approved_and_denied"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_approving_a_denied_csr(client: FlaskClient, signer: str) -> None:
    old = stored(signer, [denied()])
    review = approval_update(old, [*kept(old, "Denied"), approved()])
    assert codes(validate(client, review)) == ["transition.approved_and_denied"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_replacing_denied_with_approved(client: FlaskClient, signer: str) -> None:
    review = approval_update(stored(signer, [denied()]), [approved()])
    assert codes(validate(client, review)) == ["transition.condition_removed"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_denying_an_issued_csr(client: FlaskClient, signer: str) -> None:
    old = stored(signer, [approved()], certificate())
    review = approval_update(old, [*kept(old, "Approved"), denied()])
    assert codes(validate(client, review)) == [
        "transition.approved_and_denied",
        "transition.denied_after_issue",
    ]


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_denying_an_issued_csr_that_was_never_approved(
    client: FlaskClient, signer: str
) -> None:
    # the API server lets /status set a certificate without Approved (vector 27), so such
    # objects can exist in storage
    old = stored(signer, [], certificate())
    review = approval_update(old, [denied()])
    assert codes(validate(client, review)) == ["transition.denied_after_issue"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_replacing_approved_with_denied_after_issue(
    client: FlaskClient, signer: str
) -> None:
    old = stored(signer, [approved()], certificate())
    review = approval_update(old, [denied()])
    assert codes(validate(client, review)) == [
        "transition.condition_removed",
        "transition.denied_after_issue",
    ]


# ---- ratcheting: stored objects that already break a rule (vectors 31, 32) --------------------


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize(
    ("conditions", "cert"),
    [
        pytest.param(["A", "D"], "", id="approved-and-denied"),
        pytest.param(["A", "A"], "", id="duplicate-approved"),
        pytest.param(["A"], "garbage", id="garbage-certificate"),
        pytest.param(["D"], "A", id="denied-with-certificate"),
        pytest.param([], "A", id="certificate-without-approved"),
    ],
)
def test_allows_metadata_update_of_object_that_already_breaks_a_rule(
    client: FlaskClient, signer: str, conditions: list[str], cert: str
) -> None:
    old = stored(signer, [token(t) for t in conditions], cert_of(cert))
    review = main_update(old, finalizers=["example.com/keep"])
    assert validate(client, review)["allowed"] is True


# ---- certificate only on an approved, not denied, not failed CSR -----------------------------


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize(
    ("old_conditions", "added"),
    [
        pytest.param([], [], id="no-conditions"),
        pytest.param(["D"], [], id="denied"),
        pytest.param(["A", "F"], [], id="approved-and-failed"),
        pytest.param(["A"], ["F"], id="failed-in-the-same-update"),
        pytest.param(["F"], [], id="failed"),
    ],
)
def test_denies_certificate_unless_approved_and_neither_denied_nor_failed(
    client: FlaskClient, signer: str, old_conditions: list[str], added: list[str]
) -> None:
    old = stored(signer, [token(t) for t in old_conditions])
    submitted = [*kept(old, "Approved", "Denied", "Failed"), *(token(t) for t in added)]
    review = status_update(old, conditions=submitted, certificate=certificate())
    assert codes(validate(client, review)) == ["transition.certificate_unapproved"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_status_update_that_keeps_the_certificate(client: FlaskClient, signer: str) -> None:
    old = stored(signer, [approved()], certificate())
    review = status_update(
        old, conditions=[*kept(old, "Approved"), condition("Delivered")], certificate=certificate()
    )
    assert validate(client, review)["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_replacing_the_certificate_with_a_reissued_one(
    client: FlaskClient, signer: str
) -> None:
    old = stored(signer, [approved()], certificate("A"))
    review = status_update(old, certificate=certificate("B"))
    response = validate(client, review)
    assert codes(response) == ["transition.certificate_modified"]
    assert fields_of(response, "transition.certificate_modified") == ["status.certificate"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_clearing_the_certificate(client: FlaskClient, signer: str) -> None:
    old = stored(signer, [approved()], certificate())
    assert codes(validate(client, status_update(old, certificate=b""))) == [
        "transition.certificate_modified"
    ]


# ---- status.certificate format (vectors 16-21) ----------------------------------------------


def _leaf_der() -> bytes:
    return first_der(certificate())


def _corrupt_der() -> bytes:
    der = bytearray(_leaf_der())
    der[10] ^= 0xFF  # inside the TBSCertificate header: no longer a parseable certificate
    return bytes(der)


def _with_header() -> bytes:
    return pem_block(_leaf_der(), headers="Some-Header: Some-Value\n\n")


def _invalid_base64() -> bytes:
    return b"-----BEGIN CERTIFICATE-----\n?????????\n-----END CERTIFICATE-----\n"


MALFORMED = [
    pytest.param(lambda: b"no PEM content", id="16-no-pem-content"),
    pytest.param(lambda: pem_block(_leaf_der(), "CERTIFICATE1"), id="17-certificate1-block"),
    pytest.param(_with_header, id="18-pem-header"),
    pytest.param(_invalid_base64, id="19-invalid-base64-block-skipped"),
    pytest.param(lambda: pem_block(b""), id="20-empty-block"),
    pytest.param(lambda: pem_block(_corrupt_der()), id="20-corrupt-der"),
    pytest.param(
        lambda: pem_block(_leaf_der()) + pem_block(b"\x30\x03\x02\x01\x01", "CERTIFICATE"),
        id="second-block-not-a-certificate",
    ),
    pytest.param(
        lambda: pem_block(_leaf_der()) + pem_block(root_ca().der, "PRIVATE KEY"),
        id="second-block-other-type",
    ),
]


@pytest.mark.parametrize("make_cert", MALFORMED)
def test_denies_malformed_certificate_like_the_api_server(
    client: FlaskClient, make_cert: Any
) -> None:
    old = stored(NO_POLICY, [approved()])
    response = validate(client, status_update(old, certificate=make_cert()))
    assert codes(response) == ["transition.certificate_malformed"]
    assert fields_of(response, "transition.certificate_malformed") == ["status.certificate"]


def test_denies_malformed_certificate_for_a_signer_with_a_policy_only_once(
    client: FlaskClient,
) -> None:
    # the issuance gate cannot look at an unparseable certificate; the format violation says it
    old = stored(WITH_POLICY, [approved()])
    response = validate(client, status_update(old, certificate=b"no PEM content"))
    assert codes(response) == ["transition.certificate_malformed"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_two_blocks_with_leading_intermediate_and_trailing_text(
    client: FlaskClient, signer: str
) -> None:
    # vector 21
    text = (
        b"Leading non-PEM content\n"
        + certificate()
        + b"Intermediate non-PEM content\n"
        + root_ca().pem
        + b"Trailing non-PEM content\n"
    )
    old = stored(signer, [approved()])
    assert validate(client, status_update(old, certificate=text))["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
def test_allows_one_block_holding_two_concatenated_certificates(
    client: FlaskClient, signer: str
) -> None:
    # reference §1.7: x509.ParseCertificates reads several DER certificates from one block
    block = pem_block(_leaf_der() + root_ca().der)
    old = stored(signer, [approved()])
    assert validate(client, status_update(old, certificate=block))["allowed"] is True


def test_allows_certificate_with_crlf_line_endings(client: FlaskClient) -> None:
    crlf = certificate().replace(b"\n", b"\r\n")
    old = stored(NO_POLICY, [approved()])
    assert validate(client, status_update(old, certificate=crlf))["allowed"] is True


# ---- main resource ---------------------------------------------------------------------------


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"labels": {"team": "web"}}, id="labels"),
        pytest.param({"annotations": {"note": "x"}}, id="annotations"),
        pytest.param({"finalizers": ["example.com/keep"]}, id="finalizers"),
    ],
)
def test_allows_metadata_only_main_resource_update(
    client: FlaskClient, signer: str, change: dict[str, Any]
) -> None:
    old = stored(signer, [approved()], certificate())
    assert validate(client, main_update(old, **change))["allowed"] is True


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("usages", ["digital signature", "client auth"], id="usages"),
        pytest.param("expirationSeconds", 3600, id="expirationSeconds"),
        pytest.param("username", "mallory", id="username"),
        pytest.param("signerName", "example.com/other", id="signerName"),
    ],
)
def test_denies_main_resource_update_that_changes_spec(
    client: FlaskClient, signer: str, key: str, value: Any
) -> None:
    old = stored(signer)
    new = copy.deepcopy(old)
    new["spec"][key] = value
    new["metadata"]["labels"] = {"changed": "spec"}
    review = raw_update(old, new, "", REQUESTER)
    response = validate(client, review)
    assert codes(response) == ["transition.spec_changed"]
    assert fields_of(response, "transition.spec_changed") == [f"spec.{key}"]


@pytest.mark.parametrize("signer", SIGNERS)
def test_denies_main_resource_update_that_changes_custom_condition(
    client: FlaskClient, signer: str
) -> None:
    old = stored(signer, [approved()])
    new = with_status(old, conditions=[*kept(old, "Approved"), condition("Queued")])
    review = raw_update(old, new, "", REQUESTER)
    assert codes(validate(client, review)) == ["transition.main_resource_modified"]


# ---- spec never changes (every endpoint: PrepareForUpdate restores the stored spec) ----------


def _spec_rewrite(old: dict[str, Any], sub_resource: str, **spec: Any) -> dict[str, Any]:
    """An update of `sub_resource` that changes nothing but these spec keys (None: remove)."""
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = "101"
    for key, value in spec.items():
        if value is None:
            new["spec"].pop(key, None)
        else:
            new["spec"][key] = value
    return raw_update(old, new, sub_resource, CALLERS[sub_resource])


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize(
    "sub_resource", ["", "approval", "status"], ids=["main", "approval", "status"]
)
@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("username", "mallory", id="username"),
        pytest.param("groups", ["system:masters"], id="groups"),
        pytest.param("uid", "another-uid", id="uid"),
        pytest.param("extra", {"scopes": ["admin"]}, id="extra-added"),
        pytest.param("expirationSeconds", None, id="expirationSeconds-removed"),
        pytest.param("usages", ["server auth", "digital signature"], id="usages-reordered"),
        pytest.param("request", "bm90IGEgQ1NS", id="request"),
    ],
)
def test_denies_any_spec_change_on_every_endpoint(
    client: FlaskClient, signer: str, sub_resource: str, key: str, value: Any
) -> None:
    old = stored_csr(request_pem(), signer_name=signer, usages=USAGES, expiration_seconds=3600)
    response = validate(client, _spec_rewrite(old, sub_resource, **{key: value}))
    assert response["allowed"] is False
    assert codes(response) == ["transition.spec_changed"]
    assert fields_of(response, "transition.spec_changed") == [f"spec.{key}"]


def test_spec_change_names_the_first_changed_key_and_lists_the_others(
    client: FlaskClient,
) -> None:
    old = stored(WITH_POLICY, [approved()])
    review = _spec_rewrite(old, "status", username="mallory", groups=["x"], extra={"a": ["b"]})
    response = validate(client, review)
    [cause] = response["status"]["details"]["causes"]
    assert cause["field"] == "spec.username"
    assert "'mallory'" in cause["message"] and "'alice'" in cause["message"]
    assert "'groups'" in cause["message"] and "'extra'" in cause["message"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param({"a": [1]}, {"a": [True]}, id="true-is-not-1"),
        pytest.param({"a": 1}, {"a": 1.0}, id="1-is-not-1.0"),
        pytest.param({"a": [1, 2]}, {"a": [2, 1]}, id="list-order"),
        pytest.param({"a": {"b": None}}, {"a": {}}, id="null-is-not-absent"),
    ],
)
def test_spec_comparison_is_by_json_value(
    client: FlaskClient, before: dict[str, Any], after: dict[str, Any]
) -> None:
    old = stored(WITH_POLICY)
    old["spec"]["extra"] = before
    response = validate(client, _spec_rewrite(old, "", extra=after))
    assert codes(response) == ["transition.spec_changed"]


def test_allows_spec_with_keys_in_another_order(client: FlaskClient) -> None:
    old = stored(WITH_POLICY)
    old["spec"]["extra"] = {"a": ["1"], "b": {"c": "d", "e": "f"}}
    reordered = {"b": {"e": "f", "c": "d"}, "a": ["1"]}
    review = _spec_rewrite(old, "", extra=reordered)
    review["request"]["object"]["spec"] = dict(
        reversed(review["request"]["object"]["spec"].items())
    )
    assert validate(client, review)["allowed"] is True


def test_deeply_nested_spec_is_compared_without_a_500(client: FlaskClient) -> None:
    old = stored(WITH_POLICY)
    old["spec"]["extra"] = {"deep": "OLD"}
    review = _spec_rewrite(old, "", extra={"deep": "NEW"})
    depth = 600  # as deep as the JSON parser takes here; the comparison must not recurse
    body = (
        json.dumps(review)
        .replace('"OLD"', "[" * depth + '"x"' + "]" * depth)
        .replace('"NEW"', "[" * depth + '"y"' + "]" * depth)
    )
    answer = client.post("/validate", data=body, content_type="application/json")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:200]
    response = answer.get_json()["response"]
    assert codes(response) == ["transition.spec_changed"]


# ---- enforcement and other operations --------------------------------------------------------


@pytest.mark.parametrize("enforcement", ["Warn", "Audit"])
def test_transition_violations_deny_whatever_the_policy_enforcement(
    make_app: MakeApp, enforcement: str
) -> None:
    client = make_app({"apps.yaml": POLICY % {"enforcement": enforcement}}).test_client()
    old = stored(WITH_POLICY, [approved()], certificate("A"))
    response = validate(client, status_update(old, certificate=certificate("B")))
    assert response["allowed"] is False
    assert codes(response) == ["transition.certificate_modified"]


def test_transition_violations_deny_for_unmatched_signer_when_unmatched_signers_allowed(
    client: FlaskClient,
) -> None:
    review = approval_update(stored(NO_POLICY, [denied()]), [approved()])
    response = validate(client, review)
    assert response["allowed"] is False
    assert codes(response) == ["transition.condition_removed"]


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize("unmatched", ["deny", "allow"])
def test_allows_delete(make_app: MakeApp, signer: str, unmatched: str) -> None:
    client = make_app(
        {"apps.yaml": POLICY % {"enforcement": "Deny"}}, unmatched_signers=unmatched
    ).test_client()
    old = stored(signer, [approved(), denied()], b"no PEM content")
    assert validate(client, delete_review(old))["allowed"] is True


def test_certificate_fixture_is_a_real_leaf_for_the_csr() -> None:
    leaf = x509.load_pem_x509_certificate(certificate())
    csr = x509.load_pem_x509_csr(request_pem())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert leaf.public_key().public_bytes(der, spki) == csr.public_key().public_bytes(der, spki)
    assert certificate("A") != certificate("B")
