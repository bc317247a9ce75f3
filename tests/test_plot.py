"""Figures hold the data they claim: numbers in kernel cells, ranges, centred colour maps."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.colors import TwoSlopeNorm
from PIL import Image

from convlens.display import stages_png
from convlens.images import downsample_for_display
from convlens.kernels import common_denominator, get_kernel, kernel_bank, parse_kernels
from convlens.numbers import format_number
from convlens.plot import (
    plot_image,
    plot_kernels,
    plot_maps,
)


def _png(figure) -> Image.Image:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    buffer.seek(0)
    return Image.open(buffer)


def test_kernel_cells_carry_their_numbers():
    bank = kernel_bank([get_kernel("sobel-h"), get_kernel("laplacian")], 1)
    figure = plot_kernels(bank, ["sobel-h", "laplacian"])
    first, second = figure.axes[:2]
    assert [t.get_text() for t in first.texts] == ["-1", "-2", "-1", "0", "0", "0", "1", "2", "1"]
    assert [t.get_text() for t in second.texts][4] == "4"
    np.testing.assert_array_equal(first.images[0].get_array(), bank[0, 0].numpy())
    assert _png(figure).size[0] > 200


def test_gaussian_is_written_in_whole_numbers_with_its_factor():
    figure = plot_kernels(kernel_bank([get_kernel("gaussian-3")], 1), ["gaussian-3"])
    ax = figure.axes[0]
    assert "1/16" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == ["1", "2", "1", "2", "4", "2", "1", "2", "1"]


def test_rgb_kernels_get_one_row_per_channel():
    bank = kernel_bank([get_kernel("sobel-v")], 3)
    figure = plot_kernels(bank, ["sobel-v"])
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["sobel-v  (x 1/3) [R]", "sobel-v  (x 1/3) [G]", "sobel-v  (x 1/3) [B]"]


def test_signed_maps_use_a_colour_map_centred_on_zero():
    maps = torch.tensor([[[-3.0, 1.0], [0.0, 2.0]]])
    figure = plot_maps(maps, ["edge"], "conv")
    image = figure.axes[0].images[0]
    assert isinstance(image.norm, TwoSlopeNorm)
    assert image.norm.vcenter == 0 and image.norm.vmin == -image.norm.vmax
    assert image.norm.vmax == pytest.approx(np.percentile([3, 1, 0, 2], 99.5))
    assert "range [-3, 2]" in figure.axes[0].get_title()
    assert "2x2" in figure.axes[0].get_title()


def test_one_panel_per_map_and_spare_axes_hidden():
    figure = plot_maps(torch.rand(5, 8, 8), [f"k{i}" for i in range(5)], "x")
    visible = [ax for ax in figure.axes if ax.get_visible() and ax.images]
    assert len(visible) == 5
    assert [ax.get_title().split()[0] for ax in visible] == ["k0", "k1", "k2", "k3", "k4"]


def test_large_maps_are_area_averaged_for_display_only():
    data = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    shown, factor = downsample_for_display(data, max_side=2)
    assert factor == 2
    np.testing.assert_allclose(shown[0], [[2.5, 4.5], [10.5, 12.5]])
    figure = plot_maps(torch.rand(1, 2000, 100), ["tall"], max_side=500)
    assert "drawn at 1/4" in figure.axes[0].get_title()


def test_image_figure_states_its_size():
    figure = plot_image(torch.rand(3, 10, 20), "photo")
    assert "3x10x20" in figure.axes[0].get_title()


def test_number_formatting():
    assert format_number(2.0) == "2"
    assert format_number(-0.5) == "-0.5"
    assert format_number(0.0625) == "0.0625"
    assert common_denominator(np.array([1, 2, 1]) / 16) == 16
    assert common_denominator(np.array([0.3333333, 0.1234567])) == 1


def test_overview_has_a_row_per_kernel_and_stages_display_in_notebooks():
    from convlens.config import LayerConfig
    from convlens.kernels import parse_kernels
    from convlens.layers import compute_stages
    from convlens.plot import plot_overview

    image = torch.rand(1, 20, 24)
    stages = compute_stages(image, parse_kernels(["sobel-h", "sobel-v"]), LayerConfig(),
                            device="cpu")
    figure = plot_overview(stages)
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible() and ax.images]
    assert titles[0] == "input 1x20x24"
    assert "sobel-v" in titles and sum(t.startswith("pooled 9x11") for t in titles) == 2
    png = stages_png(stages)
    assert png.startswith(b"\x89PNG") and Image.open(io.BytesIO(png)).size[0] > 300


def test_predictions_figure_tells_a_near_certain_class_from_a_sure_one():
    from convlens.models import Prediction
    from convlens.plot.models import plot_predictions

    figure = plot_predictions([Prediction(0, "cat", 0.9996), Prediction(1, "dog", 0.0004)])
    written = {text.get_text() for text in figure.axes[0].texts}
    assert written == {"99.96%", "0.04%"}  # not "100.0%" and "0.0%"


def test_overview_draws_rgb_kernels_per_channel_maps_to_scale_and_one_scale_per_stage():
    from convlens.config import LayerConfig
    from convlens.layers import compute_stages
    from convlens.plot import plot_overview
    from convlens.plot.stages import kernel_strip

    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((3, 24, 32), dtype=np.float32))
    sobel = get_kernel("sobel-v").as_2d()
    rgb = parse_kernels([" | ".join("; ".join(" ".join(str(int(v)) for v in row) for row in grid)
                                    for grid in (sobel, 0 * sobel, -sobel)), "laplacian"])
    stages = compute_stages(image, rgb, LayerConfig(stride=2, pool=2), device="cpu")
    figure = plot_overview(stages)
    axes = figure.axes
    # the RGB kernel: +sobel on R, zeros on G, -sobel on B, all three drawn (not their mean 0)
    drawn = np.ma.filled(axes[1].images[0].get_array(), np.nan)
    np.testing.assert_array_equal(np.nan_to_num(drawn), np.nan_to_num(kernel_strip(
        stages.kernels[0].numpy())))
    assert np.abs(np.nan_to_num(drawn)).max() > 0 and "(R | G | B)" in axes[1].get_title()
    # true relative size: the pooled map spans half the conv map's width in the input frame
    conv_extent, pooled_extent = axes[2].images[0].get_extent(), axes[4].images[0].get_extent()
    assert pooled_extent[1] - pooled_extent[0] == stages.pooled.shape[2]
    assert conv_extent[1] - conv_extent[0] == stages.conv.shape[2]
    assert axes[4].get_xlim() == (0, 32)
    # one scale per stage: both kernels' conv maps share the norm, and a colour bar shows it
    first, second = axes[2].images[0].norm, axes[7].images[0].norm
    assert (first.vmin, first.vmax) == (second.vmin, second.vmax)
    assert "stride 2" in figure.get_suptitle() and "max pool 2x2" in figure.get_suptitle()
    for ax in (axes[2], axes[7]):
        values = stages.conv[0 if ax is axes[2] else 1]
        cut = float(values.abs().max()) > ax.images[0].norm.vmax
        assert ("colours cut at" in ax.get_title()) == cut
    own = plot_overview(stages, scale="map")
    assert "each map its own colour scale" in own.get_suptitle()


def test_stage_maps_say_when_their_colours_are_cut():
    data = np.zeros((1, 50, 50), np.float32)
    data[0, 0, 0] = 10.0
    data[0, 1:, :] = 0.5
    figure = plot_maps(data, ["spike"])
    assert "colours cut at" in figure.axes[0].get_title()
    assert "colours cut" not in plot_maps(np.ones((1, 5, 5)), ["flat"]).axes[0].get_title()


def test_figures_of_the_wrong_shape_say_so_in_one_line():
    from convlens.errors import ConfigError

    with pytest.raises(ConfigError, match=r"expected maps \(K, H, W\); got shape \(1, 2, 3, 4\)"):
        plot_maps(np.zeros((1, 2, 3, 4)))
    with pytest.raises(ConfigError, match="1 or 3 channels; got shape"):
        plot_image(np.zeros((2, 5, 5)))
    with pytest.raises(ConfigError, match=r"expected kernels \(K, C, kh, kw\)"):
        plot_kernels(np.zeros(3))
