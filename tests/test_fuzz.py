"""Fuzzing every parser of user text: each either parses or raises the project's error.

Kernel text and files, padding and pool, the layer strings of ``convlens size``, sizes,
``--at``, ``--model-arg`` and ``model.json`` get random text (``st.text()``) and inputs built to
come close to valid ones (numbers of every kind with the separators the parsers split on,
fractions, JSON of any nesting, near-valid model descriptions with one field swapped for junk).
Any exception that is not a :class:`~convlens.errors.ConvlensError` (``ValueError``,
``OverflowError``, ``RecursionError``, ``OSError``...) fails the test, and so does an error
message of more than one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlens.cli.train import parse_model_args
from convlens.config import parse_padding, parse_pool
from convlens.errors import ConvlensError
from convlens.kernels import FLOAT32_MAX, parse_kernel, parse_numbers
from convlens.models import ModelInfo, check_settings, create_model, save_checkpoint
from convlens.models.checkpoint import read_info
from convlens.models.registry import get_model_entry
from convlens.sizes import parse_at, parse_layers, parse_size

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def _empty_working_folder(tmp_path_factory):
    """Random text can name a path: run in an empty folder so it never names a real file."""
    folder = tmp_path_factory.mktemp("fuzz-cwd")
    before = Path.cwd()
    os.chdir(folder)
    yield folder
    os.chdir(before)


def parses_or_refuses(parser: Callable, *args):
    """``parser(*args)``; a :class:`ConvlensError` (one line) counts as a clean refusal."""
    try:
        return parser(*args)
    except ConvlensError as exc:
        assert "\n" not in str(exc), repr(str(exc))
        assert str(exc).strip(), "an error without a message"
        return None


# --------------------------------------------------------------------------- strategies
NUMBER_WORDS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1/0", "0/0", "-1/0", "1e39",
                "-1e39", "1e308", "1e-400", "3.4028235e38", "3.5e38", "9" * 400, "1_0", "+1",
                "-0", ".5", "5.", "1e", "e1", "1/", "/2", "1//2", "1/2/3", "0x10", "١٢", "½",
                "1e99999", "--1", "1,5", "", " "]
numbers = st.one_of(
    st.integers().map(str),
    st.integers(-10**500, 10**500).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(width=32).map(str),
    st.sampled_from(NUMBER_WORDS),
    st.tuples(st.integers(-99, 99), st.integers(-99, 99)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.text(max_size=4),
)
cell_seps = st.sampled_from([" ", ",", ", ", "\t", "  ", " ,", ",,"])
row_seps = st.sampled_from([";", "; ", ";;", " ; ", "\n", ";\n"])


@st.composite
def grid_text(draw) -> str:
    """Rows of numbers split the way kernel text is, 1 or 3 channels (sometimes 2 or 4)."""
    channels = draw(st.sampled_from([1, 1, 1, 3, 3, 2, 4]))
    height = draw(st.integers(0, 5))
    width = draw(st.integers(0, 5))
    parts = []
    for _ in range(channels):
        rows = [draw(cell_seps).join(draw(numbers) for _ in range(width + draw(
            st.sampled_from([0, 0, 0, 0, 1, -1])))) for _ in range(height)]
        parts.append(draw(row_seps).join(rows))
    return draw(st.sampled_from([" | ", "|", " || "])).join(parts)


json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10**400, 10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)
deep_json = st.integers(1, 20_000).map(lambda depth: "[" * depth + "]" * depth)
any_text = st.one_of(st.text(), grid_text(), json_values.map(json.dumps), deep_json)


# --------------------------------------------------------------------------- kernels
@FUZZ
@given(any_text)
def test_kernel_text_parses_or_refuses(text):
    kernel = parses_or_refuses(parse_kernel, text)
    if kernel is not None:
        weights = kernel.weights
        assert weights.dtype == np.float32 and weights.ndim == 3 and weights.shape[0] in (1, 3)
        assert np.isfinite(weights).all()


@FUZZ
@given(any_text)
def test_typed_numbers_parse_or_refuse(text):
    grid = parses_or_refuses(parse_numbers, text, "--values")
    if grid is not None:
        assert np.isfinite(grid).all() and np.abs(grid).max() <= FLOAT32_MAX


@FUZZ
@given(st.lists(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=6), min_size=1, max_size=6)
       .filter(lambda rows: len({len(row) for row in rows}) == 1))
def test_valid_grids_parse_to_their_numbers(rows):
    """An oracle for the parsing itself: any grid of finite numbers written out comes back."""
    expected = np.asarray(rows, dtype=np.float32)
    text = "; ".join(" ".join(repr(float(value)) for value in row) for row in rows)
    np.testing.assert_array_equal(parse_kernel(text).as_2d(), expected)
    np.testing.assert_array_equal(parse_kernel(json.dumps(rows)).as_2d(), expected)


@FUZZ
@given(st.one_of(json_values, st.lists(st.lists(json_leaves, max_size=4), max_size=4)))
def test_kernel_lists_parse_or_refuse(values):
    parses_or_refuses(parse_kernel, values)


@FUZZ
@given(st.sampled_from([".txt", ".csv", ".json", ".npy", ""]),
       st.one_of(any_text.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary()))
def test_kernel_files_parse_or_refuse(tmp_path_factory, suffix, content):
    path = tmp_path_factory.mktemp("kernel") / f"k{suffix}"
    path.write_bytes(content)
    parses_or_refuses(parse_kernel, str(path))


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }",
    "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2, 2), }",
    "{'descr': '|O', 'fortran_order': False, 'shape': (2, 2), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (99999, 99999), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
]))
def test_npy_files_with_any_body_parse_or_refuse(tmp_path_factory, body, header):
    text = (header + " " * (63 - len(header) % 64) + "\n").encode("latin1")
    path = tmp_path_factory.mktemp("npy") / "k.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + body)
    parses_or_refuses(parse_kernel, path)


# --------------------------------------------------------------------------- layer settings
layer_words = st.sampled_from(["conv", "pool", "avgpool", "conv3", "pool2", "s2", "p1", "d2",
                               "same", "valid", "ceil", "psame", "pad", "x", "3x5", "s0", "p-1",
                               "9" * 50, "s" + "9" * 5000, ",", " "])
layer_text = st.lists(layer_words, max_size=10).map(" ".join)


@FUZZ
@given(st.one_of(st.text(), layer_text, numbers))
def test_padding_and_pool_parse_or_refuse(text):
    parses_or_refuses(parse_padding, text)
    parses_or_refuses(parse_pool, text)


@FUZZ
@given(st.one_of(st.text(), layer_text))
def test_size_layer_strings_parse_or_refuse(text):
    parses_or_refuses(parse_layers, text)


@FUZZ
@given(st.one_of(st.text(), st.tuples(numbers, st.sampled_from(["x", "X", "×", ",", " x "]),
                                      numbers).map("".join)))
def test_sizes_parse_or_refuse(text):
    parses_or_refuses(parse_size, text)


@FUZZ
@given(st.one_of(st.text(), st.tuples(numbers, st.sampled_from([",", " ", ", ", ";"]),
                                      numbers).map("".join)))
def test_positions_parse_or_refuse(text):
    position = parses_or_refuses(parse_at, text)
    if position is not None:
        assert all(isinstance(value, int) for value in position)


# --------------------------------------------------------------------------- models
setting_names = st.sampled_from(["width", "padding", "batchnorm", "dropout", "depth", "_x", ""])


@FUZZ
@given(st.one_of(
    st.lists(st.text(), max_size=3),
    st.lists(st.tuples(setting_names, numbers).map("=".join), min_size=1, max_size=3),
))
def test_model_args_parse_and_check_or_refuse(items):
    settings_ = parses_or_refuses(parse_model_args, items)
    if settings_ is not None:
        for name in ("tinyvgg", "lenet", "resnet9"):
            parses_or_refuses(check_settings, get_model_entry(name), settings_)


def _valid_info() -> dict:
    return ModelInfo("tinyvgg", 1, (8, 8), ["a", "b", "c"], [0.5], [0.25], {"width": 4},
                     {"data": "digits", "split_seed": 0}).to_dict()


FIELDS = ["format", "format_version", "architecture", "in_channels", "input_size",
          "class_names", "mean", "std", "arch_kwargs", "metrics", "convlens_version"]


@FUZZ
@given(st.sampled_from(FIELDS), json_values)
def test_model_json_with_one_field_of_junk_parses_or_refuses(field, value):
    data = _valid_info()
    data[field] = value
    info = parses_or_refuses(ModelInfo.from_dict, data)
    if info is not None:
        assert len(info.mean) == len(info.std) == info.in_channels
        assert all(np.isfinite(info.mean)) and min(info.std) > 0
        assert info.num_classes >= 2 and min(info.input_size) >= 1


@FUZZ
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(FIELDS), json_values)))
def test_any_json_as_model_json_parses_or_refuses(value):
    parses_or_refuses(ModelInfo.from_dict, value)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint, written by the library, whose model.json the test overwrites."""
    folder = tmp_path_factory.mktemp("checkpoint")
    return save_checkpoint(create_model("tinyvgg", 1, 3, (8, 8), width=4),
                           ModelInfo.from_dict(_valid_info()), folder)


@FUZZ
@given(st.one_of(st.text(), json_values.map(json.dumps), deep_json,
                 st.sampled_from(FIELDS).flatmap(lambda field: json_values.map(
                     lambda value: json.dumps({**_valid_info(), field: value})))))
def test_model_json_files_read_or_refuse(checkpoint, text):
    (checkpoint.parent / "model.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    parses_or_refuses(read_info, checkpoint)
