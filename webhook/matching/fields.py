"""A pattern's fields (docs/policy-reference.md §7): the text tokenized into literals, template
variables and wildcards, the syntax of DNS-shaped fields, and the match of one field against
one value. Every match runs in time linear in (pattern length x value length): no regular
expression is built from a pattern and nothing backtracks. The common shapes (literal, `*.tail`,
`**.tail`, `*`) are string comparisons; the segment matcher is the reference for all."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeAlias

from webhook.matching.variables import TEMPLATE_VARIABLES

_LDH_STAR = frozenset(string.ascii_letters + string.digits + "-*")
# ASCII only: Unicode case mapping would let e.g. KELVIN SIGN (U+212A) match a pattern's "k".
ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class _SyntaxError(Exception):
    """Raised while compiling; compile_pattern turns it into a PatternError naming the pattern."""


class Wild(Enum):
    STAR = "*"  # one or more characters within a segment
    DSTAR = "**"  # one or more whole non-empty segments


@dataclass(frozen=True, slots=True)
class Var:
    name: str


Token: TypeAlias = str | Var | Wild
# A segment is DSTAR or literal chunks with an implicit one-or-more `*` between neighbours.
Segment: TypeAlias = tuple[str, ...] | Wild


def tokenize(text: str, *, wild: bool, dstar_sep: str | None = None) -> tuple[Token, ...]:
    out: list[Token] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise _SyntaxError("unterminated '${' (expected '${name}')")
            name = text[i + 2 : end]
            if name not in TEMPLATE_VARIABLES:
                known = ", ".join(f"${{{v}}}" for v in sorted(TEMPLATE_VARIABLES))
                raise _SyntaxError(f"unknown template variable '${{{name}}}' (known: {known})")
            token: Token = Var(name)
            i = end + 1
        elif wild and text[i] == "*":
            whole = (i == 0 or text[i - 1] == dstar_sep) and text[i + 2 : i + 3] in ("", dstar_sep)
            if dstar_sep is not None and text.startswith("**", i) and whole:
                token, i = Wild.DSTAR, i + 2
            else:
                token, i = Wild.STAR, i + 1
        else:
            buf.append(text[i])
            i += 1
            continue
        if buf:
            out.append("".join(buf))
            buf = []
        out.append(token)
    if buf:
        out.append("".join(buf))
    return tuple(out)


def skeleton_of(tokens: tuple[Token, ...]) -> str:
    """The pattern with each template replaced by one letter, for syntax checks."""
    return "".join(
        t if isinstance(t, str) else "x" if isinstance(t, Var) else t.value for t in tokens
    )


def _match_chunks(chunks: tuple[str, ...], value: str) -> bool:
    """chunks[0] * chunks[1] * ... with `*` = one or more characters.

    Greedy leftmost placement of each middle chunk is optimal (an earlier end leaves every later
    chunk at least as much room): the two-pointer wildcard algorithm, never backtracking.
    """
    if len(chunks) == 1:
        return value == chunks[0]
    first, last = chunks[0], chunks[-1]
    if not value.startswith(first):
        return False
    pos = len(first)
    for chunk in chunks[1:-1]:
        found = value.find(chunk, pos + 1)
        if found < 0:
            return False
        pos = found + len(chunk)
    return len(value) - len(last) >= pos + 1 and value.endswith(last)


def _match_segments(segments: list[Segment], values: list[str]) -> bool:
    if Wild.DSTAR not in segments:
        if len(segments) != len(values):
            return False
        for segment, value in zip(segments, values, strict=True):
            if not isinstance(segment, tuple) or not _match_chunks(segment, value):
                return False
        return True
    # reach[j]: the segments so far match values[:j]. O(len(segments) * len(values)) steps.
    reach = [True] + [False] * len(values)
    for segment in segments:
        new = [False] * (len(values) + 1)
        for j, value in enumerate(values, start=1):
            if isinstance(segment, Wild):
                new[j] = bool(value) and (reach[j - 1] or new[j - 1])
            else:
                new[j] = reach[j - 1] and _match_chunks(segment, value)
        reach = new
    return reach[-1]


def fold_ascii(value: str) -> str:
    """ASCII lower case; str.lower is the same on ASCII text and several times faster."""
    return value.lower() if value.isascii() else value.translate(ASCII_LOWER)


class Shape(Enum):
    """The forms of a field matched without segments, each a string comparison or two:
    LITERAL (no wildcard: the value equals the substituted text), STAR (`*` + sep + literal
    tail: one label without sep, then the tail), DSTAR (`**` + sep + literal tail: one or more
    non-empty labels, then the tail), ANY (`*` alone: one or more characters without sep).
    Every other field goes through the segment matcher (_match_segments)."""

    LITERAL = "literal"
    STAR = "star"
    DSTAR = "dstar"
    ANY = "any"


def _shape_of(tokens: tuple[Token, ...], sep: str | None) -> tuple[Shape | None, tuple[Token, ...]]:
    """The shape of a field and the tokens of its literal text (the tail after the wildcard
    and its separator), or (None, ()) when the segment matcher must judge it."""
    wild = [t for t in tokens if isinstance(t, Wild)]
    if not wild:
        return Shape.LITERAL, tokens
    if tokens == (Wild.STAR,):
        return Shape.ANY, ()
    if len(wild) > 1 or sep is None or len(tokens) < 2:
        return None, ()
    head, after = tokens[0], tokens[1]
    if not isinstance(after, str) or not after.startswith(sep):
        return None, ()
    tail = (after[len(sep) :], *tokens[2:])
    if head is Wild.STAR:
        return Shape.STAR, tail
    if head is Wild.DSTAR:
        return Shape.DSTAR, tail
    return None, ()


@dataclass(frozen=True, slots=True)
class Field:
    """One component of a pattern: tokens split into segments on `sep` after substitution.
    Most fields have a Shape, matched by comparing strings; the others by segments."""

    tokens: tuple[Token, ...]
    sep: str | None = None
    fold: bool = False
    # Segments of a pattern without template variables, expanded once at compile time.
    static: list[Segment] | None = field(default=None, compare=False)
    shape: Shape | None = field(default=None, compare=False)
    # The shape's literal text: tokens (folded when `fold`), or the whole text when static.
    text_tokens: tuple[str | Var, ...] = field(default=(), compare=False)
    text: str | None = field(default=None, compare=False)
    # The last substitution, (variables, text): a review matches all its values against the
    # same variables. Holding the mapping itself (not its id) means no other mapping can be
    # taken for it; one tuple, replaced whole, so threads never see half of one. A review's
    # variables are never changed once made (template_variables, webhook.pod_context).
    memo: tuple[object, str | None] = field(default=(None, None), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not any(isinstance(token, Var) for token in self.tokens):
            object.__setattr__(self, "static", self._expand({}))
        shape, tail = _shape_of(self.tokens, self.sep)
        if shape is None:
            return
        parts = tuple(
            (fold_ascii(t) if self.fold else t) if isinstance(t, str) else t
            for t in tail
            if not isinstance(t, Wild)
        )
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "text_tokens", parts)
        if not any(isinstance(t, Var) for t in parts):
            object.__setattr__(self, "text", "".join(t for t in parts if isinstance(t, str)))

    def _substitute(self, variables: Mapping[str, str]) -> str | None:
        """The shape's literal text with the variables filled in; None when one is undefined."""
        memo = self.memo
        if memo[0] is variables:
            return memo[1]
        text = self._fill(variables)
        object.__setattr__(self, "memo", (variables, text))
        return text

    def _fill(self, variables: Mapping[str, str]) -> str | None:
        out: list[str] = []
        for token in self.text_tokens:
            if isinstance(token, str):
                out.append(token)
                continue
            text = variables.get(token.name)
            if text is None:
                return None
            out.append(fold_ascii(text) if self.fold else text)
        return "".join(out)

    def match(self, value: str, variables: Mapping[str, str]) -> bool:
        if self.shape is None:
            return self.match_segments(value, variables)
        return self.match_folded(fold_ascii(value) if self.fold else value, variables)

    def match_folded(self, value: str, variables: Mapping[str, str]) -> bool:
        """`match` of a value already folded when the field folds (PatternList folds once)."""
        shape = self.shape
        if shape is None:
            return self.match_segments(value, variables)
        if shape is Shape.ANY:
            return bool(value) and (self.sep is None or self.sep not in value)
        text = self.text if self.text is not None else self._substitute(variables)
        if text is None:
            return False
        if shape is Shape.LITERAL:
            return value == text
        sep = self.sep
        assert sep is not None, "STAR and DSTAR shapes have a separator"
        cut = len(value) - len(text) - len(sep)
        if cut <= 0 or not value.endswith(text) or not value.startswith(sep, cut):
            return False
        head = value[:cut]
        if shape is Shape.STAR:
            return sep not in head
        # DSTAR: one or more labels, none empty.
        return not head.startswith(sep) and not head.endswith(sep) and sep + sep not in head

    def match_segments(self, value: str, variables: Mapping[str, str]) -> bool:
        """The reference matcher, by segments; `match` agrees with it on every input."""
        segments = self.static if self.static is not None else self._expand(variables)
        if segments is None:
            return False
        if self.fold:
            value = value.translate(ASCII_LOWER)
        return _match_segments(segments, value.split(self.sep) if self.sep else [value])

    def _expand(self, variables: Mapping[str, str]) -> list[Segment] | None:
        segments: list[Segment] = []
        chunks: list[str] = []
        current: list[str] = []
        after_dstar = False  # the separator following `**` closes no new segment
        for token in self.tokens:
            if token is Wild.STAR:
                chunks.append("".join(current))
                current = []
                continue
            if token is Wild.DSTAR:
                segments.append(token)
                after_dstar = True
                continue
            text = token if isinstance(token, str) else variables.get(token.name)
            if text is None:
                return None
            if self.fold:
                text = text.translate(ASCII_LOWER)
            # Substituted text is literal; a separator in it must meet a separator in the value.
            first, *rest = text.split(self.sep) if self.sep else [text]
            current.append(first)
            for part in rest:
                if not after_dstar:
                    chunks.append("".join(current))
                    segments.append(tuple(chunks))
                after_dstar = False
                chunks, current = [], [part]
        if not after_dstar:
            chunks.append("".join(current))
            segments.append(tuple(chunks))
        return segments


def dns_field(text: str, what: str = "") -> Field:
    tokens = tokenize(text, wild=True, dstar_sep=".")
    skeleton = skeleton_of(tokens)
    where = f" in {what}" if what else ""
    if not skeleton:
        raise _SyntaxError(f"empty {what or 'pattern'}")
    if skeleton.endswith("."):
        raise _SyntaxError(f"trailing dot{where}")
    for index, label in enumerate(skeleton.split(".")):
        if not label:
            raise _SyntaxError(f"empty label{where}")
        if "***" in label:
            raise _SyntaxError("'***' is not a wildcard; use '*' within a label or '**' as a label")
        if "**" in label and (index or label != "**"):
            raise _SyntaxError("'**' is allowed only as the whole left-most label")
        bad = sorted(set(label) - _LDH_STAR)
        if bad:
            raise _SyntaxError(f"invalid character {bad[0]!r} (allowed: letters, digits, '-', '*')")
    return Field(tokens, ".", fold=True)


def literal_field(text: str) -> Field:
    return Field(tokenize(text, wild=False))
