"""Counts read right: one channel, two channels; the last 1 px is, the last 2 px are."""

from __future__ import annotations

import pytest

from convlens.sizes import size_chain
from convlens.wording import plural, verb


@pytest.mark.parametrize(("count", "noun", "expected"), [
    (0, "channel", "0 channels"), (1, "channel", "1 channel"), (2, "channel", "2 channels"),
    (1, "px", "1 px"), (5, "px", "5 px"), (1, "class", "1 class"),
])
def test_plural(count, noun, expected):
    assert plural(count, noun, "classes" if noun == "class" else None) == expected


def test_verb_agrees_with_the_count():
    assert [verb(n, "is", "are") for n in (0, 1, 2)] == ["are", "is", "are"]


def test_size_note_says_is_for_one_leftover_pixel():
    # (6 - 3)/2 leaves 1 px over; (8 - 3)/3 leaves 2 px
    assert "the last 1 px (padding included) is never covered" in size_chain(
        6, "conv3 s2").warnings()[0]
    assert "the last 2 px (padding included) are never covered" in size_chain(
        8, "conv3 s3").warnings()[0]


@pytest.mark.parametrize("command", ["run", "explain", "train", "inspect", "serve"])
def test_flags_show_no_value_type_in_help(cli, command):
    """`--force` takes no value, so --help must not print `<bool>` beside it."""
    result = cli(command, "--help")
    assert result.code == 0 and "--help" in result.out
    assert "<bool>" not in result.out and "BOOLEAN" not in result.out


def test_the_examples_in_the_docstrings_hold():
    import doctest

    import convlens.wording

    assert doctest.testmod(convlens.wording).failed == 0
