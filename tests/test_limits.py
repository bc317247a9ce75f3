"""convlens.limits: the hard limits, the budget, and the estimators that check jobs against it.

Estimates are checked against hand-worked numbers and against the real tensors they predict;
the bounds on the command line run in a subprocess whose address space is capped
(``resource.setrlimit(RLIMIT_AS)``), so a job that tried to allocate its many GB would die
there instead of passing.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convlens import limits
from convlens.config import LayerConfig
from convlens.data import ImageSet, conform
from convlens.errors import ConfigError, KernelError
from convlens.kernels import parse_kernel, parse_kernels
from convlens.layers import check_layer_budget, compute_stages, estimate_layer, run_layer
from convlens.limits import (
    BUDGET_ENV,
    DEFAULT_BUDGET_BYTES,
    MAX_KERNEL_SIDE,
    MAX_KERNELS,
    MAX_LAYER_NUMBER,
    WORK_PER_BYTE,
    BudgetError,
    bounded_int,
    check_at_most,
    check_budget,
    memory_budget,
    parse_budget,
    set_budget,
    use_budget,
)
from convlens.models import create_model
from convlens.numbers import format_bytes
from convlens.plot import plot_kernels, plot_maps, plot_overview
from convlens.plot.stages import bounded_figsize, panel_aspect
from convlens.runs import FIGURE_BYTES, check_run_budget, estimate_run_bytes
from convlens.saliency import check_steps
from convlens.sizes import parse_layers, parse_size, size_chain

GiB = 2**30


@pytest.fixture(autouse=True)
def _default_budget(monkeypatch):
    """Every test starts from the documented default, whatever the environment says."""
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    set_budget(None)
    yield
    set_budget(None)


# ------------------------------------------------------------------------------- the budget
@pytest.mark.parametrize(("text", "size"), [
    ("4G", 4 * GiB), ("4g", 4 * GiB), ("4GiB", 4 * GiB), ("4 GB", 4 * GiB), ("512M", 512 * 2**20),
    ("1.5G", 3 * GiB // 2), ("2T", 2 * 2**40), ("1048576", 2**20), (8 * GiB, 8 * GiB),
    ("none", None), ("OFF", None), ("unlimited", None),
])
def test_budget_texts_read_in_binary_units(text, size):
    assert parse_budget(text) == size


@pytest.mark.parametrize("text", ["12x", "-4G", "G", "", "4G4", "1e9", "0", "100K", "9" * 5000,
                                  True, "nan"])
def test_a_bad_budget_is_one_line(text):
    with pytest.raises(ConfigError, match="budget must") as caught:
        parse_budget(text)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_budget_comes_from_the_setting_then_the_environment_then_the_default(monkeypatch):
    assert memory_budget() == DEFAULT_BUDGET_BYTES == 4 * GiB
    assert limits.work_budget() == 4 * GiB * WORK_PER_BYTE
    monkeypatch.setenv(BUDGET_ENV, "16G")
    assert memory_budget() == 16 * GiB
    set_budget("1G")
    assert memory_budget() == GiB
    with use_budget("none"):
        assert memory_budget() is None and limits.work_budget() is None
        check_budget(10**18, "anything", work=10**18)  # no budget: nothing refused
    assert memory_budget() == GiB
    set_budget(None)
    assert memory_budget() == 16 * GiB
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(ConfigError, match=f"{BUDGET_ENV}: a memory budget must"):
        memory_budget()


def test_check_budget_names_the_need_the_budget_and_the_setting_that_allows_it():
    check_budget(4 * GiB, "a job of exactly the budget")
    with pytest.raises(BudgetError) as caught:
        check_budget(int(12.3 * GiB), "a run of a huge image")
    error = caught.value
    assert str(error) == ("a run of a huge image needs about 12.3 GiB of memory, over the 4 GiB "
                          "budget; make it smaller or raise the budget (CONVLENS_BUDGET=13G)")
    assert (error.needed, error.budget, error.suggested) == (int(12.3 * GiB), 4 * GiB, "13G")
    assert error.hinted("--budget 13G").endswith("(--budget 13G)")
    with use_budget("13G"):
        check_budget(int(12.3 * GiB), "the same run")


def test_work_is_held_to_the_multiply_adds_the_budget_allows():
    allowed = 4 * GiB * WORK_PER_BYTE
    check_budget(1, "a small job", work=allowed)
    with pytest.raises(BudgetError, match=r"needs about 1\.1 T multiply-adds, over the 429 G the "
                       r"4 GiB budget allows.*CONVLENS_BUDGET=11G"):
        check_budget(1, "a long job", work=11 * 10**11)


def test_sizes_and_numbers_print_short():
    assert format_bytes(4 * GiB) == "4 GiB"
    assert format_bytes(1.5 * 2**20) == "1.5 MiB"
    assert format_bytes(300) == "300 bytes"
    with pytest.raises(ConfigError, match=r"^stride is 1180591620717411303424; the limit is 1024$"):
        check_at_most(2**70, 1024, "stride")
    with pytest.raises(ConfigError, match=r"is a 16610-bit number; the limit is 8"):
        check_at_most(10**5000, 8, "width")


def test_bounded_int_refuses_long_digit_runs_before_converting():
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"padding is 999999999999\.\.\. \(100000 digits\); "
                                          r"the limit is 1024"):
        bounded_int("9" * 100_000, 1024, "padding")
    assert time.perf_counter() - started < 0.5
    assert bounded_int(" 0007 ", 1024, "padding") == 7
    assert bounded_int("-3", 1024, "padding") == -3  # the caller words the lower bound
    with pytest.raises(ConfigError, match="padding is 1025; the limit is 1024"):
        bounded_int("1025", 1024, "padding")
    with pytest.raises(ValueError):
        bounded_int("12a", 1024, "padding")


# ------------------------------------------------------------------------------ hard limits
def test_one_kernel_side_everywhere():
    from convlens.serve import limits as page

    assert page.MAX_KERNEL_SIDE is MAX_KERNEL_SIDE == 31
    assert parse_kernel("; ".join([" ".join(["1"] * 31)] * 31)).size == (31, 31)  # inline
    with pytest.raises(KernelError, match=r"is 32x3; the largest supported side is 31"):
        parse_kernel(np.ones((32, 3)))


@pytest.mark.parametrize("settings_", [
    {"stride": 2**70}, {"dilation": 1025}, {"pool": 2**70}, {"pool_stride": 2**70},
    {"padding": 100_000}, {"padding": 2**70}, {"padding": "9" * 5000}, {"padding": "100000"},
    {"padding": (0, 0, 2**70, 0)}, {"pool": "1" * 5000},
])
def test_layer_numbers_over_the_limit_are_one_line(settings_):
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"the limit is {MAX_LAYER_NUMBER}") as caught:
        LayerConfig(**settings_)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 160
    assert time.perf_counter() - started < 0.5


def test_layer_numbers_at_the_limit_are_taken():
    config = LayerConfig(stride=1024, padding=1024, dilation=1024, pool=1024, pool_stride=1024)
    assert (config.stride, config.padding, config.pool) == (1024, 1024, 1024)


def test_size_chains_are_bounded_too():
    with pytest.raises(ConfigError, match=r"layer 1 .*: the conv window is 9999.*\(5000 digits\)"):
        parse_layers("conv" + "9" * 5000)
    with pytest.raises(ConfigError, match=r"layer 2 .*: stride is 2000; the limit is 1024"):
        parse_layers("conv3, pool2 s2000")
    with pytest.raises(ConfigError, match=r"input size is 9999.*\(5000 digits\); the limit is "
                                          r"65536"):
        size_chain("9" * 5000, "conv3")
    with pytest.raises(ConfigError, match="the limit is 65536"):
        parse_size((70_000, 3))
    assert size_chain(65_536, "conv3 p1 s2, pool1024").output_size == (32, 32)


def test_more_kernels_than_the_limit_are_refused_before_any_work():
    kernels = parse_kernels(["sobel-h"] * 500)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"number of kernels is 500; the limit is {MAX_KERNELS}"):
        compute_stages(torch.rand(1, 64, 64), kernels, LayerConfig())
    with pytest.raises(ConfigError, match="number of kernels is 33"):
        run_layer(torch.rand(1, 1, 8, 8), torch.ones(33, 1, 3, 3), LayerConfig())
    assert time.perf_counter() - started < 1.0
    assert compute_stages(torch.rand(1, 8, 8), kernels[:MAX_KERNELS], LayerConfig()
                          ).conv.shape[0] == MAX_KERNELS


def test_integrated_gradients_steps_are_bounded():
    check_steps(2)
    check_steps(1000)
    with pytest.raises(ConfigError, match="steps is 100000000; the limit is 1000"):
        check_steps(100_000_000)
    with pytest.raises(ConfigError, match="at least 2 steps"):
        check_steps(1)


def test_model_width_and_model_memory_are_bounded():
    assert create_model("tinyvgg", 1, 10, (8, 8), width=16) is not None
    with pytest.raises(ConfigError, match="width is 1000000000; the limit is 1024"):
        create_model("resnet9", 3, 10, (32, 32), width=10**9)
    # resnet9 at width 1000: 1.6 G parameters, 16 bytes each while training; counted, not built
    started = time.perf_counter()
    with pytest.raises(BudgetError, match=r"model 'resnet9' \(1\.\d+ G parameters\) needs about "
                                          r"2\d\.\d GiB"):
        create_model("resnet9", 3, 10, (32, 32), width=1000)
    assert time.perf_counter() - started < 10


def test_a_data_set_is_estimated_before_it_is_resized():
    data = ImageSet(torch.zeros(100, 1, 8, 8, dtype=torch.uint8),
                    torch.zeros(100, dtype=torch.long))
    assert conform(data, None, (16, 16)).images.shape == (100, 1, 16, 16)
    with pytest.raises(BudgetError, match=r"a set of 100 images of 1x20000x20000 needs about "):
        conform(data, None, (20000, 20000))


# ------------------------------------------------------------------------------ estimators
def test_layer_estimate_hand_worked():
    # gray 10x12, two 3x3 kernels, padding 1: conv 10x12, 2x2 pool 5x6
    gray = estimate_layer((1, 10, 12), (2, 1, 3, 3), LayerConfig(padding=1, pool=2))
    assert gray.input_bytes == 4 * 10 * 12 == 480
    assert gray.padded_bytes == 4 * 12 * 14 == 672
    assert gray.output_bytes == 4 * 2 * (2 * 10 * 12 + 5 * 6) == 2160
    assert gray.memory == 480 + 672 + 2160 * 5 // 4 == 3852  # gray keeps torch's result: 5/4
    assert gray.work == 2 * 1 * 9 * 10 * 12 == 2160
    # RGB: the channels-last result is copied once more, so the outputs count twice
    rgb = estimate_layer((3, 10, 12), (2, 3, 3, 3), LayerConfig(padding=1, pool=2))
    assert rgb.memory == 3 * 480 + 3 * 672 + 2 * 2160 == 7776
    assert rgb.work == 2 * 3 * 9 * 10 * 12 == 6480
    # a batch of 4, stride 2, no padding, no pool: conv 4x5
    batch = estimate_layer((4, 1, 10, 12), (1, 1, 3, 3), LayerConfig(stride=2, pool=None))
    assert batch.sizes[0].outputs == (4, 5)
    assert (batch.padded_bytes, batch.output_bytes) == (0, 4 * 4 * 2 * 20)
    # the whole run adds the statistics copy, one figure and, for downloads, the archive
    total, _ = estimate_run_bytes((1, 10, 12), (2, 1, 3, 3), LayerConfig(padding=1))
    assert total == 3852 + 2160 + FIGURE_BYTES
    archive, _ = estimate_run_bytes((1, 10, 12), (2, 1, 3, 3), LayerConfig(padding=1),
                                    archive=True)
    assert archive == total + 2 * (2160 + 480)
    assert 400 * 2**20 < FIGURE_BYTES < 600 * 2**20


@settings(max_examples=60, deadline=None)
@given(channels=st.sampled_from([1, 3]), height=st.integers(1, 3000), width=st.integers(1, 3000),
       kernels=st.integers(1, MAX_KERNELS), side=st.integers(1, 7), stride=st.integers(1, 3),
       padding=st.integers(0, 40), pool=st.sampled_from([None, 2, 3]),
       budget=st.integers(2**20, 2**28))
def test_any_accepted_layer_fits_its_estimate_and_the_budget(
        channels, height, width, kernels, side, stride, padding, pool, budget):
    """A run the check accepts has an estimate under the budget, and the estimate's outputs are
    exactly the bytes of the stages compute_stages returns."""
    config = LayerConfig(stride=stride, padding=padding, pool=pool)
    shape, bank = (channels, height, width), (kernels, channels, side, side)
    with use_budget(budget):
        try:
            estimate = check_layer_budget(shape, bank, config)
        except BudgetError:
            refused = estimate_layer(shape, bank, config)
            assert refused.memory > budget or refused.work > budget * WORK_PER_BYTE
            return
        except ConfigError:
            return  # no output left, or a pool larger than the map: refused for what it is
        assert estimate.memory <= budget and estimate.work <= budget * WORK_PER_BYTE
        if estimate.memory > 2**22:
            return  # the real stages below are made for the smaller cases only
        image = torch.rand(shape)
        weights = [parse_kernel(np.ones((channels, side, side)))] * kernels
        stages = compute_stages(image, weights, config, device="cpu", backend="torch")
    made = sum(t.numel() * 4 for t in (stages.conv, stages.activated))
    made += stages.pooled.numel() * 4 if pool is not None else 0
    assert estimate.output_bytes == made


def test_run_budget_is_checked_from_the_shape_alone():
    started = time.perf_counter()
    with pytest.raises(BudgetError, match=r"a run of a 3x20000x20000 image with 16 7x7 kernels "
                                          r"\(20000x20000 maps\) needs about [\d.]+ GiB"):
        check_run_budget((3, 20000, 20000), (16, 3, 7, 7), LayerConfig(padding="same"))
    assert time.perf_counter() - started < 0.5
    # the page's largest download, 16 RGB 7x7 kernels at 4096 px (10.6 GB before), is refused
    with pytest.raises(BudgetError, match="4096x4096 maps"):
        check_run_budget((3, 4096, 4096), (16, 3, 7, 7), LayerConfig(padding="same"),
                         archive=True)
    check_run_budget((3, 1024, 1024), (16, 3, 7, 7), LayerConfig(padding="same"), archive=True)


# ------------------------------------------------------------------------------ figures
def test_figure_size_and_panel_shape_are_bounded():
    assert bounded_figsize(10, 5) == (10, 5)
    assert bounded_figsize(10, 6000) == pytest.approx((0.1, 60))
    assert panel_aspect(300, 600) == (0.5, False)
    assert panel_aspect(20000, 3) == (4.0, True)
    assert panel_aspect(1, 20000) == (0.25, True)


@pytest.mark.parametrize("shape", [(20000, 3), (3, 20000), (1, 1000), (1000, 1)])
def test_extreme_aspect_maps_are_drawn_at_a_bounded_size(shape):
    maps = np.random.default_rng(0).random((2, *shape)).astype(np.float32)
    figure = plot_maps(maps, ["a", "b"])
    width, height = figure.get_size_inches()
    assert max(width, height) <= limits.MAX_FIGURE_INCHES
    assert 1 / 5 <= height / width <= 5
    assert "(stretched)" in figure.axes[0].get_title()


def test_an_extreme_overview_and_many_kernels_stay_bounded():
    stages = compute_stages(torch.rand(1, 4000, 3), parse_kernels(["sobel-h"] * 8),
                            LayerConfig(padding="same", pool=None))
    figure = plot_overview(stages)
    assert max(figure.get_size_inches()) <= limits.MAX_FIGURE_INCHES
    figure = plot_kernels(np.ones((MAX_KERNELS, 3, 3, 3)))
    width, height = figure.get_size_inches()
    assert max(width, height) <= limits.MAX_FIGURE_INCHES
    assert len([ax for ax in figure.axes if ax.axison]) == MAX_KERNELS * 3
    assert width < 16 * 3  # wrapped: 16 kernels a row, not 32


# ------------------------------------------------------------------------------ the CLI, capped
CAP_BYTES = 3 * GiB


def _capped_cli(folder: Path, *args: str, env: dict | None = None) -> tuple[int, str, float]:
    """``convlens ARGS`` in a subprocess whose address space is capped at 3 GiB."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))

    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "convlens", *args], cwd=folder, preexec_fn=cap,
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def _gray_png(path: Path, height: int, width: int) -> Path:
    pixels = np.random.default_rng(1).integers(0, 256, (height, width), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


OUT = ("--out", "result")


@pytest.mark.slow
@pytest.mark.parametrize(("args", "words"), [
    (("run", "wide.png", "--padding", "same", *OUT), "pool window 2x2 is larger than the 1x20000"),
    (("run", "--kernels", ",".join(["sobel-h"] * 500), *OUT),
     "number of kernels is 500; the limit is 32"),
    (("run", "--padding", "100000", *OUT), "padding is 100000; the limit is 1024"),
    (("run", "--stride", str(2**70), *OUT), "stride is 1180591620717411303424; the limit is 1024"),
    (("run", "--pool-stride", str(2**70), *OUT), "pool stride is 1180591620717411303424; the"),
    (("--budget", "64M", "run", *OUT), r"needs about [\d.]+ MiB of memory, over the 64 MiB "
     r"budget.*\(convlens --budget \d+M run \.\.\., or CONVLENS_BUDGET=\d+M\)$"),
    (("size", "--input", "224", "--layers", "conv" + "9" * 5000), r"\(5000 digits\)"),
])
def test_bounds_on_the_command_line_under_a_memory_cap(tmp_path, args, words):
    _gray_png(tmp_path / "wide.png", 1, 20000)
    code, printed, seconds = _capped_cli(tmp_path, *args)
    assert code == 2, printed
    errors = [line for line in printed.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in printed, printed
    assert re.search(words, errors[0]), errors[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["wide.png"]  # nothing written
    assert seconds < 120  # the unbounded versions ran for minutes or died of memory


@pytest.mark.slow
def test_an_extreme_aspect_image_runs_under_the_cap_with_bounded_figures(tmp_path):
    _gray_png(tmp_path / "tall.png", 20000, 3)
    code, printed, _ = _capped_cli(tmp_path, "run", "tall.png", "--padding", "same",
                                   "--no-report", "--out", "result")
    assert code == 0, printed
    for name in ("conv.png", "overview.png", "filters.png"):
        with Image.open(tmp_path / "result" / name) as figure:
            assert max(figure.size) <= limits.MAX_FIGURE_INCHES * 110 + 1


# ------------------------------------------------------------------------------ the page
def test_the_page_refuses_work_over_the_budget_with_one_line():
    import warnings

    from convlens.serve import create_app
    from convlens.serve.guard import TOKEN_HEADER

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    app = create_app()
    body = {"image": "sample-chelsea", "mode": "gray", "max_side": 256,
            "kernels": [{"name": "k", "weights": [[1, 0, -1], [2, 0, -2], [1, 0, -1]]}] * 2,
            "layer": {}}
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as client:
        meta = client.get("/api/meta").json()
        assert meta["limits"]["kernel_side"] == MAX_KERNEL_SIDE
        with use_budget("256M"):  # under one figure's canvas: the figures download is refused
            refused = client.post("/api/download/figures", json=body)
            assert refused.status_code == 400
            error = refused.json()["error"]
            assert re.search(r"a run of a 1x\d+x256 image with 2 3x3 kernels .* over the 256 MiB "
                             r"budget.*CONVLENS_BUDGET=\d+M", error) and "\n" not in error
            assert client.post("/api/stages", json={**body, "client": "t", "seq": 1}
                               ).status_code == 200  # drawing the maps needs far less
        with use_budget("1M"):
            refused = client.post("/api/stages", json={**body, "max_side": 512, "client": "t",
                                                       "seq": 2})  # not drawn yet: computed
            assert refused.status_code == 400 and "over the 1 MiB budget" in refused.json()["error"]
        assert client.post("/api/download/npz", json=body).status_code == 200


def test_the_readme_table_of_limits_is_the_constants():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(MAX_\w+)` \| (\d+) \|", readme, re.MULTILINE)
    assert len(rows) >= 6
    for name, value in rows:
        assert getattr(limits, name) == int(value), name
    assert f"{DEFAULT_BUDGET_BYTES // GiB} GiB of memory per job" in readme
