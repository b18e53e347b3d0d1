"""Where an HTTP/1.1 request ends (RFC 9112 §6), found incrementally as its bytes arrive.

The worker buffers each request in its poller and hands it to a thread only once this module
says it is complete. Every byte is scanned once (linear time, however the bytes are split), and
a request the server would not serve is refused with its status as soon as that is known:
headers or body over the limit, ambiguous or unsupported framing. A chunked body is de-chunked
in place as it arrives and handed on with a Content-Length (`request`), so the thread never
parses chunks (gunicorn copies the rest of the body per chunk: quadratic in their number).
gunicorn parses the head again, and closes the connection if it disagrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from webhook.errors import FramingError

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]{1,19}")
_TOKEN_TEXT = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
# RFC 9112 §7.1.1: chunk-size [ chunk-ext ], with BWS only around the extensions' ";" and "=".
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*"
    + _TOKEN_TEXT
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN_TEXT
    + rb"|"
    + _QUOTED
    + rb"))?)*"
)
_TRAILER_LINE = re.compile(_TOKEN_TEXT + rb":[^\r\n\x00]*")
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions
# Chunk-size lines and CRLFs of one body: each chunk costs the poller Python work, so a body
# of 1-byte chunks (5 bytes of framing each) is refused after ~13 000 of them.
MAX_CHUNK_FRAMING = 64 * 1024


@dataclass(frozen=True, slots=True)
class Complete:
    """The request is buffer[start:end]; bytes before start were empty lines to skip."""

    start: int
    end: int


class RequestFramer:
    """Scans one request at the front of a growing buffer. Call `advance` after each read
    with the whole buffer (the same object, only ever appended to): None means more bytes
    are needed, a Complete says where the request ends; FramingError refuses it. A chunked
    body is moved, as it is scanned, to the front of its own place in the buffer; `request`
    then gives the request to serve."""

    def __init__(
        self,
        *,
        max_header_bytes: int,
        max_body_bytes: int,
        max_chunk_framing: int = MAX_CHUNK_FRAMING,
    ) -> None:
        self.max_header = max_header_bytes
        self.max_body = max_body_bytes
        self.max_framing = max_chunk_framing
        self.expects_continue = False
        self._start = 0
        self._scanned = 0  # where the next search for a line end resumes
        self._body_start: int | None = None
        self._state = "head"  # head, length, size, data, trailer
        self._pos = 0  # in the body: the start of the next unparsed element
        self._remaining = 0  # length: body bytes; data: chunk bytes (plus CRLF)
        self._decoded = 0  # chunked: body bytes so far, at buffer[_body_start:][:_decoded]
        self._kept: list[bytes] = []  # chunked: the head lines to keep
        self._complete: Complete | None = None

    def advance(self, buffer: bytearray) -> Complete | None:
        if self._state == "head" and not self._head(buffer):
            return None
        if self._state == "length":
            end = self._pos + self._remaining
            if len(buffer) >= end:
                self._complete = Complete(self._start, end)
            return self._complete
        self._complete = self._chunks(buffer)
        return self._complete

    def request(self, buffer: bytearray) -> bytes:
        """The complete request as a thread is to serve it: a chunked one with its body
        de-chunked and framed by Content-Length instead (its trailers, which nothing here
        reads, are dropped; RFC 9112 §7.1.3 allows that)."""
        assert self._complete is not None and self._body_start is not None
        if self._state != "trailer":
            return bytes(buffer[self._complete.start : self._complete.end])
        head = b"\r\n".join([*self._kept, b"Content-Length: %d" % self._decoded])
        body = buffer[self._body_start : self._body_start + self._decoded]
        return head + b"\r\n\r\n" + body

    def _head(self, buffer: bytearray) -> bool:
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
        self._kept = [request_line]
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise FramingError(400, f"malformed header line {_show(line)}")
            name, value = name.lower(), value.strip(b" \t")
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings.extend(c.strip(b" \t").lower() for c in value.split(b","))
                continue
            elif name == b"expect" and value.lower() == b"100-continue":
                self.expects_continue = not request_line.endswith(b"HTTP/1.0")
            self._kept.append(line)
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

    def _chunks(self, buffer: bytearray) -> Complete | None:
        assert self._body_start is not None
        while True:
            framing = self._pos - self._body_start - self._decoded
            if framing > self.max_framing:
                raise FramingError(
                    413,
                    f"chunk framing exceeds the limit of {self.max_framing} bytes "
                    f"({self._decoded} bytes of body so far): send larger chunks",
                )
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
                # De-chunk in place: the data moves back over the framing already scanned.
                out = self._body_start + self._decoded - self._remaining
                buffer[out : out + self._remaining] = buffer[self._pos : after]
                self._pos, self._state = after + 2, "size"
                continue
            line_end = buffer.find(b"\r\n", max(self._pos, self._scanned - 1))
            if line_end < 0:
                self._scanned = len(buffer)
                limit = MAX_CHUNK_LINE if self._state == "size" else self.max_header
                if len(buffer) - self._pos > limit:
                    raise FramingError(400, f"chunk-size or trailer line longer than {limit}")
                return None
            line_start = self._pos
            self._pos = self._scanned = line_end + 2
            if self._state == "trailer":
                if line_end == line_start:
                    return Complete(self._start, self._pos)
                if not _TRAILER_LINE.fullmatch(buffer, line_start, line_end):
                    shown = bytes(buffer[line_start:line_end])
                    raise FramingError(400, f"malformed trailer line {_show(shown)}")
                continue
            match = _CHUNK_LINE.fullmatch(buffer, line_start, line_end)
            if line_end - line_start > MAX_CHUNK_LINE or match is None:
                shown = bytes(buffer[line_start:line_end])
                raise FramingError(400, f"invalid chunk size {_show(shown)}")
            size = int(match.group(1), 16)
            self._decoded += size
            if self._decoded > self.max_body:
                raise FramingError(413, f"body exceeds the limit of {self.max_body} bytes")
            if size == 0:
                self._state = "trailer"
            else:
                self._state, self._remaining = "data", size


def _show(value: bytes) -> str:
    text = value[:60].decode("latin-1")
    return repr(text + ("..." if len(value) > 60 else ""))
