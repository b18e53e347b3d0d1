"""Every CSR shipped in pyca/cryptography's test vectors, evaluated through /validate and /mutate.

The policy permits every value it can, so whatever is still denied is denied for the request
itself. The law: the webhook never fails on these files, and it allows a CSR only if the CSR
parses, verifies, has no structural problem and is not signed with SHA-1 or MD5 (docs/policy-reference.md §3.6, §6).

What an allowed CSR is must be read by something other than the parser whose reading the
verdict came from (webhook.x509.csr):
  * here, in `make test`: OpenSSL (`openssl req -verify -text`: its own PEM and ASN.1 parser,
    signature check and algorithm name) and cryptography's own reading (`load_pem_x509_csr`:
    extensions and attributes read eagerly, duplicates refused, subject values);
  * with the `go` marker (`make e2e`): Go's crypto/x509, what kube-apiserver and the signer read,
    must accept the CSR and read it as we do (tests/go_x509.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient

from tests import go_x509
from tests.builders import EXTENSION_REQUEST_OID, to_pem
from tests.conftest import MakeApp, permissive_policy
from tests.reviews import create_review, mutating_create_review
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
# C0, DEL and C1 (docs/policy-reference.md §6).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# PKCS #9 extensionRequest, the one attribute a CSR may carry (docs/policy-reference.md §6).
EXTENSION_REQUEST = x509.ObjectIdentifier(EXTENSION_REQUEST_OID)


def request_of(path: Path) -> bytes:
    data = path.read_bytes()
    return to_pem(data) if path.suffix == ".der" else data


def post(client: FlaskClient, path: str, review: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(path, json=review)
    assert answer.status_code == 200, answer.get_json()
    response: dict[str, Any] = answer.get_json()["response"]
    return response


def allowed_by_webhook(client: FlaskClient, pem: bytes) -> bool:
    """The /validate verdict; /mutate must allow (it never denies) and a denial names a cause."""
    review = create_review(pem, signer_name=SIGNER, usages=list(KNOWN_USAGES))
    response = post(client, "/validate", review)
    mutated = post(client, "/mutate", mutating_create_review(pem, signer_name=SIGNER))
    assert mutated["allowed"] is True
    if not response["allowed"]:
        assert response["status"]["details"]["causes"], response["status"]
    verdict: bool = response["allowed"]
    return verdict


def openssl_reading(pem: bytes, tmp_path: Path) -> tuple[bool, str]:
    """Whether OpenSSL verifies the CSR's signature, and the signature algorithm it names.
    (OpenSSL 3.0 exits 0 whatever the verdict: the verdict is the line it prints.)"""
    path = tmp_path / "request.pem"
    path.write_bytes(pem)
    result = subprocess.run(
        ["openssl", "req", "-in", str(path), "-noout", "-verify", "-text"],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    verified = result.returncode == 0 and "self-signature verify OK" in output
    algorithm = re.search(r"^\s*Signature Algorithm: (\S+)$", output, re.MULTILINE)
    return verified, algorithm[1] if algorithm else ""


def cryptography_problems(pem: bytes) -> list[str]:
    """What cryptography's own reading finds wrong with a CSR the webhook must not allow."""
    try:
        csr = x509.load_pem_x509_csr(pem)
        extensions = list(csr.extensions)  # read eagerly: malformed or duplicate ones raise
        attributes = list(csr.attributes)
        subject = list(csr.subject)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        return [f"cryptography cannot read it: {type(exc).__name__}: {exc}"]
    problems = [
        f"attribute {a.oid.dotted_string}" for a in attributes if a.oid != EXTENSION_REQUEST
    ]
    problems += [
        f"unrecognised critical extension {e.oid.dotted_string}"
        for e in extensions
        if e.critical and isinstance(e.value, x509.UnrecognizedExtension)
    ]
    problems += [f"control character in {a.oid.dotted_string}" for a in subject if _control(a)]
    if len(csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)) > 1:
        problems.append("more than one commonName")
    return problems


def _control(attribute: x509.NameAttribute[str | bytes]) -> bool:
    return isinstance(attribute.value, str) and bool(CONTROL.search(attribute.value))


@pytest.fixture
def client(make_app: MakeApp) -> FlaskClient:
    return make_app({"any.yaml": PERMISSIVE}).test_client()


def test_files_are_found() -> None:
    assert {p.name for p in FILES} >= set(ORDINARY)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_allows_only_csrs_that_parse_verify_and_are_sound(
    path: Path, client: FlaskClient, tmp_path: Path
) -> None:
    pem = request_of(path)
    if not allowed_by_webhook(client, pem):
        return
    assert re.findall(rb"-----BEGIN ([^-]*)-----", pem) == [b"CERTIFICATE REQUEST"]
    verified, algorithm = openssl_reading(pem, tmp_path)
    assert verified, f"OpenSSL does not verify {path.name}"
    assert algorithm, "OpenSSL named no signature algorithm"
    assert not re.search(r"sha1|md5", algorithm, re.IGNORECASE), algorithm
    assert cryptography_problems(pem) == []


@pytest.mark.parametrize("name", ORDINARY)
def test_the_policy_really_is_permissive(name: str, client: FlaskClient) -> None:
    assert allowed_by_webhook(client, request_of(REQUESTS / name))


@pytest.mark.parametrize(
    ("name", "verified", "problem"),
    [
        ("invalid_signature.pem", False, None),
        ("rsa_sha1.pem", True, None),
        ("two_basic_constraints.pem", False, "DuplicateExtension"),
        ("challenge.pem", True, "attribute 1.2.840.113549.1.9.7"),
        ("freeipa-bad-critical.pem", True, "cryptography cannot read it"),
    ],
)
def test_the_independent_readings_see_what_is_wrong(
    name: str, verified: bool, problem: str | None, tmp_path: Path
) -> None:
    """Without this the law could pass on readings that find nothing wrong with anything."""
    pem = request_of(REQUESTS / name)
    assert openssl_reading(pem, tmp_path)[0] is verified
    found = " ".join(cryptography_problems(pem))
    assert (problem in found) if problem else found == ""


@pytest.mark.go
def test_go_reads_every_allowed_csr_as_the_webhook_does(
    client: FlaskClient, go_binary: Path
) -> None:
    pems = {path.name: request_of(path) for path in FILES}
    allowed = {name: pem for name, pem in pems.items() if allowed_by_webhook(client, pem)}
    assert set(allowed) >= set(ORDINARY)
    views = go_x509.go_views(go_binary, list(allowed.values()))
    mismatches = {}
    for (name, pem), go in zip(allowed.items(), views, strict=True):
        if rejected := go_x509.go_rejects(go):
            mismatches[name] = f"Go rejects it: {rejected}"
            continue
        ours, theirs = go_x509.webhook_view(parse_csr(pem)), go_x509.comparable_go_view(go)
        differ = {key: (ours[key], theirs.get(key)) for key in ours if ours[key] != theirs.get(key)}
        if differ:
            mismatches[name] = f"views differ: {differ}"
    assert mismatches == {}
