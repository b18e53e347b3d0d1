"""Render untrusted values inside one-line messages: repr-escaped and cut short."""

from __future__ import annotations

from collections.abc import Iterable

MAX_SHOWN = 64


def show(value: str, limit: int = MAX_SHOWN) -> str:
    """repr of a value, escaping control characters, cut short so messages stay one line."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


def show_list(values: Iterable[str], limit: int = 8) -> str:
    items = list(values)
    shown = ", ".join(show(v, 40) for v in items[:limit])
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}{more}]"
