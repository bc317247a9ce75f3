"""Small wording helpers every surface shares, so a count reads right wherever it is printed.

Torch- and matplotlib-free: the arithmetic-only commands import it.
"""

from __future__ import annotations

import math


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


def percent(share: float, digits: int = 1, most: int = 4) -> str:
    """``share`` (0-1) as a percentage with ``digits`` decimals, or more where that many would
    round it to exactly 100% or 0% when it is not: 0.9996 is ``99.96%``, not ``100.0%``.

    >>> percent(0.4567), percent(0.9996), percent(0.00004), percent(1.0), percent(0.0)
    ('45.7%', '99.96%', '0.004%', '100.0%', '0.0%')
    >>> percent(1e-9)
    '<0.0001%'
    """
    value = 100 * float(share)
    if value != value:  # NaN
        return "nan%"
    places = digits
    while places < most and 0 < value < 100 and round(value, places) in (0, 100):
        places += 1
    if 0 < value < 100 and round(value, places) in (0, 100):
        limit = 10.0 ** -most
        return f"<{limit:.{most}f}%" if value < 50 else f">{100 - limit:.{most}f}%"
    return f"{value:.{places}f}%"


def clipped(text: str, keep: int = 40, quote: bool = False) -> str:
    """``text`` cut to ``keep`` characters, saying how long it was, so that a huge value a
    user typed does not fill an error line; ``quote``: the kept part in quotes (``repr``), the
    count outside them.

    >>> clipped("short"), clipped("x" * 50, 4), clipped("x" * 50, 4, quote=True)
    ('short', 'xxxx... (50 characters)', "'xxxx'... (50 characters)")
    """
    if len(text) <= keep:
        return repr(text) if quote else text
    kept = repr(text[:keep]) if quote else text[:keep]
    return f"{kept}... ({len(text)} characters)"


def whole_number(value: int, most_bits: int = 80) -> str:
    """``value`` in digits, or past ``most_bits`` bits how many digits it has (Python refuses to
    print past 4300 digits, and no one reads them).

    >>> whole_number(12), whole_number(10**400)
    ('12', 'an integer of 401 digits')
    """
    if value.bit_length() > most_bits:
        return f"an integer of {int(value.bit_length() * math.log10(2)) + 1} digits"
    return str(value)
