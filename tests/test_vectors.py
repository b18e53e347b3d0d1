"""Decision-level test vectors (tests/vectors/*.yaml), run end to end through /validate and /mutate.

Every case of every suite is one pytest case with id `suite::case name` (`[signer]` appended for
each of an UPDATE case's `signerNames`); CREATE cases are built here, UPDATE and DELETE cases by
tests/update_vectors.py, both with the API-server simulator. The format is described
at the top of tests/vectors/README.md, which also catalogues every suite and hand-made CSR.
"""

from __future__ import annotations

import base64
import copy
import json
import json as _json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from flask.testing import FlaskClient

from tests.builders import build_csr, openssl_csr, private_key
from tests.conftest import MakeApp, write_policies
from tests.contract import check_admission_response
from tests.reviews import create_review, mutating_create_review
from tests.update_vectors import (
    UPDATE_KEYS,
    ca_bundle,
    subject_name,
    update_review,
    with_test_cas,
)
from tests.vectors import make_handmade
from tests.vectors.handmade_shape import pem_shape
from tests.vectors.make_handmade import HANDMADE
from webhook.authoring.policytest import review_response
from webhook.authoring.suite import UNKNOWN_CLUSTER, cluster_facts
from webhook.engine import EngineOptions
from webhook.facts import StaticFacts
from webhook.policy.loader import is_policy_file, load_policies
from webhook.x509.oids import EKU_USAGE_NAMES

VECTORS = Path(__file__).parent / "vectors"
HANDMADE_DIR = VECTORS / "handmade"
SHIPPED_POLICIES = Path(__file__).parent.parent / "policies"

SUITE_KEYS = {
    "description",
    "policies",
    "caFiles",
    "shipped",
    "settings",
    "defaults",
    "cluster",
    "cases",
}
CASE_KEYS = {
    "name",
    "endpoint",
    "csr",
    "pem",
    "openssl",
    "text",
    "base64",
    "padTo",
    "signerName",
    "requester",
    "usages",
    "expirationSeconds",
    "settings",
    "expect",
    "violations",
    "patch",
    "cluster",
} | UPDATE_KEYS
SOURCES = ("csr", "pem", "openssl", "text", "base64")
CSR_KEYS = {
    "key",
    "hash",
    "subject",
    "dnsNames",
    "ipAddresses",
    "uris",
    "emailAddresses",
    "keyUsage",
    "extendedKeyUsage",
    "basicConstraints",
    "subjectKeyIdentifier",
    "extensions",
}
VERDICTS = {"allowed", "denied", "warned", "audited"}

EKU_OIDS = {name: dotted for dotted, name in EKU_USAGE_NAMES.items()}
KEY_USAGE_FLAGS = {
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "data encipherment": "data_encipherment",
    "key agreement": "key_agreement",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
HASHES = {
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def load_suites() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.stem, yaml.safe_load(path.read_text())) for path in sorted(VECTORS.glob("*.yaml"))
    ]


def vector_params() -> list[Any]:
    params = []
    for name, suite in load_suites():
        for case in suite["cases"]:
            if "signerNames" not in case:
                params.append(pytest.param(suite, case, id=f"{name}::{case['name']}"))
                continue
            for signer in case["signerNames"]:
                one = {**case, "signerName": signer}
                params.append(pytest.param(suite, one, id=f"{name}::{case['name']}[{signer}]"))
    return params


def case_counts() -> dict[str, int]:
    """How many pytest cases each suite makes."""
    counts: dict[str, int] = {}
    for param in vector_params():
        suite = str(param.id).split("::", 1)[0]
        counts[suite] = counts.get(suite, 0) + 1
    return counts


# ---- building the request ----------------------------------------------------------------------


def extensions_of(spec: dict[str, Any], key: str) -> list[tuple[x509.ExtensionType, bool]]:
    out: list[tuple[x509.ExtensionType, bool]] = []
    if "keyUsage" in spec:
        flags = dict.fromkeys(KEY_USAGE_FLAGS.values(), False)
        flags.update({KEY_USAGE_FLAGS[name]: True for name in spec["keyUsage"]})
        out.append((x509.KeyUsage(**flags), True))
    if "extendedKeyUsage" in spec:
        oids = [x509.ObjectIdentifier(EKU_OIDS.get(u, u)) for u in spec["extendedKeyUsage"]]
        out.append((x509.ExtendedKeyUsage(oids), False))
    if "basicConstraints" in spec:
        constraints = spec["basicConstraints"]
        basic = x509.BasicConstraints(ca=constraints["ca"], path_length=None)
        out.append((basic, constraints.get("critical", True)))
    if spec.get("subjectKeyIdentifier"):
        identifier = x509.SubjectKeyIdentifier.from_public_key(private_key(key).public_key())
        out.append((identifier, False))
    for extra in spec.get("extensions", []):
        der_value = bytes.fromhex(extra.get("der", "0500"))
        unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier(extra["oid"]), der_value)
        out.append((unknown, extra.get("critical", False)))
    return out


def generated_csr(spec: dict[str, Any]) -> bytes:
    unknown = set(spec) - CSR_KEYS
    assert not unknown, f"unknown csr keys {unknown}"
    key = spec.get("key", "ecdsa-p256")
    return build_csr(
        key=key,
        subject=subject_name(spec.get("subject", {})),
        dns_names=spec.get("dnsNames", ()),
        ip_addresses=spec.get("ipAddresses", ()),
        uris=spec.get("uris", ()),
        emails=spec.get("emailAddresses", ()),
        extensions=extensions_of(spec, key),
        hash_alg=HASHES[spec["hash"]] if "hash" in spec else "default",
    )


def request_bytes(case: dict[str, Any], tmp_path: Path) -> bytes:
    if "csr" in case:
        pem = generated_csr(case["csr"])
    elif "pem" in case:
        pem = (VECTORS / case["pem"]).read_bytes()
    elif "openssl" in case:
        spec = case["openssl"]
        workdir = tmp_path / "openssl"
        workdir.mkdir(exist_ok=True)
        pem = openssl_csr(
            workdir, key=spec["key"], subj=spec["subj"], addext=spec.get("addext", ())
        )
    elif "text" in case:
        pem = case["text"].encode()
    else:
        pem = b""
    if "padTo" in case:
        pem += b"\n" * (case["padTo"] - len(pem))
    return pem


def policies_of(suite: dict[str, Any]) -> dict[str, str]:
    if suite.get("shipped"):
        return {
            p.name: p.read_text() for p in sorted(SHIPPED_POLICIES.iterdir()) if is_policy_file(p)
        }
    policies = {name: with_test_cas(text) for name, text in suite["policies"].items()}
    for name, cas in suite.get("caFiles", {}).items():
        policies[name] = ca_bundle(cas).decode()  # beside the policies, as in a ConfigMap
    return policies


def review_of(suite: dict[str, Any], case: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    defaults = suite.get("defaults", {})
    requester = case.get("requester", defaults.get("requester", {"username": "alice"}))
    if "update" in case:
        return update_review(
            case,
            request_bytes(case, tmp_path),
            signer_name=case.get("signerName", defaults.get("signerName", "example.com/signer")),
            requester={"groups": ["system:authenticated"], **requester},
            usages=case.get("usages", defaults.get("usages", ["digital signature", "client auth"])),
            expiration_seconds=case.get("expirationSeconds", defaults.get("expirationSeconds")),
        )
    build = mutating_create_review if case.get("endpoint") == "mutate" else create_review
    review = build(
        request_bytes(case, tmp_path),
        requester=requester["username"],
        groups=requester.get("groups", ["system:authenticated"]),
        signer_name=case.get("signerName", defaults.get("signerName", "example.com/signer")),
        usages=case.get("usages", defaults.get("usages")),
        expiration_seconds=case.get("expirationSeconds", defaults.get("expirationSeconds")),
    )
    if "base64" in case:
        review["request"]["object"]["spec"]["request"] = case["base64"]
    return review


# ---- reading the answer ------------------------------------------------------------------------


class FactsClient:
    """/validate and /mutate for a suite with `cluster` facts (the PolicyTest shape, or
    `unknown`): the server's path minus HTTP (webhook.authoring.policytest.review_response)
    with those facts, until the served app takes facts from its tests (webhook.cluster)."""

    def __init__(self, policies: dict[str, str], facts: StaticFacts, tmp_path: Path) -> None:
        directory = write_policies(tmp_path / "facts-policies", **policies)
        loaded = load_policies([directory])
        assert loaded.policy_set is not None, [str(p) for p in loaded.problems]
        self.policy_set = loaded.policy_set
        self.facts = facts

    def post(self, path: str, json: dict[str, Any]) -> Any:
        mutating = path == "/mutate"
        response = review_response(
            json, self.policy_set, EngineOptions(), mutating=mutating, facts=self.facts
        )
        body = _json.loads(_json.dumps(response))  # as the wire carries it
        check_admission_response(json, body, mutating=mutating)
        return _Answer(body)


@dataclass(frozen=True)
class _Answer:
    body: dict[str, Any]
    status_code: int = 200

    def get_json(self) -> dict[str, Any]:
        return self.body


def facts_of(suite: dict[str, Any], case: dict[str, Any]) -> StaticFacts | None:
    raw = case.get("cluster", suite.get("cluster"))
    if raw is None:
        return None
    return UNKNOWN_CLUSTER if raw == "unknown" else cluster_facts(raw)


def post(client: FlaskClient | FactsClient, path: str, review: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(path, json=review)
    assert answer.status_code == 200, answer.get_json()
    response: dict[str, Any] = answer.get_json()["response"]
    return response


def outcome(response: dict[str, Any]) -> tuple[str, set[str]]:
    """(verdict, violation codes) as an operator reads them off the response."""
    annotations = response.get("auditAnnotations", {})
    if not response["allowed"]:
        causes = response["status"]["details"]["causes"]
        return "denied", {cause["reason"] for cause in causes}
    codes = {code for code in annotations.get("violations", "").split(",") if code}
    return annotations.get("decision", "allowed"), codes


def explain(response: dict[str, Any]) -> str:
    shown = {
        "message": response.get("status", {}).get("message"),
        "warnings": response.get("warnings"),
        "auditAnnotations": response.get("auditAnnotations"),
    }
    return json.dumps(shown, indent=2, ensure_ascii=False)


def decoded_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    if "patch" not in response:
        return []
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


def applied(review: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """The review with `patch` (add/replace of object fields) applied, as the API server would."""
    patched = copy.deepcopy(review)
    for operation in patch:
        assert operation["op"] in ("add", "replace"), operation
        *parents, leaf = operation["path"].lstrip("/").split("/")
        target = patched["request"]["object"]
        for part in parents:
            target = target[part]
        target[leaf] = operation["value"]
    return patched


# ---- the vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("suite", "case"), vector_params())
def test_vector(
    suite: dict[str, Any], case: dict[str, Any], make_app: MakeApp, tmp_path: Path
) -> None:
    assert set(suite) <= SUITE_KEYS, f"unknown suite keys {set(suite) - SUITE_KEYS}"
    assert set(case) <= CASE_KEYS, f"unknown case keys {set(case) - CASE_KEYS}"
    if "update" in case and not any(source in case for source in SOURCES):
        case = {**case, "csr": suite["defaults"]["csr"]}  # an UPDATE suite's one CSR
    assert sum(source in case for source in SOURCES) == 1, "give exactly one request source"
    settings = {**suite.get("settings", {}), **case.get("settings", {})}
    facts = facts_of(suite, case)
    client: FlaskClient | FactsClient
    if facts is None:
        client = make_app(policies_of(suite), **settings).test_client()
    else:
        assert not settings, "a suite with cluster facts runs without the server's settings"
        client = FactsClient(policies_of(suite), facts, tmp_path)
    review = review_of(suite, case, tmp_path)

    if case.get("endpoint") == "mutate":
        assert case["expect"] == "allowed", (
            "the mutating endpoint never denies (docs/policy-reference.md §5.3)"
        )
        response = post(client, "/mutate", review)
        assert response["allowed"] is True, explain(response)
        patch = decoded_patch(response)
        assert patch == case["patch"], explain(response)
        again = post(client, "/mutate", applied(review, patch))
        assert decoded_patch(again) == [], "mutation is not idempotent"
        return

    assert case.get("endpoint", "validate") == "validate"
    assert case["expect"] in VERDICTS
    response = post(client, "/validate", review)
    verdict, codes = outcome(response)
    assert (verdict, codes) == (case["expect"], set(case["violations"])), explain(response)
    for code, fields in case.get("fields", {}).items():
        causes = response["status"]["details"]["causes"]
        assert [c["field"] for c in causes if c["reason"] == code] == fields, explain(response)
    for code, text in case.get("messages", {}).items():
        causes = response["status"]["details"]["causes"]
        assert any(text in c["message"] for c in causes if c["reason"] == code), explain(response)
    if verdict == "warned":
        assert response.get("warnings"), "Warn enforcement turns violations into warnings"
    if verdict == "audited":
        assert not response.get("warnings"), "Audit enforcement is silent"


# ---- no case is lost ----------------------------------------------------------------------------

# Cases per suite when the UPDATE tests became vectors (issue 14): a suite may grow, never shrink.
MINIMUM_CASES = {
    "deny": 18,
    "dns-syntax": 17,
    "enforcement": 12,
    "extensions": 14,
    "keys": 20,
    "lifetime": 25,
    "requesters": 17,
    "sans-uri-email": 23,
    "sans": 22,
    "selection": 12,
    "shipped-apiserver-client": 19,
    "shipped-kubelet-client": 27,
    "shipped-kubelet-serving": 23,
    "signature": 16,
    "structure": 30,
    "subject": 16,
    "templates": 14,
    "transitions": 226,
    "approval": 52,
    "issuance": 69,
}


def test_no_suite_has_fewer_cases_than_it_had() -> None:
    counts = case_counts()
    fewer = {name: (counts.get(name, 0), least) for name, least in MINIMUM_CASES.items()}
    assert {k: v for k, v in fewer.items() if v[0] < v[1]} == {}


def test_case_names_are_unique() -> None:
    ids = [str(param.id) for param in vector_params()]
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


# ---- the catalogue -----------------------------------------------------------------------------


def test_readme_catalogues_every_suite_and_handmade_csr() -> None:
    readme = (VECTORS / "README.md").read_text()
    files = [p.name for p in VECTORS.glob("*.yaml")] + [p.name for p in HANDMADE_DIR.iterdir()]
    missing = [name for name in files if f"`{name}`" not in readme]
    assert not missing, f"tests/vectors/README.md does not catalogue {missing}"


def test_committed_handmade_csrs_are_exactly_what_the_script_makes(tmp_path: Path) -> None:
    """The script run afresh writes the same files, each the same but for its random key and
    signature bytes (tests/vectors/handmade_shape.py says what is compared)."""
    make_handmade.main(tmp_path)
    assert sorted(p.name for p in HANDMADE_DIR.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir()
    )
    differ = [
        name
        for name in HANDMADE
        if pem_shape((HANDMADE_DIR / name).read_bytes())
        != pem_shape((tmp_path / name).read_bytes())
    ]
    assert differ == [], (
        f"tests/vectors/handmade/ differs from what make_handmade.py makes: {differ}"
    )


def test_every_handmade_csr_is_used_by_a_vector() -> None:
    used = {case["pem"] for _, suite in load_suites() for case in suite["cases"] if "pem" in case}
    unused = [name for name in HANDMADE if f"handmade/{name}" not in used]
    assert not unused, f"hand-made CSRs no vector uses: {unused}"


def test_handmade_csrs_carry_no_private_key() -> None:
    for path in HANDMADE_DIR.iterdir():
        assert b"PRIVATE KEY" not in path.read_bytes(), path.name
