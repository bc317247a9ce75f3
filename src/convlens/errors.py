"""Errors a user can cause. Each message is one line saying what was expected and what arrived.

The CLI prints ``error: <message>`` for any :class:`ConvlensError` and exits non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Surface = Literal["python", "cli", "page"]
"""Where a message is read: the library (notebooks, scripts), the command line or the page."""


@dataclass(frozen=True)
class Option:
    """A setting an error message tells the user to change, in the words of each surface:
    ``python`` as the message names it (the library's argument, ``trust_code=True``), ``cli``
    the command line's (its flag, ``--trust-code``) and ``page`` what a page user does (the
    CLI's words where not given)."""

    python: str
    cli: str
    page: str | None = None

    def spelled(self, surface: Surface) -> str:
        if surface == "cli":
            return self.cli
        if surface == "page":
            return self.page if self.page is not None else self.cli
        return self.python


class ConvlensError(Exception):
    """Base class: a problem with the user's input, not a bug in convlens.

    The message names a setting the user can change as the library spells it; ``options``
    say how the other surfaces spell it, and :meth:`worded` gives the message for one of them:

    >>> TRUST = Option("trust_code=True", "--trust-code")
    >>> error = ModelError("a pickle runs code; opt in with trust_code=True", options=[TRUST])
    >>> str(error)
    'a pickle runs code; opt in with trust_code=True'
    >>> error.worded("cli")
    'a pickle runs code; opt in with --trust-code'
    """

    def __init__(self, *args: object, options: Sequence[Option] = ()) -> None:
        super().__init__(*args)
        self.options = tuple(options)

    def worded(self, surface: Surface = "python") -> str:
        """The message for ``surface``: each option's first mention (a whole word) in that
        surface's words."""
        return reword(str(self), self.options, surface)


class Worded(str):
    """A line of text that is not an error (a training run's note) naming settings as the
    library spells them, with the ``options`` that reword it for another surface. It is a
    ``str``: whatever just prints it shows the library's words.

    >>> note = Worded("amp=True ignored on cpu", [Option("amp=True", "--amp")])
    >>> note, note.worded("cli")
    ('amp=True ignored on cpu', '--amp ignored on cpu')
    """

    options: tuple[Option, ...]

    def __new__(cls, text: str, options: Sequence[Option] = ()) -> Worded:
        made = super().__new__(cls, text)
        made.options = tuple(options)
        return made

    def worded(self, surface: Surface = "python") -> str:
        """The text for ``surface`` (see :meth:`ConvlensError.worded`)."""
        return reword(str(self), self.options, surface)


def worded(text: str, surface: Surface) -> str:
    """``text`` for ``surface``: reworded where it is a :class:`Worded`, else as it is."""
    return text.worded(surface) if isinstance(text, Worded) else text


def reword(text: str, options: Sequence[Option], surface: Surface) -> str:
    """``text`` with each option's first mention (a whole word) in ``surface``'s words."""
    for option in options:
        spelled = option.spelled(surface).replace("\\", "\\\\")  # no group references
        text = _whole_word(option.python).sub(spelled, text, count=1)
    return text


def _whole_word(words: str) -> re.Pattern[str]:
    """``words`` where it is not part of a longer name (``std`` is not found in ``stdout``)."""
    before = r"(?<![\w-])" if re.match(r"\w", words) else ""
    after = r"(?![\w])" if re.search(r"\w$", words) else ""
    return re.compile(before + re.escape(words) + after)


class ImageError(ConvlensError):
    """An image could not be read or is unusable (missing, not an image, truncated, too big)."""


class KernelError(ConvlensError):
    """A kernel spec is unknown or malformed (ragged rows, non-finite values, wrong size)."""


class ConfigError(ConvlensError):
    """Layer settings that cannot work (stride 0, no output left, padding larger than input)."""


class OutputError(ConfigError):
    """An output path that cannot be used: under a file, not writable, or holding results that
    may only be overwritten when asked (a :class:`ConfigError`, as it always was)."""


class ModelError(ConvlensError):
    """A model or checkpoint cannot be opened or does not fit the input."""


class DataError(ConvlensError):
    """A data set is missing, empty or malformed."""
