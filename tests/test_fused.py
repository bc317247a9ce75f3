"""The fused CPU path against plain ``F.pad`` + ``F.conv2d`` + activation + ``F.*_pool2d``.

Every numba kernel shares one compiled signature, so the first test pays numba's compilation
once per machine (cached on disk afterwards) and every other example runs in well under a
millisecond.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import re
import sys
import threading
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlens import fused
from convlens.config import LEAKY_SLOPE, Activation, LayerConfig, PaddingMode, StageOutputs
from convlens.errors import ConfigError
from convlens.images import load_image
from convlens.kernels import parse_kernels
from convlens.layers import compute_stages
from convlens.sizes import resolve_padding
from layer_cases import fitting_layer

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_pipeline.py"

ACTIVATIONS = {
    Activation.RELU: F.relu,
    Activation.LEAKY_RELU: lambda x: F.leaky_relu(x, LEAKY_SLOPE),
    Activation.TANH: torch.tanh,
    Activation.SIGMOID: torch.sigmoid,
    Activation.ABS: torch.abs,
    Activation.NONE: lambda x: x,
}


def reference(batch: torch.Tensor, weights: torch.Tensor, config: LayerConfig) -> StageOutputs:
    """The layer written with plain torch.nn.functional calls, float64 for a sharp oracle."""
    top, bottom, left, right = resolve_padding(config, batch.shape[2], batch.shape[3],
                                               tuple(weights.shape[2:]))
    mode = "constant" if config.padding_mode is PaddingMode.ZEROS else config.padding_mode.value
    x = F.pad(batch.double(), (left, right, top, bottom), mode=mode)
    bias = None if config.bias is None else torch.tensor(config.bias, dtype=torch.float64)
    conv = F.conv2d(x, weights.double(), bias, stride=config.stride, dilation=config.dilation)
    activated = ACTIVATIONS[config.activation](conv)
    if config.pool is None:
        pooled = activated
    elif config.pool_type.value == "max":
        pooled = F.max_pool2d(activated, config.pool, config.effective_pool_stride)
    else:
        pooled = F.avg_pool2d(activated, config.pool, config.effective_pool_stride)
    return StageOutputs(conv, activated, pooled)


def assert_matches(got: StageOutputs, batch: torch.Tensor, weights: torch.Tensor,
                   config: LayerConfig) -> None:
    """Each stage equals the float64 oracle up to float32 summation error.

    The bound is relative to the largest term a conv value could sum: |w| . |x| over the kernel
    window, plus the bias.
    """
    expected = reference(batch, weights, config)
    bias = max((abs(b) for b in config.bias), default=0.0) if config.bias else 0.0
    scale = float(weights.abs().sum(dim=(1, 2, 3)).max()) * float(batch.abs().max()) + bias
    tolerance = 1e-5 * max(scale, 1.0)
    for name, tensor, oracle in zip(StageOutputs._fields, got, expected):
        assert tensor.dtype == torch.float32, name
        assert tuple(tensor.shape) == tuple(oracle.shape), name
        np.testing.assert_allclose(tensor.double().numpy(), oracle.numpy(), rtol=1e-5,
                                   atol=tolerance, err_msg=name)


@st.composite
def layer_cases(draw, max_kernel: int = 5, max_side: int = 20):
    """A batch, weights and a layer configuration that fits them (all sizes small)."""
    n, channels, kernels, kh, kw, height, width, config = fitting_layer(
        draw, max_kernel, max_side)
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randn(n, channels, height, width, generator=generator)
    weights = torch.randn(kernels, channels, kh, kw, generator=generator)
    return batch, weights, config, draw(st.integers(1, 6)), draw(st.integers(1, 3))


def run_split(batch, weights, config, blocks: int, threads: int) -> StageOutputs:
    """The fused path with each image cut into ``blocks`` row blocks shared by ``threads``
    threads, however small the work (so block edges are exercised on tiny images)."""
    with mock.patch.object(fused, "_blocks_per_image", return_value=blocks), \
            mock.patch.object(fused, "_SMALL_WORK", 0):
        return fused.run_layer(batch, weights, config, threads=threads)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(layer_cases())
def test_fused_matches_functional_reference(case):
    """Random shapes, kernels, strides, dilations, paddings and modes, activations, pools, bias
    and channel counts, cut into a drawn number of row blocks and threads, so that block edges
    (and the rows an overlapping pool window recomputes there) are exercised."""
    batch, weights, config, blocks, threads = case
    assert fused.supports(batch, weights, config)
    assert_matches(run_split(batch, weights, config, blocks, threads), batch, weights, config)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(layer_cases(max_kernel=31, max_side=48))
def test_fused_large_kernels(case):
    batch, weights, config, blocks, threads = case
    assert_matches(run_split(batch, weights, config, blocks, threads), batch, weights, config)


def test_largest_rgb_kernel_with_dilation_and_overlapping_pool():
    generator = torch.Generator().manual_seed(1)
    batch = torch.rand(1, 3, 70, 90, generator=generator)
    weights = torch.randn(2, 3, 31, 29, generator=generator)
    config = LayerConfig(padding="same", padding_mode="reflect", dilation=2, stride=2, pool=5,
                         pool_stride=2, activation="leaky-relu", bias=(0.5, -0.5))
    assert_matches(fused.run_layer(batch, weights, config), batch, weights, config)


def test_tutorial_sobel_on_sample_photo_matches_torch_backend(chelsea):
    """``backend="auto"`` takes the fused path on the CPU, with the reference's numbers."""
    image = load_image(chelsea, mode="rgb")
    kernels = parse_kernels(["sobel-h", "laplacian", "sobel-v"])
    config = LayerConfig(padding="same", pool=3, pool_stride=2, pool_type="avg")
    with mock.patch.object(fused, "run_layer", wraps=fused.run_layer) as spy, \
            mock.patch.object(fused, "is_loaded", return_value=True):
        auto = compute_stages(image, kernels, config, device="cpu", backend="auto")
    assert spy.call_count == 1
    ref = compute_stages(image, kernels, config, device="cpu", backend="torch")
    for name in ("conv", "activated", "pooled"):
        np.testing.assert_allclose(getattr(auto, name).numpy(), getattr(ref, name).numpy(),
                                   rtol=1e-5, atol=1e-5, err_msg=name)
    assert auto.sizes == ref.sizes


def test_stages_alias_like_the_reference():
    """Without an activation the activated stage is the conv tensor, without pooling the pooled
    stage is the activated one: as ``nn.Identity`` makes them in the reference layer."""
    batch, weights = torch.rand(1, 1, 9, 9), torch.randn(2, 1, 3, 3)
    plain = fused.run_layer(batch, weights, LayerConfig(activation="none", pool=None))
    assert plain.activated is plain.conv and plain.pooled is plain.conv
    relu = fused.run_layer(batch, weights, LayerConfig(pool=None))
    assert relu.pooled is relu.activated and relu.activated is not relu.conv


def test_out_buffers_are_reused_and_checked():
    generator = torch.Generator().manual_seed(2)
    batch = torch.rand(2, 1, 33, 40, generator=generator)
    weights = torch.randn(3, 1, 3, 3, generator=generator)
    config = LayerConfig()
    first = fused.run_layer(batch, weights, config)
    pointers = [t.data_ptr() for t in first]
    second = fused.run_layer(batch * 2, weights, config, out=first)
    assert [t.data_ptr() for t in second] == pointers
    assert_matches(second, batch * 2, weights, config)
    with pytest.raises(ConfigError, match=r"out\.pooled must be .* shape \(2, 3, 15, 19\)"):
        fused.run_layer(batch, weights, config,
                        out=StageOutputs(first.conv, first.activated, first.conv))
    with pytest.raises(ConfigError, match="must be separate"):
        fused.run_layer(batch, weights, config,
                        out=StageOutputs(first.conv, first.conv, first.pooled))


@pytest.mark.parametrize(
    ("batch", "weights"),
    [
        (torch.rand(1, 1, 8, 8, dtype=torch.float64), torch.rand(1, 1, 3, 3)),
        (torch.rand(1, 1, 8, 8), torch.rand(1, 1, 3, 3, dtype=torch.float64)),
        (torch.rand(1, 3, 8, 8), torch.rand(1, 1, 3, 3)),
        (torch.rand(1, 1, 40, 40), torch.rand(1, 1, 32, 3)),
        (torch.rand(1, 8, 8), torch.rand(1, 1, 3, 3)),
        (torch.rand(1, 1, 8, 8, requires_grad=True), torch.rand(1, 1, 3, 3)),
    ],
    ids=["float64-batch", "float64-weights", "channel-mismatch", "kernel-32", "3d-batch", "grad"],
)
def test_unsupported_inputs_fall_back_or_fail_clearly(batch, weights):
    assert not fused.supports(batch, weights, LayerConfig())
    with pytest.raises(ConfigError, match="fused path takes"):
        fused.run_layer(batch, weights, LayerConfig())


def test_wide_overlapping_pool_is_left_to_torch():
    batch, weights = torch.rand(1, 1, 200, 200), torch.rand(1, 1, 3, 3)
    assert not fused.supports(batch, weights, LayerConfig(pool=fused.MAX_POOL_OVERLAP + 2,
                                                          pool_stride=1))


def test_bias_count_is_checked():
    with pytest.raises(ConfigError, match="one value per kernel"):
        fused.run_layer(torch.rand(1, 1, 8, 8), torch.rand(2, 1, 3, 3), LayerConfig(bias=(1.0,)))


def test_calls_from_several_threads_at_once():
    """Several callers (a web server's threads) can run the fused path at the same time."""
    generator = torch.Generator().manual_seed(3)
    batch = torch.rand(1, 1, 64, 64, generator=generator)
    weights = torch.randn(4, 1, 5, 5, generator=generator)
    config = LayerConfig(activation="tanh")
    results: list[StageOutputs] = []

    def work() -> None:
        for _ in range(5):
            results.append(fused.run_layer(batch, weights, config, threads=2))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 15
    for result in results:
        assert_matches(result, batch, weights, config)


def _bench_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_pipeline", bench)
    spec.loader.exec_module(bench)
    return bench


AGAINST_OPENCV = re.compile(r"^(W1|W4): convlens \(reused buffers\) is (faster than|slower than|"
                            r"as fast as) OpenCV: (\d+\.\d\d)x as fast \((\S+) ms against "
                            r"(\S+) ms\)", re.MULTILINE)


def test_benchmark_smoke(capsys, monkeypatch):
    """The benchmark runs end to end in quick mode (tiny sizes, two peers, one repeat), and its
    summary against OpenCV says faster or slower as its own times have it."""
    bench = _bench_module(monkeypatch)
    bench.main(["--quick", "--repeats", "1", "--no-cold", "--workloads", "W1,W4",
                "--peers", "opencv,convlens reused", "--threads", "1"])
    out = capsys.readouterr().out
    assert "| W1" in out and "| W4" in out and "convlens reused" in out
    found = AGAINST_OPENCV.findall(out)
    assert [name for name, *_ in found] == ["W1", "W4"]
    for _, verdict, ratio, ours, opencv in found:
        speed = float(opencv) / float(ours)  # 3 significant digits each: within 1%
        assert float(ratio) == pytest.approx(speed, rel=0.011, abs=0.006)
        expected = ("as fast as" if ratio == "1.00" else
                    "faster than" if float(ratio) > 1 else "slower than")
        assert verdict == expected


@pytest.mark.parametrize(("ours", "opencv", "line"), [
    (0.008, 0.010, "is faster than OpenCV: 1.25x as fast (8 ms against 10 ms)"),
    (0.010, 0.008, "is slower than OpenCV: 0.80x as fast (10 ms against 8 ms)"),
    (0.0100, 0.01001, "is as fast as OpenCV: 1.00x as fast (10 ms against 10 ms)"),
    (0.5, 0.0125, "is slower than OpenCV: 0.03x as fast (500 ms against 12.5 ms)"),
])
def test_benchmark_says_slower_when_convlens_takes_longer(monkeypatch, ours, opencv, line):
    assert _bench_module(monkeypatch).against_opencv(ours, opencv) == line


def _pooled_sum_in_child(queue) -> None:
    batch, weights = torch.ones(1, 1, 120, 120), torch.ones(2, 1, 3, 3)
    queue.put(float(fused.run_layer(batch, weights, LayerConfig(), threads=2).pooled.sum()))


def test_forked_child_makes_its_own_threads():
    """A child forked after the parent used its helper threads (a data-loader worker) still
    finishes: it has none of the parent's threads and must start its own."""
    batch, weights = torch.ones(1, 1, 120, 120), torch.ones(2, 1, 3, 3)
    fused.run_layer(batch, weights, LayerConfig(), threads=2)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_pooled_sum_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == pytest.approx(2 * 59 * 59 * 9.0)


@pytest.mark.parametrize("activation", ["relu", "leaky-relu", "abs"])
@pytest.mark.parametrize("pool_type", ["max", "avg"])
def test_nan_and_infinity_propagate_like_the_reference(activation, pool_type):
    batch = torch.rand(1, 1, 12, 12)
    batch[0, 0, 3, 4] = float("nan")
    batch[0, 0, 9, 9] = float("inf")
    weights = torch.rand(2, 1, 3, 3) + 0.1
    config = LayerConfig(activation=activation, pool_type=pool_type)
    got = fused.run_layer(batch, weights, config)
    for name, tensor, oracle in zip(StageOutputs._fields, got, reference(batch, weights, config)):
        np.testing.assert_allclose(tensor.double().numpy(), oracle.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)


def test_auto_loads_the_fused_kernel_only_when_the_work_pays_for_it():
    """A photo-sized one-off stays on the torch reference (no numba load); work above
    ``FUSED_MIN_MACS`` multiply-adds, or any work once the kernel is loaded, goes fused."""
    from convlens import layers

    image = torch.rand(1, 40, 50)
    kernels = parse_kernels(["sobel-h", "sobel-v"])
    with mock.patch.object(fused, "run_layer", wraps=fused.run_layer) as spy, \
            mock.patch.object(fused, "is_loaded", return_value=False):
        compute_stages(image, kernels, LayerConfig(), device="cpu", backend="auto")
        assert spy.call_count == 0
        with mock.patch.object(layers, "FUSED_MIN_MACS", 40 * 50 * 2 * 9):
            compute_stages(image, kernels, LayerConfig(), device="cpu", backend="auto")
        assert spy.call_count == 1
