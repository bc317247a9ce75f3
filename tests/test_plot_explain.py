"""The explanation figures hold the numbers they claim: grid texts, arrays, boxes, text panels,
against values worked out by hand (the tutorial's 444, a 2x4 pooling example)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from convlens.config import LayerConfig
from convlens.errors import ConfigError
from convlens.explain import explain_pixel, explain_pooled
from convlens.kernels import kernel_bank, parse_kernel, parse_kernels
from convlens.layers import compute_stages
from convlens.plot.explain import (
    WINNER,
    plot_explanation,
    plot_explanations,
    plot_pooled_explanation,
    plot_winners,
)

TUTORIAL_PATCH = np.array([[88, 126, 145], [86, 125, 142], [85, 124, 141]], dtype=np.float64)
TUTORIAL_KERNEL = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0]], dtype=np.float64)
ACTIVATED = np.array([[1.0, 5.0, 0.0, 2.0], [3.0, 2.0, 7.0, 1.0]], dtype=np.float32) / 10


def _tutorial(config: LayerConfig | None = None, **options):
    patch = torch.from_numpy(TUTORIAL_PATCH / 255).float()[None]
    weights = kernel_bank([parse_kernel("1 0 1; 1 1 0; 0 0 0")], 1)
    return explain_pixel(patch, weights, config or LayerConfig(pool=None), 0, 0, 0, **options)


def _texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


def _boxes(ax, colour: str) -> list[Rectangle]:
    return [patch for patch in ax.patches if isinstance(patch, Rectangle)
            and patch.get_edgecolor() == to_rgba(colour) and not patch.get_fill()]


def test_pixel_figure_writes_the_tutorial_arithmetic():
    figure = plot_explanation(_tutorial())
    patch_ax, kernel_ax, products_ax, text_ax = figure.axes
    assert _texts(patch_ax) == [f"{v:g}" for v in TUTORIAL_PATCH.ravel()]
    assert _texts(kernel_ax) == [f"{v:g}" for v in TUTORIAL_KERNEL.ravel()]
    assert _texts(products_ax) == [f"{v:g}" for v in (TUTORIAL_PATCH * TUTORIAL_KERNEL).ravel()]
    np.testing.assert_allclose(patch_ax.images[0].get_array(), TUTORIAL_PATCH, atol=1e-4)
    np.testing.assert_allclose(products_ax.images[0].get_array(),
                               TUTORIAL_PATCH * TUTORIAL_KERNEL, atol=1e-4)
    panel = " ".join(_texts(text_ax)[0].split())  # the panel's lines wrapped back together
    assert "sum of products = 444 (0-255 units)" in panel
    assert f"divided by 255: 444 / 255 = {444 / 255:.6g}" in panel
    assert f"relu({444 / 255:.6g}) = {444 / 255:.6g}" in panel
    assert "no pool stage" in panel
    assert [ax.get_title() for ax in (patch_ax, kernel_ax, products_ax)] == [
        "patch (0-255)", "× kernel", "= products (0-255)"]


def test_padding_is_hatched_and_true_convolution_turns_the_kernel():
    explanation = _tutorial(LayerConfig(pool=None, padding=1), flip=True)
    figure = plot_explanation(explanation, flip=True)
    axes = figure.axes
    assert len(axes) == 8  # two rows: cross-correlation, then true convolution
    hatched = [p for p in axes[0].patches if p.get_hatch() == "//"]
    assert len(hatched) == int(explanation.padded.sum()) == 5  # the corner pixel's padded taps
    # the patch of the corner pixel: padding row and column, then the tutorial's top-left 2x2
    assert _texts(axes[0]) == ["0", "0", "0", "0", "88", "126", "0", "86", "125"]
    assert _texts(axes[5]) == [f"{v:g}" for v in TUTORIAL_KERNEL[::-1, ::-1].ravel()]
    flipped = explanation.flipped_total * 255
    assert f"sum of products = {flipped:g}" in " ".join(_texts(axes[7])[0].split())


def test_pooled_figure_outlines_the_winner_and_says_the_max():
    image = torch.from_numpy(ACTIVATED)[None]
    identity = kernel_bank([parse_kernel("1")], 1)
    explanation = explain_pooled(image, identity, LayerConfig(pool=2), 0, 0, 1)
    figure = plot_pooled_explanation(explanation)
    _conv_ax, values_ax, text_ax = figure.axes
    assert _texts(values_ax) == ["0", "0.2", "0.7", "0.1"]  # window cols 2..3, rows 0..1
    (box,) = _boxes(values_ax, WINNER)
    assert box.get_xy() == pytest.approx((0 - 0.42, 1 - 0.42))  # col 0, row 1 of the window
    assert "max = 0.7, won by conv pixel (1, 2)" in " ".join(_texts(text_ax)[0].split())

    average = explain_pooled(image, identity, LayerConfig(pool=2, pool_type="avg"), 0, 0, 0)
    panel = " ".join(_texts(plot_pooled_explanation(average).axes[2])[0].split())
    assert f"mean of 4 values = {(0.1 + 0.5 + 0.3 + 0.2) / 4:g}" in panel


def test_explanations_stack_one_subfigure_each():
    image = torch.from_numpy(ACTIVATED)[None]
    identity = kernel_bank([parse_kernel("1")], 1)
    config = LayerConfig(pool=2)
    items = [explain_pixel(image, identity, config, 0, 1, 2),
             explain_pooled(image, identity, config, 0, 0, 1)]
    figure = plot_explanations(items)
    assert len(figure.subfigs) == 2
    pixel_axes, pooled_axes = figure.subfigs[0].axes, figure.subfigs[1].axes
    assert _texts(pixel_axes[0]) == ["178.5"]  # 0.7 x 255 (float32), raw units
    assert "it wins its window" in _texts(pixel_axes[3])[0].replace("\n", " ")
    assert len(_boxes(pooled_axes[1], WINNER)) == 1
    with pytest.raises(ConfigError, match="nothing to plot"):
        plot_explanations([])


def test_winners_figure_draws_the_stages_pooled_cells_and_boxes_the_winners():
    image = torch.from_numpy(np.array([[1, 5, 0, 2, 4, 4], [3, 2, 7, 1, 0, 9],
                                       [6, 0, 0, 0, 8, 1], [2, 2, 3, 5, 1, 1]],
                                      dtype=np.float32) / 10)[None]
    stages = compute_stages(image, parse_kernels(["1"]), LayerConfig(pool=2), device="cpu",
                            backend="torch")
    _full_ax, zoom_ax, pooled_ax = plot_winners(stages).axes
    expected = np.array([[5, 7, 9], [6, 5, 8]]) / 10  # the max of each 2x2 window, by hand
    np.testing.assert_allclose(pooled_ax.images[0].get_array(), expected, atol=1e-6)
    assert _texts(pooled_ax) == [f"{v:.2f}" for v in expected.ravel()]
    winners = {(round(box.get_y() + 0.4), round(box.get_x() + 0.4))
               for box in _boxes(zoom_ax, WINNER)}
    assert winners == {(0, 1), (1, 2), (1, 5), (2, 0), (3, 3), (2, 4)}
    bold = [text.get_text() for text in zoom_ax.texts if text.get_fontweight() == "bold"]
    assert sorted(bold) == sorted(f"{v:.2f}" for v in expected.ravel())
    # the figure draws the run's pooled stage, it does not pool again
    shifted = dataclasses.replace(stages, arrays=stages.arrays._replace(
        pooled=stages.arrays.pooled + 1))
    np.testing.assert_allclose(plot_winners(shifted).axes[2].images[0].get_array(),
                               expected + 1, atol=1e-6)
    with pytest.raises(ConfigError, match="max pooling"):
        plot_winners(dataclasses.replace(stages, config=LayerConfig(pool=2, pool_type="avg")))
