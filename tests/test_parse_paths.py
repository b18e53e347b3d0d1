"""parse_csr's fast paths say exactly what its exhaustive reader says, on every kind of input.

parse_csr reads a common CSR in one pass (webhook.x509.common_csr) and a plain PEM block without
scanning (webhook.x509.pem.sole_block_body), and hands anything else to the exhaustive reader;
parse_csr_exhaustive is that reader alone, the reference. Over the vector suites and the
hand-made CSRs, pyca/cryptography's vectors, the Go differential's crafted keys and signature
encodings, the bench corpus, hypothesis's damage at the DER, armour, base64 and PEM levels
(tests/test_fuzz.py) and its DER mutants re-signed so they get past proof of possession
(tests/test_go_differential.py), both give an equal ParsedCSR or the same CSRError (code and
message). Each group also shows the fast path was taken, so equality is not met vacuously.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.corpus import DEFAULT_MIX, build_corpus, parse_mix
from tests.builders import build_csr
from tests.test_fuzz import FUZZ, damaged_csr
from tests.test_go_differential import (
    _crafted,
    _cryptography_vectors,
    _vector_requests,
    resigned_mutant,
)
from webhook.errors import CSRError
from webhook.x509.common_csr import read_common
from webhook.x509.csr import PEM_TYPE, ParsedCSR, parse_csr, parse_csr_exhaustive
from webhook.x509.pem import PemBlock, decode_pem_blocks, sole_block_body

Outcome = ParsedCSR | tuple[str, str]


def outcome(parse: object, request: bytes) -> Outcome:
    assert callable(parse)
    try:
        parsed = parse(request)
    except CSRError as exc:
        return exc.code, exc.violation.message
    assert isinstance(parsed, ParsedCSR)
    return parsed


def same_outcome(request: bytes) -> bool:
    """Assert both readers agree on `request`; True when the fast path produced the result."""
    fast = outcome(parse_csr, request)
    reference = outcome(parse_csr_exhaustive, request)
    assert fast == reference, request
    return isinstance(fast, ParsedCSR) and read_common(fast.der) is not None


def agree(requests: Iterable[bytes]) -> tuple[int, int]:
    """(inputs, how many of them took the fast path), each input held to same_outcome."""
    results = [same_outcome(request) for request in requests]
    return len(results), sum(results)


def test_vectors_handmade_and_crafted_csrs_parse_the_same_either_way(tmp_path: Path) -> None:
    vectors = agree(s.request for s in _vector_requests(tmp_path))
    cryptography = agree(s.request for s in _cryptography_vectors())
    crafted = agree(s.request for s in _crafted())
    # Of the suites' CSRs that parse, most are common; pyca's vectors mostly are not (old keys,
    # odd attributes); the crafted ones vary the key and hash, some commonly.
    assert vectors[0] > 600 and vectors[1] > 250, vectors
    assert cryptography[0] > 20 and cryptography[1] >= 1, cryptography
    assert crafted[1] >= 10, crafted


def test_the_bench_corpus_takes_the_fast_path_and_parses_the_same() -> None:
    corpus = build_corpus(40, parse_mix(DEFAULT_MIX))
    requests = [base64.b64decode(r["request"]["object"]["spec"]["request"]) for r in corpus.reviews]
    assert agree(requests) == (40, 40)
    assert set(corpus.kinds) == {"ecdsa-p256", "rsa-2048"}


@FUZZ
@given(damaged_csr())
def test_damaged_csrs_parse_the_same_either_way(request: bytes) -> None:
    same_outcome(request)


@FUZZ
@given(resigned_mutant())
def test_resigned_der_mutants_parse_the_same_either_way(request: bytes) -> None:
    same_outcome(request)


def test_the_damage_strategies_reach_the_fast_path() -> None:
    """The unchanged bases of both strategies are common CSRs, so their mutants start there."""
    assert same_outcome(build_csr(common_name="a", dns_names=["a.example"], emails=["a@x.y"]))
    assert same_outcome(build_csr(key="rsa-2048", ip_addresses=["10.0.0.1", "fd00::1"]))


_PIECES = (
    b"-----BEGIN CERTIFICATE REQUEST-----",
    b"-----END CERTIFICATE REQUEST-----",
    b"-----BEGIN X-----",
    b"\n",
    b"\r\n",
    b"MIIB",
    b"QQ==",
    b"QUI=",
    b"=",
    b"-",
    b":",
    b" ",
    b"Comment: x",
)


@FUZZ
@given(st.lists(st.sampled_from(_PIECES), max_size=12).map(b"".join))
def test_a_sole_pem_block_is_what_the_scanner_finds(text: bytes) -> None:
    body = sole_block_body(text, PEM_TYPE)
    if body is not None:
        assert decode_pem_blocks(text) == [PemBlock(type=PEM_TYPE, headers=(), body=body)]
        assert text.count(b"-----BEGIN") == 1


@pytest.mark.parametrize(
    "text",
    [
        b"-----BEGIN CERTIFICATE REQUEST-----\nQUI=\n-----END CERTIFICATE REQUEST-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\nQU\nI=\n-----END CERTIFICATE REQUEST-----",
    ],
)
def test_a_plain_pem_block_is_read_without_scanning(text: bytes) -> None:
    assert sole_block_body(text, PEM_TYPE) == b"AB"
    assert decode_pem_blocks(text)[0].body == b"AB"
