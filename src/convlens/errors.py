"""Errors a user can cause. Each message is one line saying what was expected and what arrived.

The CLI prints ``error: <message>`` for any :class:`ConvlensError` and exits non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ConvlensError(Exception):
    """Base class: a problem with the user's input, not a bug in convlens."""


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
