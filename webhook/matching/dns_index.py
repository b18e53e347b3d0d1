"""DnsIndex: the DNS patterns of one allow or deny list whose shape is a literal, `*.tail` or
`**.tail`, looked up by their texts instead of matched one by one (PatternList). A value is
tried against every such pattern in a few dict lookups: its whole self (literal), what follows
its first label (`*.`), and, per distinct tail length, its last characters (`**.`), each a
slice of the value, so a lookup costs the value's length once per length, never per label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from webhook.matching.fields import Field, Shape

# (literal texts, `*.` tails, `**.` tails by length): each text -> the first index having it.
Tables = tuple[dict[str, int], dict[str, int], dict[int, dict[str, int]]]


def indexed(matcher: object) -> bool:
    """A DNS field (folded, labels split on dots) whose shape DnsIndex looks up."""
    return (
        isinstance(matcher, Field)
        and matcher.fold
        and matcher.sep == "."
        and matcher.shape in (Shape.LITERAL, Shape.STAR, Shape.DSTAR)
    )


def _tables(entries: Sequence[tuple[int, Shape, str]]) -> Tables:
    literal: dict[str, int] = {}
    star: dict[str, int] = {}
    dstar: dict[int, dict[str, int]] = {}
    for index, shape, text in entries:
        if shape is Shape.LITERAL:
            literal.setdefault(text, index)
        elif shape is Shape.STAR:
            star.setdefault(text, index)
        else:
            dstar.setdefault(len(text), {}).setdefault(text, index)
    return literal, star, dstar


def _first(tables: Tables, value: str) -> int | None:
    """The least index of a pattern in `tables` that `value` (folded) matches."""
    literal, star, dstar = tables
    best = literal.get(value) if literal else None
    if star:
        head, dot, tail = value.partition(".")
        if dot and head and (index := star.get(tail)) is not None:
            best = index if best is None else min(best, index)
    for length, texts in dstar.items():
        cut = len(value) - length - 1
        if cut <= 0 or value[cut] != ".":
            continue
        index = texts.get(value[cut + 1 :])
        if index is None or (best is not None and index > best):
            continue
        head = value[:cut]  # one or more labels, none empty
        if not head.startswith(".") and not head.endswith(".") and ".." not in head:
            best = index
    return best


@dataclass(frozen=True, slots=True)
class DnsIndex:
    """Built at policy load from (index, field) pairs of `indexed` fields, in list order."""

    fields: tuple[tuple[int, Field], ...]
    static: Tables = field(init=False, repr=False, compare=False)
    templated: tuple[tuple[int, Field], ...] = field(init=False, repr=False, compare=False)
    # The templated fields' tables for the last variables, (variables, tables): every value of
    # a review is looked up with the same variables. Held whole, as Field.memo is.
    memo: tuple[object, Tables | None] = field(
        default=(None, None), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        static = [(i, f.shape, f.text) for i, f in self.fields if f.text is not None]
        templated = tuple((i, f) for i, f in self.fields if f.text is None)
        object.__setattr__(self, "static", _tables(static))  # type: ignore[arg-type]
        object.__setattr__(self, "templated", templated)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def first(self, value: str, variables: Mapping[str, str]) -> int | None:
        """The least index among these fields that the folded `value` matches."""
        best = _first(self.static, value)
        if self.templated:
            found = _first(self._substituted(variables), value)
            if found is not None and (best is None or found < best):
                best = found
        return best

    def _substituted(self, variables: Mapping[str, str]) -> Tables:
        memo = self.memo
        if memo[0] is variables and memo[1] is not None:
            return memo[1]
        entries = []
        for index, matcher in self.templated:
            text = matcher.substituted(variables)
            if text is not None:  # a variable it uses is undefined: it matches nothing
                entries.append((index, matcher.shape, text))
        tables = _tables(entries)  # type: ignore[arg-type]
        object.__setattr__(self, "memo", (variables, tables))
        return tables
