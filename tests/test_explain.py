"""One pixel / one pooled cell worked out, against PyTorch's stages, NumPy padding and SciPy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from convlens.config import Activation, LayerConfig
from convlens.errors import ConfigError
from convlens.explain import (
    explain_pixel,
    explain_pooled,
    pool_winners,
    pooled_cells_of,
)
from convlens.images import load_image
from convlens.kernels import kernel_array, kernel_bank, parse_kernel, parse_kernels
from convlens.layers import compute_stages
from convlens.sizes import resolve_padding

TUTORIAL_PATCH = [[88, 126, 145], [86, 125, 142], [85, 124, 141]]
TUTORIAL_KERNEL = "1 0 1; 1 1 0; 0 0 0"
# torch padding mode -> (NumPy np.pad mode, SciPy ndimage mode)
MODES = {"zeros": ("constant", "constant"), "reflect": ("reflect", "mirror"),
         "replicate": ("edge", "nearest"), "circular": ("wrap", "wrap")}
CONFIGS = [
    dict(padding=0, stride=1, dilation=1),
    dict(padding=1, stride=2, dilation=1),
    dict(padding="same", stride=1, dilation=2),
    dict(padding=3, stride=3, dilation=2),
    dict(padding=(2, 0, 1, 3), stride=2, dilation=1),
]


def _random_image(seed: int, channels: int = 1, size=(23, 31)) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return load_image(rng.integers(0, 256, (*size, 3) if channels == 3 else size,
                                   dtype=np.uint8), "rgb" if channels == 3 else "gray")


def _kernels(seed: int, size=(3, 3), count: int = 2):
    rng = np.random.default_rng(seed)
    return [parse_kernel(rng.integers(-3, 4, size).astype(float)) for _ in range(count)]


def _numpy_patch(image: np.ndarray, config: LayerConfig, kernel_size, row: int, col: int):
    """Oracle: np.pad in the matching mode, then a strided, dilated slice."""
    top, bottom, left, right = resolve_padding(config, *image.shape[1:], kernel_size)
    mode = MODES[config.padding_mode.value][0]
    padded = np.pad(image, ((0, 0), (top, bottom), (left, right)), mode=mode)
    d, s = config.dilation, config.stride
    return padded[:, row * s: row * s + d * (kernel_size[0] - 1) + 1: d,
                  col * s: col * s + d * (kernel_size[1] - 1) + 1: d]


def test_tutorial_example_is_444():
    patch = torch.tensor([TUTORIAL_PATCH], dtype=torch.float32) / 255
    weights = kernel_bank([parse_kernel(TUTORIAL_KERNEL)], 1)
    result = explain_pixel(patch, weights, LayerConfig(pool=None), 0, 0, 0)
    assert result.sum_lines() == [
        "(88×1 + 126×0 + 145×1) + (86×1 + 125×1 + 142×0) + (85×0 + 124×0 + 141×0)",
        "233 + 211 + 0",
        "444",
    ]
    assert result.total * 255 == pytest.approx(444, abs=1e-3)
    data = result.to_dict()
    json.dumps(data)
    assert data["sum_raw"] == pytest.approx(444, abs=1e-3)
    assert data["activated"] == pytest.approx(444 / 255, rel=1e-6)
    assert data["pooled_cell"] is None
    assert np.allclose(np.array(data["products"][0]) * 255,
                       np.array(TUTORIAL_PATCH) * np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0]]),
                       atol=1e-3)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("settings_", CONFIGS, ids=lambda c: str(c))
def test_pixel_matches_stages_and_numpy_padding(mode, settings_):
    image = _random_image(hash((mode, str(settings_))) % 1000)
    kernels = _kernels(7)
    config = LayerConfig(padding_mode=mode, pool=2, **settings_)
    stages = compute_stages(image, kernels, config, device="cpu", backend="torch")
    rng = np.random.default_rng(1)
    _, height, width = stages.conv.shape
    for _ in range(6):
        k = int(rng.integers(0, 2))
        row, col = int(rng.integers(0, height)), int(rng.integers(0, width))
        e = explain_pixel(image, stages.kernels, config, k, row, col)
        assert e.value == pytest.approx(float(stages.conv[k, row, col]), abs=1e-5)
        assert e.activated == pytest.approx(float(stages.activated[k, row, col]), abs=1e-5)
        oracle = _numpy_patch(image.numpy(), config, (3, 3), row, col)
        assert np.allclose(e.patch, oracle, atol=1e-7)
        assert np.allclose(e.products, oracle * stages.kernels[k].numpy(), atol=1e-6)
        # padded cells are exactly the taps outside the image
        rows, cols = np.array(e.input_rows), np.array(e.input_cols)
        outside = ((rows < 0) | (rows >= image.shape[1]))[:, None] | (
            (cols < 0) | (cols >= image.shape[2]))[None, :]
        assert (e.padded == outside).all()
        for fed in e.pooled:
            pooled = float(stages.pooled[(k, *fed["cell"])])
            assert fed["value"] == pytest.approx(pooled, abs=1e-5)


def test_rgb_pixel_and_bias_match_stages():
    image = _random_image(3, channels=3)
    kernels = [parse_kernel("sobel-h"), parse_kernel(np.arange(27.0).reshape(3, 3, 3) / 27)]
    config = LayerConfig(padding=1, stride=2, bias=(0.25, -0.5), activation="leaky-relu")
    stages = compute_stages(image, kernels, config, device="cpu", backend="torch")
    for k, row, col in ((0, 0, 0), (1, 5, 7), (1, 11, 15), (0, 3, 2)):
        e = explain_pixel(image, stages.kernels, config, k, row, col)
        assert e.patch.shape == (3, 3, 3)
        assert e.value == pytest.approx(float(stages.conv[k, row, col]), abs=1e-5)
        assert e.activated == pytest.approx(float(stages.activated[k, row, col]), abs=1e-5)
        assert e.bias == config.bias[k]
        assert "R: (" in e.sum_lines()[0]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dilation", [1, 2])
def test_flip_is_scipy_convolve(mode, dilation):
    rng = np.random.default_rng(dilation)
    image = _random_image(11 + dilation, size=(19, 21))
    kernel = rng.normal(size=(3, 5))
    config = LayerConfig(padding="same", padding_mode=mode, dilation=dilation, pool=None)
    weights = kernel_bank([parse_kernel(kernel)], 1)
    dilated = np.zeros((dilation * 2 + 1, dilation * 4 + 1))
    dilated[::dilation, ::dilation] = kernel
    oracle = ndimage.convolve(image[0].numpy().astype(np.float64), dilated,
                              mode=MODES[mode][1], cval=0.0)
    for _ in range(8):
        row, col = int(rng.integers(0, 19)), int(rng.integers(0, 21))
        e = explain_pixel(image, weights, config, 0, row, col, flip=True)
        assert e.flipped_total == pytest.approx(oracle[row, col], abs=1e-5)
        assert np.array_equal(e.flipped_weights[0], kernel[::-1, ::-1].astype(np.float32))
        assert e.to_dict()["convolution"]["sum"] == pytest.approx(oracle[row, col], abs=1e-5)


@pytest.mark.parametrize("pool_type", ["max", "avg"])
@pytest.mark.parametrize(("pool", "pool_stride"), [(2, None), (3, 2), (2, 3)])
def test_pooled_cell_matches_stages_and_torch_indices(pool_type, pool, pool_stride):
    image = _random_image(5, size=(26, 29))
    config = LayerConfig(padding=1, pool=pool, pool_type=pool_type, pool_stride=pool_stride)
    stages = compute_stages(image, _kernels(3), config, device="cpu", backend="torch")
    _, indices = F.max_pool2d(stages.activated[None], pool, pool_stride or pool,
                              return_indices=True)
    width = stages.activated.shape[2]
    rng = np.random.default_rng(pool)
    for _ in range(6):
        k = int(rng.integers(0, 2))
        row = int(rng.integers(0, stages.pooled.shape[1]))
        col = int(rng.integers(0, stages.pooled.shape[2]))
        e = explain_pooled(image, stages.kernels, config, k, row, col)
        assert e.value == pytest.approx(float(stages.pooled[k, row, col]), abs=1e-5)
        stride = pool_stride or pool
        window = stages.activated[k, row * stride: row * stride + pool,
                                  col * stride: col * stride + pool].numpy()
        assert np.allclose(e.values, window, atol=1e-5)
        if pool_type == "max":
            flat = int(indices[0, k, row, col])
            assert e.winner == (flat // width, flat % width)
            assert e.mean is None
        else:
            assert e.winner is None
            assert e.mean == pytest.approx(float(window.mean()), abs=1e-6)
        data = e.to_dict()
        json.dumps(data)
        assert data["window"]["rows"] == list(range(row * stride, row * stride + pool))


def test_pixel_says_whether_it_wins_its_window():
    image = _random_image(9, size=(12, 12))
    config = LayerConfig(pool=2)
    stages = compute_stages(image, _kernels(4, count=1), config, device="cpu", backend="torch")
    winners = pool_winners(stages.activated, config)
    for row in range(stages.conv.shape[1] - stages.conv.shape[1] % 2):
        for col in range(stages.conv.shape[2] - stages.conv.shape[2] % 2):
            e = explain_pixel(image, stages.kernels, config, 0, row, col)
            assert e.pooled_cell == (row // 2, col // 2)
            assert e.pooled[0]["wins"] == bool(winners[0, row, col])


def test_pool_winners_against_numpy():
    rng = np.random.default_rng(0)
    maps = torch.from_numpy(rng.normal(size=(2, 9, 11)).astype(np.float32))
    mask = pool_winners(maps, LayerConfig(pool=3, pool_stride=2)).numpy()
    expected = np.zeros_like(mask)
    for k in range(2):
        for i in range(4):
            for j in range(5):
                window = maps[k, 2 * i: 2 * i + 3, 2 * j: 2 * j + 3].numpy()
                r, c = np.unravel_index(np.argmax(window), window.shape)
                expected[k, 2 * i + r, 2 * j + c] = True
    assert (mask == expected).all()
    with pytest.raises(ConfigError, match="max pooling"):
        pool_winners(maps, LayerConfig(pool=2, pool_type="avg"))


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 4), stride=st.integers(1, 4), height=st.integers(4, 20),
       width=st.integers(4, 20), data=st.data())
def test_pooled_cells_of_matches_brute_force(size, stride, height, width, data):
    config = LayerConfig(pool=size, pool_stride=stride)
    shape = ((height - size) // stride + 1, (width - size) // stride + 1)
    row = data.draw(st.integers(0, height - 1))
    col = data.draw(st.integers(0, width - 1))
    expected = [(i, j) for i in range(shape[0]) for j in range(shape[1])
                if i * stride <= row < i * stride + size and j * stride <= col < j * stride + size]
    assert pooled_cells_of(config, shape, row, col) == expected


def test_pixel_in_no_window_has_no_pooled_cell():
    image = _random_image(2, size=(10, 10))
    config = LayerConfig(pool=2, pool_stride=3)
    weights = kernel_bank(_kernels(1, count=1), 1)
    e = explain_pixel(image, weights, config, 0, 2, 2)  # rows 0-1 and 3-4 pool; 2 is skipped
    assert e.pooled == [] and e.pooled_cell is None
    assert e.to_dict()["pooled_cell"] is None


def test_outside_the_map_names_the_valid_range():
    image = _random_image(0, size=(10, 12))
    weights = kernel_bank(_kernels(0), 1)
    config = LayerConfig(pool=2)
    with pytest.raises(ConfigError, match=r"outside the 8x10 conv map: row must be 0\.\.7 and "
                                          r"col 0\.\.9"):
        explain_pixel(image, weights, config, 0, 8, 0)
    with pytest.raises(ConfigError, match=r"0\.\.7"):
        explain_pixel(image, weights, config, 0, -1, 3)
    with pytest.raises(ConfigError, match=r"outside the 4x5 pooled map"):
        explain_pooled(image, weights, config, 0, 0, 5)
    with pytest.raises(ConfigError, match=r"kernel index must be 0\.\.1"):
        explain_pixel(image, weights, config, 2, 0, 0)
    with pytest.raises(ConfigError, match="no pool stage"):
        explain_pooled(image, weights, LayerConfig(pool=None), 0, 0, 0)
    with pytest.raises(ConfigError, match="input channels"):
        explain_pixel(torch.zeros(3, 10, 12), weights, config, 0, 0, 0)


def test_one_pixel_does_not_run_the_whole_convolution(monkeypatch):
    """Hover panels call this per pixel: it must read only the patch, never convolve."""
    image = _random_image(4, size=(40, 40))
    weights = kernel_bank(parse_kernels(["sobel-h", "laplacian"]), 1)

    def forbidden(*args, **kwargs):
        raise AssertionError("full convolution called")

    monkeypatch.setattr(torch.nn.functional, "conv2d", forbidden)
    monkeypatch.setattr("convlens.layers.run_layer", forbidden)
    config = LayerConfig(padding=1, pool=3, pool_stride=2)
    explain_pixel(image, weights, config, 1, 20, 20)
    explain_pooled(image, weights, config, 0, 5, 5)


# --------------------------------------------------------------------------- parts


def test_parts_carry_the_exact_numbers_and_travel_as_json():
    from convlens.explain.parts import Grids, Sentence, WrittenSum, find

    image = _random_image(6, size=(12, 14))
    config = LayerConfig(padding=1, pool=2, bias=(0.25, -0.5))
    weights = kernel_bank(_kernels(6), 1)
    e = explain_pixel(image, weights, config, 1, 0, 3, flip=True)
    parts = e.parts()
    numbers = {span.key: span.value for part in parts if isinstance(part, Sentence)
               for span in part.spans if span.key}
    assert numbers["conv"] == e.value and numbers["activated"] == e.activated
    assert numbers["pooled"] == e.pooled[0]["value"]
    assert numbers["convolution"] == pytest.approx(e.flipped_total + e.bias)
    written = find(parts, "sum")
    assert isinstance(written, WrittenSum) and list(written.lines) == e.sum_lines()
    assert written.total == pytest.approx(e.total * 255)
    (grids,) = [part for part in parts if isinstance(part, Grids) and part.key == "products"]
    patch, normalized, _kernel, products = grids.tables
    np.testing.assert_allclose(patch.array(), e.patch[0] * 255, atol=1e-4)
    np.testing.assert_allclose(products.array(), e.products[0] * 255, atol=1e-9)
    assert (patch.mark_array("padding") == e.padded).all() and normalized.detail
    assert "-0.5" in find(parts, "conv").text and "3 of 9 cells" in find(parts, "padding").text
    data = json.loads(json.dumps(e.to_dict()))
    assert data["what"] == "conv pixel"
    assert [part["kind"] for part in data["parts"]][:3] == ["heading", "sentence", "sentence"]
    assert {part["kind"] for part in data["parts"]} == {"heading", "sentence", "grids", "sum",
                                                        "note"}
    assert data["parts"][1]["text"] == find(parts, "where").text
    pooled = explain_pooled(image, weights, config, 1, 0, 1).to_dict()
    assert pooled["what"] == "pooled cell"
    assert [part["key"] for part in pooled["parts"][1:]] == ["where", "window", "max"]


def test_the_explanation_names_the_input_it_was_worked_on():
    """The page works on a copy shrunk to 1024 px, the CLI on the whole photo: the same (row,
    col) is a different pixel, so every explanation says which input it read."""
    from convlens.explain.parts import find

    weights = kernel_bank(_kernels(2), 1)
    small = explain_pixel(_random_image(1, size=(20, 30)), weights, LayerConfig(), 0, 3, 4)
    assert "in the 18x28 conv map of the 1x20x30 input" in find(small.parts(), "where").text


# --------------------------------------------------------------------------- NumPy, no torch


@pytest.mark.parametrize("kind", list(Activation), ids=lambda kind: kind.value)
def test_numpy_activations_match_the_layers_own_modules(kind):
    """Explanations activate in NumPy; each formula equals PyTorch's module to rounding."""
    from convlens.explain.layer import ACTIVATIONS, activate
    from convlens.reference import make_activation

    assert set(ACTIVATIONS) == set(Activation)
    rng = np.random.default_rng(len(kind.value))
    values = np.concatenate([rng.normal(scale=3, size=500), rng.normal(scale=300, size=100),
                             [0.0, -0.0, 1e-30, -1e-30, 50.0, -50.0, 800.0, -800.0]])
    module = make_activation(kind)
    ours = activate(LayerConfig(activation=kind), values.astype(np.float32))
    with torch.no_grad():
        theirs32 = module(torch.from_numpy(values.astype(np.float32))).numpy()
        theirs64 = module(torch.from_numpy(values)).numpy()
    assert ours.dtype == np.float64 and ours.shape == values.shape
    # float32 input: equal to float32 rounding (torch works in float32, NumPy in float64)
    np.testing.assert_allclose(ours, theirs32, rtol=3e-7, atol=1e-37)
    np.testing.assert_allclose(activate(LayerConfig(activation=kind), values), theirs64,
                               rtol=1e-14, atol=1e-300)
    assert np.isnan(activate(LayerConfig(activation=kind), np.array([np.nan]))).all()


@pytest.mark.parametrize("activation", ["sigmoid", "leaky-relu"])
def test_numpy_inputs_explain_exactly_as_tensors_do(activation):
    image = _random_image(8, channels=3, size=(14, 17))
    kernels = _kernels(5, count=2)
    config = LayerConfig(padding=1, padding_mode="reflect", pool=3, pool_stride=2,
                         bias=(0.5, -0.25), activation=activation)
    tensors = (image, kernel_bank(kernels, 3))
    arrays = (image.numpy(), kernel_array(kernels, 3))
    for k, row, col in ((0, 0, 0), (1, 7, 9), (1, 13, 16)):
        assert (explain_pixel(*arrays, config, k, row, col, flip=True).to_dict()
                == explain_pixel(*tensors, config, k, row, col, flip=True).to_dict())
    for k, row, col in ((0, 0, 0), (1, 3, 4)):
        assert (explain_pooled(*arrays, config, k, row, col).to_dict()
                == explain_pooled(*tensors, config, k, row, col).to_dict())


def test_names_load_with_their_module_and_dir_lists_them():
    import convlens.explain as package

    assert set(package.__all__) <= set(dir(package))
    for name in package.__all__:
        assert getattr(package, name) is getattr(
            __import__(f"convlens.explain.{package._LAZY[name]}", fromlist=[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        package.nothing  # noqa: B018


@settings(max_examples=80, deadline=None)
@given(size=st.integers(1, 4), stride=st.integers(1, 4), height=st.integers(1, 14),
       width=st.integers(1, 14), ties=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_pool_winners_are_torchs_max_pool_indices(size, stride, height, width, ties, seed):
    """The NumPy winners are exactly the pixels torch's ``max_pool2d`` indices point at, ties
    (few distinct values) and NaN included; an array in gives an array, a tensor a tensor."""
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    values = (rng.integers(0, 3, (2, height, width)) if ties
              else rng.normal(size=(2, height, width))).astype(np.float32)
    if height * width > 3:
        values[0, rng.integers(height), rng.integers(width)] = np.nan
    config = LayerConfig(pool=size, pool_stride=stride)
    assume(height >= size and width >= size)
    expected = np.zeros(values.shape, dtype=bool)
    _, indices = F.max_pool2d(torch.from_numpy(values)[None], size, stride, return_indices=True)
    for k in range(2):
        expected[k].flat[indices[0, k].flatten().numpy()] = True
    got = pool_winners(values, config)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(pool_winners(torch.from_numpy(values), config).numpy(),
                                  expected)
