"""Patterns as violation messages show them: the text, and for a template what it is for this
requester (or which variable it lacks)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from webhook.matching.patterns import Pattern
from webhook.text import join_shown, show


def show_pattern(pattern: Pattern, variables: Mapping[str, str]) -> str:
    """`'${node}.example.com' (here 'worker-1.example.com')` for a pattern with templates:
    what a person needs to see why a value did not match."""
    shown = show(pattern.text)
    if not pattern.variables:
        return shown
    expanded = pattern.expand(variables)
    if expanded is None:
        missing = sorted(name for name in pattern.variables if name not in variables)
        names = ", ".join(f"${{{name}}}" for name in missing)
        return f"{shown} (matches nothing here: {names} undefined for this requester)"
    return f"{shown} (here {show(expanded)})"


def show_patterns(patterns: Iterable[Pattern], variables: Mapping[str, str]) -> str:
    return join_shown([show_pattern(p, variables) for p in patterns])
