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
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


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


def _decode_next(data: bytes, start: int) -> tuple[PemBlock, int] | None:
    """One call of Go's `pem.Decode` on `data[start:]`, as rewritten in Go 1.25.2 to be
    linear: find the first END line, then the last BEGIN line before it; a malformed block
    is skipped up to that END. Returns the block and where the rest begins, or None when no
    block is left."""
    rest = start
    while True:
        end_index = data.find(_END, rest)
        if end_index < 0:
            return None
        end_trailer = end_index + len(_END)
        begin = data.rfind(_BEGIN, rest, end_index)
        # Go checks the byte before BEGIN only inside what is left of the input, so a BEGIN
        # right after a skipped END marker counts as starting a line.
        if begin < 0 or (begin > rest and data[begin - 1] != 0x0A):
            rest = end_trailer
            continue
        block = _parse_block(data, begin + len(_BEGIN), end_index, end_trailer)
        if block is _STOP:
            return None
        if block is None:
            rest = end_trailer
            continue
        return block


_STOP = (PemBlock(type="", headers=(), body=b""), -1)  # Go gives up on the whole input


def _parse_block(
    data: bytes, pos: int, end_index: int, end_trailer: int
) -> tuple[PemBlock, int] | None:
    """The block whose type line starts at `pos` and whose END marker starts at `end_index`
    (the newline before `-----END `); None when it is malformed, _STOP where Go's Decode
    returns no block at all (headers that run past the END marker or to the end of input)."""
    type_line, pos = _get_line(data, pos)
    if not type_line.endswith(_DASHES):
        return None
    block_type = type_line[: -len(_DASHES)]
    headers: dict[str, str] = {}
    while True:
        if pos >= len(data):
            return _STOP
        line, nxt = _get_line(data, pos)
        key, colon, value = line.partition(b":")
        if not colon:
            break
        headers[_text(key.strip())] = _text(value.strip())
        pos = nxt
    if headers and end_index < pos:
        # Headers need a newline between them and the END line. Go then skips past the END
        # marker, or gives up on the whole input when the headers ran past it.
        return None if pos <= end_trailer else _STOP
    expected = block_type + _DASHES
    if not data.startswith(expected, end_trailer):
        return None
    rest_of_line, after = _get_line(data, end_trailer + len(expected))
    if rest_of_line:
        return None
    body = b""
    if end_index > pos:
        decoded = _decode_base64(data[pos:end_index])
        if decoded is None:
            return None
        body = decoded
    # The END marker starts with the newline ending the body; with an empty body it may be the
    # newline ending the type line, which _get_line has consumed already.
    return PemBlock(type=_text(block_type), headers=tuple(headers.items()), body=body), after


def sole_block_body(data: bytes, block_type: str) -> bytes | None:
    """The body of `data` when it is nothing but one `block_type` block without headers: the
    BEGIN line, lines of base64 alone, the END line and at most a newline after it. Then
    decode_pem_blocks finds exactly that block and that body; for any other text None (the
    caller scans it with decode_pem_blocks)."""
    head = b"-----BEGIN " + block_type.encode() + b"-----\n"
    tail = b"\n-----END " + block_type.encode() + b"-----"
    end = len(data) - (data[-1:] == b"\n")
    if not data.startswith(head) or not data.endswith(tail, 0, end) or end - len(tail) < len(head):
        return None
    # Base64 has no '-' (so no other BEGIN or END line), no ':' (no header) and no blanks.
    # What _B64 matches, tested faster: quads of the alphabet, the last one padded or not.
    base64 = data[len(head) : end - len(tail)].replace(b"\n", b"")
    unpadded = base64[:-2] + base64[-2:].rstrip(b"=")
    if len(base64) % 4 or unpadded.translate(None, _B64_ALPHABET):
        return None
    return binascii.a2b_base64(base64)


def decode_pem_blocks(data: bytes) -> list[PemBlock]:
    """Every well-formed PEM block in `data`, in order, as repeated calls of Go's `pem.Decode`
    find them; malformed ones and other text skipped. Linear in the size of `data`."""
    blocks: list[PemBlock] = []
    pos = 0
    while (found := _decode_next(data, pos)) is not None:
        block, pos = found
        blocks.append(block)
    return blocks
