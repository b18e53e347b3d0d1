"""The issuance policy set and leaf shorthands that the hostile-certificate and hostile-input tests
share (the issuance gate's own cases are vectors: tests/vectors/issuance.yaml).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from tests.builders import build_csr
from tests.issuance_builders import TestCA, root_ca, sign_csr
from tests.update_reviews import SIGNER, approved, status_update, stored_csr, validate

APPS = "example.com/apps"  # rule lifetime.max 24h, issuers signer-bot, caBundle = root
CAPPED = "example.com/capped"  # maxLifetime 12h over a rule max of 24h; no CA bundle
OPEN = "example.com/open"  # no lifetime limits, no issuers, no CA bundle
CA_SIGNER = "example.com/ca"  # a rule with isCA: true
BUNDLE_FILE = "example.com/bundle-file"  # caBundleFile = the root on disk

USAGES = ["digital signature", "server auth"]
ALL_USAGES = ["digital signature", "signing", "key encipherment", "server auth", "client auth"]


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
