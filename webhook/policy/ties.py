"""Find signer selection ties: two `signerNames` entries of different policies, with equal
precedence, that can match one signer name.

A signer `*` is one or more characters other than `/`, so two patterns share a name only
segment by segment, and two segments that both hold a `*` share one exactly when their ends
agree: each pair is decided in time linear in its length (`tie_witness`), never by building
automata. The pairs grow with the square of the entries sharing a precedence, so the search
has a work budget; past it, it stops and names the pair it stopped at (`GaveUp`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from webhook.matching.patterns import Pattern

# Work is counted in pattern characters, plus PAIR_COST per pair for the fixed cost of a
# comparison: the budget is under two seconds even for the densest patterns, and room for
# about 450 entries of one precedence (short names). A real set has tens.
MAX_TIE_WORK = 10_000_000
PAIR_COST = 40
_FILL = "x"  # any character but "/" satisfies a `*`


@dataclass(frozen=True, slots=True)
class Claim:
    """One `signerNames` entry; entries of the same `owner` (policy) never tie."""

    owner: int
    pattern: Pattern


@dataclass(frozen=True, slots=True)
class Tie:
    """claims[first] and claims[second] both match `witness` with equal precedence."""

    first: int
    second: int
    witness: str


@dataclass(frozen=True, slots=True)
class GaveUp:
    """The budget ran out before claims[first] and claims[second] were compared."""

    first: int
    second: int
    compared: int


def tie_witness(first: Pattern, second: Pattern) -> str | None:
    """A signer name both patterns match, or None when there is none."""
    left, right = first.text.split("/"), second.text.split("/")
    if len(left) != len(right):
        return None
    parts = []
    for a, b in zip(left, right, strict=True):
        part = _segment_witness(a.split("*"), b.split("*"))
        if part is None:
            return None
        parts.append(part)
    witness = "/".join(parts)
    # The construction is complete (a name exists whenever it finds one); the real matcher
    # makes it sound, and decides a literal segment against a pattern segment.
    return witness if first.matches(witness) and second.matches(witness) else None


def _segment_witness(a: list[str], b: list[str]) -> str | None:
    """A candidate for one segment, given its chunks between `*`s."""
    if len(a) == 1 or len(b) == 1:
        literal = a[0] if len(a) == 1 else b[0]
        return literal if len(a) > 1 or len(b) > 1 or a[0] == b[0] else None
    head = _longer_if_compatible(a[0], b[0], str.startswith)
    tail = _longer_if_compatible(a[-1], b[-1], str.endswith)
    if head is None or tail is None:
        return None
    # head * a1 * ... * a(k-1) * b1 * ... * b(l-1) * tail, each `*` filled with one character:
    # a's last `*` spans b's middle, b's first `*` spans a's middle.
    middle = "".join(chunk + _FILL for chunk in a[1:-1] + b[1:-1])
    return head + _FILL + middle + tail


def _longer_if_compatible(x: str, y: str, extends: Callable[[str, str], bool]) -> str | None:
    longer, shorter = (x, y) if len(x) >= len(y) else (y, x)
    return longer if extends(longer, shorter) else None


def find_ties(claims: Sequence[Claim], budget: int = MAX_TIE_WORK) -> Iterator[Tie | GaveUp]:
    """Every tie between claims of different owners, each later claim against earlier ones;
    ends with a GaveUp when the budget runs out first."""
    exact: dict[str, list[int]] = {}  # the first claim of each text, and of a second owner
    groups: dict[tuple[int, int], list[int]] = {}
    for index, claim in enumerate(claims):
        pattern = claim.pattern
        if pattern.is_literal:
            earlier = exact.setdefault(pattern.text, [])
            rival = next((i for i in earlier if claims[i].owner != claim.owner), None)
            if rival is not None:
                yield Tie(index, rival, pattern.text)
            if len(earlier) < 2 and all(claims[i].owner != claim.owner for i in earlier):
                earlier.append(index)
        else:
            key = (pattern.literal_chars, pattern.text.count("/"))
            groups.setdefault(key, []).append(index)
    work = compared = 0
    for members in groups.values():
        for position, index in enumerate(members):
            claim = claims[index]
            for other_index in members[:position]:
                other = claims[other_index]
                if other.owner == claim.owner:
                    continue
                work += PAIR_COST + len(claim.pattern.text) + len(other.pattern.text)
                if work > budget:
                    yield GaveUp(index, other_index, compared)
                    return
                compared += 1
                witness = tie_witness(claim.pattern, other.pattern)
                if witness is not None:
                    yield Tie(index, other_index, witness)
