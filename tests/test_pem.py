"""decode_pem_blocks follows Go's encoding/pem.Decode loop (reference §1.7, §6 vectors 16-21, §7)."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.x509.pem import PemBlock, decode_pem_blocks

DER = bytes(range(48))
B64 = base64.b64encode(DER)


def block(label: bytes = b"CERTIFICATE", body: bytes = B64, *, headers: bytes = b"") -> bytes:
    return (
        b"-----BEGIN " + label + b"-----\n" + headers + body + b"\n-----END " + label + b"-----\n"
    )


def test_decodes_one_block() -> None:
    assert decode_pem_blocks(block()) == [PemBlock(type="CERTIFICATE", headers=(), body=DER)]


def test_finds_nothing_in_text_without_pem() -> None:  # vector 16
    assert decode_pem_blocks(b"no PEM content") == []
    assert decode_pem_blocks(b"") == []


def test_keeps_any_block_type() -> None:  # vector 17: the caller judges the type
    assert [b.type for b in decode_pem_blocks(block(b"CERTIFICATE1"))] == ["CERTIFICATE1"]


def test_reports_headers() -> None:  # vector 18
    (found,) = decode_pem_blocks(block(headers=b"Some-Header: Some-Value\n"))
    assert found.headers == (("Some-Header", "Some-Value"),)
    assert found.body == DER


def test_header_keys_keep_first_position_and_last_value() -> None:
    (found,) = decode_pem_blocks(block(headers=b"A: 1\nB: 2\nA: 3\n\n"))
    assert found.headers == (("A", "3"), ("B", "2"))


def test_skips_block_with_invalid_base64() -> None:  # vector 19
    assert decode_pem_blocks(block(body=b"?????????")) == []


def test_skips_malformed_block_and_finds_the_next() -> None:
    data = block(b"CERTIFICATE", b"?????????") + block(b"CERTIFICATE REQUEST")
    assert [b.type for b in decode_pem_blocks(data)] == ["CERTIFICATE REQUEST"]


def test_empty_block_has_empty_body() -> None:  # vector 20
    (found,) = decode_pem_blocks(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    assert found.body == b""


def test_ignores_text_before_between_and_after_blocks() -> None:  # vector 21
    data = b"Leading\n" + block() + b"Intermediate\n" + block() + b"Trailing non-PEM content\n"
    assert [b.body for b in decode_pem_blocks(data)] == [DER, DER]


def test_begin_must_start_a_line() -> None:
    assert decode_pem_blocks(b"text " + block()) == []
    assert len(decode_pem_blocks(b"text\n" + block())) == 1


def test_skips_type_line_without_trailing_dashes() -> None:
    data = b"-----BEGIN CERTIFICATE----\n" + B64 + b"\n-----END CERTIFICATE-----\n"
    assert decode_pem_blocks(data) == []


def test_skips_block_without_end_line() -> None:
    assert decode_pem_blocks(b"-----BEGIN CERTIFICATE-----\n" + B64 + b"\n") == []


def test_skips_block_whose_end_names_another_type() -> None:
    data = b"-----BEGIN CERTIFICATE-----\n" + B64 + b"\n-----END PRIVATE KEY-----\n"
    assert decode_pem_blocks(data) == []


def test_end_line_allows_only_trailing_blanks() -> None:
    ok = b"-----BEGIN X-----\n" + B64 + b"\n-----END X----- \t\r\n"
    bad = b"-----BEGIN X-----\n" + B64 + b"\n-----END X----- trailing\n"
    assert len(decode_pem_blocks(ok)) == 1
    assert decode_pem_blocks(bad) == []


def test_accepts_whitespace_and_crlf_in_base64() -> None:
    wrapped = b" \t".join(B64[i : i + 8] for i in range(0, len(B64), 8))
    data = block(body=wrapped).replace(b"\n", b"\r\n")
    assert [b.body for b in decode_pem_blocks(data)] == [DER]


@pytest.mark.parametrize(
    "body",
    [b"AAA", b"A", b"AA=", b"AAAA=", b"AA==AA==", b"AA\x0bAA", b"====", b"AA-_"],
    ids=[
        "unpadded",
        "one-char",
        "short-padding",
        "extra-padding",
        "padding-inside",
        "vtab",
        "only-padding",
        "urlsafe",
    ],
)
def test_rejects_base64_go_rejects(body: bytes) -> None:
    assert decode_pem_blocks(block(body=body)) == []


def test_accepts_non_zero_trailing_bits_like_go() -> None:
    (found,) = decode_pem_blocks(block(body=b"AB=="))
    assert found.body == b"\x00"


def test_headers_with_immediate_end_line_are_skipped_like_go() -> None:
    data = b"-----BEGIN X-----\nK: v\n-----END X-----\n"
    assert decode_pem_blocks(data) == []


def test_many_begin_lines_without_end_stay_fast() -> None:
    data = b"-----BEGIN X-----\nAAAA\n" * 20000
    started = time.monotonic()
    assert decode_pem_blocks(data) == []
    assert time.monotonic() - started < 2


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=2000))
def test_never_raises_on_random_bytes(data: bytes) -> None:
    decode_pem_blocks(data)


_PEMISH = st.lists(
    st.sampled_from(
        [
            b"-----BEGIN X-----",
            b"-----END X-----",
            b"-----END Y-----",
            b"-----BEGIN ",
            b"\n",
            b"\r\n",
            b"K: v",
            b"AAAA",
            b"AA==",
            b"?",
            b" ",
            b"-----",
            b":",
        ]
    ),
    max_size=40,
).map(b"".join)


@settings(deadline=None, max_examples=200)
@given(_PEMISH)
def test_never_raises_on_pem_like_text(data: bytes) -> None:
    for found in decode_pem_blocks(data):
        assert isinstance(found.body, bytes)


def _cpu_seconds(data: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        decode_pem_blocks(data)
        best = min(best, time.process_time() - started)
    return best


def test_many_begin_lines_before_one_end_cost_linear_time() -> None:
    """Go's own scan was quadratic on this shape (CVE-2025-61723) and so was ours: every
    BEGIN line re-read the whole rest up to the one END line. 10x the lines now costs well
    under 30x the time (it was ~100x), measured in one run."""

    def shape(lines: int) -> bytes:
        return b"-----BEGIN A-----\n" * lines + b"-----END A-----\n"

    _cpu_seconds(shape(2_000))  # warm-up
    ratio = _cpu_seconds(shape(40_000)) / max(_cpu_seconds(shape(4_000)), 1e-6)
    assert ratio < 30, f"10x the BEGIN lines cost {ratio:.1f}x the time"
