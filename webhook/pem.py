"""PEM block scanning with the semantics of Go's `encoding/pem.Decode` loop.

Owns only the framing: finding blocks, headers, base64. It never raises, and it says nothing
about what a block should contain (that is `csr`'s business).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

_BEGIN = b"-----BEGIN "
_END = b"\n-----END "
_DASHES = b"-----"
# Go decodes with base64.StdEncoding (padded, not strict about trailing bits) after dropping
# spaces and tabs; its decoder itself skips CR and LF anywhere.
_B64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_B64_IGNORED = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class PemBlock:
    """One decoded block. `headers` keeps Go's map semantics: first position, last value."""

    type: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _get_line(data: bytes, pos: int) -> tuple[bytes, int]:
    """The line at `pos` without its LF, a CR before it and trailing blanks; next line's start."""
    newline = data.find(b"\n", pos)
    if newline < 0:
        end = nxt = len(data)
    else:
        nxt = newline + 1
        end = newline - 1 if newline > pos and data[newline - 1] == 0x0D else newline
    return data[pos:end].rstrip(b" \t"), nxt


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _decode_base64(raw: bytes) -> bytes | None:
    squeezed = raw.translate(None, _B64_IGNORED)
    if _B64.fullmatch(squeezed) is None:
        return None
    try:
        return binascii.a2b_base64(squeezed)
    except binascii.Error:  # pragma: no cover - the pattern admits only valid input
        return None


class _EndFinder:
    """Finds the next END marker, remembering the last answer: scans only move forward, so
    many BEGIN lines without an END stay linear instead of searching the rest every time."""

    __slots__ = ("data", "found", "searched_from")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.searched_from = len(data) + 1
        self.found = -1

    def find(self, pos: int) -> int:
        if not (self.searched_from <= pos and (self.found < 0 or self.found >= pos)):
            self.searched_from, self.found = pos, self.data.find(_END, pos)
        return self.found


def _decode_one(data: bytes, pos: int, ends: _EndFinder) -> tuple[PemBlock | None, int]:
    """Try the block whose BEGIN marker ends at `pos`.

    Returns the block (or None when it is malformed) and where scanning resumes: past the block
    on success, past the type line and headers on failure, as Go's loop does.
    """
    type_line, pos = _get_line(data, pos)
    if not type_line.endswith(_DASHES):
        return None, pos
    block_type = type_line[: -len(_DASHES)]

    headers: dict[str, str] = {}
    while True:
        if pos >= len(data):
            return None, pos
        line, nxt = _get_line(data, pos)
        key, colon, value = line.partition(b":")
        if not colon:
            break
        headers[_text(key.strip())] = _text(value.strip())
        pos = nxt

    # Without headers the END line may follow the BEGIN line directly (an empty body).
    if not headers and data.startswith(_END[1:], pos):
        end_index, trailer_index = pos, pos + len(_END) - 1
    else:
        end_index = ends.find(pos)
        if end_index < 0:
            return None, pos
        trailer_index = end_index + len(_END)

    expected = block_type + _DASHES
    if not data.startswith(expected, trailer_index):
        return None, pos
    rest_of_line, after = _get_line(data, trailer_index + len(expected))
    if rest_of_line:
        return None, pos

    body = _decode_base64(data[pos:end_index])
    if body is None:
        return None, pos
    return PemBlock(type=_text(block_type), headers=tuple(headers.items()), body=body), after


def decode_pem_blocks(data: bytes) -> list[PemBlock]:
    """Every well-formed PEM block in `data`, in order; malformed ones and other text skipped."""
    blocks: list[PemBlock] = []
    ends = _EndFinder(data)
    pos = 0
    while pos < len(data):
        if data.startswith(_BEGIN, pos):
            pos += len(_BEGIN)
        else:
            found = data.find(b"\n" + _BEGIN, pos)
            if found < 0:
                break
            pos = found + 1 + len(_BEGIN)
        block, pos = _decode_one(data, pos, ends)
        if block is not None:
            blocks.append(block)
    return blocks
