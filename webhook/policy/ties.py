"""Decide whether two signerNames patterns can match a common signer name.

Used at load time to reject selection ties. Explores the product of the two patterns'
automata (`*` = one or more characters, never `/`); signer patterns are short, so the subset
states stay few.
"""

from __future__ import annotations

_FRESH = "\x00"  # stands for every character neither pattern names


def _tokens(pattern: str) -> list[str]:
    out: list[str] = []
    for char in pattern:
        out.extend(["ANY", "ANYSTAR"] if char == "*" else [char])
    return out


def _closure(tokens: list[str], state: int) -> set[int]:
    states = {state}
    while state < len(tokens) and tokens[state] == "ANYSTAR":
        state += 1
        states.add(state)
    return states


def _step(tokens: list[str], states: set[int], char: str) -> set[int]:
    out: set[int] = set()
    for state in states:
        if state >= len(tokens):
            continue
        token = tokens[state]
        if token == "ANYSTAR" and char != "/":
            out |= _closure(tokens, state)
        elif (token == "ANY" and char != "/") or token == char:
            out |= _closure(tokens, state + 1)
    return out


def patterns_overlap(first: str, second: str) -> bool:
    a, b = _tokens(first), _tokens(second)
    alphabet = ({c for c in a + b if len(c) == 1}) | {_FRESH, "/"}
    start = (frozenset(_closure(a, 0)), frozenset(_closure(b, 0)))
    seen = {start}
    frontier = [start]
    while frontier:
        left, right = frontier.pop()
        if len(a) in left and len(b) in right:
            return True
        for char in alphabet:
            pair = (frozenset(_step(a, set(left), char)), frozenset(_step(b, set(right), char)))
            if pair[0] and pair[1] and pair not in seen:
                seen.add(pair)
                frontier.append(pair)
    return False
