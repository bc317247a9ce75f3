"""Kernel registry and parsers."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from convlens.errors import KernelError
from convlens.kernels import (
    MAX_KERNEL_FILE_BYTES,
    TUTORIAL_KERNELS,
    get_kernel,
    kernel_bank,
    list_kernels,
    parse_kernel,
    parse_kernels,
    parse_numbers,
    unique_names,
)
from convlens.limits import MAX_KERNEL_SIDE

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
        ("1 nan 0; 0 1 0; 0 0 1", "row 1, column 2: NaN is not a finite number"),
        ("1 inf; 0 1", "row 1, column 2: inf is not a finite number"),
        ("1 2 3; 4 5", "ragged"),
        ("[[1, 2], [3]]", "ragged"),
        ("1 a 3", "row 1, column 2: 'a' is not a number"),
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
    with pytest.raises(KernelError, match="mode='rgb'") as refused:
        kernel_bank([parse_kernel(np.ones((3, 3, 3)))], in_channels=1)
    assert refused.value.worded("cli").endswith("load the image with --mode rgb for RGB kernels")


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


# --------------------------------------------------------------------------- every cell checked

FLOAT32_MAX = float(np.finfo(np.float32).max)


@pytest.mark.parametrize(
    ("spec", "cell", "words"),
    [
        ("1 2; 3 nan", "row 2, column 2", "NaN is not a finite number"),
        ("-inf 0", "row 1, column 1", "-inf is not a finite number"),
        ("0 0; 0 1e39", "row 2, column 2", "1e39 is too large for a float32 weight"),
        ("1e308", "row 1, column 1", "1e308 is too large"),
        ("1 2 3; 4 1/0 6", "row 2, column 2", "1/0 divides by zero"),
        ("1 0; 0 inf/inf", "row 2, column 2", r"inf/inf \(NaN\) is not a finite number"),
        (str(10**400), "row 1, column 1", "1000.* is too large"),
        ("[[1, 2], [3, NaN]]", "row 2, column 2", "NaN is not a finite number"),
        ("[[Infinity]]", "row 1, column 1", "inf is not a finite number"),
        ("[[1e39, 0]]", "row 1, column 1", r"1e\+39 is too large"),
        (f"[[0, {10**400}]]", "row 1, column 2", "an integer of 401 digits is too large"),
        ('[[1, "2"]]', "row 1, column 2", "'2' is not a number"),
        ("[[1, true]]", "row 1, column 2", "True is not a number"),
        ("[[1, null]]", "row 1, column 2", "None is not a number"),
        ("[[1], [[2]]]", "row 2, column 1", "a list is not a number"),
        ("1 0; 0 1 | 1 0; 0 1 | 1 0; 0 nan", "channel B, row 2, column 2", "NaN"),
    ],
)
def test_a_bad_number_is_named_by_its_cell(spec, cell, words):
    with pytest.raises(KernelError, match=f"{cell}: {words}") as caught:
        parse_kernel(spec)
    assert "\n" not in str(caught.value)


def test_arrays_and_lists_name_the_bad_cell():
    weights = np.zeros((3, 2, 2))
    weights[1, 0, 1] = np.inf
    with pytest.raises(KernelError, match="channel G, row 1, column 2: inf is not a finite"):
        parse_kernel(weights)
    with pytest.raises(KernelError, match="row 1, column 1: an integer of 40 digits is too lar"):
        parse_kernel([[10**39, 0], [0, 0]])
    assert parse_kernel([[10**38, 0]]).weights[0, 0, 0] == np.float32(1e38)
    with pytest.raises(KernelError, match="complex"):
        parse_kernel(np.ones((2, 2), dtype=complex))
    with pytest.raises(KernelError, match="not real numbers"):
        parse_kernel(np.array([["1", "2"]]))


def test_the_largest_float32_is_kept_and_one_step_beyond_is_refused():
    assert parse_kernel(f"{FLOAT32_MAX!r} 0").weights[0, 0, 0] == np.float32(FLOAT32_MAX)
    beyond = float(np.nextafter(np.float64(FLOAT32_MAX), np.inf)) * (1 + 1e-7)
    with pytest.raises(KernelError, match="too large"):
        parse_kernel(f"{beyond!r} 0")


def test_a_label_names_the_kernel_in_every_error():
    with pytest.raises(KernelError, match=r"^kernel 2 \('1 nan'\), row 1, column 2: NaN"):
        parse_kernels(["sobel-h", "1 nan"])
    with pytest.raises(KernelError, match=r"^kernel 3 \(blur\) is ragged"):
        parse_kernel([[1, 2], [3]], label="kernel 3 (blur)")
    with pytest.raises(KernelError, match=r"^--patch, row 1, column 1: 'x' is not a number"):
        parse_numbers("x 1", "--patch")


# --------------------------------------------------------------------------- long inline text


def test_a_31x31_kernel_written_inline_works():
    rng = np.random.default_rng(0)
    values = rng.integers(-9, 10, size=(MAX_KERNEL_SIDE, MAX_KERNEL_SIDE))
    text = "; ".join(" ".join(str(v) for v in row) for row in values)
    assert len(text) > 255
    np.testing.assert_array_equal(parse_kernel(text).as_2d(), values)
    np.testing.assert_array_equal(parse_kernel(json.dumps(values.tolist())).as_2d(), values)
    rgb = " | ".join([text] * 3)
    assert parse_kernel(rgb).weights.shape == (3, MAX_KERNEL_SIDE, MAX_KERNEL_SIDE)


@pytest.mark.parametrize("text", ["1 " * 5000, "; ".join(["1"] * 300), "[" + "[1]," * 400 + "[1]]"])
def test_long_text_is_never_tried_as_a_file_name(text):
    with pytest.raises(KernelError, match="the largest supported side is 31"):
        parse_kernel(text)


def test_a_name_that_is_a_number_is_a_1x1_kernel_not_a_kernel_name():
    assert parse_kernel("2").as_2d().tolist() == [[2.0]]
    with pytest.raises(KernelError, match="row 1, column 1: NaN is not a finite number"):
        parse_kernel("nan")


def test_an_unknown_long_name_is_shortened_in_the_message():
    with pytest.raises(KernelError) as caught:
        parse_kernel("x" * 10000)
    assert len(str(caught.value)) < 200


# --------------------------------------------------------------------------- files


def test_text_files_may_hold_comments_and_blank_lines(tmp_path):
    path = tmp_path / "edge.txt"
    path.write_text("# Sobel, horizontal edges\n-1 -2 -1  # top\n\n0 0 0\n1 2 1\n# end\n")
    assert parse_kernel(str(path)).as_2d().tolist() == [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    path.write_text("# rgb\n1 0\n0 1\n|\n0 1\n1 0\n|  # blue\n2 2\n2 2\n")
    weights = parse_kernel(path).weights
    assert weights.shape == (3, 2, 2) and weights[2].tolist() == [[2, 2], [2, 2]]


def test_a_bad_line_in_a_text_file_is_named_by_its_line(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text("# comment\n\n1 2\n3 1e39\n")
    with pytest.raises(KernelError, match=r"kernel file 'k.txt', line 4, column 2: 1e39 is too"):
        parse_kernel(str(path))
    path.write_text("# only a comment\n")
    with pytest.raises(KernelError, match="holds no numbers"):
        parse_kernel(str(path))


def _npy_header(header: str) -> bytes:
    text = (header + "\n").encode("latin1")
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }" + " " * 90000)
         + bytes(72), "not a readable .npy file"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (200000, 200000), }"),
         r"shape \(200000, 200000\)"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }") + bytes(16),
         "not a readable .npy file"),
        (_npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (3, 3), }"),
         "object values, not real numbers"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 300 + "3,"
                     + ")" * 300 + "}"), "not a readable .npy file"),
        (b"\x93NUMPY", "not a readable .npy file"),
        (b"", "not a readable .npy file"),
    ],
    ids=["huge-header", "huge-shape", "truncated", "object", "nested-header", "short", "empty"],
)
def test_hostile_npy_files_are_refused_before_reading_data(tmp_path, content, words):
    path = tmp_path / "k.npy"
    path.write_bytes(content)
    with pytest.raises(KernelError, match=words):
        parse_kernel(str(path))


def test_a_good_npy_file_in_any_layout_loads_exactly(tmp_path):
    values = np.arange(6, dtype=np.float64).reshape(2, 3)
    for array in (values, np.asfortranarray(values), values.astype(np.float16)):
        np.save(tmp_path / "k.npy", array)
        np.testing.assert_array_equal(parse_kernel(tmp_path / "k.npy").as_2d(), values)


def test_devices_folders_and_huge_files_are_refused(tmp_path):
    for special in ("/dev/zero", "/dev/null"):
        if Path(special).exists():
            with pytest.raises(KernelError, match="not a regular file"):
                parse_kernel(special)
    with pytest.raises(KernelError, match="not a regular file"):
        parse_kernel(str(tmp_path))
    big = tmp_path / "big.txt"
    big.write_text("1 " * (MAX_KERNEL_FILE_BYTES // 2 + 1))
    with pytest.raises(KernelError, match="KiB"):
        parse_kernel(str(big))
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"\xff\xfe1 2")
    with pytest.raises(KernelError, match="not UTF-8 text"):
        parse_kernel(str(latin))


def test_deeply_nested_json_files_are_refused(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(KernelError, match="nested too deeply"):
        parse_kernel(str(path))
    path.write_text("[[" + "1" * 5000 + "]]")
    with pytest.raises(KernelError, match="not usable JSON"):
        parse_kernel(str(path))


# ------------------------------------------------------------- descriptions tell the truth

_SIDES = {"on the right": 0, "below-right": 45, "below": 90, "below-left": 135,
          "on the left": 180, "above-left": 225, "above": 270, "above-right": 315}
"""Where an edge's bright side lies, as the angle (degrees, image y pointing down) of the step."""
_LINES = {"horizontal": {90, 270}, "vertical": {0, 180}, "(\\)": {315, 135}, "(/)": {225, 45}}
"""The edge line a description names, and the bright sides such an edge can have."""


def _step_edge(angle: int, side: int = 15) -> np.ndarray:
    """A step through the centre pixel: 1 where ``(x, y) . (cos, sin)(angle) > 0``, else 0."""
    y, x = np.mgrid[:side, :side] - side // 2
    direction = np.deg2rad(angle)
    return ((x * np.cos(direction) + y * np.sin(direction)) > 1e-9).astype(np.float64)


def _centre_response(kernel, image: np.ndarray) -> float:
    # SciPy's correlate is the oracle: a conv layer is a cross-correlation
    response = ndimage.correlate(image, kernel.as_2d().astype(np.float64), mode="nearest")
    return float(response[image.shape[0] // 2, image.shape[1] // 2])


@pytest.mark.parametrize("name", list_kernels())
def test_every_builtin_description_matches_what_the_kernel_responds_to(name):
    kernel = get_kernel(name)
    text = kernel.description
    edges = {angle: _centre_response(kernel, _step_edge(angle)) for angle in range(0, 360, 45)}
    dot = np.zeros((15, 15))
    dot[7, 7] = 1.0
    claimed = re.search(r"bright side is (on the right|on the left|(?:above|below)"
                        r"(?:-left|-right)?)", text)
    if claimed:
        side = _SIDES[claimed.group(1)]
        assert max(edges, key=edges.get) == side, (text, edges)
        assert edges[side] > max(value for angle, value in edges.items() if angle != side)
        lines = [sides for word, sides in _LINES.items() if word in text]
        assert all(side in sides for sides in lines), f"the edge line named contradicts: {text}"
        if "negative where" in text:
            assert edges[(side + 180) % 360] == pytest.approx(-edges[side])
    elif "every direction" in text:
        assert all(abs(value) > 0 for value in edges.values()), edges
        assert _centre_response(kernel, dot) > max(abs(value) for value in edges.values())
    elif "blur" in text:
        assert kernel.weights.min() >= 0 and kernel.weights.sum() == pytest.approx(1, abs=1e-6)
        assert 0 < _centre_response(kernel, dot) < 1
    elif name == "sharpen":
        expected = get_kernel("identity").as_2d() + get_kernel("laplacian").as_2d()
        np.testing.assert_array_equal(kernel.as_2d(), expected)
    elif name == "identity":
        image = _step_edge(45) + np.arange(225).reshape(15, 15)
        assert _centre_response(kernel, image) == image[7, 7]
    else:
        pytest.fail(f"{name}'s description makes no claim this test can check: {text}")


def test_a_31x31_inline_kernel_runs_through_the_cli(cli, tmp_path, chelsea):
    text = "; ".join(" ".join("1" if (r + c) % 2 else "-1" for c in range(31)) for r in range(31))
    result = cli("explain", str(chelsea), "--kernel", text, "--max-side", "64", "--json")
    assert result.code == 0, result.err
    explained = json.loads(result.out)
    assert np.array(explained["kernel"]).shape[-2:] == (31, 31)
    patch = np.array(explained["patch"], dtype=np.float64).reshape(31, 31)
    weights = np.array(explained["kernel"], dtype=np.float64).reshape(31, 31)
    assert explained["conv"] == pytest.approx(float((patch * weights).sum()), abs=1e-4)


def test_an_unknown_name_points_to_each_surfaces_list_of_kernels(cli):
    with pytest.raises(KernelError) as caught:
        get_kernel("qqqqqqqq")
    assert str(caught.value) == "unknown kernel 'qqqqqqqq'; see list_kernels()"
    assert caught.value.worded("page") == "unknown kernel 'qqqqqqqq'; see the kernel menu"
    result = cli("run", "--kernels", "qqqqqqqq")
    assert result.code == 2
    assert result.err == "error: unknown kernel 'qqqqqqqq'; see `convlens kernels`\n"
