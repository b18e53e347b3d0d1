"""UPDATE of PodCertificateRequests through the Flask test client: the signer's /status write
(the good chain, and each way a chain or status can break the policy), the terminal status,
and main-resource updates."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask

from tests import pod_setting as ps
from tests.issuance_builders import first_der, intermediate_ca, pem_block, unrelated_root_ca
from tests.test_pod_create import codes, validate
from webhook.limits import MAX_SANS_PER_KIND, MAX_SUBJECT_ATTRIBUTES
from webhook.policy.loader import load_policies
from webhook.policy.model import Enforcement, Lifetime, PodCertificates

STORED = ps.pcr_object()


def app_with(tmp_path: Path, pods: PodCertificates | None = None, **kwargs: Any) -> Flask:
    return ps.pod_app(tmp_path / "policies", ps.pod_policy(pods, **kwargs))


def issue(
    app: Flask, chain: bytes, stored: dict[str, Any] = STORED, **times: Any
) -> dict[str, Any]:
    return validate(app, ps.status_review(stored, ps.issued_status(chain, **times)))


def test_allows_the_good_chain_from_the_signer(tmp_path: Path) -> None:
    response = issue(app_with(tmp_path), ps.leaf_pem())
    assert response["allowed"] is True
    assert codes(response) == []


def test_allows_a_chain_through_an_intermediate(tmp_path: Path) -> None:
    chain = ps.leaf_pem(ca=intermediate_ca(), chain=[intermediate_ca()])
    assert codes(issue(app_with(tmp_path), chain)) == []


def test_refuses_an_extra_dns_san_naming_the_expanded_patterns(tmp_path: Path) -> None:
    response = issue(app_with(tmp_path), ps.leaf_pem(dns_names=["web.team-a.svc"]))
    assert codes(response) == ["pod.san_not_allowed"]
    message = response["status"]["message"]
    assert "DNS SAN 'web.team-a.svc' is not allowed: issued.dnsNames lists none" in message


def test_refuses_a_uri_for_another_service_account(tmp_path: Path) -> None:
    chain = ps.leaf_pem(uris=["spiffe://cluster.local/ns/team-a/sa/admin"])
    response = issue(app_with(tmp_path), chain)
    assert codes(response) == ["pod.san_not_allowed"]
    assert "(here 'spiffe://cluster.local/ns/team-a/sa/web')" in response["status"]["message"]


def test_node_variable_is_the_spec_node_when_only_nodes_create(tmp_path: Path) -> None:
    pods = ps.pod_certificates(dns_names=["${node}.nodes.example.com"])
    chain = ps.leaf_pem(dns_names=["worker-1.nodes.example.com"])
    assert codes(issue(app_with(tmp_path, pods), chain)) == []
    other = ps.leaf_pem(dns_names=["worker-2.nodes.example.com"])
    assert codes(issue(app_with(tmp_path, pods), other)) == ["pod.san_not_allowed"]
    # Without nodes_only the creator is unknown at /status: ${node} matches nothing.
    open_pods = ps.pod_certificates(dns_names=["${node}.nodes.example.com"], nodes_only=False)
    response = issue(app_with(tmp_path, open_pods), chain)
    assert codes(response) == ["pod.san_not_allowed"]
    assert "${node} undefined" in response["status"]["message"]


def test_refuses_a_leaf_for_a_different_key(tmp_path: Path) -> None:
    response = issue(app_with(tmp_path), ps.leaf_pem("ecdsa-p384"))
    assert codes(response) == ["pod.key_mismatch"]


def test_compares_the_leaf_with_the_v1beta1_public_key(tmp_path: Path) -> None:
    stored = ps.legacy_pcr_object("ed25519")
    assert codes(issue(app_with(tmp_path), ps.leaf_pem("ed25519"), stored)) == []
    response = issue(app_with(tmp_path), ps.leaf_pem("ecdsa-p256"), stored)
    assert codes(response) == ["pod.key_mismatch"]
    assert "spec.pkixPublicKey" in response["status"]["message"]


def test_refuses_a_chain_from_a_rogue_ca(tmp_path: Path) -> None:
    response = issue(app_with(tmp_path), ps.leaf_pem(ca=unrelated_root_ca()))
    assert codes(response) == ["pod.chain_untrusted"]


def test_a_leaf_with_more_sans_of_a_kind_than_any_policy_allows_is_refused_once(
    tmp_path: Path,
) -> None:
    """As a CSR's (checks/volume.py): past MAX_SANS_PER_KIND no SAN is matched one by one,
    so a chain under the API server's 100 KiB costs no more than its parse."""
    names = [f"a{i}.io" for i in range(MAX_SANS_PER_KIND + 1)]
    response = issue(app_with(tmp_path), ps.leaf_pem(dns_names=names))
    assert codes(response) == ["pod.san_not_allowed"]
    assert (
        f"the leaf has {MAX_SANS_PER_KIND + 1} DNS SANs; no policy may allow more than "
        in (response["status"]["message"])
    )


def test_refuses_a_ca_leaf(tmp_path: Path) -> None:
    assert codes(issue(app_with(tmp_path), ps.leaf_pem(is_ca=True))) == ["pod.ca_not_allowed"]


def test_refuses_key_usages_and_ekus_outside_issued_usages(tmp_path: Path) -> None:
    chain = ps.leaf_pem(
        key_usage=["digital signature", "key encipherment"],
        extended_key_usage=["client auth", "code signing"],
    )
    response = issue(app_with(tmp_path), chain)
    assert codes(response) == ["pod.usage_not_allowed", "pod.usage_not_allowed"]
    message = response["status"]["message"]
    assert "'key encipherment'" in message and "'code signing'" in message


def test_a_leaf_without_extended_key_usage_counts_as_any(tmp_path: Path) -> None:
    """RFC 5280 4.2.1.12: no EKU extension restricts nothing, and Go's Verify accepts such a
    leaf for every purpose: leaving EKU out must not get past issued.usages."""
    chain = ps.leaf_pem(extended_key_usage=())
    response = issue(app_with(tmp_path), chain)
    assert codes(response) == ["pod.usage_not_allowed"]
    assert "no extended key usage extension" in response["status"]["message"]
    anything = ps.pod_certificates(usages=[*ps.USAGES, "any"])
    assert codes(issue(app_with(tmp_path, anything), chain)) == []


def test_refuses_a_lifetime_outside_issued_lifetime_and_max_expiration(tmp_path: Path) -> None:
    short = ps.leaf_pem(lifetime=datetime.timedelta(minutes=30))
    assert codes(issue(app_with(tmp_path), short)) == ["lifetime.too_short"]
    long = ps.leaf_pem(lifetime=datetime.timedelta(hours=30))
    assert codes(issue(app_with(tmp_path), long)) == ["lifetime.too_long", "lifetime.too_long"]
    # Within issued.lifetime but above the stored spec.maxExpirationSeconds.
    pods = ps.pod_certificates(lifetime=Lifetime(min=None, max=None, clamp=False))
    stored = ps.pcr_object(maxExpirationSeconds=3600)
    response = issue(app_with(tmp_path, pods), ps.leaf_pem(), stored)
    assert codes(response) == ["lifetime.too_long"]
    assert "spec.maxExpirationSeconds is 3600s" in response["status"]["message"]


def test_refuses_status_times_that_are_not_the_leafs(tmp_path: Path) -> None:
    response = issue(app_with(tmp_path), ps.leaf_pem(), not_before="2020-01-01T00:00:00Z")
    assert codes(response) == ["pod.times_mismatch"]
    response = issue(app_with(tmp_path), ps.leaf_pem(), not_after=None, not_before="yesterday")
    assert codes(response) == ["pod.times_mismatch", "pod.times_mismatch"]


@pytest.mark.parametrize("refresh", ["2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "soon", None])
def test_refuses_a_refresh_time_outside_the_validity(tmp_path: Path, refresh: str | None) -> None:
    response = issue(app_with(tmp_path), ps.leaf_pem(), begin_refresh_at=refresh)
    assert codes(response) == ["pod.refresh_out_of_range"]


def test_refuses_a_writer_who_is_not_an_issuer(tmp_path: Path) -> None:
    review = ps.status_review(STORED, ps.issued_status(ps.leaf_pem()), caller=ps.user("mallory"))
    response = validate(app_with(tmp_path), review)
    assert codes(response) == ["pod.issuer_not_permitted"]
    denial = ps.status_review(STORED, ps.condition_status("Denied"), caller=ps.user("mallory"))
    assert codes(validate(app_with(tmp_path), denial)) == ["pod.issuer_not_permitted"]


@pytest.mark.parametrize("kind", ["Denied", "Failed"])
def test_allows_a_denial_or_failure_with_nothing_else(tmp_path: Path, kind: str) -> None:
    review = ps.status_review(STORED, ps.condition_status(kind))
    assert codes(validate(app_with(tmp_path), review)) == []


@pytest.mark.parametrize("kind", ["Denied", "Failed"])
def test_refuses_a_denial_or_failure_with_a_chain(tmp_path: Path, kind: str) -> None:
    status = ps.issued_status(ps.leaf_pem())
    status["conditions"] = ps.condition_status(kind)["conditions"]
    response = validate(app_with(tmp_path), ps.status_review(STORED, status))
    assert codes(response) == ["pod.fields_not_empty"]
    assert response["status"]["details"]["causes"][0]["field"] == "status.certificateChain"


def test_refuses_a_chain_without_an_issued_condition(tmp_path: Path) -> None:
    status = ps.issued_status(ps.leaf_pem())
    status["conditions"] = []
    response = validate(app_with(tmp_path), ps.status_review(STORED, status))
    assert codes(response) == ["pod.fields_not_empty"]


def test_refuses_two_terminal_conditions_or_one_not_true(tmp_path: Path) -> None:
    status = ps.issued_status(ps.leaf_pem())
    status["conditions"] += ps.condition_status("Failed")["conditions"]
    response = validate(app_with(tmp_path), ps.status_review(STORED, status))
    assert "transition.condition_duplicate" in codes(response)
    false = ps.condition_status("Denied", status="False")
    response = validate(app_with(tmp_path), ps.status_review(STORED, false))
    assert codes(response) == ["transition.condition_status"]


def test_transitions_deny_whatever_the_enforcement(tmp_path: Path) -> None:
    app = app_with(tmp_path, enforcement=Enforcement.AUDIT)
    false = ps.condition_status("Denied", status="False")
    response = validate(app, ps.status_review(STORED, false))
    assert response["allowed"] is False
    assert (
        "illegal update of PodCertificateRequest team-a/web-0-abcde"
        in (response["status"]["message"])
    )
    # A gate follows the enforcement: audited, admitted.
    audited = issue(app, ps.leaf_pem(ca=unrelated_root_ca()))
    assert audited["allowed"] is True
    assert "pod.chain_untrusted" in audited["auditAnnotations"]["violations"]


@pytest.mark.parametrize("kind", ["Issued", "Denied", "Failed"])
def test_a_terminal_status_never_changes(tmp_path: Path, kind: str) -> None:
    first = ps.issued_status(ps.leaf_pem()) if kind == "Issued" else ps.condition_status(kind)
    stored = copy.deepcopy(STORED)
    stored["status"] = first
    again = ps.issued_status(ps.leaf_pem())
    response = validate(app_with(tmp_path), ps.status_review(stored, again))
    assert codes(response) == ["pod.terminal_changed"]
    # Writing the same status again is no change.
    same = ps.status_review(stored, copy.deepcopy(first))
    assert codes(validate(app_with(tmp_path), same)) == []


def _generated_private_key_pem() -> bytes:
    """A key made for the run (none is committed): a signer that writes its key, not a chain."""
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_refuses_a_chain_that_is_not_certificates(tmp_path: Path) -> None:
    app = app_with(tmp_path)
    for chain, message in [
        (b"", "it is empty"),
        (_generated_private_key_pem(), "only CERTIFICATE"),
        (b"garbage", "at least one CERTIFICATE"),
    ]:
        status = ps.issued_status(ps.leaf_pem())
        status["certificateChain"] = chain.decode()
        response = validate(app, ps.status_review(STORED, status))
        assert codes(response) == ["pod.chain_invalid"], chain
        assert message in response["status"]["message"]


def test_refuses_two_certificates_in_one_pem_block(tmp_path: Path) -> None:
    leaf = ps.leaf_pem()
    doubled = pem_block(first_der(leaf) + first_der(leaf))
    status = ps.issued_status(leaf)
    status["certificateChain"] = doubled.decode()
    response = validate(app_with(tmp_path), ps.status_review(STORED, status))
    assert codes(response) == ["pod.chain_invalid"]
    assert "more than one certificate" in response["status"]["message"]


def test_refuses_more_than_ten_certificates(tmp_path: Path) -> None:
    leaf = ps.leaf_pem()
    status = ps.issued_status(leaf)
    status["certificateChain"] = (leaf + intermediate_ca().pem * 10).decode()
    response = validate(app_with(tmp_path), ps.status_review(STORED, status))
    assert codes(response) == ["pod.chain_invalid"]
    assert "11 PEM blocks" in response["status"]["message"]


def test_a_status_change_through_the_main_resource_is_refused(tmp_path: Path) -> None:
    updated = copy.deepcopy(STORED)
    updated["status"] = ps.condition_status("Denied")
    review = ps.pcr_review(updated, operation="UPDATE", old=STORED)
    response = validate(app_with(tmp_path), review)
    assert codes(response) == ["transition.status_subresource_required"]


def test_a_spec_change_is_refused_on_any_endpoint(tmp_path: Path) -> None:
    updated = copy.deepcopy(STORED)
    updated["spec"]["serviceAccountName"] = "admin"
    main = ps.pcr_review(updated, operation="UPDATE", old=STORED)
    response = validate(app_with(tmp_path), main)
    assert codes(response) == ["transition.spec_changed"]
    assert "spec.serviceAccountName is 'admin', stored 'web'" in response["status"]["message"]
    updated["status"] = ps.issued_status(ps.leaf_pem())
    status = ps.pcr_review(updated, operation="UPDATE", sub_resource="status", old=STORED)
    assert codes(validate(app_with(tmp_path), status))[0] == "transition.spec_changed"


def test_a_metadata_only_update_is_allowed(tmp_path: Path) -> None:
    updated = copy.deepcopy(STORED)
    updated["metadata"]["labels"] = {"app": "web"}
    review = ps.pcr_review(updated, operation="UPDATE", old=STORED, caller=ps.user("alice"))
    assert codes(validate(app_with(tmp_path), review)) == []


def test_a_policy_without_pod_certificates_refuses_issuing(tmp_path: Path) -> None:
    response = issue(app_with(tmp_path, governed=False), ps.leaf_pem())
    assert codes(response) == ["pod.not_governed"]


def test_an_unmatched_signer_gets_the_transition_rules_only(tmp_path: Path) -> None:
    stored = ps.pcr_object(signerName="other.example.com/signer")
    assert codes(issue(app_with(tmp_path), ps.leaf_pem(ca=unrelated_root_ca()), stored)) == []


# ---- the leaf's subject (issued.subject) -------------------------------------------------------

CN = NameOID.COMMON_NAME
ORG = NameOID.ORGANIZATION_NAME
MESH_SUBJECT = {"commonName": ["${pod.name}"], "organization": ["mesh.example.com"]}


def test_an_empty_subject_is_allowed_without_issued_subject(tmp_path: Path) -> None:
    # The default leaf (ps.leaf_pem) has an empty subject, as a SPIFFE X.509-SVID may.
    assert ps.pod_certificates().issued.subject == {}
    assert codes(issue(app_with(tmp_path), ps.leaf_pem())) == []


def test_a_common_name_is_refused_without_issued_subject(tmp_path: Path) -> None:
    response = issue(app_with(tmp_path), ps.leaf_pem(subject=[(CN, ps.POD)]))
    assert codes(response) == ["pod.subject_not_allowed"]
    assert (
        f"the leaf's subject commonName {ps.POD!r} is not allowed: issued.subject lists "
        "no commonName" in response["status"]["message"]
    )


def test_a_common_name_matching_the_pod_name_template_is_allowed(tmp_path: Path) -> None:
    pods = ps.pod_certificates(subject=MESH_SUBJECT)
    leaf = ps.leaf_pem(subject=[(CN, ps.POD), (ORG, "mesh.example.com")])
    assert codes(issue(app_with(tmp_path, pods), leaf)) == []
    other = issue(app_with(tmp_path, pods), ps.leaf_pem(subject=[(CN, "db-0")]))
    assert codes(other) == ["pod.subject_not_allowed"]
    assert (
        f"commonName 'db-0' matches none of issued.subject.commonName ['${{pod.name}}' "
        f"(here {ps.POD!r})]" in other["status"]["message"]
    )


def test_system_masters_is_refused_even_beside_an_allowed_organization(tmp_path: Path) -> None:
    """The red-team's leaf: a CA trusted as kube-apiserver's client CA makes O=system:masters
    cluster-admin; every value of every attribute is judged, not the first."""
    pods = ps.pod_certificates(subject=MESH_SUBJECT)
    leaf = ps.leaf_pem(subject=[(ORG, "mesh.example.com"), (ORG, "system:masters")])
    response = issue(app_with(tmp_path, pods), leaf)
    assert response["allowed"] is False
    assert codes(response) == ["pod.subject_not_allowed"]
    assert "organization 'system:masters' matches none of" in response["status"]["message"]


def test_an_unlisted_or_unknown_subject_attribute_is_refused(tmp_path: Path) -> None:
    pods = ps.pod_certificates(subject=MESH_SUBJECT)
    leaf = ps.leaf_pem(
        subject=[
            (CN, ps.POD),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "ops"),
            (NameOID.EMAIL_ADDRESS, "root@example.com"),
        ]
    )
    response = issue(app_with(tmp_path, pods), leaf)
    assert codes(response) == ["pod.subject_not_allowed", "pod.subject_not_allowed"]
    message = response["status"]["message"]
    assert "organizationalUnit 'ops' is not allowed: issued.subject lists no " in message
    assert "attribute 1.2.840.113549.1.9.1 = 'root@example.com' is not one of" in message


def test_a_policy_naming_an_unknown_subject_attribute_does_not_load(tmp_path: Path) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    file = directory / "mesh.yaml"
    file.write_text(
        "apiVersion: policy.csr-webhook.io/v1alpha1\n"
        "kind: SignerPolicy\n"
        "metadata: {name: mesh}\n"
        "spec:\n"
        f"  signerNames: [{ps.SIGNER}]\n"
        "  podCertificates:\n"
        "    issued: {subject: {uid: ['${pod.uid}']}}\n"
    )
    result = load_policies([file])
    assert result.policy_set is None
    assert [str(p) for p in result.problems] == [
        f"{file}:7: spec.podCertificates.issued.subject.uid: unknown field 'uid' (known: "
        "commonName, organization, organizationalUnit, country, locality, province, "
        "streetAddress, postalCode, serialNumber)"
    ]


def test_a_subject_with_more_attributes_than_any_policy_allows_is_refused_once(
    tmp_path: Path,
) -> None:
    """As for SANs: past MAX_SUBJECT_ATTRIBUTES no attribute is matched one by one."""
    pods = ps.pod_certificates(subject={"organizationalUnit": ["*"]})
    many = [(NameOID.ORGANIZATIONAL_UNIT_NAME, f"u{i}") for i in range(MAX_SUBJECT_ATTRIBUTES + 1)]
    response = issue(app_with(tmp_path, pods), ps.leaf_pem(subject=many))
    assert codes(response) == ["pod.subject_not_allowed"]
    assert (
        f"the leaf's subject has {MAX_SUBJECT_ATTRIBUTES + 1} attributes; no policy may allow "
        f"more than {MAX_SUBJECT_ATTRIBUTES}" in response["status"]["message"]
    )
    few = [(NameOID.ORGANIZATIONAL_UNIT_NAME, f"u{i}") for i in range(MAX_SUBJECT_ATTRIBUTES)]
    assert codes(issue(app_with(tmp_path, pods), ps.leaf_pem(subject=few))) == []
