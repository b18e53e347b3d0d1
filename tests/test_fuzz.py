"""Fuzzing the whole /validate and /mutate path with hostile input.

Laws, checked on every answer (the test client also holds each one to the API server's
response contract, tests/contract.py, which includes "response.uid is request.uid"):
  * no 500, whatever the body: hostile input is a 400/413/415 or a denial;
  * a CSR CREATE is allowed only if spec.request decodes, parses with no problem, passes the
    structural checks, and cryptography itself loads the DER and verifies its signature (and,
    where cryptography's PEM reader accepts the text too, reads the same CSR out of it);
  * /mutate never denies a CREATE, and its patch is well formed.
The policy permits every value it can (test_the_policy_is_permissive proves it), so a CSR
that fails parsing is the only thing left to deny it.

  * a /status update that writes a certificate is allowed only if cryptography reads every
    certificate of it in full (key, validity, names, every extension), the leaf carries the
    CSR's key, and the chain verifies up to the policy's CA.

Inputs: CSRs from tests/vectors/handmade/ and tests.builders.build_csr, damaged at the DER,
PEM armour, base64 and wire (spec.request) levels; AdmissionReviews damaged at the JSON level
(wrong types, missing fields, huge strings, deep nesting, unicode); random bodies; issued
certificates and intermediates damaged inside their DER and re-signed by their issuer
(tests/certificate_mutants.py), so that they reach the issuance checks.
CSR_WEBHOOK_FUZZ_EXAMPLES sets the examples per test (`make fuzz` sets it high).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.builders import build_csr, to_pem
from tests.certificate_mutants import resigned
from tests.conftest import MakeApp, permissive_policy
from tests.issuance_builders import intermediate_ca, root_ca, sign_csr
from tests.reviews import (
    admission_review,
    create_review,
    csr_object,
    mutating_create_review,
    user_info,
)
from tests.update_reviews import approved, status_update, stored_csr
from webhook.checks import structure
from webhook.x509.csr import parse_csr
from webhook.x509.pem import decode_pem_blocks

EXAMPLES = int(os.environ.get("CSR_WEBHOOK_FUZZ_EXAMPLES", "800"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)
HANDMADE = Path(__file__).parent / "vectors" / "handmade"
SIGNER = "fuzz.example/signer"
PERMISSIVE = permissive_policy(
    "permissive",
    SIGNER,
    """      constraints:
        keys:
          rsa: {minBits: 1024, maxBits: 16384}
          ecdsa: {curves: ["P-256", "P-384", "P-521"]}
          ed25519: true
          ed448: true
""",
)
ANSWERS = {200, 400, 413, 415}
CSR_RESOURCE = ("certificates.k8s.io", "certificatesigningrequests")


@cache
def sound_csrs() -> tuple[bytes, ...]:
    """Well-formed CSRs the permissive policy allows (keys generated once per run)."""
    return (
        build_csr(
            common_name="fuzz",
            organization=["team"],
            dns_names=["a.example.com", "b.example.com"],
            ip_addresses=["10.0.0.1", "fd00::1"],
            emails=["ops@example.com"],
            uris=["https://example.com/x"],
        ),
        build_csr(key="rsa-2048", common_name="rsa", dns_names=["rsa.example.com"]),
        build_csr(key="ed25519", common_name="ed25519"),
        build_csr(key="ecdsa-p384", common_name="p384", ip_addresses=["192.0.2.7"]),
    )


@cache
def seeds() -> tuple[bytes, ...]:
    return sound_csrs() + tuple(p.read_bytes() for p in sorted(HANDMADE.glob("*.pem")))


@cache
def seed_ders() -> tuple[bytes, ...]:
    return tuple(decode_pem_blocks(pem)[0].body for pem in seeds() if decode_pem_blocks(pem))


# ---- the laws ------------------------------------------------------------------------------


def _is_csr_create(review: Any) -> bool:
    request = review.get("request") if isinstance(review, dict) else None
    if not isinstance(request, dict) or not isinstance(request.get("resource"), dict):
        return False
    resource = request["resource"]
    return (
        (resource.get("group"), resource.get("resource")) == CSR_RESOURCE
        and request.get("operation") == "CREATE"
        and isinstance(request.get("object"), dict)
    )


def assert_parses(review: dict[str, Any]) -> None:
    """What must hold of a CREATE the webhook allowed."""
    spec = review["request"]["object"]["spec"]
    assert spec.get("signerName") == SIGNER, "only the permissive policy's signer is allowed"
    request_pem = base64.b64decode(spec["request"], validate=True)
    parsed = parse_csr(request_pem)  # CSRError here fails the test
    assert parsed.problems == (), parsed.problems
    assert list(structure.violations(parsed)) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        independent = x509.load_der_x509_csr(parsed.der)
        assert independent.is_signature_valid, "allowed a CSR whose signature does not verify"
        try:
            other = x509.load_pem_x509_csr(request_pem)
        except ValueError:
            # PEM framing follows Go's pem.Decode, as Kubernetes reads spec.request: text
            # around the block and blocks that do not decode are skipped; cryptography's
            # stricter reader refuses such text (docs/performance.md, fuzzing findings).
            event("allowed a PEM that cryptography's PEM reader refuses")
            return
    assert other.tbs_certrequest_bytes == independent.tbs_certrequest_bytes, (
        "cryptography reads another CSR out of this PEM than the webhook does"
    )


ISSUED_SIGNER = "fuzz.example/issued"
ISSUED_USAGES = ["digital signature", "key encipherment", "server auth", "client auth"]


def _ca_bundle_yaml() -> str:
    pem = root_ca().pem.decode()
    return "  issuance:\n    caBundle: |\n" + "".join(
        f"      {line}\n" for line in pem.splitlines()
    )


def _is_certificate_write(review: Any) -> bool:
    request = review.get("request") if isinstance(review, dict) else None
    if not isinstance(request, dict) or request.get("subResource") != "status":
        return False
    new, old = request.get("object"), request.get("oldObject")
    if not isinstance(new, dict) or not isinstance(old, dict):
        return False
    return bool(
        new.get("status", {}).get("certificate") != old.get("status", {}).get("certificate")
    )


def assert_certificate_reads(review: dict[str, Any]) -> None:
    """What must hold of a certificate the webhook let a signer write."""
    spec = review["request"]["oldObject"]["spec"]
    assert spec["signerName"] == ISSUED_SIGNER, "only the CA-checked signer writes certificates"
    pem = base64.b64decode(review["request"]["object"]["status"]["certificate"])
    csr = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography warns on odd names; it still reads them
        chain = x509.load_pem_x509_certificates(pem)
        for certificate in chain:
            certificate.public_key()
            _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
            list(certificate.subject)
            list(certificate.issuer)
            for extension in certificate.extensions:
                assert extension.value is not None
    assert chain[0].public_key() == csr.public_key(), "allowed a certificate for another key"
    current, rest = chain[0], chain[1:]
    while not _issued(current, root_ca().certificate):
        parent = next((c for c in rest if _issued(current, c)), None)
        assert parent is not None, "allowed a certificate that does not chain to the CA"
        rest.remove(parent)
        current = parent


def _issued(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception:  # any failure means "not issued by it"
        return False
    return True


def post(
    client: FlaskClient, path: str, body: bytes, content_type: str = "application/json"
) -> Any:
    """POST and check the laws; returns the response's JSON."""
    answer = client.post(path, data=body, content_type=content_type)
    assert answer.status_code in ANSWERS, (answer.status_code, answer.get_data()[:500])
    payload = answer.get_json(silent=True)
    assert isinstance(payload, dict), answer.get_data()[:500]
    if answer.status_code != 200:
        return payload
    review = json.loads(body)
    response = payload["response"]
    if path.startswith("/mutate"):
        # Registered for CREATE only (manifests/base/webhooks.yaml); an UPDATE sent there
        # anyway gets the validating answer.
        assert response["allowed"] or not _is_csr_create(review), "/mutate denied a CREATE"
    elif response["allowed"] and _is_csr_create(review):
        assert_parses(review)
    elif response["allowed"] and _is_certificate_write(review):
        assert_certificate_reads(review)
    return payload


def send(client: FlaskClient, review: Any, path: str = "/validate") -> Any:
    return post(client, path, json.dumps(review).encode())


# ---- strategies ----------------------------------------------------------------------------


@st.composite
def byte_damage(draw: st.DrawFn, data: bytes) -> bytes:
    if not data:
        return draw(st.binary(max_size=16))
    i = draw(st.integers(0, len(data) - 1))
    op = draw(st.sampled_from(("flip", "set", "truncate", "insert", "delete", "repeat")))
    if op == "flip":
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    if op == "set":
        value = draw(st.sampled_from((0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF)))
        return data[:i] + bytes([value]) + data[i + 1 :]
    if op == "truncate":
        return data[:i]
    if op == "insert":
        return data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]
    if op == "delete":
        return data[:i] + data[i + draw(st.integers(1, 16)) :]
    j = draw(st.integers(i, len(data)))
    return data[:j] + data[i:j] + data[j:]


BEGIN, END = b"-----BEGIN CERTIFICATE REQUEST-----", b"-----END CERTIFICATE REQUEST-----"
ARMOUR: tuple[Callable[[bytes], bytes], ...] = (
    lambda p: p.replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"),
    lambda p: p.replace(b"BEGIN CERTIFICATE REQUEST", b"BEGIN CERTIFICATE"),
    lambda p: p.replace(b"END CERTIFICATE REQUEST", b"END CERTIFICATE"),
    lambda p: p.replace(END, b""),
    lambda p: p.replace(BEGIN, b""),
    lambda p: p.replace(BEGIN, BEGIN + b"\n" + BEGIN),
    lambda p: p + p,
    lambda p: p.replace(b"\n", b"\r\n"),
    lambda p: p.replace(b"\n", b""),
    lambda p: p.replace(b"\n", b"\n "),
    lambda p: p.replace(b"\n", b"\n\t"),
    lambda p: p.replace(BEGIN + b"\n", BEGIN + b"\nProc-Type: 4,ENCRYPTED\n\n"),
    lambda p: p.replace(BEGIN + b"\n", BEGIN + b"\nComment: x\n"),
    lambda p: p.replace(b"-----", b"----"),
    lambda p: p.replace(b"-----", b"------"),
    lambda p: p.lower(),
    lambda p: b"text before\n" + p + b"text after",
    lambda p: p.rstrip(b"\n"),
    lambda p: p.replace(b"=", b""),
    lambda p: p.replace(b"+", b"-").replace(b"/", b"_"),
    lambda p: p.replace(END, b"-----END CERTIFICATE REQUEST-----\n" + BEGIN + b"\n" + END),
    lambda p: p.replace(b"\n", b"\n\x00", 1),
    lambda p: p.replace(b"\n", "\n\u00e9".encode(), 2),
)


@st.composite
def armour_damage(draw: st.DrawFn, pem: bytes) -> bytes:
    damage = draw(st.sampled_from(ARMOUR))
    return damage(pem)


@st.composite
def base64_damage(draw: st.DrawFn, pem: bytes) -> bytes:
    start = pem.find(b"\n") + 1
    end = pem.rfind(b"-----END")
    if start <= 0 or end <= start:
        return draw(byte_damage(pem))
    body = pem[start:end]
    i = draw(st.integers(0, max(len(body) - 1, 0)))
    junk = draw(
        st.sampled_from(
            (b"!", b"*", b"%", b"-", b"_", b".", b"=", b"==", b" ", b"\t", b"\x00", b"\xff")
        )
    )
    op = draw(st.sampled_from(("insert", "replace", "delete")))
    if op == "insert":
        body = body[:i] + junk + body[i:]
    elif op == "replace":
        body = body[:i] + junk + body[i + 1 :]
    else:
        body = body[:i] + body[i + draw(st.integers(1, 5)) :]
    return pem[:start] + body + pem[end:]


@st.composite
def damaged_csr(draw: st.DrawFn) -> bytes:
    """A CSR damaged at one or more levels: DER bytes, PEM armour, base64, PEM bytes."""
    layer = draw(st.sampled_from(("der", "armour", "base64", "pem")))
    if layer == "der":
        der = draw(st.sampled_from(seed_ders()))
        for _ in range(draw(st.integers(1, 3))):
            der = draw(byte_damage(der))
        return to_pem(der)
    pem = draw(st.sampled_from(seeds()))
    if layer == "armour":
        return draw(armour_damage(pem))
    if layer == "base64":
        return draw(base64_damage(pem))
    return draw(byte_damage(pem))


@st.composite
def damaged_wire_request(draw: st.DrawFn) -> str:
    """spec.request as the API server would carry it, then damaged: not base64, unpadded,
    URL-safe alphabet, embedded whitespace, non-ASCII, empty, over the size limit."""
    wire = base64.b64encode(draw(st.sampled_from(seeds()))).decode()
    i = draw(st.integers(0, len(wire)))
    choice = draw(
        st.sampled_from(("junk", "unpad", "urlsafe", "space", "unicode", "cut", "empty", "big"))
    )
    if choice == "junk":
        return wire[:i] + draw(st.sampled_from("!%*-_.~")) + wire[i:]
    if choice == "unpad":
        return wire.rstrip("=")
    if choice == "urlsafe":
        return wire.replace("+", "-").replace("/", "_")
    if choice == "space":
        return wire[:i] + draw(st.sampled_from((" ", "\n", "\r\n", "\t"))) + wire[i:]
    if choice == "unicode":
        return wire[:i] + draw(st.text(min_size=1, max_size=4)) + wire[i:]
    if choice == "cut":
        return wire[:i]
    if choice == "empty":
        return ""
    return base64.b64encode(b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"A" * 70_000).decode()


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def replacement(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(("json", "json", "huge", "nested", "unicode", "number")))
    if kind == "json":
        return draw(JSON_VALUES)
    if kind == "huge":
        size = draw(st.sampled_from((1_000, 65_537, 1_000_000)))
        return draw(st.sampled_from(("x", "é", "\u2028", "\x00", "😀", "\ud800"))) * size
    if kind == "nested":
        return _nested(draw(st.integers(1, 400)))
    if kind == "unicode":
        return draw(st.text(st.characters(exclude_categories=()), min_size=1, max_size=64))
    return draw(st.sampled_from((0, -1, 2**63, 2**64, 1e308, -0.0, True)))


@st.composite
def damaged_review(draw: st.DrawFn, review: dict[str, Any]) -> dict[str, Any]:
    """1-3 JSON-level changes anywhere in the review: replace a value, delete a key or an
    element, or add a key."""
    review = copy.deepcopy(review)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(review)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = review
        for step in path[:-1]:
            parent = parent[step]
        op = draw(st.sampled_from(("replace", "replace", "delete", "add")))
        if op == "delete":
            del parent[path[-1]]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(replacement())
        else:
            parent[path[-1]] = draw(replacement())
    return review


def _update(sub_resource: str, pem: bytes) -> dict[str, Any]:
    old = csr_object(pem, signer_name=SIGNER)
    new = copy.deepcopy(old)
    if sub_resource == "approval":
        condition = {"type": "Approved", "status": "True", "reason": "Fuzz", "message": "ok"}
        new["status"] = {"conditions": [condition]}
    else:
        new["metadata"]["labels"] = {"a": "b"}
    approver = user_info("approver", ["system:authenticated"])
    return admission_review(
        new, operation="UPDATE", sub_resource=sub_resource, old_object=old, caller=approver
    )


@cache
def base_reviews() -> tuple[tuple[str, dict[str, Any]], ...]:
    pem = sound_csrs()[0]
    return (
        ("/validate", create_review(pem, signer_name=SIGNER)),
        ("/mutate", mutating_create_review(pem, signer_name=SIGNER)),
        ("/validate", _update("approval", pem)),
        ("/validate", _update("", pem)),
        ("/mutate", _update("", pem)),
    )


# ---- tests ---------------------------------------------------------------------------------


def permissive_client(make_app: MakeApp) -> FlaskClient:
    return make_app({"permissive.yaml": PERMISSIVE}).test_client()


def test_the_policy_is_permissive(make_app: MakeApp) -> None:
    """Without this the CSR laws below would hold vacuously."""
    client = permissive_client(make_app)
    for pem in sound_csrs():
        response = send(client, create_review(pem, signer_name=SIGNER))["response"]
        assert response["allowed"] is True, response.get("status", {}).get("message")
    for path, review in base_reviews():
        assert send(client, review, path)["response"]["allowed"] is True, (path, review)


def test_damaged_csrs_are_allowed_only_if_they_still_parse(make_app: MakeApp) -> None:
    client = permissive_client(make_app)

    @FUZZ
    @given(damaged_csr(), st.sampled_from(("/validate", "/mutate")))
    def run(pem: bytes, path: str) -> None:
        build = create_review if path == "/validate" else mutating_create_review
        send(client, build(pem, signer_name=SIGNER), path)

    run()


def test_damaged_spec_request_on_the_wire_is_never_allowed_unparsed(make_app: MakeApp) -> None:
    client = permissive_client(make_app)
    template = create_review(sound_csrs()[0], signer_name=SIGNER)

    @FUZZ
    @given(damaged_wire_request())
    def run(wire: str) -> None:
        review = copy.deepcopy(template)
        review["request"]["object"]["spec"]["request"] = wire
        send(client, review)

    run()


def test_damaged_reviews_never_get_a_500(make_app: MakeApp) -> None:
    client = permissive_client(make_app)

    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        path, review = data.draw(st.sampled_from(base_reviews()))
        send(client, data.draw(damaged_review(review)), path)

    run()


def test_random_reviews_never_get_a_500(make_app: MakeApp) -> None:
    client = permissive_client(make_app)
    request_keys = st.sampled_from(
        ("uid", "kind", "resource", "subResource", "operation", "userInfo", "object",
         "oldObject", "dryRun", "name", "namespace", "options")
    )  # fmt: skip
    requests = st.dictionaries(request_keys, JSON_VALUES, max_size=10)
    reviews = st.fixed_dictionaries(
        {"request": requests | JSON_VALUES},
        optional={
            "apiVersion": st.sampled_from(("admission.k8s.io/v1", "admission.k8s.io/v1beta1", "")),
            "kind": st.sampled_from(("AdmissionReview", "admissionreview", "")),
        },
    )

    @FUZZ
    @given(reviews | JSON_VALUES, st.sampled_from(("/validate", "/mutate")))
    def run(review: Any, path: str) -> None:
        send(client, review, path)

    run()


def test_hostile_bodies_never_get_a_500(make_app: MakeApp) -> None:
    client = permissive_client(make_app)
    valid = json.dumps(base_reviews()[0][1]).encode()
    bodies = st.one_of(
        st.binary(max_size=200),
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.builds(lambda damaged: damaged, byte_damage(valid)),
        st.integers(1, 120_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
        st.integers(1, 120_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.sampled_from((b"", b"null", b"[]", b'"x"', b"\xff\xfe", b"\xef\xbb\xbf{}", b"NaN")),
        st.just(b'{"pad":"' + b"x" * (3 * 1024 * 1024) + b'"}'),
    )
    content_types = st.sampled_from(
        ("application/json", "application/json; charset=utf-8", "text/plain", "")
    )

    @FUZZ
    @given(bodies, content_types, st.sampled_from(("/validate", "/mutate")))
    def run(body: bytes, content_type: str, path: str) -> None:
        post(client, path, body, content_type)

    run()


# ---- issued certificates and intermediates ----------------------------------------------------


@cache
def issued_csr() -> dict[str, Any]:
    return stored_csr(
        sound_csrs()[0], signer_name=ISSUED_SIGNER, usages=ISSUED_USAGES, conditions=[approved()]
    )


def issuing_client(make_app: MakeApp) -> FlaskClient:
    issued = permissive_policy("issued", ISSUED_SIGNER) + _ca_bundle_yaml()
    return make_app({"permissive.yaml": PERMISSIVE, "issued.yaml": issued}).test_client()


@cache
def sound_leaf_der() -> bytes:
    pem = sign_csr(sound_csrs()[0], intermediate_ca(), usages=ISSUED_USAGES)
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_the_issuance_policy_admits_a_sound_chain(make_app: MakeApp) -> None:
    """Without this the certificate law below would hold vacuously."""
    client = issuing_client(make_app)
    chain = sign_csr(sound_csrs()[0], intermediate_ca(), usages=ISSUED_USAGES)
    chain += intermediate_ca().pem
    response = send(client, status_update(issued_csr(), certificate=chain))["response"]
    assert response["allowed"] is True, response.get("status", {}).get("message")


def test_resigned_mutants_of_leaf_and_intermediate_are_allowed_only_if_they_read(
    make_app: MakeApp,
) -> None:
    client = issuing_client(make_app)

    # half the examples: each one signs a certificate and walks a chain (about 20 ms)
    @settings(FUZZ, max_examples=max(EXAMPLES // 2, 1))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        if data.draw(st.booleans()):
            event("damaged leaf")
            leaf = data.draw(resigned(sound_leaf_der(), intermediate_ca()))
            chain = leaf + intermediate_ca().pem
        else:
            event("damaged intermediate")
            chain = x509.load_der_x509_certificate(sound_leaf_der()).public_bytes(
                serialization.Encoding.PEM
            ) + data.draw(resigned(intermediate_ca(), root_ca()))
        payload = send(client, status_update(issued_csr(), certificate=chain))
        if "response" in payload:
            event("allowed" if payload["response"]["allowed"] else "denied")

    run()
