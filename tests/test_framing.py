"""webhook/serving/framing.py: where a request ends, however its bytes are split, and what is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.errors import FramingError
from webhook.serving.framing import Complete, RequestFramer

MAX_HEADER, MAX_BODY = 1024, 4096
HEAD = b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"


def framer() -> RequestFramer:
    return RequestFramer(max_header_bytes=MAX_HEADER, max_body_bytes=MAX_BODY)


def feed(data: bytes, pieces: list[int] | None = None) -> Complete | None:
    """Feed `data` in pieces of the given sizes (the rest at once), as reads would arrive."""
    machine, buffer, offset = framer(), bytearray(), 0
    for size in [*(pieces or []), len(data)]:
        buffer += data[offset : offset + size]
        offset += size
        result = machine.advance(buffer)
        if result is not None:
            return result
    return None


def refused(data: bytes) -> FramingError:
    with pytest.raises(FramingError) as caught:
        feed(data)
    return caught.value


def with_length(body: bytes) -> bytes:
    return HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c)
    return HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + encoded + b"0\r\n" + trailer + b"\r\n"


def test_request_with_content_length_ends_after_its_body() -> None:
    request = with_length(b'{"a": 1}')
    assert feed(request + b"GET / HTTP/1.1\r\n") == Complete(0, len(request))
    assert feed(request[:-1]) is None


def test_request_without_body_ends_after_its_headers() -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    assert feed(request + b"more") == Complete(0, len(request))


def test_chunked_request_ends_after_the_last_chunk_and_trailers() -> None:
    request = chunked(b"hello", b" world", trailer=b"X-Checksum: 1\r\n")
    assert feed(request + b"next") == Complete(0, len(request))
    assert feed(request[:-2]) is None
    assert feed(chunked()) == Complete(0, len(chunked()))


def test_empty_lines_before_the_request_line_are_skipped() -> None:
    request = with_length(b"{}")
    assert feed(b"\r\n\r\n" + request) == Complete(4, 4 + len(request))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_split_of_the_bytes_finds_the_same_end(data: st.DataObject) -> None:
    request = data.draw(
        st.sampled_from(
            [
                with_length(b'{"review": "x"}'),
                chunked(b"a" * 100, b"b" * 7, b"c", trailer=b"T: v\r\n"),
                b"\r\n" + with_length(b""),
            ]
        )
    )
    stream = request + b"POST /next HTTP/1.1\r\n"
    pieces = data.draw(st.lists(st.integers(1, 40), max_size=60))
    assert feed(stream, pieces) == feed(stream)


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (HEAD + b"Content-Length: 4097\r\n\r\n", 413, "body of 4097 bytes exceeds the limit"),
        (chunked(b"x" * 4000, b"y" * 97), 413, "body exceeds the limit of 4096 bytes"),
        (HEAD + b"X: " + b"a" * MAX_HEADER, 431, "headers exceed the limit of 1024 bytes"),
        (HEAD + b"X: " + b"a" * 1000 + b"\r\n\r\n", 431, "headers exceed the limit"),
        (
            HEAD + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "both Transfer-Encoding and Content-Length",
        ),
        (HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n", 400, "2 Content-Length"),
        (HEAD + b"Content-Length: +2\r\n\r\n", 400, "invalid Content-Length '+2'"),
        (HEAD + b"Content-Length: 1,1\r\n\r\n", 400, "invalid Content-Length '1,1'"),
        (HEAD + b"Content-Length : 2\r\n\r\n", 400, "malformed header line 'Content-Length : 2'"),
        (HEAD + b" folded\r\n\r\n", 400, "malformed header line"),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "'gzip, chunked'"),
        (HEAD + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 501, "unsupported"),
        (
            HEAD.replace(b"1.1", b"1.0") + b"Transfer-Encoding: chunked\r\n\r\n",
            400,
            "HTTP/1.0",
        ),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "invalid chunk size 'zz'"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", 400, "not followed by CRLF"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 5000, 400, "longer than 4096"),
        (
            HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 1000,
            413,
            "chunked body exceeds the limit of 4096 bytes (framing included)",
        ),
    ],
)
def test_refuses_what_the_server_would_not_serve(data: bytes, status: int, message: str) -> None:
    error = refused(data)
    assert (error.status, message in error.message) == (status, True), error.message


def test_expect_100_continue_is_noticed_once_the_headers_are_in() -> None:
    machine = framer()
    buffer = bytearray(HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert machine.advance(buffer) is None
    assert machine.expects_continue is True
    plain = framer()
    assert plain.advance(bytearray(HEAD + b"Content-Length: 5\r\n\r\n")) is None
    assert plain.expects_continue is False


class CountingBuffer(bytearray):
    """A buffer that counts the bytes every search looks at: the framer's work, exactly."""

    scanned = 0

    def find(self, sub: Any, start: Any = 0, *rest: Any) -> int:
        self.scanned += len(self) - (start or 0)
        return super().find(sub, start, *rest)


@pytest.mark.parametrize(
    "make",
    [
        lambda n: HEAD + b"X: " + b"a" * n + b"\r\n\r\n",
        lambda n: HEAD + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % n + b"a" * n + b"\r\n0\r\n",
        lambda n: HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nT: " + b"a" * n + b"\r\n\r\n",
        lambda n: (
            HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1;" + b"e" * (n // 10) + b"\r\nx\r\n"
        ),
    ],
    ids=["headers", "chunk", "trailer", "chunk-extension"],
)
def test_one_byte_at_a_time_scans_each_byte_a_bounded_number_of_times(
    make: Callable[[int], bytes],
) -> None:
    data = make(30000)
    machine = RequestFramer(max_header_bytes=len(data), max_body_bytes=len(data))
    buffer = CountingBuffer()
    for index in range(len(data)):
        buffer += data[index : index + 1]
        if machine.advance(buffer) is not None:
            break
    # Every search resumes where the last one stopped (less a delimiter's length): a rescan
    # from the start of the request on each byte would look at about len(data)**2 / 2 bytes.
    assert buffer.scanned <= 5 * len(data), (buffer.scanned, len(data))


def served(data: bytes) -> bytes:
    """The request a thread would serve, as the framer hands it over."""
    machine, buffer = framer(), bytearray(data)
    assert machine.advance(buffer) is not None
    return machine.request(buffer)


def test_a_chunked_body_is_handed_over_de_chunked_with_a_content_length() -> None:
    request = chunked(b'{"a": ', b"1", b"}" * 300, trailer=b"X-Checksum: 1\r\n")
    assert served(request + b"GET /next HTTP/1.1\r\n") == (
        HEAD + b"Content-Length: 307\r\n\r\n" + b'{"a": 1' + b"}" * 300
    )
    assert served(chunked()) == HEAD + b"Content-Length: 0\r\n\r\n"


def test_a_request_with_content_length_is_handed_over_unchanged() -> None:
    request = with_length(b'{"a": 1}')
    assert served(b"\r\n" + request + b"GET /next HTTP/1.1\r\n") == request


def test_de_chunking_gives_the_same_request_however_the_bytes_are_split() -> None:
    request = chunked(*(bytes([65 + n % 26]) * n for n in range(1, 60)), trailer=b"T: v\r\n")
    whole = served(request)
    for size in (1, 2, 3, 7, 64):
        machine, buffer, result = framer(), bytearray(), None
        for offset in range(0, len(request), size):
            buffer += request[offset : offset + size]
            result = machine.advance(buffer)
        assert result is not None and machine.request(buffer) == whole


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"1 \r\nx\r\n0\r\n\r\n", "invalid chunk size '1 '"),
        (b" 1\r\nx\r\n0\r\n\r\n", "invalid chunk size ' 1'"),
        (b"1;a=\r\nx\r\n0\r\n\r\n", "invalid chunk size '1;a='"),
        (b"1;a\nb\r\nx\r\n0\r\n\r\n", "invalid chunk size"),
        (b"0\r\nT: a\nb\r\n\r\n", "malformed trailer line 'T: a\\nb'"),
        (b"0\r\nno colon\r\n\r\n", "malformed trailer line 'no colon'"),
    ],
)
def test_refuses_chunk_lines_and_trailers_gunicorn_would_not_parse(
    body: bytes, message: str
) -> None:
    error = refused(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert (error.status, message in error.message) == (400, True), error.message


def test_accepts_chunk_extensions_of_the_rfc_grammar() -> None:
    body = b'1 ; name = "quoted \\" value" ;flag\r\nx\r\n0\r\n\r\n'
    assert served(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body).endswith(b"\r\n\r\nx")


def test_refuses_a_body_of_tiny_chunks_once_their_framing_passes_its_limit() -> None:
    machine = RequestFramer(max_header_bytes=1024, max_body_bytes=1 << 20, max_chunk_framing=500)
    body = b"1\r\nx\r\n" * 101  # 5 bytes of framing per byte of data
    with pytest.raises(FramingError) as caught:
        machine.advance(bytearray(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body))
    assert caught.value.status == 413
    assert "chunk framing exceeds the limit of 500 bytes (101 bytes of body so far)" in (
        caught.value.message
    )
    fits = RequestFramer(max_header_bytes=1024, max_body_bytes=1 << 20, max_chunk_framing=500)
    assert fits.advance(bytearray(chunked(*[b"x" * 50] * 80))) is not None
