"""The issuance gate on UPDATE of /status for signers with a policy (SPEC §3.9), with real
certificates issued the way kube-controller-manager's csrsigning does (reference §4.5).

Who may write the certificate or Failed (`issuance.issuers`), and what the leaf must be: the
CSR's key, no subject attribute or SAN the CSR lacks, lifetime within the bound plus the
in-tree 5-minute backdate, no CA unless allowed, no KU/EKU outside spec.usages, and signed by
the signer's CA (directly or through intermediates in the following PEM blocks).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient

from tests.builders import build_csr
from tests.conftest import MakeApp
from tests.issuance_builders import (
    TestCA,
    end_entity_of_root,
    impostor_intermediate_ca,
    impostor_root_ca,
    intermediate_ca,
    root_ca,
    sign_csr,
    unrelated_root_ca,
)
from tests.reviews import user_info
from tests.update_reviews import (
    SIGNER,
    approved,
    audited_codes,
    codes,
    condition,
    failed,
    status_update,
    stored_csr,
    validate,
)

APPS = "example.com/apps"  # rule lifetime.max 24h, issuers signer-bot, caBundle = root
CAPPED = "example.com/capped"  # maxLifetime 12h over a rule max of 24h; no CA bundle
OPEN = "example.com/open"  # no lifetime limits, no issuers, no CA bundle
CA_SIGNER = "example.com/ca"  # a rule with isCA: true
BUNDLE_FILE = "example.com/bundle-file"  # caBundleFile = the root on disk

USAGES = ["digital signature", "server auth"]
ALL_USAGES = ["digital signature", "signing", "key encipherment", "server auth", "client auth"]
DAVE = user_info("dave", ["system:authenticated"])
KCM = user_info("system:kube-controller-manager", ["system:authenticated"])
CONTROLLER_SA = user_info(
    "system:serviceaccount:kube-system:certificate-controller",
    ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
)
HOUR = datetime.timedelta(hours=1)
SECOND = datetime.timedelta(seconds=1)
BACKDATE = datetime.timedelta(minutes=5)


def _rule(
    *, lifetime: dict[str, Any] | None = None, is_ca: bool = False, usages: Sequence[str] = ()
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": "web",
        "allowed": {
            "subject": {
                "commonName": {"values": ["${username}"], "required": True},
                "organization": {"values": ["web", "system:masters"]},
            },
            "dnsNames": {"values": ["*.apps.example.com"]},
            "ipAddresses": {"values": ["10.0.0.0/8"]},
            "usages": list(usages or ALL_USAGES),
            "isCA": is_ca,
        },
    }
    if lifetime:
        rule["constraints"] = {"lifetime": lifetime}
    return rule


def _policy(name: str, signer: str, rule: dict[str, Any], **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "policy.csr-webhook.io/v1alpha1",
            "kind": "SignerPolicy",
            "metadata": {"name": name},
            "spec": {"signerNames": [signer], "rules": [rule], **spec},
        },
        indent=2,
    )


def policies(
    tmp_path: Path,
    *,
    enforcement: str = "Deny",
    issuers: dict[str, Any] | None = None,
    ca_bundle: Sequence[TestCA] = (),
) -> dict[str, str]:
    apps_issuance: dict[str, Any] = {
        "issuers": issuers if issuers is not None else {"users": ["signer-bot"]},
        "caBundle": b"".join(ca.pem for ca in (ca_bundle or (root_ca(),))).decode(),
    }
    return {
        "apps.yaml": _policy(
            "apps",
            APPS,
            _rule(lifetime={"max": "24h"}),
            enforcement=enforcement,
            issuance=apps_issuance,
        ),
        "capped.yaml": _policy(
            "capped", CAPPED, _rule(lifetime={"max": "24h"}), issuance={"maxLifetime": "12h"}
        ),
        "open.yaml": _policy("open", OPEN, _rule()),
        "ca.yaml": _policy(
            "ca", CA_SIGNER, _rule(is_ca=True, usages=["digital signature", "cert sign"])
        ),
        "bundle-file.yaml": _policy(
            "bundle-file",
            BUNDLE_FILE,
            _rule(),
            issuance={"caBundleFile": "root.pem"},
        ),
        "root.pem": root_ca().pem.decode(),  # beside the policy files, as in a ConfigMap
    }


@pytest.fixture
def client(make_app: MakeApp, tmp_path: Path) -> FlaskClient:
    return make_app(policies(tmp_path)).test_client()


@cache
def request_pem(organization: tuple[str, ...] = ("web",), ip: bool = False) -> bytes:
    return build_csr(
        common_name="alice",
        organization=organization,
        dns_names=["www.apps.example.com"],
        ip_addresses=["10.1.2.3"] if ip else [],
    )


def approved_csr(
    signer: str = APPS,
    *,
    usages: Sequence[str] = USAGES,
    expiration_seconds: int | None = 3600,
    pem: bytes | None = None,
) -> dict[str, Any]:
    return stored_csr(
        pem or request_pem(),
        signer_name=signer,
        usages=list(usages),
        expiration_seconds=expiration_seconds,
        conditions=[approved()],
    )


def issue(
    client: FlaskClient,
    certificate: bytes,
    *,
    old: dict[str, Any] | None = None,
    caller: dict[str, Any] = SIGNER,
) -> dict[str, Any]:
    old = old if old is not None else approved_csr()
    return validate(client, status_update(old, certificate=certificate, caller=caller))


def leaf(**kwargs: Any) -> bytes:
    """The certificate the in-tree signer would issue for request_pem() with USAGES."""
    kwargs.setdefault("usages", USAGES)
    return sign_csr(kwargs.pop("pem", request_pem()), **kwargs)


# ---- issuers ---------------------------------------------------------------------------------


def test_allows_issuer_to_write_in_tree_style_certificate(client: FlaskClient) -> None:
    response = issue(client, leaf())
    assert response["allowed"] is True, codes(response)


def test_denies_certificate_written_by_non_issuer(client: FlaskClient) -> None:
    assert codes(issue(client, leaf(), caller=DAVE)) == ["issuance.not_issuer"]


def test_allows_issuer_to_add_failed(client: FlaskClient) -> None:
    old = approved_csr()
    review = status_update(old, conditions=[*old["status"]["conditions"], failed()])
    assert validate(client, review)["allowed"] is True


def test_denies_failed_added_by_non_issuer(client: FlaskClient) -> None:
    old = approved_csr()
    review = status_update(old, conditions=[*old["status"]["conditions"], failed()], caller=DAVE)
    assert codes(validate(client, review)) == ["issuance.not_issuer"]


def test_allows_non_issuer_status_update_that_writes_neither_certificate_nor_failed(
    client: FlaskClient,
) -> None:
    old = approved_csr()
    review = status_update(
        old, conditions=[*old["status"]["conditions"], condition("Queued")], caller=DAVE
    )
    assert validate(client, review)["allowed"] is True


@pytest.mark.parametrize("caller", [KCM, CONTROLLER_SA], ids=["kcm-user", "controller-sa"])
def test_issuers_listing_a_user_and_a_service_account_admit_both(
    make_app: MakeApp, tmp_path: Path, caller: dict[str, Any]
) -> None:
    # SPEC §8: default issuers "must include both" identities of the in-tree signer, as the
    # shipped policies do with users + serviceAccounts; the lists are alternatives
    issuers = {
        "users": ["system:kube-controller-manager"],
        "serviceAccounts": ["kube-system/certificate-controller"],
    }
    client = make_app(policies(tmp_path, issuers=issuers)).test_client()
    response = issue(client, leaf(), caller=caller)
    assert response["allowed"] is True, codes(response)


@pytest.mark.parametrize("caller", [KCM, CONTROLLER_SA], ids=["kcm-user", "controller-sa"])
def test_shipped_kubelet_client_policy_lets_the_in_tree_signer_issue(
    make_app: MakeApp, caller: dict[str, Any]
) -> None:
    # SPEC §8: the csrsigning controller signs as one of these two identities
    directory = Path(__file__).resolve().parent.parent / "policies"
    client = make_app({p.name: p.read_text() for p in directory.glob("*.yaml")}).test_client()
    usages = ["digital signature", "client auth"]
    pem = build_csr(common_name="system:node:worker-1", organization=["system:nodes"])
    old = stored_csr(
        pem,
        signer_name="kubernetes.io/kube-apiserver-client-kubelet",
        usages=usages,
        expiration_seconds=86400,
        username="system:node:worker-1",
        groups=["system:nodes", "system:authenticated"],
        conditions=[approved("AutoApproved")],
    )
    certificate = sign_csr(pem, usages=usages, lifetime=24 * HOUR - BACKDATE)
    response = issue(client, certificate, old=old, caller=caller)
    assert response["allowed"] is True, codes(response)


def test_issuers_match_service_accounts_by_namespace_and_name(
    make_app: MakeApp, tmp_path: Path
) -> None:
    issuers = {"serviceAccounts": ["kube-system/certificate-controller"]}
    client = make_app(policies(tmp_path, issuers=issuers)).test_client()
    assert issue(client, leaf(), caller=CONTROLLER_SA)["allowed"] is True
    other = user_info("system:serviceaccount:default:certificate-controller", [])
    assert codes(issue(client, leaf(), caller=other)) == ["issuance.not_issuer"]


def test_allows_anyone_to_issue_when_issuers_omitted(client: FlaskClient) -> None:
    response = issue(client, leaf(), old=approved_csr(OPEN), caller=DAVE)
    assert response["allowed"] is True, codes(response)


# ---- the leaf against the CSR ----------------------------------------------------------------


def test_denies_certificate_for_another_public_key(client: FlaskClient) -> None:
    assert codes(issue(client, leaf(key="ecdsa-p384"))) == ["issuance.public_key_mismatch"]


def test_denies_certificate_with_san_the_csr_lacks(client: FlaskClient) -> None:
    # the extra name is one the policy would allow, but nobody asked for it
    certificate = leaf(extra_dns=["extra.apps.example.com"])
    assert codes(issue(client, certificate)) == ["issuance.san_not_requested"]


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param(
            [
                (NameOID.COMMON_NAME, "alice"),
                (NameOID.ORGANIZATION_NAME, "web"),
                (NameOID.ORGANIZATION_NAME, "system:masters"),
            ],
            id="extra-organization",
        ),
        pytest.param(
            [(NameOID.COMMON_NAME, "mallory"), (NameOID.ORGANIZATION_NAME, "web")],
            id="other-common-name",
        ),
        pytest.param(
            [
                (NameOID.COMMON_NAME, "alice"),
                (NameOID.ORGANIZATION_NAME, "web"),
                (NameOID.COUNTRY_NAME, "DE"),
            ],
            id="extra-country",
        ),
    ],
)
def test_denies_certificate_with_subject_attribute_the_csr_lacks(
    client: FlaskClient, subject: list[tuple[x509.ObjectIdentifier, str]]
) -> None:
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in subject])
    assert codes(issue(client, leaf(subject=name))) == ["issuance.subject_not_requested"]


def test_allows_certificate_with_fewer_subject_attributes_than_requested(
    client: FlaskClient,
) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    assert issue(client, leaf(subject=name))["allowed"] is True


def test_allows_certificate_with_the_requested_ip_san(client: FlaskClient) -> None:
    pem = request_pem(ip=True)
    response = issue(client, leaf(pem=pem), old=approved_csr(pem=pem))
    assert response["allowed"] is True, codes(response)


def test_reports_every_leaf_violation_at_once(client: FlaskClient) -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
        ]
    )
    certificate = leaf(
        subject=name,
        extra_dns=["extra.apps.example.com"],
        lifetime=2 * HOUR,
        is_ca=True,
        extended_key_usage=["server auth", "client auth"],
    )
    assert codes(issue(client, certificate)) == [
        "issuance.ca_not_allowed",
        "issuance.lifetime_too_long",
        "issuance.san_not_requested",
        "issuance.subject_not_requested",
        "issuance.usage_not_requested",
    ]


# ---- lifetime: min(maxLifetime or rule max, expirationSeconds) + 5 minutes -------------------


@pytest.mark.parametrize(
    ("signer", "expiration_seconds", "bound"),
    [
        # bound from spec.expirationSeconds (the in-tree "short" certificate: now-5m .. now+ttl)
        pytest.param(APPS, 3600, HOUR, id="expirationSeconds"),
        # bound from the rule's lifetime.max (24h) below expirationSeconds (48h)
        pytest.param(APPS, 48 * 3600, 24 * HOUR, id="rule-max"),
        # a CSR stored without expirationSeconds (admitted while the webhook failed open):
        # the rule's max still bounds the certificate
        pytest.param(APPS, None, 24 * HOUR, id="rule-max-without-expirationSeconds"),
        # bound from issuance.maxLifetime (12h), below the rule max and expirationSeconds
        pytest.param(CAPPED, 24 * 3600, 12 * HOUR, id="maxLifetime"),
        # no expirationSeconds: maxLifetime alone
        pytest.param(CAPPED, None, 12 * HOUR, id="maxLifetime-without-expirationSeconds"),
    ],
)
def test_allows_certificate_exactly_at_the_lifetime_bound(
    client: FlaskClient, signer: str, expiration_seconds: int | None, bound: datetime.timedelta
) -> None:
    old = approved_csr(signer, expiration_seconds=expiration_seconds)
    certificate = leaf(lifetime=bound, backdate=BACKDATE)  # notAfter - notBefore = bound + 5m
    response = issue(client, certificate, old=old)
    assert response["allowed"] is True, codes(response)


@pytest.mark.parametrize(
    ("signer", "expiration_seconds", "bound"),
    [
        pytest.param(APPS, 3600, HOUR, id="expirationSeconds"),
        pytest.param(APPS, 48 * 3600, 24 * HOUR, id="rule-max"),
        # a CSR stored without expirationSeconds (admitted while the webhook failed open):
        # the rule's max still bounds the certificate
        pytest.param(APPS, None, 24 * HOUR, id="rule-max-without-expirationSeconds"),
        pytest.param(CAPPED, 24 * 3600, 12 * HOUR, id="maxLifetime"),
        pytest.param(CAPPED, None, 12 * HOUR, id="maxLifetime-without-expirationSeconds"),
    ],
)
def test_denies_certificate_one_second_over_the_lifetime_bound(
    client: FlaskClient, signer: str, expiration_seconds: int | None, bound: datetime.timedelta
) -> None:
    old = approved_csr(signer, expiration_seconds=expiration_seconds)
    certificate = leaf(lifetime=bound + SECOND, backdate=BACKDATE)
    assert codes(issue(client, certificate, old=old)) == ["issuance.lifetime_too_long"]


def test_counts_the_whole_validity_period_not_only_the_time_ahead(client: FlaskClient) -> None:
    # notAfter is within an hour from now, but the backdate makes the period 1h + 6m
    certificate = leaf(lifetime=HOUR, backdate=BACKDATE + datetime.timedelta(minutes=1))
    assert codes(issue(client, certificate)) == ["issuance.lifetime_too_long"]


def test_allows_in_tree_long_certificate_that_ends_five_minutes_early(
    client: FlaskClient,
) -> None:
    # ttl >= 8h: NotBefore = now - 5m, NotAfter = now + ttl - 5m (reference §4.5)
    old = approved_csr(expiration_seconds=24 * 3600)
    certificate = leaf(lifetime=24 * HOUR - BACKDATE)
    assert issue(client, certificate, old=old)["allowed"] is True


def test_allows_any_lifetime_without_any_bound(client: FlaskClient) -> None:
    old = approved_csr(OPEN, expiration_seconds=None)
    certificate = leaf(lifetime=datetime.timedelta(days=3650))
    assert issue(client, certificate, old=old)["allowed"] is True


# ---- CA bit and usages -----------------------------------------------------------------------


def test_denies_ca_certificate_unless_the_rule_allows_is_ca(client: FlaskClient) -> None:
    assert codes(issue(client, leaf(is_ca=True))) == ["issuance.ca_not_allowed"]


def test_allows_ca_certificate_when_the_rule_allows_is_ca(client: FlaskClient) -> None:
    usages = ["digital signature", "cert sign"]
    old = approved_csr(CA_SIGNER, usages=usages)
    response = issue(client, leaf(is_ca=True, usages=usages), old=old)
    assert response["allowed"] is True, codes(response)


@pytest.mark.parametrize(
    ("key_usage", "extended_key_usage"),
    [
        pytest.param(["digital signature", "key encipherment"], None, id="ku-key-encipherment"),
        pytest.param(["digital signature", "content commitment"], None, id="ku-content-commitment"),
        pytest.param(None, ["server auth", "client auth"], id="eku-client-auth"),
        pytest.param(None, ["server auth", "any"], id="eku-any"),
    ],
)
def test_denies_key_usage_outside_spec_usages(
    client: FlaskClient, key_usage: list[str] | None, extended_key_usage: list[str] | None
) -> None:
    certificate = leaf(key_usage=key_usage, extended_key_usage=extended_key_usage)
    assert codes(issue(client, certificate)) == ["issuance.usage_not_requested"]


def test_allows_signing_usage_as_digital_signature(client: FlaskClient) -> None:
    # policies.go keyUsageDict: "signing" and "digital signature" both mean DigitalSignature
    usages = ["signing", "server auth"]
    old = approved_csr(usages=usages)
    response = issue(client, leaf(usages=usages), old=old)
    assert response["allowed"] is True, codes(response)


def test_allows_certificate_with_fewer_usages_than_requested(client: FlaskClient) -> None:
    old = approved_csr(usages=["digital signature", "key encipherment", "server auth"])
    response = issue(client, leaf(usages=["digital signature", "server auth"]), old=old)
    assert response["allowed"] is True, codes(response)


def test_allows_certificate_without_key_usage_extensions(client: FlaskClient) -> None:
    response = issue(client, leaf(key_usage=[], extended_key_usage=[]))
    assert response["allowed"] is True, codes(response)


# ---- chain to the signer's CA ----------------------------------------------------------------


def test_allows_certificate_issued_through_an_intermediate_in_the_next_block(
    client: FlaskClient,
) -> None:
    certificate = leaf(ca=intermediate_ca(), chain=[intermediate_ca()])
    response = issue(client, certificate)
    assert response["allowed"] is True, codes(response)


def test_allows_chain_that_also_carries_the_root(client: FlaskClient) -> None:
    certificate = leaf(ca=intermediate_ca(), chain=[intermediate_ca(), root_ca()])
    assert issue(client, certificate)["allowed"] is True


def test_denies_certificate_whose_intermediate_is_missing(client: FlaskClient) -> None:
    certificate = leaf(ca=intermediate_ca())
    assert codes(issue(client, certificate)) == ["issuance.untrusted_issuer"]


def test_denies_certificate_from_an_unrelated_ca(client: FlaskClient) -> None:
    certificate = leaf(ca=unrelated_root_ca())
    assert codes(issue(client, certificate)) == ["issuance.untrusted_issuer"]


def test_denies_certificate_from_a_ca_with_the_trusted_name_but_another_key(
    client: FlaskClient,
) -> None:
    impostor = impostor_root_ca()
    assert impostor.certificate.subject == root_ca().certificate.subject
    assert codes(issue(client, leaf(ca=impostor))) == ["issuance.untrusted_issuer"]


def test_denies_chain_through_an_impostor_intermediate(client: FlaskClient) -> None:
    # the intermediate's name is right; its signature is the impostor root's
    impostor = impostor_intermediate_ca()
    assert impostor.certificate.issuer == root_ca().certificate.subject
    certificate = leaf(ca=impostor, chain=[impostor])
    assert codes(issue(client, certificate)) == ["issuance.untrusted_issuer"]


def test_denies_leaf_of_an_impostor_intermediate_presented_with_the_real_one(
    client: FlaskClient,
) -> None:
    certificate = leaf(ca=impostor_intermediate_ca(), chain=[intermediate_ca()])
    assert codes(issue(client, certificate)) == ["issuance.untrusted_issuer"]


def test_denies_leaf_signed_by_a_non_ca_certificate_of_the_trusted_root(
    client: FlaskClient,
) -> None:
    # an "intermediate" must be a CA: a CA:false end-entity certificate issued by the root
    # does not make what its key signs trusted (RFC 5280 §6.1.4 (k))
    issuer = end_entity_of_root()
    issuer.certificate.verify_directly_issued_by(root_ca().certificate)
    certificate = leaf(ca=issuer, chain=[issuer])
    assert codes(issue(client, certificate)) == ["issuance.untrusted_issuer"]


def test_trusts_any_ca_of_a_bundle_with_several(make_app: MakeApp, tmp_path: Path) -> None:
    client = make_app(policies(tmp_path, ca_bundle=[unrelated_root_ca(), root_ca()])).test_client()
    assert issue(client, leaf())["allowed"] is True
    assert issue(client, leaf(ca=unrelated_root_ca()))["allowed"] is True
    assert codes(issue(client, leaf(ca=impostor_root_ca()))) == ["issuance.untrusted_issuer"]


def test_trusts_an_intermediate_as_the_bundle(make_app: MakeApp, tmp_path: Path) -> None:
    client = make_app(policies(tmp_path, ca_bundle=[intermediate_ca()])).test_client()
    assert issue(client, leaf(ca=intermediate_ca()))["allowed"] is True
    assert codes(issue(client, leaf())) == ["issuance.untrusted_issuer"]


def test_ca_bundle_file_is_trusted_like_an_inline_bundle(client: FlaskClient) -> None:
    old = approved_csr(BUNDLE_FILE)
    assert issue(client, leaf(), old=old)["allowed"] is True
    through = leaf(ca=intermediate_ca(), chain=[intermediate_ca()])
    assert issue(client, through, old=old)["allowed"] is True
    impostor = leaf(ca=impostor_root_ca())
    assert codes(issue(client, impostor, old=old)) == ["issuance.untrusted_issuer"]


def test_accepts_any_issuer_without_a_ca_bundle(client: FlaskClient) -> None:
    old = approved_csr(OPEN)
    assert issue(client, leaf(ca=unrelated_root_ca()), old=old)["allowed"] is True


# ---- enforcement -----------------------------------------------------------------------------


def test_warn_policy_lets_mismatched_certificate_through_with_a_warning(
    make_app: MakeApp, tmp_path: Path
) -> None:
    client = make_app(policies(tmp_path, enforcement="Warn")).test_client()
    response = issue(client, leaf(key="ecdsa-p384"))
    assert response["allowed"] is True
    assert response["auditAnnotations"]["decision"] == "warned"
    assert audited_codes(response) == ["issuance.public_key_mismatch"]
    assert len(response["warnings"]) >= 1


def test_audit_policy_records_untrusted_issuer_silently(make_app: MakeApp, tmp_path: Path) -> None:
    client = make_app(policies(tmp_path, enforcement="Audit")).test_client()
    response = issue(client, leaf(ca=impostor_root_ca()), caller=DAVE)
    assert response["allowed"] is True
    assert "warnings" not in response
    assert response["auditAnnotations"]["decision"] == "audited"
    assert audited_codes(response) == ["issuance.not_issuer", "issuance.untrusted_issuer"]


@pytest.mark.parametrize("enforcement", ["Warn", "Audit"])
def test_certificate_without_approval_denies_whatever_the_enforcement(
    make_app: MakeApp, tmp_path: Path, enforcement: str
) -> None:
    client = make_app(policies(tmp_path, enforcement=enforcement)).test_client()
    old = stored_csr(request_pem(), signer_name=APPS, usages=USAGES, expiration_seconds=3600)
    response = issue(client, leaf(), old=old)
    assert response["allowed"] is False
    assert codes(response) == ["transition.certificate_unapproved"]


# ---- the gate judges the stored spec ----------------------------------------------------------


def test_denies_status_update_that_raises_expiration_seconds(client: FlaskClient) -> None:
    # stored: expirationSeconds 1h; the update claims 24h (the rule's max) and writes a 24h leaf
    old = approved_csr(expiration_seconds=3600)
    review = status_update(old, certificate=leaf(lifetime=24 * HOUR))
    review["request"]["object"]["spec"]["expirationSeconds"] = 24 * 3600
    response = validate(client, review)
    assert response["allowed"] is False
    assert codes(response) == ["issuance.lifetime_too_long", "transition.spec_changed"]


def test_issuance_compares_usages_of_the_stored_spec(client: FlaskClient) -> None:
    old = approved_csr(usages=["digital signature", "server auth"])
    certificate = leaf(usages=["digital signature", "server auth", "client auth"])
    review = status_update(old, certificate=certificate)
    review["request"]["object"]["spec"]["usages"] = [*USAGES, "client auth"]
    response = validate(client, review)
    assert codes(response) == ["issuance.usage_not_requested", "transition.spec_changed"]


# ---- issuance always has a lifetime bound -----------------------------------------------------

TEAMS = "example.com/teams"
CENTURY = datetime.timedelta(days=36525)


def _team_rule(name: str, group: str, max_lifetime: str | None, *, is_ca: bool = False) -> Any:
    rule = _rule(lifetime={"max": max_lifetime} if max_lifetime else None, is_ca=is_ca)
    return {**rule, "name": name, "requesters": {"groups": [group]}}


def teams_client(make_app: MakeApp, enforcement: str, *rules: Any) -> FlaskClient:
    document = json.loads(_policy("teams", TEAMS, rules[0], enforcement=enforcement))
    document["spec"]["rules"] = list(rules)
    return make_app({"teams.yaml": json.dumps(document)}).test_client()


def stored_team_csr(groups: Sequence[str], pem: bytes | None = None) -> dict[str, Any]:
    """Approved, without expirationSeconds: it got in while the webhook failed open, or under
    Warn/Audit (at /validate a rule with lifetime.max denies it as lifetime.missing)."""
    return stored_csr(
        pem or request_pem(),
        signer_name=TEAMS,
        usages=USAGES,
        groups=list(groups),
        conditions=[approved()],
    )


@pytest.mark.parametrize("enforcement", ["Deny", "Warn", "Audit"])
def test_refuses_century_certificate_for_a_requester_no_rule_admits(
    make_app: MakeApp, enforcement: str
) -> None:
    client = teams_client(
        make_app,
        enforcement,
        _team_rule("web", "web-team", "24h"),
        _team_rule("batch", "batch", "1h"),
    )
    old = stored_team_csr(["system:authenticated"])
    response = issue(client, leaf(lifetime=CENTURY), old=old)
    expected = ["issuance.lifetime_too_long", "issuance.requester_not_permitted"]
    if enforcement == "Deny":
        assert response["allowed"] is False
        assert codes(response) == expected
        causes = response["status"]["details"]["causes"]
        bound = next(c for c in causes if c["reason"] == "issuance.lifetime_too_long")
        assert "at most 3600s" in bound["message"]  # the policy's strictest lifetime.max
    else:
        # Warn and Audit soften issuance violations, as every other gate's: recorded, not
        # blocked (transition violations are the ones that deny whatever the enforcement)
        assert response["allowed"] is True
        assert audited_codes(response) == expected
        assert ("warnings" in response) is (enforcement == "Warn")


def test_century_certificate_with_a_rule_that_admits_and_bounds_is_refused_for_its_lifetime(
    make_app: MakeApp,
) -> None:
    client = teams_client(make_app, "Deny", _team_rule("web", "web-team", "24h"))
    old = stored_team_csr(["web-team", "system:authenticated"])
    assert codes(issue(client, leaf(lifetime=CENTURY), old=old)) == ["issuance.lifetime_too_long"]


def test_bound_without_a_permitting_rule_is_the_smallest_max_of_the_applicable_rules(
    make_app: MakeApp,
) -> None:
    # both rules apply to the requester, neither permits the CSR (a DNS name neither allows):
    # the bound is the CA rule's 1h although the other rule has none, and the certificate may
    # not be a CA since not every applicable rule allows one
    client = teams_client(
        make_app,
        "Deny",
        _team_rule("unbounded", "web-team", None),
        _team_rule("ca", "web-team", "1h", is_ca=True),
    )
    pem = build_csr(common_name="alice", dns_names=["www.elsewhere.example.org"])
    old = stored_team_csr(["web-team", "system:authenticated"], pem)
    response = issue(client, leaf(pem=pem, lifetime=CENTURY, is_ca=True), old=old)
    assert codes(response) == ["issuance.ca_not_allowed", "issuance.lifetime_too_long"]


def test_no_bound_when_no_rule_of_the_policy_has_one(make_app: MakeApp) -> None:
    client = teams_client(make_app, "Deny", _team_rule("web", "web-team", None))
    old = stored_team_csr(["web-team", "system:authenticated"])
    response = issue(client, leaf(lifetime=CENTURY), old=old)
    assert response["allowed"] is True, codes(response)
