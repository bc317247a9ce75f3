"""The NumPy backend (:mod:`convlens.fused.plain`) against the torch reference and against an
independent oracle: SciPy's ``correlate`` on a dilated kernel, strided afterwards, and pools
written as window reductions in float64.

Random shapes, kernels, strides, dilations, paddings and padding modes, activations, pools and
pool strides, biases and channel counts; the row blocks and threads are forced small so their
edges are exercised on tiny images.
"""

from __future__ import annotations

import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import scipy.ndimage
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlens import fused, layers
from convlens.config import LEAKY_SLOPE, Activation, LayerConfig, PaddingMode, PoolType
from convlens.errors import ConfigError
from convlens.fused import plain
from convlens.kernels import parse_kernels
from convlens.layers import compute_stages, run_layer
from convlens.reference import run_reference
from convlens.sizes import resolve_padding
from layer_cases import fitting_layer

_TORCH_PADDING = {PaddingMode.ZEROS: "constant", PaddingMode.REFLECT: "reflect",
                  PaddingMode.REPLICATE: "replicate", PaddingMode.CIRCULAR: "circular"}

_ACTIVATIONS = {
    Activation.RELU: lambda x: np.maximum(x, 0.0),
    Activation.LEAKY_RELU: lambda x: np.where(x > 0, x, x * LEAKY_SLOPE),
    Activation.TANH: np.tanh,
    Activation.SIGMOID: lambda x: 1.0 / (1.0 + np.exp(-x)),
    Activation.ABS: np.abs,
    Activation.NONE: lambda x: x,
}


def oracle(batch: np.ndarray, weights: np.ndarray, config: LayerConfig):
    """The layer in float64 from SciPy's correlate: the input padded by torch's ``F.pad`` (the
    reference's padding), each kernel dilated by inserting zeros, the 'valid' part of the full
    correlation taken every ``stride`` cells; pools as reductions over strided windows."""
    top, bottom, left, right = resolve_padding(config, batch.shape[2], batch.shape[3],
                                               tuple(weights.shape[2:]))
    padded = torch.nn.functional.pad(torch.from_numpy(batch).double(),
                                     (left, right, top, bottom),
                                     mode=_TORCH_PADDING[config.padding_mode]).numpy()
    d, s = config.dilation, config.stride
    k, c, kh, kw = weights.shape
    dilated = np.zeros((k, c, (kh - 1) * d + 1, (kw - 1) * d + 1))
    dilated[:, :, ::d, ::d] = weights
    span_h, span_w = dilated.shape[2:]
    out_h = (padded.shape[2] - span_h) // s + 1
    out_w = (padded.shape[3] - span_w) // s + 1
    conv = np.zeros((batch.shape[0], k, out_h, out_w))
    for n in range(batch.shape[0]):
        for index in range(k):
            conv[n, index] = _valid(padded[n], dilated[index])[0, ::s, ::s][:out_h, :out_w]
    if config.bias is not None:
        conv += np.asarray(config.bias)[None, :, None, None]
    activated = _ACTIVATIONS[config.activation](conv)
    if config.pool is None:
        return conv, activated, activated
    size, step = config.pool, config.effective_pool_stride or config.pool
    windows = np.lib.stride_tricks.sliding_window_view(activated, (size, size), axis=(2, 3))
    windows = windows[:, :, ::step, ::step]
    reduce = np.max if config.pool_type is PoolType.MAX else np.mean
    return conv, activated, reduce(windows, axis=(-2, -1))


def _valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The 'valid' cross-correlation of ``image`` ``(C, H, W)`` with ``kernel`` ``(C, kh, kw)``,
    summed over channels, from ``scipy.ndimage.correlate``: its output is centred on each
    pixel (the kernel's centre at ``size // 2``), so the valid part starts that far in."""
    c, kh, kw = kernel.shape
    full = scipy.ndimage.correlate(image, kernel, mode="constant", cval=0.0)
    centre = full[c // 2]  # the channel axis is summed whole only at its centre
    rows = image.shape[1] - kh + 1
    cols = image.shape[2] - kw + 1
    return centre[None, kh // 2: kh // 2 + rows, kw // 2: kw // 2 + cols]


@st.composite
def layer_cases(draw, max_kernel: int = 5, max_side: int = 20):
    """A batch, weights and a layer configuration that fits them (all sizes small)."""
    n, channels, kernels, kh, kw, height, width, config = fitting_layer(
        draw, max_kernel, max_side)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    batch = rng.standard_normal((n, channels, height, width)).astype(np.float32)
    weights = rng.standard_normal((kernels, channels, kh, kw)).astype(np.float32)
    zeros = draw(st.sampled_from([0.0, 0.3]))  # zero taps are skipped: some kernels have them
    weights[rng.random(weights.shape) < zeros] = 0.0
    weights[rng.random(weights.shape) < 0.2] = 1.0  # +-1 taps add without a multiply
    weights[rng.random(weights.shape) < 0.1] = -1.0
    return batch, weights, config, draw(st.integers(1, 3))


def run_small_blocks(batch, weights, config, threads):
    """The NumPy backend with blocks of one row and every piece of work split over
    ``threads``, so block and thread edges fall everywhere on tiny images."""
    with mock.patch.object(plain, "BLOCK_VALUES", 1), mock.patch.object(plain, "SMALL_WORK", 0):
        return plain.run_layer(batch, weights, config, threads=threads)


def _tolerance(batch, weights, config) -> float:
    bias = max((abs(b) for b in config.bias), default=0.0) if config.bias else 0.0
    scale = float(np.abs(weights).sum(axis=(1, 2, 3)).max()) * float(np.abs(batch).max()) + bias
    return 1e-5 * max(scale, 1.0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(layer_cases())
def test_numpy_backend_matches_scipy_oracle(case):
    batch, weights, config, threads = case
    got = run_small_blocks(batch, weights, config, threads)
    tolerance = _tolerance(batch, weights, config)
    for name, array, expected in zip(("conv", "activated", "pooled"), got,
                                     oracle(batch, weights, config)):
        assert array.dtype == np.float32, name
        assert array.shape == expected.shape, name
        np.testing.assert_allclose(array, expected, rtol=1e-5, atol=tolerance, err_msg=name)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(layer_cases())
def test_numpy_backend_matches_torch_reference(case):
    batch, weights, config, threads = case
    got = run_small_blocks(batch, weights, config, threads)
    expected = run_reference(torch.from_numpy(batch), torch.from_numpy(weights), config,
                             torch.device("cpu"))
    tolerance = _tolerance(batch, weights, config)
    for name, array, tensor in zip(("conv", "activated", "pooled"), got, expected):
        assert array.shape == tuple(tensor.shape), name
        np.testing.assert_allclose(array, tensor.numpy(), rtol=1e-5, atol=tolerance,
                                   err_msg=name)


def test_stages_alias_like_the_reference():
    batch = np.random.default_rng(0).random((1, 1, 9, 9), dtype=np.float32)
    weights = np.ones((2, 1, 3, 3), np.float32)
    none = plain.run_layer(batch, weights, LayerConfig(activation="none", pool=None))
    assert none.activated is none.conv and none.pooled is none.conv
    relu = plain.run_layer(batch, weights, LayerConfig(pool=None))
    assert relu.pooled is relu.activated and relu.activated is not relu.conv


def test_an_all_zero_kernel_gives_zeros_and_its_bias():
    batch = np.random.default_rng(1).random((1, 1, 6, 7), dtype=np.float32)
    got = plain.run_layer(batch, np.zeros((1, 1, 3, 3), np.float32),
                          LayerConfig(activation="none", pool=None, bias=(0.5,)))
    np.testing.assert_array_equal(got.conv, np.full((1, 1, 4, 5), 0.5, np.float32))


def test_nan_and_infinity_propagate_like_the_reference():
    batch = np.random.default_rng(2).random((1, 1, 12, 12), dtype=np.float32)
    batch[0, 0, 3, 4] = np.nan
    batch[0, 0, 9, 9] = np.inf
    weights = np.random.default_rng(3).random((2, 1, 3, 3), dtype=np.float32) + 0.1
    for activation in ("relu", "leaky-relu", "abs"):
        for pool_type in ("max", "avg"):
            config = LayerConfig(activation=activation, pool_type=pool_type)
            got = plain.run_layer(batch, weights, config)
            ref = run_reference(torch.from_numpy(batch), torch.from_numpy(weights), config,
                                torch.device("cpu"))
            for array, tensor in zip(got, ref):
                np.testing.assert_allclose(array, tensor.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("batch", "weights"), [
    (np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 3, 3), np.float32)),
    (np.zeros((1, 3, 8, 8), np.float32), np.zeros((1, 1, 3, 3), np.float32)),
    (np.zeros((1, 8, 8), np.float32), np.zeros((1, 1, 3, 3), np.float32)),
], ids=["float64", "channel-mismatch", "3d-batch"])
def test_unsupported_inputs_fail_clearly(batch, weights):
    assert not plain.supports(batch, weights, LayerConfig())
    with pytest.raises(ConfigError, match="NumPy path takes"):
        plain.run_layer(batch, weights, LayerConfig())


def test_dispatcher_takes_arrays_and_tensors_alike():
    """Arrays in give arrays back, tensors give tensors sharing the arrays' memory, with the
    same numbers, whichever backend is named."""
    rng = np.random.default_rng(4)
    batch = rng.random((1, 1, 20, 30), dtype=np.float32)
    weights = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    config = LayerConfig(pool=2)
    arrays = run_layer(batch, weights, config, "cpu", "numpy")
    assert all(isinstance(array, np.ndarray) for array in arrays)
    for backend in ("numpy", "torch", "auto"):
        tensors = run_layer(torch.from_numpy(batch), torch.from_numpy(weights), config, "cpu",
                            backend)
        assert all(isinstance(tensor, torch.Tensor) for tensor in tensors)
        for array, tensor in zip(arrays, tensors):
            np.testing.assert_allclose(array, tensor.numpy(), rtol=1e-6, atol=1e-6)
    torched = run_layer(batch, weights, config, "cpu", "torch")
    assert all(isinstance(array, np.ndarray) for array in torched)


def test_auto_takes_numpy_for_a_photo_and_fused_for_large_work():
    image = np.random.default_rng(5).random((1, 40, 50), dtype=np.float32)
    kernels = parse_kernels(["sobel-h", "sobel-v"])
    with mock.patch.object(plain, "run_layer", wraps=plain.run_layer) as spy, \
            mock.patch.object(fused, "is_loaded", return_value=False):  # as in a fresh process
        stages = compute_stages(image, kernels, LayerConfig())
    assert spy.call_count == 1
    assert stages.arrays.input is image or np.shares_memory(stages.arrays.input, image)
    batch = image[None]
    weights = np.ones((2, 1, 3, 3), np.float32)
    with mock.patch.object(layers, "FUSED_MIN_MACS", 0):
        assert layers.choose_backend(batch, weights, LayerConfig(), "cpu") == "fused"
    assert layers.choose_backend(batch, weights, LayerConfig(), "cuda") == "torch"
    assert layers.choose_backend(batch.astype(np.float64), weights, LayerConfig(),
                                 "cpu") == "torch"


def test_stage_tensors_share_the_arrays_memory():
    image = np.random.default_rng(6).random((1, 30, 40), dtype=np.float32)
    stages = compute_stages(image, parse_kernels(["sobel-h", "laplacian"]), LayerConfig(pool=2))
    for name in stages.STAGE_NAMES:
        tensor = getattr(stages, name)
        assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
        assert tensor.data_ptr() == getattr(stages.arrays, name).ctypes.data
        assert getattr(stages, name) is tensor  # made once
    assert stages.to_numpy()["conv"] is stages.arrays.conv


def test_compute_stages_on_an_array_imports_no_torch_or_numba():
    code = ("import sys\n"
            "import numpy as np\n"
            "from convlens.config import LayerConfig\n"
            "from convlens.kernels import parse_kernels\n"
            "from convlens.layers import compute_stages\n"
            "image = np.random.default_rng(0).random((1, 300, 450), dtype=np.float32)\n"
            "stages = compute_stages(image, parse_kernels(['sobel-h', 'laplacian']),\n"
            "                        LayerConfig(pool=2))\n"
            "stages.summary()\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numba'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("size", [10, 70_000, 300_001])
def test_value_range_is_min_and_max_read_once(size):
    from convlens.stages import value_range

    values = np.random.default_rng(size).standard_normal(size).astype(np.float32)
    assert value_range(values.reshape(1, 1, -1)) == (float(values.min()), float(values.max()))
    values[size // 2] = np.nan
    low, high = value_range(values)
    assert np.isnan(low) and np.isnan(high)
