"""Every bound convlens puts on a job, in one place, shared by the library, the CLI and the page.

Two kinds of bound live here:

* **Hard limits**, one constant each: the largest kernel side, how many kernels one layer
  holds, the largest stride, padding, dilation or pool number, and so on. Past them a request
  is refused with :func:`check_at_most`'s one-line message naming the value and the limit.
* **The budget**: before a job runs, its memory is estimated from its shapes (arithmetic only,
  nothing allocated; the estimators live beside the code they describe, e.g.
  :func:`convlens.layers.estimate_stage_bytes`) and :func:`check_budget` refuses it if the
  estimate is over the memory budget, or its multiply-adds over the work budget. The memory
  budget is :data:`DEFAULT_BUDGET_BYTES` (4 GiB) unless the environment variable
  :data:`BUDGET_ENV` (``CONVLENS_BUDGET=16G``), the CLI's ``convlens --budget 16G ...`` or
  :func:`set_budget` says otherwise; ``none`` lifts it. The work budget follows from it:
  :data:`WORK_PER_BYTE` multiply-adds per byte.

This module imports nothing heavy (no torch), so help texts and the page's ``/api/meta`` can
read the limits for free.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ConfigError
from .numbers import format_bytes, format_count
from .wording import clipped

# ----------------------------------------------------------------------------- hard limits
MAX_KERNEL_SIDE = 31
"""Largest kernel side, in cells, anywhere: inline text, files, the page's editor, ``run``.
31x31 covers every classic filter (a Gaussian of sigma 5 needs 31 cells)."""

MAX_ANIMATED_KERNEL_SIDE = 7
"""Largest kernel side ``convlens animate`` slides: it writes every tap's number in its cell of
a grid at most 20 cells a side, so larger kernels stay unreadable there (they work everywhere
else, up to :data:`MAX_KERNEL_SIDE`)."""

MAX_KERNELS = 32
"""Most kernels one layer (one ``run``, one ``compute_stages``) holds: each gets its own panel
in every figure, and drawing them, not the arithmetic, sets this bound (16 kernels take about
half a minute of figures on a 2-core CPU; 500 took over ten)."""

PAGE_MAX_KERNELS = 16
"""Most kernels the page edits at once (each is a grid on screen, recomputed on every edit)."""

MAX_LAYER_NUMBER = 1024
"""Largest stride, padding (cells per side), dilation, pool window and pool stride a layer
takes, on the CLI, in the library and in ``convlens size`` (kernel sides of a size chain too).
Real networks stay far below it; the bound keeps a mistyped ``2**70`` an error, not an
overflow or a many-GB padded image."""

PAGE_MAX_LAYER_NUMBER = 32
"""Largest stride, padding, pool window and pool stride the page's controls offer."""

PAGE_MAX_DILATION = 16
"""Largest dilation the page's controls offer."""

MAX_IMAGE_SIDE = 65_536
"""Largest image side, in pixels, a size may name (``convlens size --input``, ``--size``):
a bound on the numbers, not on memory, which the budget checks."""

MAX_IG_STEPS = 1000
"""Most path steps of integrated gradients (Captum's default is 50; 300 already converges)."""

MAX_MODEL_WIDTH = 1024
"""Largest ``width`` (channels of a model's first block) the built-in architectures take."""

MAX_FIGURE_INCHES = 60.0
"""Longest side of any figure convlens draws, in inches (6600 px at the 110 dpi of ``run``'s
files): larger layouts are scaled down whole, so no figure's canvas passes about 175 MB."""

MAX_PANEL_ASPECT = 4.0
"""Most a map's panel is taller than wide, or wider than tall; a more extreme map (a 1x20000
signal) is drawn stretched to this shape and its title says so."""

MAX_IDX_BYTES = 2**30
"""Largest IDX data file (MNIST's format), unpacked, that is read: 1 GiB (MNIST's largest is
45 MiB); a gzip bomb stops here instead of filling memory."""

# ----------------------------------------------------------------------------- the budget
BUDGET_ENV = "CONVLENS_BUDGET"
"""Environment variable holding the memory budget, e.g. ``16G``, ``512M`` or ``none``."""

DEFAULT_BUDGET_BYTES = 4 * 2**30
"""Memory budget of one job unless raised: 4 GiB, within any laptop's reach. A run of a
4096x4096 photo with 16 kernels fits; an 8000x6000 one needs ``--budget 12G``."""

WORK_PER_BYTE = 100
"""Multiply-adds allowed per byte of memory budget: 4 GiB allows 430 G multiply-adds, about a
minute of the reference path on a laptop CPU."""

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20,
          "mib": 2**20, "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40,
          "tib": 2**40}
_UNLIMITED = ("none", "off", "unlimited", "inf")
_override: list[int | None] = []  # set_budget's value, if any (empty: the environment decides)


class BudgetError(ConfigError):
    """A job whose estimated memory or work is over the budget; ``needed`` and ``budget`` are in
    bytes (memory) or multiply-adds (work), ``suggested`` a budget text that would allow it.
    The message is ``problem`` then how to raise the budget; :meth:`hinted` words that part
    for another surface (the CLI names its flag)."""

    def __init__(self, problem: str, needed: int, budget: int, suggested: str) -> None:
        super().__init__(self.render(problem, f"{BUDGET_ENV}={suggested}"))
        self.problem = problem
        self.needed = needed
        self.budget = budget
        self.suggested = suggested

    @staticmethod
    def render(problem: str, how: str) -> str:
        return f"{problem}; make it smaller or raise the budget ({how})"

    def hinted(self, how: str) -> str:
        """The message with ``how`` (e.g. ``"convlens --budget 13G ..."``) as the way to raise
        the budget."""
        return self.render(self.problem, how)


def parse_budget(value: str | int | None) -> int | None:
    """``"16G"``, ``"512M"``, ``"1.5GiB"``, ``8589934592`` -> bytes (binary units, case-blind);
    ``"none"`` -> ``None`` (no budget). Anything else raises :class:`ConfigError`.

    >>> parse_budget("4G"), parse_budget("512m"), parse_budget("none")
    (4294967296, 536870912, None)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"a memory budget must be a size such as 16G or 'none'; got {value!r}")
    if isinstance(value, int):
        number, unit = float(value), ""
    else:
        text = str(value).strip().lower()
        if text in _UNLIMITED:
            return None
        match = re.fullmatch(r"(\d{1,15}(?:\.\d{0,6})?)\s*([a-z]*)", text)
        if not match or match.group(2) not in _UNITS:
            raise ConfigError(f"a memory budget must be a size such as 16G, 512M or 'none'; got "
                              f"{_short(value, quote=True)}")
        number, unit = float(match.group(1)), match.group(2)
    size = number * _UNITS[unit]
    if not math.isfinite(size) or size < 2**20 or size > 2**60:
        raise ConfigError(f"a memory budget must lie between 1M and 1E (2**60 bytes); got "
                          f"{_short(value, quote=True)}")
    return int(size)


def set_budget(value: str | int | None) -> None:
    """Set this process's memory budget (``"16G"``, bytes, or ``"none"``); ``value=None``
    forgets the setting, so :data:`BUDGET_ENV` or the default applies again."""
    _override.clear()
    if value is not None:
        _override.append(parse_budget(value))


@contextmanager
def use_budget(value: str | int | None) -> Iterator[None]:
    """Within the ``with`` block the memory budget is ``value`` (``"none"``: no budget)."""
    saved = list(_override)
    _override[:] = [parse_budget(value)]
    try:
        yield
    finally:
        _override[:] = saved


def memory_budget() -> int | None:
    """The memory budget in bytes now: :func:`set_budget`'s, else :data:`BUDGET_ENV`'s, else
    :data:`DEFAULT_BUDGET_BYTES`; ``None`` means no budget."""
    if _override:
        return _override[0]
    text = os.environ.get(BUDGET_ENV, "").strip()
    if text:
        try:
            return parse_budget(text)
        except ConfigError as exc:
            raise ConfigError(f"{BUDGET_ENV}: {exc}") from None
    return DEFAULT_BUDGET_BYTES


def work_budget() -> int | None:
    """Most multiply-adds one job may do: :data:`WORK_PER_BYTE` per byte of memory budget."""
    budget = memory_budget()
    return None if budget is None else budget * WORK_PER_BYTE


def check_budget(estimated_bytes: int, what: str, *, work: int = 0) -> None:
    """Refuse a job ``what`` (``"the stages of a 3x20000x20000 image with 8 kernels"``) whose
    estimated memory ``estimated_bytes`` is over :func:`memory_budget`, or whose ``work``
    (multiply-adds) is over :func:`work_budget`, with a :class:`BudgetError` whose one line says
    how much it needs, the budget, and the setting that would allow it."""
    budget = memory_budget()
    if budget is None:
        return
    if estimated_bytes > budget:
        suggested = _budget_text(estimated_bytes)
        raise BudgetError(
            f"{what} needs about {format_bytes(estimated_bytes)} of memory, over the "
            f"{format_bytes(budget)} budget", estimated_bytes, budget, suggested)
    allowed = budget * WORK_PER_BYTE
    if work > allowed:
        suggested = _budget_text(math.ceil(work / WORK_PER_BYTE))
        raise BudgetError(
            f"{what} needs about {format_count(work)} multiply-adds, over the "
            f"{format_count(allowed)} the {format_bytes(budget)} budget allows", work, allowed,
            suggested)


def check_at_most(value: int | float, limit: int | float, what: str, advice: str = "") -> None:
    """Refuse ``value`` over the hard ``limit`` with one line: ``"{what} is {value}; the limit
    is {limit}"`` and ``advice`` (what to do instead). Huge numbers are shortened."""
    if value > limit:
        raise ConfigError(f"{what} is {_short(value)}; the limit is {limit}"
                          + (f"; {advice}" if advice else ""))


def bounded_int(text: str, limit: int, what: str) -> int:
    """The whole number written in ``text`` (``"12"``, ``"-3"``, ``" 7 "``), refusing one over
    ``limit`` with :func:`check_at_most`'s message, before converting digits too many for any
    limit (Python refuses past 4300 digits). Text that is not a whole number raises
    ``ValueError``, so each caller words its own syntax error."""
    digits = text.strip().lstrip("+-")
    if digits.isdigit() and len(digits.lstrip("0")) > max(24, len(str(limit)) + 1) and not (
            text.strip().startswith("-")):
        raise ConfigError(f"{what} is {digits[:12]}... ({len(digits)} digits); the limit is "
                          f"{limit}")
    if digits.isdigit():  # leading zeros count towards Python's 4300-digit limit: drop them
        text = text.strip()[: len(text.strip()) - len(digits)] + (digits.lstrip("0") or "0")
    value = int(text)
    check_at_most(value, limit, what)
    return value


def _budget_text(size: int) -> str:
    """A round budget text at least ``size`` bytes: whole GiB (or MiB below 1 GiB)."""
    if size < 2**30:
        return f"{math.ceil(size / 2**20)}M"
    return f"{math.ceil(size / 2**30)}G"


def _short(value: object, keep: int = 24, quote: bool = False) -> str:
    """``value`` as text, clipped (:func:`convlens.wording.clipped`) so that a 5000-digit
    number does not fill the terminal; a number too long for ``str()`` by its bits."""
    if isinstance(value, int) and value.bit_length() > 4000:  # str() refuses past 4300 digits
        return f"a {value.bit_length()}-bit number"
    return clipped(str(value), keep, quote)


__all__ = [
    "BUDGET_ENV",
    "DEFAULT_BUDGET_BYTES",
    "MAX_ANIMATED_KERNEL_SIDE",
    "MAX_FIGURE_INCHES",
    "MAX_IG_STEPS",
    "MAX_IMAGE_SIDE",
    "MAX_KERNELS",
    "MAX_KERNEL_SIDE",
    "MAX_LAYER_NUMBER",
    "MAX_MODEL_WIDTH",
    "MAX_PANEL_ASPECT",
    "PAGE_MAX_DILATION",
    "PAGE_MAX_KERNELS",
    "PAGE_MAX_LAYER_NUMBER",
    "WORK_PER_BYTE",
    "BudgetError",
    "bounded_int",
    "check_at_most",
    "check_budget",
    "memory_budget",
    "parse_budget",
    "set_budget",
    "use_budget",
    "work_budget",
]
