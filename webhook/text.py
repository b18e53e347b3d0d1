"""Render untrusted values inside one-line messages: repr-escaped, whole up to MAX_SHOWN
characters (patterns are shown by webhook.matching.shown.show_pattern, on top of these).

Bounds: a shown value is at most MAX_SHOWN characters, a shown list at most about MAX_LIST, so
a message naming one value and what was allowed stays within admission.MAX_CAUSE_TEXT and is
never cut there.
"""

from __future__ import annotations

from collections.abc import Iterable

# Kubernetes names run to 253 characters; a value up to this length is shown whole.
MAX_SHOWN = 256
MAX_LIST = 560
MAX_LIST_ITEMS = 8


def show(value: str, limit: int = MAX_SHOWN) -> str:
    """repr of a value, escaping control characters; whole up to `limit` characters."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


def join_shown(items: list[str]) -> str:
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
    return join_shown([show(v) for v in values])
