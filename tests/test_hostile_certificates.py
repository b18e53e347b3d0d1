"""Hostile issued certificates and intermediates at /status: every one is a clean denial
(HTTP 200, allowed false, a code naming the problem), never a 500.

cryptography parses most of a certificate lazily and raises on the first access of a part it
cannot represent: x400Address / ediPartyName GeneralNames, a duplicate extension, an unknown
public key algorithm, a year-0 validity time, a subject string that is not valid. Each is built
here by hand (raw DER in an UnrecognizedExtension, or a TBS field replaced and re-signed by the
issuing CA so that the certificate still verifies and reaches the checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID
from flask.testing import FlaskClient

from tests.builders import extension_of, oid, seq, set_of, utf8_name
from tests.conftest import MakeApp
from tests.issuance_builders import (
    TBS_SPKI,
    TBS_SUBJECT,
    TBS_VALIDITY,
    append_extension,
    dns_general_name,
    edi_party_name,
    edit_certificate,
    general_names,
    intermediate_ca,
    intermediate_with,
    root_ca,
    x400_address,
)
from tests.issuance_setting import APPS, approved_csr, issue, leaf, policies
from tests.update_reviews import codes
from webhook.x509 import der

SAN = ExtensionOID.SUBJECT_ALTERNATIVE_NAME
IAN = ExtensionOID.ISSUER_ALTERNATIVE_NAME
UNREPRESENTABLE = {"x400Address": x400_address, "ediPartyName": edi_party_name}


@pytest.fixture
def client(make_app: MakeApp, tmp_path: Path) -> FlaskClient:
    return make_app(policies(tmp_path)).test_client()


def messages(response: dict[str, Any], code: str) -> list[str]:
    causes = response.get("status", {}).get("details", {}).get("causes", [])
    return [c["message"] for c in causes if c["reason"] == code]


# ---- GeneralNames cryptography cannot represent ----------------------------------------------


@pytest.mark.parametrize(
    ("oid", "name"),
    [(SAN, "subjectAlternativeName"), (IAN, "issuerAlternativeName")],
    ids=["san", "ian"],
)
@pytest.mark.parametrize("kind", sorted(UNREPRESENTABLE))
def test_denies_leaf_whose_alt_name_holds_a_name_cryptography_cannot_represent(
    client: FlaskClient, kind: str, oid: x509.ObjectIdentifier, name: str
) -> None:
    # the requested DNS name is there too: only the unreadable entry is wrong
    names = general_names(oid, dns_general_name("www.apps.example.com"), UNREPRESENTABLE[kind]())
    response = issue(client, leaf(extensions=[names]))
    assert response["allowed"] is False
    assert codes(response) == ["issuance.extension_unparseable"]
    [message] = messages(response, "issuance.extension_unparseable")
    assert message.startswith("the leaf: ") and name in message and kind.lower() in message.lower()


@pytest.mark.parametrize("oid", [SAN, IAN], ids=["san", "ian"])
@pytest.mark.parametrize("kind", sorted(UNREPRESENTABLE))
def test_denies_chain_whose_intermediate_holds_a_name_cryptography_cannot_represent(
    client: FlaskClient, kind: str, oid: x509.ObjectIdentifier
) -> None:
    intermediate = intermediate_with([general_names(oid, UNREPRESENTABLE[kind]())])
    response = issue(client, leaf(ca=intermediate, chain=[intermediate]))
    assert codes(response) == ["issuance.extension_unparseable"]
    [message] = messages(response, "issuance.extension_unparseable")
    assert "certificate 2" in message


def test_the_same_chain_with_a_readable_intermediate_is_allowed(client: FlaskClient) -> None:
    """Control for the test above: the intermediate's extra extension alone denies."""
    intermediate = intermediate_with([general_names(IAN, dns_general_name("ca.example.com"))])
    response = issue(client, leaf(ca=intermediate, chain=[intermediate]))
    assert response["allowed"] is True, codes(response)


def test_denies_leaf_whose_directory_name_value_has_no_string_tag(client: FlaskClient) -> None:
    """A directoryName whose CN value has tag 0: cryptography 44 to 49 raise KeyError (not
    ValueError) on reading the SAN, which `make test-min` runs against."""
    untagged = der.encode_tlv(0x00, b"d")
    directory = der.encode_tlv(0xA4, seq(set_of(seq(oid(NameOID.COMMON_NAME), untagged))))
    names = general_names(SAN, dns_general_name("www.apps.example.com"), directory)
    response = issue(client, leaf(extensions=[names]))
    assert response["allowed"] is False
    assert codes(response) == ["issuance.extension_unparseable"]


# ---- other lazy accesses ---------------------------------------------------------------------


def test_denies_leaf_with_an_extension_twice(client: FlaskClient) -> None:
    ian = extension_of(x509.IssuerAlternativeName([x509.DNSName("ca.example.com")]))
    certificate = append_extension(leaf(extensions=[]), root_ca(), ian)
    certificate = append_extension(certificate, root_ca(), ian)
    response = issue(client, certificate)
    assert codes(response) == ["issuance.extension_unparseable"]
    [message] = messages(response, "issuance.extension_unparseable")
    assert "issuerAlternativeName" in message and "more than once" in message


def test_denies_intermediate_with_an_extension_twice(client: FlaskClient) -> None:
    ian = extension_of(x509.IssuerAlternativeName([x509.DNSName("ca.example.com")]))
    chain = append_extension(intermediate_ca().pem, root_ca(), ian)
    chain = append_extension(chain, root_ca(), ian)
    response = issue(client, leaf(ca=intermediate_ca()) + chain)
    assert codes(response) == ["issuance.extension_unparseable"]


def test_denies_leaf_with_an_unknown_public_key_algorithm(client: FlaskClient) -> None:
    spki = seq(seq(der.encode_oid("1.2.3.4")), der.encode_tlv(der.BIT_STRING, b"\x00\x01"))
    certificate = edit_certificate(leaf(), root_ca(), TBS_SPKI, spki)
    response = issue(client, certificate)
    assert codes(response) == ["issuance.certificate_unparseable"]
    [message] = messages(response, "issuance.certificate_unparseable")
    assert "public key" in message


def test_denies_leaf_with_an_invalid_elliptic_curve_point(client: FlaskClient) -> None:
    algorithm = seq(der.encode_oid("1.2.840.10045.2.1"), der.encode_oid("1.2.840.10045.3.1.7"))
    point = der.encode_tlv(der.BIT_STRING, b"\x00\x04" + b"\x01" * 64)
    certificate = edit_certificate(leaf(), root_ca(), TBS_SPKI, seq(algorithm, point))
    assert codes(issue(client, certificate)) == ["issuance.certificate_unparseable"]


def test_denies_intermediate_with_an_unknown_public_key_algorithm(client: FlaskClient) -> None:
    spki = seq(seq(der.encode_oid("1.2.3.4")), der.encode_tlv(der.BIT_STRING, b"\x00\x01"))
    chain = intermediate_ca().pem
    broken = edit_certificate(chain, root_ca(), TBS_SPKI, spki)
    certificate = leaf(ca=intermediate_ca()) + broken
    assert codes(issue(client, certificate)) == [
        "issuance.certificate_unparseable",
        "issuance.untrusted_issuer",
    ]


def test_denies_leaf_valid_from_year_zero(client: FlaskClient) -> None:
    # GeneralizedTime 0000: cryptography loads it, then raises on not_valid_before_utc
    validity = seq(
        der.encode_tlv(0x18, b"00000101000000Z"), der.encode_tlv(0x18, b"99991231235959Z")
    )
    certificate = edit_certificate(leaf(), root_ca(), TBS_VALIDITY, validity)
    response = issue(client, certificate)
    assert codes(response) == ["issuance.certificate_unparseable"]
    [message] = messages(response, "issuance.certificate_unparseable")
    assert "validity" in message


@pytest.mark.parametrize(
    ("tag", "content"),
    [
        pytest.param(der.UTF8_STRING, b"\xff\xfe", id="invalid-utf8"),
        pytest.param(der.INTEGER, b"\x01", id="not-a-string"),
        pytest.param(der.UTF8_STRING, b"a" * 65, id="common-name-over-64"),
    ],
)
def test_denies_leaf_whose_subject_holds_an_odd_value(
    client: FlaskClient, tag: int, content: bytes
) -> None:
    name = seq(
        der.encode_tlv(der.SET, seq(der.encode_oid("2.5.4.3"), der.encode_tlv(tag, content)))
    )
    certificate = edit_certificate(leaf(), root_ca(), TBS_SUBJECT, name)
    assert codes(issue(client, certificate)) == ["issuance.subject_not_requested"]


def test_allows_leaf_whose_subject_is_rebuilt_with_the_same_values(client: FlaskClient) -> None:
    """Control for the edits above: re-signing an edited TBS by itself changes nothing."""
    name = utf8_name((NameOID.COMMON_NAME, "alice"), (NameOID.ORGANIZATION_NAME, "web"))
    certificate = edit_certificate(leaf(), root_ca(), TBS_SUBJECT, name)
    response = issue(client, certificate, old=approved_csr(APPS))
    assert response["allowed"] is True, codes(response)


def test_denies_encipher_only_key_usage_outside_spec_usages(client: FlaskClient) -> None:
    usages = ["digital signature", "key agreement", "server auth"]
    old = approved_csr(APPS, usages=usages)
    certificate = leaf(
        usages=usages, key_usage=["digital signature", "key agreement", "encipher only"]
    )
    response = issue(client, certificate, old=old)
    assert codes(response) == ["issuance.usage_not_requested"]
    assert any("encipher only" in m for m in messages(response, "issuance.usage_not_requested"))


# ---- found by the fuzz suite (tests/test_fuzz.py, re-signed mutants) --------------------------


@pytest.mark.parametrize("serial", [b"\x00", b"\xff"], ids=["zero", "negative"])
def test_denies_certificate_whose_serial_number_is_not_positive(
    client: FlaskClient, serial: bytes
) -> None:
    # cryptography loads it with a deprecation warning (an error under -W error, and in its
    # future releases); refused before it is loaded, whatever the warning filter
    certificate = edit_certificate(leaf(), root_ca(), 1, der.encode_tlv(der.INTEGER, serial))
    response = issue(client, certificate)
    assert codes(response) == ["transition.certificate_malformed"]
    [message] = messages(response, "transition.certificate_malformed")
    assert "serial number" in message


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(seq(der.encode_tlv(der.SET, b"")), id="empty-rdn"),
        pytest.param(
            seq(
                der.encode_tlv(
                    der.SET,
                    seq(der.encode_oid("2.5.4.10"), der.encode_tlv(der.UTF8_STRING, b"web")) * 2,
                )
            ),
            id="attribute-twice-in-an-rdn",
        ),
    ],
)
def test_denies_certificate_whose_subject_cryptography_refuses(
    client: FlaskClient, name: bytes
) -> None:
    certificate = edit_certificate(leaf(), root_ca(), TBS_SUBJECT, name)
    response = issue(client, certificate)
    assert codes(response) == ["issuance.certificate_unparseable"]
    [message] = messages(response, "issuance.certificate_unparseable")
    assert message.startswith("the leaf: cannot read its subject: RDN 0")
