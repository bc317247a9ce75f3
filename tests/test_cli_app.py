"""The CLI's typer app: plain parameter values skip typer's Pydantic validators (a tenth of a
second to import) and come out exactly as those validators would give them."""

from __future__ import annotations

from pathlib import Path

import pytest

from convlens.cli._app import _plain_value


class _Info:
    parser = None
    min = None
    max = None


@pytest.mark.parametrize(("annotation", "value"), [
    (str, "1,2,3;4,5,6"), (str, ""), (int, "12"), (int, "-3"), (int, "007"), (int, 5),
    (float, "0.5"), (float, "-2"), (float, 1.5), (list[str], ("a", "b")), (list[str], []),
    (Path, Path("x/y.png")),
])
def test_a_plain_value_comes_out_as_typers_validator_gives_it(annotation, value):
    from typer._adapters import build_adapter
    from typer.models import OptionInfo

    plain, given = _plain_value(annotation, _Info(), value)
    expected = build_adapter(annotation, OptionInfo()).validate_python(value)
    assert plain
    assert given == expected and type(given) is type(expected)


@pytest.mark.parametrize(("annotation", "value"), [
    (int, "1.5"), (int, "x"), (int, " 3"), (int, "1_000"), (float, "1e3"), (float, "nan"),
    (Path, "x.png"), (bool, "yes"), (int, 2.0), (int, "9" * 19), (int, "9" * 5000),
    (float, "1" * 16), (float, "0." + "1" * 16),
])
def test_anything_else_is_left_to_typer(annotation, value):
    assert _plain_value(annotation, _Info(), value) == (False, None)


def test_a_bounded_number_is_left_to_typer():
    class Bounded(_Info):
        min = 1

    assert _plain_value(int, Bounded(), "0") == (False, None)


def test_bad_numbers_keep_typers_words(cli):
    result = cli("size", "--input", "28", "--kernel", "3", "--stride", "1.5")
    assert result.code == 2
    assert "valid integer" in result.err  # typer's words, as before


def test_a_number_too_long_for_python_keeps_typers_one_line(cli):
    """5000 digits: Python's int() refuses them; typer's words, as before, not a traceback."""
    result = cli("size", "--input", "28", "--kernel", "3", "--stride", "9" * 5000)
    assert result.code == 2 and result.err.count("\n") == 1
