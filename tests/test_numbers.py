"""convlens.numbers: every number printed one way, checked against the value it stands for."""

from __future__ import annotations

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from convlens.numbers import (
    format_bytes,
    format_count,
    format_factor,
    format_number,
    format_raw,
)

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(finite, st.integers(0, 4))
def test_raw_values_round_to_at_most_the_decimals(value, decimals):
    text = format_raw(value, decimals)
    assert abs(float(text) - value) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9) + 1e-9 * abs(value)
    assert text != "-0" and not text.endswith(".") and (
        "." not in text or len(text.split(".")[1]) <= decimals)
    if "." in text:
        assert not text.endswith("0")


@given(finite, st.integers(1, 6))
def test_numbers_are_whole_or_significant_digits(value, digits):
    text = format_number(value, digits)
    if abs(value - round(value)) < 1e-6:
        assert text == str(round(value))
    else:
        assert math.isclose(float(text), value, rel_tol=10.0 ** (1 - digits))


@given(finite)
def test_a_negative_factor_is_bracketed(weight):
    text = format_factor(weight)
    inner = text[1:-1] if text.startswith("(") else text
    assert inner == format_number(weight, 4)
    assert text.startswith("(") == inner.startswith("-")


UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
COUNTS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


@given(st.integers(0, 2**50))
def test_sizes_in_memory_read_back_within_rounding(size):
    number, unit = re.fullmatch(r"([\d.]+) (bytes|KiB|MiB|GiB|TiB)", format_bytes(size)).groups()
    assert math.isclose(float(number) * UNITS[unit], size, rel_tol=0.05)
    assert unit == "bytes" or float(number) >= 1


@given(st.integers(0, 10**15))
def test_large_counts_read_back_within_rounding(count):
    number, unit = re.fullmatch(r"([\d.]+) ?([kMGT]?)", format_count(count)).groups()
    assert math.isclose(float(number) * COUNTS[unit], count, rel_tol=0.01)
