"""PatternList: an allow or deny list compiled once, at policy load, so that one value is
tested against the whole list in a few lookups; it returns the pattern first_match would."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from webhook.matching.fields import ASCII_LOWER, Field, Shape
from webhook.matching.ip import IpMatcher, address_number
from webhook.matching.patterns import NO_VARIABLES, Pattern

_Test: TypeAlias = Callable[[str, Mapping[str, str]], bool]


@dataclass(frozen=True, slots=True)
class PatternList:
    """A list of patterns compiled once (at policy load) for `first`, which returns the same
    pattern first_match does: plain literal texts are one dict lookup, IP networks one mask
    test each on the value's integer (read once), DNS fields tried on the value folded once,
    every other pattern by its own matcher, in order."""

    patterns: tuple[Pattern, ...]
    # Literal text (ASCII-folded for DNS) -> the index of the first pattern with that text.
    folded: Mapping[str, int] = field(init=False, repr=False, compare=False)
    exact: Mapping[str, int] = field(init=False, repr=False, compare=False)
    # (index, version, network, mask) of each IP pattern.
    networks: tuple[tuple[int, int, int, int], ...] = field(init=False, repr=False, compare=False)
    # (index, test, takes the folded value) of every other pattern, in order.
    others: tuple[tuple[int, _Test, bool], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded: dict[str, int] = {}
        exact: dict[str, int] = {}
        networks: list[tuple[int, int, int, int]] = []
        others: list[tuple[int, _Test, bool]] = []
        for index, pattern in enumerate(self.patterns):
            matcher = pattern.matcher
            if isinstance(matcher, IpMatcher):
                networks.append((index, matcher.version, matcher.base, matcher.mask))
            elif not isinstance(matcher, Field):
                others.append((index, pattern.matches, False))
            elif matcher.shape is Shape.LITERAL and matcher.text is not None:
                (folded if matcher.fold else exact).setdefault(matcher.text, index)
            elif matcher.fold:
                others.append((index, matcher.match_folded, True))
            else:
                others.append((index, matcher.match, False))
        object.__setattr__(self, "folded", folded)
        object.__setattr__(self, "exact", exact)
        object.__setattr__(self, "networks", tuple(networks))
        object.__setattr__(self, "others", tuple(others))

    def first(self, value: str, variables: Mapping[str, str] | None = None) -> Pattern | None:
        defined = variables if variables is not None else NO_VARIABLES
        best: int | None = None
        lowered = value  # fold_ascii, inline: every value of every list passes here
        if self.folded or self.others:
            lowered = value.lower() if value.isascii() else value.translate(ASCII_LOWER)
        if self.folded:
            best = self.folded.get(lowered)
        if self.exact and (index := self.exact.get(value)) is not None:
            best = index if best is None else min(best, index)
        if self.networks and (address := address_number(value)) is not None:
            version, number = address
            for index, net_version, base, mask in self.networks:
                if best is not None and index > best:
                    break
                if net_version == version and number & mask == base:
                    best = index
                    break
        for index, test, takes_folded in self.others:
            if best is not None and index > best:
                break
            if test(lowered if takes_folded else value, defined):
                best = index
                break
        return None if best is None else self.patterns[best]
