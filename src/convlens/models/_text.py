"""Short texts the model modules' messages share."""

from __future__ import annotations

from collections.abc import Sequence


def few(items: Sequence[str], limit: int = 3) -> str:
    """The first ``limit`` items, comma-separated, and how many more there are.

    >>> few(["a", "b", "c", "d"], 2)
    'a, b (+2 more)'
    """
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
