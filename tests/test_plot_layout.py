"""The figures' fixed layout (convlens.plot.layout): at odd shapes (a 1xN signal, a tall photo,
16 kernels, 31x31 kernels, RGB, pooled and stride-2 maps) every panel, title, tick label and
colour bar lies inside the figure, and no two of them overlap, read from what matplotlib drew
(each axes' tight box after drawing)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.transforms import Bbox

from convlens.config import LayerConfig
from convlens.explain import explain_pixel, explain_pooled
from convlens.kernels import Kernel, parse_kernels
from convlens.layers import compute_stages
from convlens.plot import plot_image, plot_kernels, plot_maps, plot_overview
from convlens.plot.explain import (
    plot_explanation,
    plot_explanations,
    plot_pooled_explanation,
    plot_winners,
)
from convlens.plot.layout import Grid, text_extent

RNG = np.random.default_rng(0)
TOLERANCE = 1.5  # pixels: antialiased edges


def _boxes(figure) -> list[tuple[int, str, Bbox]]:
    """``(owner, what, pixels)`` of everything drawn outside the cells, after drawing
    ``figure``: each axes' frame, title, tick labels and axis label, the texts of text panels
    (axes without a frame), and the suptitles (owner -1)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes: list[tuple[int, str, Bbox]] = []
    axes = list(dict.fromkeys(figure.get_axes() + [ax for sub in figure.subfigs
                                                   for ax in sub.get_axes()]))
    for index, ax in enumerate(axes):
        if not ax.get_visible():
            continue
        if ax.axison:
            boxes.append((index, "frame", ax.get_window_extent(renderer)))
        elif ax.texts:
            boxes += [(index, f"text {text.get_text()[:20]!r}", text.get_window_extent(renderer))
                      for text in ax.texts]
        if ax.get_title():
            boxes.append((index, f"title {ax.get_title()[:30]!r}",
                          ax.title.get_window_extent(renderer)))
        if not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():
                continue
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                if low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    for label in (tick.label1, tick.label2):
                        if label.get_visible() and label.get_text():
                            boxes.append((index, f"tick {label.get_text()!r}",
                                          label.get_window_extent(renderer)))
            if axis.label.get_text():
                boxes.append((index, f"label {axis.label.get_text()!r}",
                              axis.label.get_window_extent(renderer)))
    for owner in [figure, *figure.subfigs]:
        title = getattr(owner, "_suptitle", None)
        if title is not None and title.get_text():
            boxes.append((-1, f"suptitle {title.get_text()[:30]!r}",
                          title.get_window_extent(renderer)))
        for number, text in enumerate(owner.texts):  # a grid's coordinates, say
            if text is not title and text.get_text():
                boxes.append((-2 - number, f"figure text {text.get_text()!r}",
                              text.get_window_extent(renderer)))
    return boxes


def _overlap(first: Bbox, second: Bbox) -> float:
    width = min(first.x1, second.x1) - max(first.x0, second.x0)
    height = min(first.y1, second.y1) - max(first.y0, second.y0)
    return min(width, height)


def assert_laid_out(figure) -> None:
    """Everything drawn is inside the figure and nothing overlaps anything else (a frame and
    its own tick labels may touch), at the dots per inch the figures are saved at."""
    for dpi in (80, 90, 110):
        figure.set_dpi(dpi)
        _assert_laid_out(figure)


def _assert_laid_out(figure) -> None:
    frame = figure.bbox
    boxes = _boxes(figure)
    assert boxes
    for owner, name, box in boxes:
        where = f"axes {owner} {name}"
        assert box.x0 >= frame.x0 - TOLERANCE and box.y0 >= frame.y0 - TOLERANCE, where
        assert box.x1 <= frame.x1 + TOLERANCE and box.y1 <= frame.y1 + TOLERANCE, where
    for index, (owner, name, box) in enumerate(boxes):
        for other_owner, other_name, other in boxes[index + 1:]:
            if owner == other_owner and "frame" in (name, other_name) and "title" not in (
                    name + other_name):
                continue
            assert _overlap(box, other) <= TOLERANCE, (
                f"axes {owner} {name} overlaps axes {other_owner} {other_name}")


def _stages(image: np.ndarray, specs: list[str | Kernel], **config):
    return compute_stages(image.astype(np.float32), parse_kernels(specs), LayerConfig(**config),
                          device="cpu")


def _box_kernel(side: int) -> Kernel:
    return Kernel(f"box-{side}", np.full((1, side, side), 1 / side**2, np.float32))


MAP_SHAPES = {
    "wide photo": (3, 300, 451),
    "tall": (2, 400, 60),
    "1xN signal": (2, 1, 500),
    "Nx1 signal": (2, 500, 1),
    "16 kernels": (16, 40, 50),
    "one map": (1, 64, 64),
}


@pytest.mark.parametrize("shape", MAP_SHAPES.values(), ids=MAP_SHAPES.keys())
def test_stage_maps_are_laid_out(shape):
    data = RNG.normal(size=shape).astype(np.float32)
    data[:, 0, 0] = 40  # a spike: the colours are cut, the bars get arrows
    assert_laid_out(plot_maps(data, [f"kernel {i}" for i in range(shape[0])], "conv",
                              dpi=110))
    assert_laid_out(plot_maps(np.abs(data), None, "", dpi=None))


@pytest.mark.parametrize("shape", [(1, 300, 451), (3, 120, 30), (1, 1, 400)])
def test_input_is_laid_out(shape):
    assert_laid_out(plot_image(RNG.random(shape), "a photo with a long name.jpg"))


@pytest.mark.parametrize("count, channels, side", [(1, 1, 3), (16, 1, 3), (2, 3, 5),
                                                   (3, 1, 31), (20, 1, 3)])
def test_kernels_are_laid_out(count, channels, side):
    weights = RNG.normal(size=(count, channels, side, side)).astype(np.float32)
    assert_laid_out(plot_kernels(weights, [f"k{i}" for i in range(count)]))


OVERVIEWS = {
    "sample-like": (np.random.default_rng(1).random((1, 60, 90)), ["sobel-h", "laplacian"], {}),
    "tall": (np.random.default_rng(2).random((1, 120, 30)), ["sobel-v"], {}),
    "wide 1-row": (np.random.default_rng(3).random((1, 3, 200)), ["sobel-h"],
                   {"padding": "same", "pool": None}),
    "rgb stride 2": (np.random.default_rng(4).random((3, 40, 56)), ["sobel-v", "laplacian"],
                     {"stride": 2, "pool": 2}),
    "16 kernels": (np.random.default_rng(5).random((1, 24, 32)), ["sobel-h"] * 16, {}),
    "31x31 kernel": (np.random.default_rng(6).random((1, 70, 80)), [_box_kernel(31)], {}),
}


@pytest.mark.parametrize("case", OVERVIEWS.values(), ids=OVERVIEWS.keys())
@pytest.mark.parametrize("scale", ["stage", "map"])
def test_overviews_are_laid_out(case, scale):
    image, specs, config = case
    assert_laid_out(plot_overview(_stages(image, specs, **config), scale=scale))


def test_pooled_maps_keep_their_true_size_in_the_laid_out_overview():
    stages = _stages(RNG.random((1, 40, 60)), ["sobel-h"], stride=2, pool=2)
    figure = plot_overview(stages)
    FigureCanvasAgg(figure).draw()
    conv_ax, pooled_ax = figure.axes[2], figure.axes[4]
    conv_w = conv_ax.get_window_extent().width
    assert pooled_ax.get_window_extent().width == pytest.approx(conv_w, rel=0.02)
    drawn = [ax.images[0].get_window_extent().width for ax in (conv_ax, pooled_ax)]
    assert drawn[1] / drawn[0] == pytest.approx(stages.arrays.pooled.shape[2]
                                                / stages.arrays.conv.shape[2], rel=0.02)


def test_explanation_figures_are_laid_out():
    image = RNG.random((3, 12, 12)).astype(np.float32)
    gray = image[:1]
    kernels = parse_kernels(["sobel-h"])
    weights = np.stack([k.weights for k in kernels])
    config = LayerConfig(padding=1, pool=2)
    pixel = explain_pixel(gray, weights, config, 0, 0, 0, flip=True)
    assert_laid_out(plot_explanation(pixel, flip=True))
    rgb_weights = np.repeat(weights, 3, axis=1)
    assert_laid_out(plot_explanation(explain_pixel(image, rgb_weights, config, 0, 5, 5)))
    pooled = explain_pooled(gray, weights, config, 0, 2, 3)
    assert_laid_out(plot_pooled_explanation(pooled))
    big = explain_pixel(gray, np.ones((1, 1, 7, 7), np.float32) / 49, LayerConfig(pool=3), 0,
                        2, 2)
    assert_laid_out(plot_explanations([pixel, pooled, big]))


@pytest.mark.parametrize("shape", [(1, 40, 60), (1, 90, 20)])
def test_winners_figure_is_laid_out(shape):
    stages = _stages(RNG.random(shape), ["sobel-h", "laplacian"], pool=2)
    assert_laid_out(plot_winners(stages, dpi=110))


def test_grid_shares_what_is_left_after_the_room_each_panel_asks_for():
    grid = Grid(10.0, 4.0, 1, 2, width_ratios=[1, 3], top=0.5, pad=0.0)
    grid.reserve(0, 0, above=0.5, right=1.0)
    (left0, width0), (left1, width1) = grid.columns_spans()
    assert (left0, width0) == (0.0, pytest.approx(2.25))
    assert left1 == pytest.approx(3.25) and width1 == pytest.approx(6.75)
    assert grid.rows_spans() == [(1.0, pytest.approx(3.0))]
    assert grid.rect(0, 1) == pytest.approx((0.325, 0.0, 0.675, 0.75))
    # a title wider than its panel gets room on both sides
    grid.reserve_width(1, 7.5)
    (left0, width0), (left, width) = grid.columns_spans()
    assert width < 6.75 and width0 < 2.25  # the boxes shrink to make the room
    assert left - (left0 + width0 + 1.0) == pytest.approx((7.5 - width) / 2, abs=1e-3)
    assert 10.0 - (left + width) == pytest.approx((7.5 - width) / 2, abs=1e-3)


def test_text_extent_is_what_matplotlib_draws():
    from matplotlib.figure import Figure

    figure = Figure(dpi=100)
    canvas = FigureCanvasAgg(figure)
    for text, size in [("conv 298x449\nrange [-2.01, 1.33]\ncolours cut at ±0.752", 8),
                       ("sobel-h", 10), ("input -> kernel -> conv (stride 1)", 12)]:
        drawn = figure.text(0, 0, text, fontsize=size).get_window_extent(canvas.get_renderer())
        width, height = text_extent(text, size)
        assert width * 100 == pytest.approx(drawn.width, rel=0.08)
        assert height * 100 == pytest.approx(drawn.height, rel=0.12)
