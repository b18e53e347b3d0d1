"""Every CSR shipped in pyca/cryptography's test vectors, evaluated through /validate and /mutate.

The policy permits every value it can, so whatever is still denied is denied for the request
itself. The law: the webhook never fails on these files, and it allows a CSR only if the CSR
parses, verifies, has no structural problem and is not signed with SHA-1 or MD5 (SPEC 3.2, 3.3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import to_pem
from tests.conftest import MakeApp, permissive_policy
from tests.reviews import create_review, mutating_create_review
from webhook.checks import structure
from webhook.policy.schema import KNOWN_USAGES
from webhook.x509.csr import parse_csr

cryptography_vectors = pytest.importorskip("cryptography_vectors")

REQUESTS = Path(cryptography_vectors.__file__).parent / "x509" / "requests"
FILES = sorted(p for p in REQUESTS.iterdir() if p.suffix in (".pem", ".der"))
SIGNER = "example.com/any"
PERMISSIVE = permissive_policy("any", SIGNER)
# Requests these files hold that nothing is wrong with; if they were denied, the policy above
# would not be permissive and the law below would hold vacuously.
ORDINARY = ("ec_sha256.pem", "ec_sha256.der", "rsa_sha256.pem", "rsa_sha256.der")


def request_of(path: Path) -> bytes:
    data = path.read_bytes()
    return to_pem(data) if path.suffix == ".der" else data


def post(client: FlaskClient, path: str, review: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(path, json=review)
    assert answer.status_code == 200, answer.get_json()
    response: dict[str, Any] = answer.get_json()["response"]
    return response


@pytest.fixture
def client(make_app: MakeApp) -> FlaskClient:
    return make_app({"any.yaml": PERMISSIVE}).test_client()


def test_files_are_found() -> None:
    assert {p.name for p in FILES} >= set(ORDINARY)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_allows_only_csrs_that_parse_verify_and_are_sound(path: Path, client: FlaskClient) -> None:
    pem = request_of(path)
    review = create_review(pem, signer_name=SIGNER, usages=list(KNOWN_USAGES))
    response = post(client, "/validate", review)
    mutated = post(client, "/mutate", mutating_create_review(pem, signer_name=SIGNER))
    assert mutated["allowed"] is True
    if not response["allowed"]:
        assert response["status"]["details"]["causes"], response["status"]
        return
    parsed = parse_csr(pem)
    assert list(structure.violations(parsed)) == []
    assert parsed.signature_hash not in ("sha1", "md5"), parsed.signature_algorithm


@pytest.mark.parametrize("name", ORDINARY)
def test_the_policy_really_is_permissive(name: str, client: FlaskClient) -> None:
    review = create_review(request_of(REQUESTS / name), signer_name=SIGNER, usages=["client auth"])
    response = post(client, "/validate", review)
    assert response["allowed"] is True, response.get("status", {}).get("message")
