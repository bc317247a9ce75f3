"""Which command module a command line needs, decided before any is imported: ``convlens
explain`` with ``--layer`` is the model form, the hidden ``explain-model`` command
(:mod:`.explain_model`); without, the tutorial's one layer (:mod:`.explain`)."""

from __future__ import annotations

COMMAND = "explain-model"
MODEL_FLAGS = ("--layer", "-l")
"""Flags that make ``convlens explain`` the model form."""


def route(args: list[str]) -> list[str]:
    """``args`` (a ``convlens explain ...`` command line) with ``explain`` turned into
    ``explain-model`` when it names a layer (``--layer``): the model form of the command."""
    if not any(word in MODEL_FLAGS or word.startswith("--layer=") for word in args):
        return args
    for index, word in enumerate(args):
        if word == "explain" and (index == 0 or args[index - 1] != "--budget"):
            return [*args[:index], COMMAND, *args[index + 1:]]
    return args
