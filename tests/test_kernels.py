"""Kernel registry and parsers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.errors import KernelError
from convlens.kernels import (
    MAX_KERNEL_SIDE,
    TUTORIAL_KERNELS,
    get_kernel,
    kernel_bank,
    list_kernels,
    parse_kernel,
    unique_names,
)

REQUIRED = [
    "sobel-h", "laplacian", "sobel-v", "prewitt-h", "prewitt-v", "scharr-h", "scharr-v",
    "diagonal-45", "diagonal-135", "laplacian-8", "gaussian-3", "gaussian-5", "box-3",
    "sharpen", "emboss", "outline", "identity",
]


def test_tutorial_kernels_hold_the_intended_numbers():
    assert TUTORIAL_KERNELS == ("sobel-h", "laplacian", "sobel-v")
    assert get_kernel("sobel-h").as_2d().tolist() == [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    assert get_kernel("laplacian").as_2d().tolist() == [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]
    assert get_kernel("sobel-v").as_2d().tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


@pytest.mark.parametrize("name", REQUIRED)
def test_registry_has_every_required_kernel_with_a_description(name):
    kernel = get_kernel(name)
    assert kernel.weights.dtype == np.float32
    assert kernel.description


def test_blurs_sum_to_one_and_edge_detectors_to_zero():
    for name in ("gaussian-3", "gaussian-5", "box-3", "box-5", "identity"):
        assert get_kernel(name).weights.sum() == pytest.approx(1.0)
    for name in ("sobel-h", "sobel-v", "prewitt-h", "scharr-v", "laplacian", "laplacian-8",
                 "diagonal-45", "diagonal-135"):
        assert get_kernel(name).weights.sum() == pytest.approx(0.0)


def test_list_kernels_filters_with_a_pattern():
    assert list_kernels("sobel*") == ["sobel-h", "sobel-v"]
    assert set(REQUIRED) <= set(list_kernels())


def test_unknown_name_suggests_close_ones():
    with pytest.raises(KernelError, match=r"did you mean.*sobel-h"):
        get_kernel("sobel-hh")


def test_inline_text_rows_split_by_semicolon():
    kernel = parse_kernel("1 0 -1; 2, 0, -2; 1 0 -1")
    assert kernel.weights.shape == (1, 3, 3)
    assert kernel.as_2d()[1].tolist() == [2, 0, -2]


def test_inline_fractions_and_rectangular_shapes():
    kernel = parse_kernel("1/2 1/2")
    assert kernel.size == (1, 2)
    assert kernel.as_2d().tolist() == [[0.5, 0.5]]


def test_rgb_kernel_from_text_channels_split_by_bar():
    kernel = parse_kernel("1 0; 0 0 | 0 1; 0 0 | 0 0; 0 1")
    assert kernel.weights.shape == (3, 2, 2)
    assert kernel.weights[2, 1, 1] == 1


def test_json_list_and_files(tmp_path):
    assert parse_kernel("[[1, 2], [3, 4]]").weights.shape == (1, 2, 2)
    npy = tmp_path / "blur.npy"
    np.save(npy, np.full((5, 5), 1 / 25))
    from_npy = parse_kernel(str(npy))
    assert from_npy.name == "blur" and from_npy.size == (5, 5)
    js = tmp_path / "edge.json"
    js.write_text(json.dumps([[[1, 0], [0, -1]]] * 3))
    assert parse_kernel(str(js)).weights.shape == (3, 2, 2)
    txt = tmp_path / "k.txt"
    txt.write_text("1 2 3\n4 5 6\n")
    assert parse_kernel(str(txt)).as_2d().tolist() == [[1, 2, 3], [4, 5, 6]]


def test_text_round_trips():
    for name in ("sobel-h", "gaussian-5", "emboss"):
        kernel = get_kernel(name)
        np.testing.assert_allclose(parse_kernel(kernel.to_text()).weights, kernel.weights,
                                   rtol=1e-5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("1 nan 0; 0 1 0; 0 0 1", "NaN or infinite"),
        ("1 inf; 0 1", "NaN or infinite"),
        ("1 2 3; 4 5", "ragged"),
        ("[[1, 2], [3]]", "ragged"),
        ("1 a 3", "not numbers"),
        ("[]", "empty"),
        ("[[1, 2", "not valid JSON"),
        ("missing.npy", "not found"),
    ],
)
def test_bad_kernels_get_clear_errors(spec, message):
    with pytest.raises(KernelError, match=message):
        parse_kernel(spec)


def test_size_limit_is_31():
    assert parse_kernel(np.ones((MAX_KERNEL_SIDE, 3))).size == (31, 3)
    with pytest.raises(KernelError, match="largest supported side is 31"):
        parse_kernel(np.ones((32, 3)))


def test_gray_kernel_on_rgb_sees_the_channel_mean():
    bank = kernel_bank([get_kernel("sobel-h")], in_channels=3)
    assert bank.shape == (1, 3, 3, 3)
    np.testing.assert_allclose(bank.sum(dim=1)[0].numpy(), get_kernel("sobel-h").as_2d())


def test_rgb_kernel_on_gray_image_is_refused():
    with pytest.raises(KernelError, match="--mode rgb"):
        kernel_bank([parse_kernel(np.ones((3, 3, 3)))], in_channels=1)


def test_mixed_sizes_are_centred_in_the_largest():
    bank = kernel_bank([get_kernel("identity"), get_kernel("gaussian-5")], in_channels=1)
    assert bank.shape == (2, 1, 5, 5)
    assert bank[0, 0, 2, 2] == 1 and bank[0].sum() == 1
    with pytest.raises(KernelError, match="parity"):
        kernel_bank([get_kernel("identity"), parse_kernel("1 1; 1 1")], in_channels=1)


def test_repeated_names_are_made_unique():
    kernels = [get_kernel("sobel-h"), get_kernel("sobel-h"), get_kernel("laplacian")]
    assert unique_names(kernels) == ["sobel-h", "sobel-h#2", "laplacian"]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 7),
    st.integers(1, 7),
    st.lists(st.integers(-9, 9), min_size=49, max_size=49),
)
def test_any_rectangular_text_kernel_parses_exactly(rows, cols, numbers):
    values = np.array(numbers[: rows * cols], dtype=np.float32).reshape(rows, cols)
    text = "; ".join(" ".join(str(int(v)) for v in row) for row in values)
    np.testing.assert_array_equal(parse_kernel(text).as_2d(), values)
