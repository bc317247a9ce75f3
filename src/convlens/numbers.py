"""Numbers as text, the same way on every surface: the CLI, the page, figures, notebooks and
``report.html``.

* :func:`format_number` a cell value, short (``2``, ``-0.5``, ``0.0625``): maps' ranges, kernel
  weights, table cells;
* :func:`format_raw` a raw 0-255 value with at most two decimals (``88``, ``87.62``): the
  written sums of an explanation;
* :func:`format_factor` a weight as the second factor of a written product (``88×(-1)``);
* :func:`format_bytes` / :func:`format_count` a size in memory (``4 GiB``) or a large count
  (``430 G``), for the budget's messages.

Standard library only (no NumPy, torch or matplotlib), so arithmetic-only commands format their
numbers for free.
"""

from __future__ import annotations


def format_number(value: float, digits: int = 3) -> str:
    """Short text for a cell value: whole numbers without decimals, else ``digits`` significant
    digits.

    >>> format_number(2.0), format_number(-0.5), format_number(0.0625), format_number(1 / 3)
    ('2', '-0.5', '0.0625', '0.333')
    """
    if abs(value - round(value)) < 1e-6:
        return str(round(value))
    return f"{value:.{digits}g}"


def format_raw(value: float, decimals: int = 2) -> str:
    """A raw (0-255) value with at most ``decimals`` decimals: ``88``, ``87.62``, ``-3.5``.

    >>> format_raw(88.0), format_raw(87.6249), format_raw(-3.5), format_raw(-0.001)
    ('88', '87.62', '-3.5', '0')
    >>> format_raw(31250.0, 0), format_raw(-0.2, 0)
    ('31250', '0')
    """
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text.lstrip("-").strip("0") == "" else text


def format_factor(weight: float, digits: int = 4) -> str:
    """A kernel weight as the second factor of a written product, in brackets when negative.

    >>> f"88×{format_factor(1.0)}", f"88×{format_factor(-0.25)}"
    ('88×1', '88×(-0.25)')
    """
    text = format_number(float(weight), digits)
    return f"({text})" if text.startswith("-") else text


def format_bytes(size: float) -> str:
    """``4294967296`` -> ``"4 GiB"``, ``1.3e10`` -> ``"12.1 GiB"``, ``5e5`` -> ``"488 KiB"``.

    >>> format_bytes(4 * 2**30), format_bytes(1.5 * 2**20), format_bytes(300)
    ('4 GiB', '1.5 MiB', '300 bytes')
    """
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value >= 100 or value == int(value) else (
                f"{value:.1f} {unit}")
    return f"{int(size)} bytes"


def format_count(count: float) -> str:
    """``4.3e11`` -> ``"430 G"``, ``2.5e6`` -> ``"2.5 M"``: a large count in short form.

    >>> format_count(4.3e11), format_count(2.5e6), format_count(999)
    ('430 G', '2.5 M', '999')
    """
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= scale:
            value = count / scale
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"
    return str(int(count))


__all__ = ["format_bytes", "format_count", "format_factor", "format_number", "format_raw"]
