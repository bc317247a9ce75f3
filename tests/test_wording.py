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


def test_clipped_values_say_their_length_wherever_a_message_shows_them():
    """One clipping for every message: a long kernel name, a kernel cell, a model.json field, a
    budget; quoted where the value is text the user typed, the count outside the quotes."""
    from convlens.errors import ConfigError, KernelError, ModelError
    from convlens.kernels import get_kernel, parse_kernel
    from convlens.limits import parse_budget
    from convlens.models.info import ModelInfo
    from convlens.wording import clipped, whole_number

    assert clipped("abc", 2, quote=True) == "'ab'... (3 characters)"
    assert clipped("ab", 2, quote=True) == "'ab'"
    assert whole_number(2**79) == str(2**79) and whole_number(2**80) == "an integer of 25 digits"
    with pytest.raises(KernelError, match=r"^unknown kernel 'q{24}\.\.\. \(500 characters\)'"):
        get_kernel("q" * 500)
    with pytest.raises(KernelError, match=r"column 1: 'y{21}\.\.\.' is not a number"):
        parse_kernel([["y" * 60, 1]])  # a cell: clipped inside its sentence, no count
    with pytest.raises(ConfigError, match=r"got '9{24}'\.\.\. \(70 characters\)$"):
        parse_budget("9" * 70)
    described = ModelInfo(architecture="tinyvgg", in_channels=1, input_size=(8, 8),
                          class_names=["a", "b"], mean=[0.5], std=[0.2]).to_dict()
    with pytest.raises(ModelError, match=r"'metrics' must be an object; got 'z{40}'\.\.\. \(99 "):
        ModelInfo.from_dict({**described, "metrics": "z" * 99})
