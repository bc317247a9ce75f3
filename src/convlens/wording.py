"""Small wording helpers every surface shares, so a count reads right wherever it is printed.

Torch- and matplotlib-free: the arithmetic-only commands import it.
"""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, the noun plural unless the count is one.

    >>> plural(1, "channel"), plural(3, "channel"), plural(1, "px"), plural(2, "is", "are")
    ('1 channel', '3 channels', '1 px', '2 are')
    """
    if count == 1 or noun == "px":
        return f"{count} {noun}"
    return f"{count} {many if many is not None else noun + 's'}"


def verb(count: int, one: str, many: str) -> str:
    """``one`` for a count of one, else ``many`` (``is``/``are``, ``was``/``were``).

    >>> verb(1, "is", "are"), verb(4, "is", "are")
    ('is', 'are')
    """
    return one if count == 1 else many
