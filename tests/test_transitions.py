"""Transitions on UPDATE that are not data (docs/policy-reference.md §5.5): status.certificate bytes made by
mangling DER or PEM (reference vectors 16-21), spec-change messages, key order and nesting depth.

The transition table (vectors 22-30) and every other transition case are vectors:
tests/vectors/transitions.yaml.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
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
    approved,
    codes,
    fields_of,
    raw_update,
    status_update,
    stored_csr,
    validate,
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


CALLERS = {"": REQUESTER, "approval": APPROVER, "status": SIGNER}


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


def test_certificate_fixture_is_a_real_leaf_for_the_csr() -> None:
    leaf = x509.load_pem_x509_certificate(certificate())
    csr = x509.load_pem_x509_csr(request_pem())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert leaf.public_key().public_bytes(der, spki) == csr.public_key().public_bytes(der, spki)
    assert certificate("A") != certificate("B")
