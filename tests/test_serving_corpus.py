"""The kubelet-serving corpus (tests/e2e/serving_corpus.py) builds the CSRs its entries describe.

The corpus is run against the real control plane only by `make e2e` (and, once, against
kubelet-csr-approver); these checks keep an entry from silently asking for something else.
"""

from __future__ import annotations

import base64
import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.e2e.serving_corpus import CASES, MISSING_NODE, NODE_NAMES, NODES, ServingCase
from webhook.codes import KNOWN_CODES


def _sans(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def test_corpus_has_at_least_thirty_distinct_cases() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


def test_every_requester_is_a_corpus_node_or_the_missing_one_or_no_node() -> None:
    requesters = {case.requester for case in CASES}
    assert requesters <= {*NODE_NAMES, MISSING_NODE, None}
    assert MISSING_NODE not in NODE_NAMES
    assert {MISSING_NODE, None} <= requesters


def test_node_manifests_carry_their_addresses() -> None:
    for node in NODES:
        manifest = node.manifest()
        assert manifest["metadata"]["name"] == node.name
        assert [(a["type"], a["address"]) for a in manifest["status"]["addresses"]] == list(
            node.addresses
        )
        assert node.of_type("Hostname") == [node.name]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_builds_the_csr_it_describes(case: ServingCase) -> None:
    manifest = case.manifest(f"corpus-{case.id}")
    csr = x509.load_pem_x509_csr(base64.b64decode(manifest["spec"]["request"]))
    assert csr.is_signature_valid
    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cn] == [case.common_name]
    organization = csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert tuple(a.value for a in organization) == case.organization
    sans = _sans(csr)
    if not (case.dns_names or case.ip_addresses or case.emails or case.uris):
        assert sans is None
    else:
        assert sans is not None
        assert tuple(sans.get_values_for_type(x509.DNSName)) == case.dns_names
        assert tuple(sans.get_values_for_type(x509.IPAddress)) == tuple(
            ipaddress.ip_address(a) for a in case.ip_addresses
        )
        assert tuple(sans.get_values_for_type(x509.RFC822Name)) == case.emails
        assert tuple(sans.get_values_for_type(x509.UniformResourceIdentifier)) == case.uris
    assert manifest["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
    assert manifest["spec"].get("expirationSeconds") == case.expiration_seconds
    assert ("key encipherment" in manifest["spec"]["usages"]) == case.key.startswith("rsa")


def test_every_recorded_outcome_names_catalogued_codes_or_the_plugin() -> None:
    """`ours` is asserted through the real API server by tests/e2e/test_serving_corpus.py; a
    code there that the catalogue lacks would only fail in `make e2e`."""
    for case in CASES:
        assert set(case.ours.codes) <= KNOWN_CODES, case.id
        assert list(case.ours.codes) == sorted(set(case.ours.codes)), case.id
        assert case.ours.refused_by in ("", "NodeRestriction"), case.id
        assert not (case.ours.codes and case.ours.refused_by), case.id
    approved = [case for case in CASES if case.ours.approved]
    assert approved and len(approved) < len(CASES)
