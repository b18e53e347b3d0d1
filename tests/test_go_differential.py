"""Differential test against Go itself: the webhook must judge the CSR Go's crypto/x509 reads.

kube-apiserver parses spec.request with encoding/pem and x509.ParseCertificateRequest (and
refuses the object when that or CheckSignature fails); kube-controller-manager's signer issues
from the same parse. tests/gox509 prints that reading; tests/go_x509.py puts ours in the same
shape. Over every CSR of the vector suites, the hand-made CSRs, a fixed-seed corpus of fuzz
mutants and pyca/cryptography's vectors, evaluated under a policy that permits every value:
  * a CSR Go refuses is never allowed;
  * for a CSR the webhook allows, both views are equal: subject (OID and value, in order), the
    four SAN kinds, extensions (OID, critical, value), key and signature algorithm.
Needs Go (marker `go`, run by `make e2e`); without it these tests fail, they do not skip.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests import go_x509
from tests.builders import (
    build_csr,
    oid,
    private_key,
    raw_csr,
    raw_extension,
    seq,
    sign_info,
    to_pem,
    utf8_name,
)
from tests.conftest import MakeApp, permissive_policy
from tests.reviews import create_review
from tests.test_fuzz import byte_damage, damaged_csr
from tests.test_vectors import HANDMADE_DIR, load_suites, request_bytes
from webhook import errors
from webhook.checks import structure
from webhook.policy.schema import KNOWN_USAGES
from webhook.x509 import der
from webhook.x509.csr import parse_csr

pytestmark = pytest.mark.go

SIGNER = "differential.example/signer"
# Every key Go's crypto/x509 can read and verify: Ed448 is excluded because Go reads neither
# Ed448 keys nor Ed448 signatures (the API server refuses such a CSR, whatever we say), and RSA
# below 1024 bits because Go refuses to verify with such keys.
PERMISSIVE = permissive_policy(
    "differential",
    SIGNER,
    """      constraints:
        keys:
          rsa: {minBits: 1024, maxBits: 16384}
          ecdsa: {curves: ["P-256", "P-384", "P-521"]}
          ed25519: true
""",
)
FUZZ_MUTANTS = 2500
RESIGNED_MUTANTS = 4000
KEYS = ("ecdsa-p256", "rsa-2048", "ed25519")


@dataclass(frozen=True, slots=True)
class Sample:
    source: str
    name: str
    request: bytes


# ---- the corpus ----------------------------------------------------------------------------


def _vector_requests(tmp_path: Path) -> Iterator[Sample]:
    for suite_name, suite in load_suites():
        for case in suite["cases"]:
            if "base64" in case:
                continue
            request = request_bytes(case, tmp_path)
            source = "handmade" if "pem" in case else "vectors"
            yield Sample(source, f"{suite_name}::{case['name']}", request)
    for path in sorted(HANDMADE_DIR.glob("*.pem")):
        yield Sample("handmade", path.name, path.read_bytes())


def _cryptography_vectors() -> Iterator[Sample]:
    requests = Path(cryptography_vectors.__file__).parent / "x509" / "requests"
    for path in sorted(requests.iterdir()):
        if path.suffix in (".pem", ".der"):
            data = path.read_bytes()
            yield Sample(
                "cryptography-vectors", path.name, to_pem(data) if path.suffix == ".der" else data
            )


def _collect(strategy: st.SearchStrategy[bytes], count: int) -> list[bytes]:
    """`count` draws of `strategy`, the same on every run (derandomized, no database)."""
    drawn: list[bytes] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(value: bytes) -> None:
        drawn.append(value)

    draw()
    return drawn


# A DER tree, so that a mutant keeps its lengths right and gets past framing to the checks.
Node = tuple[int, "list[Node] | None", bytes]


def _tree(tlv: der.TLV) -> Node:
    """The node for `tlv`; an OCTET STRING that holds DER (an extension's value) is opened
    too, so that mutations reach the GeneralNames inside a subjectAltName."""
    try:
        if tlv.constructed:
            return (tlv.tag, [_tree(child) for child in der.children(tlv)], b"")
        if tlv.tag == der.OCTET_STRING and tlv.content:
            inner = der.read_single(tlv.content)
            if inner.constructed:
                return (tlv.tag, [_tree(inner)], b"")
    except errors.DERError:
        pass
    return (tlv.tag, None, tlv.content)


def _encode(node: Node) -> bytes:
    tag, kids, content = node
    body = b"".join(_encode(kid) for kid in kids) if kids is not None else content
    return der.encode_tlv(tag, body)


def _paths(node: Node, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    found = [prefix]
    if node[1] is not None:
        for index, kid in enumerate(node[1]):
            found += _paths(kid, (*prefix, index))
    return found


def _replace(node: Node, path: tuple[int, ...], new: list[Node]) -> Node:
    """`node` with the node at `path` replaced by the nodes `new` (none: deleted)."""
    if not path:
        assert len(new) == 1
        return new[0]
    tag, kids, content = node
    assert kids is not None
    head, rest = path[0], path[1:]
    replaced = [_replace(kids[head], rest, new)] if rest else new
    return (tag, [*kids[:head], *replaced, *kids[head + 1 :]], content)


def _at(node: Node, path: tuple[int, ...]) -> Node:
    for index in path:
        assert node[1] is not None
        node = node[1][index]
    return node


# Tags worth trying on a value: every string type, the other universal primitives a name can
# hold, the GeneralName choices and the constructed ones.
TAGS = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1A, 0x1B, 0x1C, 0x1E, 0x30, 0x31,
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0xA0, 0xA1, 0xA2, 0xA4, 0xA6,
)  # fmt: skip
# Contents worth trying: bytes on the edge of each string type's alphabet, values that decode
# differently per parser, and SAN values that a re-serializing parser could rewrite.
CONTENTS = (
    b"", b"\x00", b"\xff", b"\x80", b"a@b", b"a_b", b"*", b"&", b"!", b"a b", "é".encode(),
    b"\xe9", b"\x00a", b"\x00a\x00\x00", b"\xd8\x3d\xde\x00", b"\xff\xfe", b"\xfd\xd0",
    b"\x00\x00\x00a", b"system:masters", b"system:node:n1", b"123 45", b"\x01", b"\xff" * 2,
    b"*.example.com", b"a..example.com", b"A.EXAMPLE.COM", b"a@example.com",
    b"https://EXAMPLE.com/%41", b"HTTPS://a.example.com/", b"https://ex%41mple.com/",
    b"https://a.example.com/a b", b"https://a.example.com/?q#f", b"https://a.example.com:443",
    b"https://user:pw@a.example.com/", b"https://[::1]/", b"spiffe://a/b/../c", b"mailto:a",
    b"https:opaque", b"//a.example.com/x", b"https://a.example.com/%zz", b"https://a.exam_ple.com/",
    b"https://a.example.com/#%41", b"https://a.example.com/?%41", b"https://a.example.com/\\x",
    b"\x0a\x00\x00\x01", bytes(10) + b"\xff\xff\x0a\x00\x00\x01", b"\x0a\x00\x01",
)  # fmt: skip


@cache
def _bases() -> tuple[tuple[str, bytes], ...]:
    """(key kind, CertificationRequestInfo DER) of CSRs with something in every part."""
    out = []
    for kind in KEYS:
        pem = build_csr(
            key=kind,
            common_name="system:node:n1",
            organization=["system:nodes", "team"],
            dns_names=["a.example.com"],
            ip_addresses=["10.0.0.1", "fd00::1"],
            emails=["ops@example.com"],
            uris=["spiffe://example.com/ns/a", "https://a.example.com/p"],
        )
        body = der.read_single(base64_body(pem))
        out.append((kind, der.children(body)[0].raw))
    return tuple(out)


def base64_body(pem: bytes) -> bytes:
    return base64.b64decode(b"".join(pem.splitlines()[1:-1]))


@st.composite
def resigned_mutant(draw: st.DrawFn) -> bytes:
    """A CSR whose CertificationRequestInfo was changed at one or two DER nodes and then
    signed again with its own key, so it gets past proof of possession."""
    kind, info = draw(st.sampled_from(_bases()))
    tree = _tree(der.read_single(info))
    for _ in range(draw(st.integers(1, 2))):
        # Mostly the values of the subject (field 1) and of the extensions (field 3): a
        # changed structure or key rarely gets a mutant past the checks.
        region = draw(st.sampled_from((1, 1, 3, 3, 3, None)))
        op = draw(st.sampled_from(("retag", "content", "content", "damage", "delete", "repeat")))
        leaves_only = op in ("retag", "content")
        paths = [
            p
            for p in _paths(tree)[1:]
            if (region is None or p[0] == region)
            and not (leaves_only and (_at(tree, p)[1] or _at(tree, p)[0] == der.OID))
        ]
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        tag, kids, content = _at(tree, path)
        if op == "retag":
            new = [(draw(st.sampled_from(TAGS)), kids, content)]
        elif op == "content":
            new = [(tag, None, draw(st.sampled_from(CONTENTS)))]
        elif op == "damage":
            body = b"".join(_encode(kid) for kid in kids) if kids is not None else content
            new = [(tag, None, draw(byte_damage(body)))]
        elif op == "delete":
            new = []
        else:
            new = [(tag, kids, content)] * 2
        tree = _replace(tree, path, new)
    return to_pem(sign_info(_encode(tree), key=kind, hash_name="sha256"))


def _with_signature_algorithm(pem: bytes, algorithm: bytes) -> bytes:
    """The same CSR with another signatureAlgorithm field (the signature covers only the
    CertificationRequestInfo, so it still verifies where the algorithm still fits)."""
    info, _algorithm, signature = der.children(der.read_single(base64_body(pem)))
    return to_pem(seq(info.raw, algorithm, signature.raw))


def _crafted() -> Iterator[Sample]:
    """Keys, hashes and signature encodings, each one the way Go does or does not read it."""
    hash_names: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
    }
    for kind in ("rsa-2048", "rsa-3072", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521"):
        for name, algorithm in hash_names.items():
            yield Sample(
                "crafted",
                f"{kind}-{name}",
                build_csr(key=kind, common_name=kind, hash_alg=algorithm),
            )
    yield Sample("crafted", "ed448", build_csr(key="ed448", common_name="ed448"))
    key = private_key("rsa-2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    for name, algorithm in hash_names.items():
        other = hashes.SHA512() if name != "sha512" else hashes.SHA256()
        for mgf_name, mgf in (("same", algorithm), ("other", other)):
            for salt in (20, algorithm.digest_size, padding.PSS.MAX_LENGTH):
                pss = padding.PSS(mgf=padding.MGF1(mgf), salt_length=salt)
                csr = (
                    x509.CertificateSigningRequestBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pss")]))
                    .sign(key, algorithm, rsa_padding=pss)
                )
                pem = csr.public_bytes(serialization.Encoding.PEM)
                yield Sample("crafted", f"pss-{name}-mgf-{mgf_name}-salt-{salt}", pem)
    null = der.encode_tlv(0x05, b"")
    for kind, algorithm_oid in (
        ("ed25519", "1.3.101.112"),
        ("ecdsa-p256", "1.2.840.10045.4.3.2"),
        ("rsa-2048", "1.2.840.113549.1.1.11"),
    ):
        pem = build_csr(key=kind, common_name=f"{kind}-params")
        yield Sample(
            "crafted",
            f"{kind}-with-null",
            _with_signature_algorithm(pem, seq(oid(algorithm_oid), null)),
        )
        yield Sample(
            "crafted",
            f"{kind}-without-params",
            _with_signature_algorithm(pem, seq(oid(algorithm_oid))),
        )


@cache
def corpus(tmp_path: Path) -> tuple[Sample, ...]:
    samples = [*_vector_requests(tmp_path), *_cryptography_vectors(), *_crafted()]
    samples += [
        Sample("fuzz", f"damaged-{i}", pem)
        for i, pem in enumerate(_collect(damaged_csr(), FUZZ_MUTANTS))
    ]
    samples += [
        Sample("resigned", f"resigned-{i}", pem)
        for i, pem in enumerate(_collect(resigned_mutant(), RESIGNED_MUTANTS))
    ]
    unique: dict[bytes, Sample] = {}
    for sample in samples:
        unique.setdefault(sample.request, sample)
    return tuple(unique.values())


# SAN values, part by part: for URIs, what Go's net/url parses and writes back another way
# (escapes, case, empty parts, host characters), and values of every SAN kind with bytes Go
# refuses.
# The first half of each tuple is well formed, and is drawn more often.
URI_SCHEMES = ("https", "HTTPS", "spiffe", "Spiffe", "urn", "mailto", "a+b.c-d", "1x", "")
URI_AUTHORITIES = (
    "//a.example.com", "//A.Example.COM", "//user@a.example.com", "//u:p@a.example.com",
    "//a.example.com:8443", "//a_b.example.com", "//a~b.example.com", "//@a.example.com",
    "//u$&+,;=@a.example.com", "//a-b.example.com", "", "//a.example.com:0",
    "//", "//u%41@a.example.com", "//u!@a.example.com", "//u:p:q@a.example.com",
    "//a.example.com:", "//a.example.com:x", "//[::1]", "//[::1]:443", "//ex%41mple.com",
    "//ex%C3%A9.com", "//a..b", "//a.example.com.", "//a@b@c.example.com", "//a!b.example.com",
    "//a$b.example.com", "//a b.example.com", "//a\\b.example.com", "//é.example.com", "///",
    "//:80", "//a.example.com:8443:1",
)  # fmt: skip
URI_PATHS = (
    "", "/", "/p", "/a/b", "/%41", "/%2F", "/%2f", "/!$&'()*+,;=:@", "//x", "/./a/../b",
    "/~user", "/a-b_c.d", "/%C3%A9", "/a:b", "p", "a:b",
    "/%zz", "/%4", "/a b", "/a\\b", "/[x]", "/é", "/a%", "/a|b", "/a^b", "/a{b}", '/a"b',
    "/a<b>", "/a`b", "*", ":", "/a#", "/a\x7f",
)  # fmt: skip
URI_QUERIES = (
    None, "", "q=1", "a=%41", "?x", "a/b?c", "a'b", "a=b&c=d;e",
    "a b", "a=|", "%zz", "é", "a^b", "a[b]", "a%", '"',
)  # fmt: skip
URI_FRAGMENTS = (
    None, "f", "%41", "f/g?h", "!()*", "a'b", "a=b&c", "%C3%A9",
    "", "a b", "#", "%zz", "[x]", "é", "a^b", "a%", "a|b",
)  # fmt: skip
EMAILS = (
    "a@example.com", "é@example.com", "a@exämple.com", "a b@example.com", "a@b@example.com",
    "\"a\"@example.com", "a@[10.0.0.1]", "a@example.com.", "@example.com", "a@",
)  # fmt: skip
DNS_NAMES = ("a.example.com", "A.Example.COM", "a_b.example.com", "bücher.example.com")


T = TypeVar("T")


def _draw(rng: random.Random, values: tuple[T, ...]) -> T:
    return rng.choice(values[: len(values) // 2] if rng.random() < 0.8 else values)


def _uris(count: int) -> list[str]:
    rng = random.Random(11)  # fixed: the same corpus on every run
    uris: set[str] = set()
    while len(uris) < count:
        scheme = _draw(rng, URI_SCHEMES)
        authority = _draw(rng, URI_AUTHORITIES)
        path = _draw(rng, URI_PATHS)
        query = _draw(rng, URI_QUERIES)
        fragment = _draw(rng, URI_FRAGMENTS)
        uri = f"{scheme}:" if scheme else ""
        uri += authority + path
        uri += "" if query is None else f"?{query}"
        uri += "" if fragment is None else f"#{fragment}"
        uris.add(uri)
    return sorted(uris)


def _san_csr(tag: int, value: str) -> bytes:
    san = raw_extension(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME, seq(der.encode_tlv(tag, value.encode()))
    )
    return to_pem(raw_csr(subject=utf8_name((NameOID.COMMON_NAME, "san")), extensions=[san]))


# ---- the test ------------------------------------------------------------------------------


@pytest.fixture
def client(make_app: MakeApp) -> FlaskClient:
    return make_app({"differential.yaml": PERMISSIVE}).test_client()


def allowed(client: FlaskClient, request: bytes) -> bool:
    review = create_review(request, signer_name=SIGNER, usages=list(KNOWN_USAGES))
    answer = client.post("/validate", json=review)
    assert answer.status_code == 200, answer.get_json()
    verdict: bool = answer.get_json()["response"]["allowed"]
    return verdict


def differences(ours: dict[str, Any], go: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {key: (ours[key], go.get(key)) for key in ours if ours[key] != go.get(key)}


def test_the_policy_permits_what_go_reads(client: FlaskClient) -> None:
    """Without this the laws below could hold vacuously."""
    for kind in (*KEYS, "ecdsa-p384", "ecdsa-p521"):
        pem = build_csr(key=kind, common_name="c", dns_names=["a.example.com"])
        assert allowed(client, pem), kind


def test_webhook_judges_what_go_reads(
    client: FlaskClient, go_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    samples = corpus(tmp_path_factory.mktemp("openssl"))
    views = go_x509.go_views(go_binary, [s.request for s in samples])
    counts: Counter[str] = Counter()
    mismatches: list[tuple[str, str, str, object]] = []
    for sample, go in zip(samples, views, strict=True):
        counts[f"{sample.source}:total"] += 1
        rejected = go_x509.go_rejects(go)
        counts[f"go_rejects:{rejected is not None}"] += 1
        if not allowed(client, sample.request):
            continue
        counts[f"{sample.source}:allowed"] += 1
        if rejected:
            mismatches.append((sample.source, sample.name, "Go rejects it", rejected))
            continue
        ours = go_x509.webhook_view(parse_csr(sample.request))
        found = differences(ours, go_x509.comparable_go_view(go))
        if found:
            mismatches.append((sample.source, sample.name, "views differ", found))
        counts["compared"] += 1
    print(dict(sorted(counts.items())))
    assert not mismatches, "\n".join(map(str, mismatches[:40]))
    # Not vacuous: every source is there and a meaningful number was compared.
    assert counts["compared"] >= 300, counts
    for source in ("vectors", "handmade", "cryptography-vectors", "crafted", "fuzz", "resigned"):
        assert counts[f"{source}:total"] >= 20, (source, counts)
        assert counts[f"{source}:allowed"] >= 1, (source, counts)
    assert counts["go_rejects:True"] >= 500, counts


def test_san_values_pass_the_structural_checks_only_as_go_reads_them(go_binary: Path) -> None:
    """Whatever the policy: a SAN value the structural checks accept is one Go reads, and a
    URI one Go's signer writes back as it is (net/url lowercases the scheme, and URI patterns
    compare it case-insensitively too)."""
    values = [(0x86, uri) for uri in _uris(3000)]
    values += [(0x81, email) for email in EMAILS] + [(0x82, name) for name in DNS_NAMES]
    requests = [_san_csr(tag, value) for tag, value in values]
    views = go_x509.go_views(go_binary, requests)
    accepted, mismatches = Counter[str](), list[tuple[object, ...]]()
    for (tag, value), request, go in zip(values, requests, views, strict=True):
        if list(structure.violations(parse_csr(request))):
            continue
        accepted[f"0x{tag:02x}"] += 1
        ours = go_x509.webhook_view(parse_csr(request))
        if rejected := go_x509.go_rejects(go):
            mismatches.append((value, "Go rejects it", rejected))
        elif ours["uris"] != go["uris"]:
            mismatches.append((value, "Go issues", go["uris"]))
        elif (ours["dns_names"], ours["email_addresses"]) != (
            go["dns_names"],
            go["email_addresses"],
        ):
            mismatches.append((value, "Go reads", go["dns_names"], go["email_addresses"]))
    print(dict(accepted))
    assert not mismatches, "\n".join(map(str, mismatches[:40]))
    assert accepted["0x86"] >= 300, accepted
    assert accepted["0x81"] >= 1, accepted
