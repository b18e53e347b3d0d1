"""Render untrusted values and policy patterns inside one-line messages: repr-escaped, whole
up to MAX_SHOWN characters, and a pattern with templates beside what it is for this requester.

Bounds: a shown value is at most MAX_SHOWN characters, a shown list at most about MAX_LIST, so
a message naming one value and what was allowed stays within admission.MAX_CAUSE_TEXT and is
never cut there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from webhook.matching import Pattern

# Kubernetes names run to 253 characters; a value up to this length is shown whole.
MAX_SHOWN = 256
MAX_LIST = 560
MAX_LIST_ITEMS = 8


def show(value: str, limit: int = MAX_SHOWN) -> str:
    """repr of a value, escaping control characters; whole up to `limit` characters."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


def _join(items: list[str]) -> str:
    """`[a, b, … N more]` within MAX_LIST_ITEMS items and about MAX_LIST characters; the
    first item is always shown."""
    shown: list[str] = []
    used = 0
    for item in items[:MAX_LIST_ITEMS]:
        if shown and used + len(item) > MAX_LIST:
            break
        shown.append(item)
        used += len(item) + 2
    more = f", … {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return f"[{', '.join(shown)}{more}]"


def show_list(values: Iterable[str]) -> str:
    return _join([show(v) for v in values])


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
    return _join([show_pattern(p, variables) for p in patterns])
