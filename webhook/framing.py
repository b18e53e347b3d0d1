"""Where an HTTP/1.1 request ends (RFC 9112 §6), found incrementally as its bytes arrive.

The worker buffers each request in its poller and hands it to a thread only once this module
says it is complete. Every byte is scanned once (linear time, however the bytes are split), and
a request the server would not serve is refused with its status as soon as that is known:
headers or body over the limit, ambiguous or unsupported framing. Nothing else is parsed here:
gunicorn parses the complete request again, and closes the connection if it disagrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]{1,19}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions


class FramingError(Exception):
    """The request cannot be served; `status` is the HTTP answer, `message` names the value."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Complete:
    """The request is buffer[start:end]; bytes before start were empty lines to skip."""

    start: int
    end: int


class RequestFramer:
    """Scans one request at the front of a growing buffer. Call `advance` after each read
    with the whole buffer (the same object, only ever appended to): None means more bytes
    are needed, a Complete says where the request ends; FramingError refuses it."""

    def __init__(self, *, max_header_bytes: int, max_body_bytes: int) -> None:
        self.max_header = max_header_bytes
        self.max_body = max_body_bytes
        self.expects_continue = False
        self._start = 0
        self._scanned = 0  # where the next search for a line end resumes
        self._body_start: int | None = None
        self._state = "head"  # head, length, size, data, trailer
        self._pos = 0  # in the body: the start of the next unparsed element
        self._remaining = 0  # length: body bytes; data: chunk bytes (plus CRLF)
        self._decoded = 0

    def advance(self, buffer: bytes | bytearray) -> Complete | None:
        if self._state == "head" and not self._head(buffer):
            return None
        if self._state == "length":
            end = self._pos + self._remaining
            return Complete(self._start, end) if len(buffer) >= end else None
        return self._chunks(buffer)

    def _head(self, buffer: bytes | bytearray) -> bool:
        while buffer.startswith(b"\r\n", self._start):  # RFC 9112 §2.2: ignore empty lines
            self._start += 2
            self._scanned = self._start
        end = buffer.find(b"\r\n\r\n", max(self._start, self._scanned - 3))
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > self.max_header:
                raise FramingError(
                    431, f"request headers exceed the limit of {self.max_header} bytes"
                )
            return False
        if end + 4 > self.max_header:
            raise FramingError(431, f"request headers exceed the limit of {self.max_header} bytes")
        self._body_start = self._pos = end + 4
        self._frame(bytes(buffer[self._start : end]))
        return True

    def _frame(self, head: bytes) -> None:
        request_line, *lines = head.split(b"\r\n")
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise FramingError(400, f"malformed header line {_show(line)}")
            name, value = name.lower(), value.strip(b" \t")
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings.extend(c.strip(b" \t").lower() for c in value.split(b","))
            elif name == b"expect" and value.lower() == b"100-continue":
                self.expects_continue = not request_line.endswith(b"HTTP/1.0")
        if codings and lengths:
            raise FramingError(400, "request has both Transfer-Encoding and Content-Length")
        if codings:
            if request_line.endswith(b"HTTP/1.0"):
                raise FramingError(400, "Transfer-Encoding in an HTTP/1.0 request")
            if [c for c in codings if c] != [b"chunked"]:
                shown = b", ".join(codings)
                raise FramingError(501, f"unsupported Transfer-Encoding {_show(shown)}")
            self._state = "size"
            return
        if len(lengths) > 1:
            raise FramingError(400, f"{len(lengths)} Content-Length headers")
        length = 0
        if lengths:
            if not _DIGITS.fullmatch(lengths[0]):
                raise FramingError(400, f"invalid Content-Length {_show(lengths[0])}")
            length = int(lengths[0])
        if length > self.max_body:
            raise FramingError(413, f"body of {length} bytes exceeds the limit of {self.max_body}")
        self._state, self._remaining = "length", length

    def _chunks(self, buffer: bytes | bytearray) -> Complete | None:
        assert self._body_start is not None
        while True:
            if self._pos - self._body_start > self.max_body + self.max_header:
                raise FramingError(
                    413,
                    f"chunked body exceeds the limit of {self.max_body} bytes (framing included)",
                )
            if self._state == "data":
                if len(buffer) < self._pos + self._remaining + 2:
                    return None
                after = self._pos + self._remaining
                if buffer[after : after + 2] != b"\r\n":
                    raise FramingError(400, "chunk data is not followed by CRLF")
                self._pos, self._state = after + 2, "size"
                continue
            line_end = buffer.find(b"\r\n", max(self._pos, self._scanned - 1))
            if line_end < 0:
                self._scanned = len(buffer)
                limit = MAX_CHUNK_LINE if self._state == "size" else self.max_header
                if len(buffer) - self._pos > limit:
                    raise FramingError(400, f"chunk-size or trailer line longer than {limit}")
                return None
            line = bytes(buffer[self._pos : line_end])
            self._pos = self._scanned = line_end + 2
            if self._state == "trailer":
                if not line:
                    return Complete(self._start, self._pos)
                continue
            size = line.partition(b";")[0].strip(b" \t")
            if len(line) > MAX_CHUNK_LINE or not _HEX.fullmatch(size):
                raise FramingError(400, f"invalid chunk size {_show(line)}")
            self._decoded += int(size, 16)
            if self._decoded > self.max_body:
                raise FramingError(413, f"body exceeds the limit of {self.max_body} bytes")
            if int(size, 16) == 0:
                self._state = "trailer"
            else:
                self._state, self._remaining = "data", int(size, 16)


def _show(value: bytes) -> str:
    text = value[:60].decode("latin-1")
    return repr(text + ("..." if len(value) > 60 else ""))
