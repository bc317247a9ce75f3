"""The conv -> activation -> pool layer against SciPy, OpenCV and NumPy, and the size formula."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from convlens.config import LayerConfig, parse_padding
from convlens.errors import ConfigError
from convlens.images import load_image
from convlens.kernels import get_kernel, list_kernels, parse_kernel
from convlens.layers import check_layer_budget, compute_stages
from convlens.limits import BudgetError, use_budget
from convlens.reference import FixedConvLayer
from convlens.sizes import output_size, same_padding

# torch padding mode -> (scipy.ndimage mode, OpenCV border)
BORDERS = {
    "zeros": ("constant", cv2.BORDER_CONSTANT),
    "reflect": ("mirror", cv2.BORDER_REFLECT_101),
    "replicate": ("nearest", cv2.BORDER_REPLICATE),
    "circular": ("wrap", cv2.BORDER_WRAP),
}


@pytest.fixture(scope="module")
def gray(chelsea) -> torch.Tensor:
    return load_image(chelsea)


def _scipy_conv(image: np.ndarray, kernel: np.ndarray, padding: str, mode: str,
                stride: int) -> np.ndarray:
    """Oracle: SciPy's centred correlation, cropped for 'valid', subsampled for stride."""
    full = ndimage.correlate(image.astype(np.float64), kernel.astype(np.float64),
                             mode=BORDERS[mode][0], cval=0.0)
    if padding == "valid":
        half_h, half_w = kernel.shape[0] // 2, kernel.shape[1] // 2
        full = full[half_h: full.shape[0] - half_h, half_w: full.shape[1] - half_w]
    return full[::stride, ::stride]


@pytest.mark.parametrize("name", list_kernels())
@pytest.mark.parametrize(
    ("padding", "mode", "stride"),
    [("valid", "zeros", 1), ("same", "zeros", 1), ("same", "reflect", 1), ("valid", "zeros", 2),
     ("same", "replicate", 3), ("same", "circular", 1)],
)
def test_conv_of_every_builtin_kernel_matches_scipy(gray, name, padding, mode, stride):
    kernel = get_kernel(name)
    config = LayerConfig(padding=padding, padding_mode=mode, stride=stride, pool=None)
    stages = compute_stages(gray, [kernel], config, device="cpu")
    expected = _scipy_conv(gray[0].numpy(), kernel.as_2d(), padding, mode, stride)
    assert stages.conv.shape[1:] == expected.shape
    np.testing.assert_allclose(stages.conv[0].numpy(), expected, atol=2e-5)


@pytest.mark.parametrize("name", ["sobel-h", "laplacian", "sobel-v", "gaussian-5", "emboss"])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate"])  # filter2D has no wrap
def test_same_conv_matches_opencv_filter2d(gray, name, mode):
    kernel = get_kernel(name).as_2d()
    config = LayerConfig(padding="same", padding_mode=mode, pool=None)
    stages = compute_stages(gray, [get_kernel(name)], config, device="cpu")
    expected = cv2.filter2D(gray[0].numpy(), cv2.CV_32F, kernel, borderType=BORDERS[mode][1])
    np.testing.assert_allclose(stages.conv[0].numpy(), expected, atol=2e-5)


def test_all_three_tutorial_kernels_in_one_layer(gray):
    names = ["sobel-h", "laplacian", "sobel-v"]
    stages = compute_stages(gray, [get_kernel(n) for n in names], LayerConfig(), device="cpu")
    assert stages.kernel_names == names
    assert tuple(stages.conv.shape) == (3, 298, 449)
    assert tuple(stages.pooled.shape) == (3, 149, 224)
    for index, name in enumerate(names):
        expected = _scipy_conv(gray[0].numpy(), get_kernel(name).as_2d(), "valid", "zeros", 1)
        np.testing.assert_allclose(stages.conv[index].numpy(), expected, atol=2e-5)


def test_dilation_matches_scipy_with_a_spread_kernel(gray):
    kernel = get_kernel("sobel-v").as_2d()
    spread = np.zeros((5, 5), dtype=np.float32)
    spread[::2, ::2] = kernel
    stages = compute_stages(gray, [get_kernel("sobel-v")], LayerConfig(dilation=2, pool=None),
                            device="cpu")
    expected = _scipy_conv(gray[0].numpy(), spread, "valid", "zeros", 1)
    np.testing.assert_allclose(stages.conv[0].numpy(), expected, atol=2e-5)


def test_rgb_kernel_sums_over_channels(chelsea):
    rgb = load_image(chelsea, mode="rgb")
    weights = np.random.default_rng(3).normal(size=(3, 3, 3)).astype(np.float32)
    stages = compute_stages(rgb, [parse_kernel(weights)], LayerConfig(pool=None), device="cpu")
    expected = sum(
        _scipy_conv(rgb[c].numpy(), weights[c], "valid", "zeros", 1) for c in range(3)
    )
    np.testing.assert_allclose(stages.conv[0].numpy(), expected, atol=5e-5)


@pytest.mark.parametrize(
    ("activation", "oracle"),
    [
        ("relu", lambda x: np.maximum(x, 0)),
        ("leaky-relu", lambda x: np.where(x > 0, x, 0.01 * x)),
        ("tanh", np.tanh),
        ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
        ("abs", np.abs),
        ("none", lambda x: x),
    ],
)
def test_activations_match_numpy(gray, activation, oracle):
    stages = compute_stages(gray, [get_kernel("laplacian")],
                            LayerConfig(activation=activation, pool=None), device="cpu")
    np.testing.assert_allclose(stages.activated.numpy(), oracle(stages.conv.numpy()),
                               atol=1e-6, rtol=1e-6)


def _numpy_pool(maps: np.ndarray, size: int, stride: int, reduce) -> np.ndarray:
    count, height, width = maps.shape
    out_h, out_w = (height - size) // stride + 1, (width - size) // stride + 1
    out = np.empty((count, out_h, out_w), dtype=np.float64)
    for row in range(out_h):
        for col in range(out_w):
            window = maps[:, row * stride: row * stride + size, col * stride: col * stride + size]
            out[:, row, col] = reduce(window.reshape(count, -1), axis=1)
    return out


@pytest.mark.parametrize(("pool", "pool_stride", "pool_type"),
                         [(2, None, "max"), (3, 2, "max"), (2, None, "avg"), (3, 1, "avg")])
def test_pooling_matches_numpy(gray, pool, pool_stride, pool_type):
    small = gray[:, :60, :80]
    config = LayerConfig(pool=pool, pool_stride=pool_stride, pool_type=pool_type)
    stages = compute_stages(small, [get_kernel("sobel-h"), get_kernel("sobel-v")], config,
                            device="cpu")
    reduce = np.max if pool_type == "max" else np.mean
    expected = _numpy_pool(stages.activated.numpy(), pool, pool_stride or pool, reduce)
    np.testing.assert_allclose(stages.pooled.numpy(), expected, atol=1e-6)


def test_no_pool_keeps_the_activated_map(gray):
    stages = compute_stages(gray, [get_kernel("sobel-h")], LayerConfig(pool="none"), device="cpu")
    assert torch.equal(stages.pooled, stages.activated)


def test_bias_is_added_per_kernel(gray):
    kernels = [get_kernel("identity"), get_kernel("identity")]
    stages = compute_stages(gray, kernels, LayerConfig(bias=(0.5, -1.0), activation="none",
                                                       pool=None), device="cpu")
    expected = gray[0, 1:-1, 1:-1].numpy()
    np.testing.assert_allclose(stages.conv[0].numpy(), expected + 0.5, atol=1e-6)
    np.testing.assert_allclose(stages.conv[1].numpy(), expected - 1.0, atol=1e-6)


def test_tutorial_worked_example_is_444():
    patch = np.array([[88, 126, 145], [86, 125, 142], [85, 124, 141]], dtype=np.uint8)
    kernel = parse_kernel("1 0 1; 1 1 0; 0 0 0")
    stages = compute_stages(load_image(patch), [kernel], LayerConfig(pool=None), device="cpu")
    assert tuple(stages.conv.shape) == (1, 1, 1)
    assert float(stages.conv[0, 0, 0]) * 255 == pytest.approx(444, abs=1e-3)


def test_tutorial_output_size_example():
    assert output_size(5, 3, padding=0, stride=1) == 3


def test_stage_summary_counts_what_relu_zeroed():
    image = torch.tensor([[[0.0, 1.0, 0.0, 1.0]]])
    stages = compute_stages(image, [parse_kernel("1 -1")], LayerConfig(pool=None), device="cpu")
    # conv = [-1, 1, -1]: ReLU zeroes two of the three values
    activated = next(row for row in stages.summary() if row.stage == "activated")
    assert activated.zeroed == pytest.approx(2 / 3)


def test_forward_returns_every_stage_named():
    layer = FixedConvLayer(torch.ones(2, 1, 3, 3), LayerConfig())
    out = layer(torch.rand(1, 1, 10, 10))
    assert out._fields == ("conv", "activated", "pooled")
    assert out.conv.shape == (1, 2, 8, 8) and out.pooled.shape == (1, 2, 4, 4)
    assert not any(p.requires_grad for p in layer.parameters())


@settings(max_examples=120, deadline=None)
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    padding=st.integers(0, 4),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
)
def test_output_size_matches_real_conv2d(size, kernel, padding, stride, dilation):
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    try:
        expected = conv(torch.zeros(1, 1, size, size)).shape[-1]
    except RuntimeError:
        with pytest.raises(ConfigError, match="no output"):
            output_size(size, kernel, padding, stride, dilation)
        return
    assert output_size(size, kernel, padding, stride, dilation) == expected


@settings(max_examples=120, deadline=None)
@given(size=st.integers(1, 40), kernel=st.integers(1, 6), stride=st.integers(1, 4),
       ceil=st.booleans())
def test_pool_output_size_matches_real_maxpool(size, kernel, stride, ceil):
    pool = nn.MaxPool2d(kernel, stride, ceil_mode=ceil)
    try:
        expected = pool(torch.zeros(1, 1, size, size)).shape[-1]
    except RuntimeError:
        with pytest.raises(ConfigError):
            output_size(size, kernel, 0, stride, ceil_mode=ceil)
        return
    assert output_size(size, kernel, 0, stride, ceil_mode=ceil) == expected


@settings(max_examples=60, deadline=None)
@given(height=st.integers(3, 30), width=st.integers(3, 30), kh=st.integers(1, 5),
       kw=st.integers(1, 5), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       pool=st.sampled_from([None, 2, 3]))
def test_stage_shapes_follow_the_formula(height, width, kh, kw, stride, dilation, pool):
    config = LayerConfig(stride=stride, dilation=dilation, pool=pool, padding="same")
    kernel = parse_kernel(np.ones((kh, kw), dtype=np.float32))
    image = torch.rand(1, height, width)
    try:
        stages = compute_stages(image, [kernel], config, device="cpu", backend="torch")
    except ConfigError:
        assert pool is not None  # only a pool larger than the map may refuse 'same' padding
        return
    assert stages.conv.shape[1:] == (-(-height // stride), -(-width // stride))
    for step in stages.sizes:
        assert "=" in step.formula()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (dict(stride=0), "stride must be at least 1"),
        (dict(dilation=0), "dilation must be at least 1"),
        (dict(padding=-1), "padding must be >= 0"),
        (dict(padding="wide"), "padding must be"),
        (dict(padding_mode="mirror"), "padding mode must be one of"),
        (dict(activation="gelu"), "activation must be one of"),
        (dict(pool="big"), "pool must be"),
        (dict(pool_type="min"), "pool type must be one of"),
    ],
)
def test_bad_settings_are_named(config, message):
    with pytest.raises(ConfigError, match=message):
        LayerConfig(**config)


def test_kernel_larger_than_padded_image_is_explained():
    with pytest.raises(ConfigError, match="no output: the kernel spans 7 px"):
        compute_stages(torch.rand(1, 5, 5), [parse_kernel(np.ones((7, 7)))], LayerConfig(),
                       device="cpu")


def test_pool_larger_than_map_is_explained():
    with pytest.raises(ConfigError, match="pool window 4x4 is larger"):
        compute_stages(torch.rand(1, 5, 5), [get_kernel("identity")], LayerConfig(pool=4),
                       device="cpu")


def test_reflect_padding_wider_than_image_is_explained():
    with pytest.raises(ConfigError, match="reflect padding"):
        compute_stages(torch.rand(1, 2, 2), [get_kernel("gaussian-5")],
                       LayerConfig(padding=2, padding_mode="reflect", pool=None), device="cpu")


def test_same_padding_keeps_the_size_and_puts_the_extra_cell_last():
    assert same_padding(3) == (1, 1)
    assert same_padding(4) == (1, 2)
    assert same_padding(3, dilation=2) == (2, 2)
    assert parse_padding("valid") == 0 and parse_padding("3") == 3


@pytest.mark.slow
def test_an_8000x6000_photo_with_16_kernels_runs():
    """The issue's memory bound: a 48 Mpx photo through 16 kernels (about 7 GB of stages) fits
    this 24 GiB machine, with the budget raised past the 4 GiB default that refuses it. Spot
    regions are checked against SciPy."""
    rng = np.random.default_rng(8)
    photo = load_image(rng.integers(0, 256, (6000, 8000), dtype=np.uint8))
    names = list_kernels()[:16]
    with pytest.raises(BudgetError, match="6000x8000 maps"):
        check_layer_budget(photo[None].shape, (16, 1, 5, 5), LayerConfig(padding="same"))
    with use_budget("12G"):
        stages = compute_stages(photo, [get_kernel(n) for n in names],
                                LayerConfig(padding="same"), device="cpu")
    assert tuple(stages.conv.shape) == (16, 6000, 8000)
    assert tuple(stages.pooled.shape) == (16, 3000, 4000)
    for index in (0, 7, 15):
        patch = photo[0, 2990:3030, 3990:4030].numpy().astype(np.float64)
        kernel = get_kernel(names[index]).as_2d().astype(np.float64)
        expected = ndimage.correlate(patch, kernel, mode="constant")[4:-4, 4:-4]
        np.testing.assert_allclose(stages.conv[index, 2994:3026, 3994:4026].numpy(), expected,
                                   atol=3e-5)
