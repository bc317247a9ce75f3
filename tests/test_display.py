"""Notebook display: valid PNG and well-formed HTML holding the right numbers."""

from __future__ import annotations

import ast
import io
import re
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from IPython.core.formatters import DisplayFormatter
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from PIL import Image

import convlens
from convlens.config import LayerConfig
from convlens.display import (
    enable_notebook_display,
    figure_png,
    html_matrix,
    html_table,
    pixel_explanation_html,
    pooled_explanation_html,
    size_chain_html,
    stages_html,
    stages_png,
)
from convlens.explain import explain_pixel, explain_pooled
from convlens.kernels import kernel_bank, parse_kernel
from convlens.numbers import format_number
from convlens.sizes import size_chain

SRC = Path(__file__).resolve().parent.parent / "src" / "convlens"
TUTORIAL_PATCH = np.array([[88, 126, 145], [86, 125, 142], [85, 124, 141]], dtype=np.float64)
TUTORIAL_KERNEL = "1 0 1; 1 1 0; 0 0 0"


def _xml(text: str) -> ET.Element:
    """Parse as XML: fails on any unclosed tag or unescaped character."""
    return ET.fromstring(text)


def _cells(root: ET.Element, title: str | None = None) -> list[ET.Element]:
    return [td for td in root.iter("td") if title is None or td.get("title") == title]


def _png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _tutorial_explanation(config: LayerConfig | None = None):
    image = torch.from_numpy(TUTORIAL_PATCH / 255).float()[None]
    weights = kernel_bank([parse_kernel(TUTORIAL_KERNEL)], 1)
    return explain_pixel(image, weights, config or LayerConfig(pool=None), 0, 0, 0)


# --------------------------------------------------------------------------- figures


def test_figure_png_is_a_png_of_the_figure_size():
    figure = Figure(figsize=(4, 3))
    figure.subplots().plot([0, 1], [1, 0])
    image = _png(figure_png(figure, dpi=50))
    assert image.size == (200, 150)


def test_stages_display_as_png(chelsea):
    image = convlens.load_image(chelsea, max_side=64)
    stages = convlens.compute_stages(image, convlens.parse_kernels(["sobel-h", "sobel-v"]))
    assert _png(stages_png(stages)).size[0] > 300


def test_notebook_display_teaches_ipython_to_draw_figures():
    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    figure = Figure(figsize=(2, 2))
    figure.subplots().imshow(np.eye(3))
    assert "image/png" not in shell.display_formatter.format(figure)[0]
    assert enable_notebook_display(shell) is True
    data, _ = shell.display_formatter.format(figure)
    assert _png(data["image/png"]).size == (160, 160)


def test_notebook_display_keeps_a_formatter_already_in_place():
    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    png = shell.display_formatter.formatters["image/png"]

    def inline(figure):
        return b"inline"

    png.for_type(Figure, inline)
    enable_notebook_display(shell)
    assert png.lookup_by_type(Figure) is inline


def test_notebook_display_does_nothing_outside_ipython(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "IPython", None)
    assert enable_notebook_display() is False


def _pyplot_uses(path: Path) -> list[str]:
    """Imports of pyplot and calls of ``.show()`` in a source file (code, not docstrings)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name == "matplotlib.pyplot"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [name for name in names if "pyplot" in name]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "show" and not node.args and not node.keywords):
            found.append(f"line {node.lineno}: .show()")
    return found


def test_the_library_never_uses_pyplot():
    offenders = {str(path.relative_to(SRC)): _pyplot_uses(path) for path in SRC.rglob("*.py")}
    assert {name: uses for name, uses in offenders.items() if uses} == {}


# --------------------------------------------------------------------------- HTML blocks


def test_html_table_escapes_cells_and_aligns_numbers():
    root = _xml(html_table([["<script>", 3.5]], ["name & kind", "value"], "a <caption>"))
    cells = _cells(root)
    assert cells[0].text == "<script>" and "text-align: left" in cells[0].get("style")
    assert cells[1].text == "3.5" and "text-align: right" in cells[1].get("style")
    assert root.find("caption").text == "a <caption>"
    assert [th.text for th in root.iter("th")] == ["name & kind", "value"]


def test_html_matrix_colours_signed_values_like_the_conv_maps():
    grid = np.array([[-2.0, 0.0], [1.0, 2.0]])
    cells = _cells(_xml(html_matrix(grid)))
    colours = [re.search(r"background: (#[0-9a-f]{6})", td.get("style")).group(1)
               for td in cells]
    rdbu = colormaps["RdBu_r"]
    assert colours[0] == to_hex(rdbu(0.0)) and colours[3] == to_hex(rdbu(1.0))
    assert colours[1] == to_hex(rdbu(0.5))
    assert [td.text for td in cells] == ["-2", "0", "1", "2"]


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
              elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_html_matrix_is_well_formed_for_any_grid(grid):
    root = _xml(html_matrix(grid, caption="<grid>", padded=grid > 0,
                            highlight=(0, 0), row_labels=range(grid.shape[0]),
                            col_labels=range(grid.shape[1])))
    cells = _cells(root)
    assert len(cells) == grid.size
    assert [td.text for td in cells] == [format_number(v) for v in grid.ravel()]
    assert len([td for td in cells if td.get("title") == "padding"]) == int(
        (grid > 0).sum() - (grid[0, 0] > 0))
    assert cells[0].get("title") == "winner"


# --------------------------------------------------------------------------- explanations


def test_tutorial_example_shows_444_and_its_arithmetic():
    root = _xml(pixel_explanation_html(_tutorial_explanation()))
    text = "".join(root.itertext())
    assert "= 233 + 211 + 0 = 444" in text
    assert "(88×1 + 126×0 + 145×1)" in text
    tables = {table.find("caption").text: table for table in root.iter("table")
              if table.find("caption") is not None}
    assert set(tables) == {"patch (0-255)", "kernel", "products"}
    patch = [float(td.text) for td in _cells(tables["patch (0-255)"])]
    np.testing.assert_allclose(patch, TUTORIAL_PATCH.ravel(), atol=0.01)
    products = [float(td.text) for td in _cells(tables["products"])]
    kernel = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(products, (TUTORIAL_PATCH * kernel).ravel(), atol=0.01)
    assert f"relu({444 / 255:.6g}) = {444 / 255:.6g}" in text
    assert "no pool stage" in text


def test_padding_cells_are_marked_and_hold_zeros():
    explanation = _tutorial_explanation(LayerConfig(pool=None, padding=1))
    root = _xml(pixel_explanation_html(explanation))
    padded = _cells(root, "padding")
    assert len(padded) == 2 * 5  # patch and products, 5 padded taps at the corner pixel
    assert {td.text for td in padded} == {"0"}
    assert "lie in the padding" in "".join(root.itertext())


def test_random_pixel_readout_matches_a_hand_sum(chelsea):
    image = convlens.load_image(chelsea, max_side=80)
    kernels = convlens.parse_kernels(["sobel-v", "laplacian"])
    config = LayerConfig(stride=2, padding=1, pool=2)
    weights = kernel_bank(kernels, 1)
    rng = np.random.default_rng(7)
    stages = convlens.compute_stages(image, kernels, config)
    for _ in range(5):
        row = int(rng.integers(1, stages.conv.shape[1] - 1))
        col = int(rng.integers(1, stages.conv.shape[2] - 1))
        explanation = explain_pixel(image, weights, config, 1, row, col, kernel_name="lap")
        text = "".join(_xml(pixel_explanation_html(explanation)).itertext())
        window = image[0, row * 2 - 1: row * 2 + 2, col * 2 - 1: col * 2 + 2].double().numpy()
        by_hand = float((window * kernels[1].as_2d()).sum())
        assert f"conv value = {by_hand:.6g}" in text
        assert f"relu({by_hand:.6g}) = {max(by_hand, 0.0):.6g}" in text
        cell = (row // 2, col // 2)
        if cell[0] < stages.pooled.shape[1] and cell[1] < stages.pooled.shape[2]:
            assert f"pooled cell ({cell[0]}, {cell[1]}) = " in text


def test_rgb_explanation_shows_one_row_per_channel(chelsea):
    image = convlens.load_image(chelsea, mode="rgb", max_side=40)
    weights = kernel_bank(convlens.parse_kernels(["sharpen"]), 3)
    explanation = explain_pixel(image, weights, LayerConfig(pool=None), 0, 5, 6)
    root = _xml(pixel_explanation_html(explanation))
    captions = [c.text for c in root.iter("caption")]
    for channel in "RGB":
        assert f"patch (0-255) [{channel}]" in captions
    assert f"conv value = {float(explanation.value):.6g}" in "".join(root.itertext())


def test_pooled_cell_readout_outlines_the_winner():
    activated = np.array([[1.0, 5.0, 0.0, 2.0], [3.0, 2.0, 7.0, 1.0]], dtype=np.float32)
    image = torch.from_numpy(activated / 10)[None]
    identity = kernel_bank([parse_kernel("1")], 1)
    explanation = explain_pooled(image, identity, LayerConfig(pool=2), 0, 0, 1)
    root = _xml(pooled_explanation_html(explanation))
    winner = _cells(root, "winner")
    assert len(winner) == 1 and float(winner[0].text) == pytest.approx(0.7)
    text = "".join(root.itertext())
    assert "won by conv pixel (1, 2)" in text and "the other 3 values are dropped" in text

    average = explain_pooled(image, identity, LayerConfig(pool=2, pool_type="avg"), 0, 0, 0)
    text = "".join(_xml(pooled_explanation_html(average)).itertext())
    assert f"mean of 4 values = {(0.1 + 0.5 + 0.3 + 0.2) / 4:.6g}" in text


def test_size_chain_table_shows_each_formula_and_warning():
    chain = size_chain(225, "conv3 p1, pool2, conv3 s2 p1 d2")
    root = _xml(size_chain_html(chain))
    rows = [[("".join(td.itertext())) for td in tr.iter("td")] for tr in root.iter("tr")][1:]
    assert [row[4] for row in rows] == ["225", "112", "55"]
    assert rows[0][3] == chain.steps[0].rows.formula()
    assert rows[0][3].startswith("(225 - 3 + 2×1)/1 + 1") and rows[0][3].endswith("= 225")
    assert "PyTorch floors" in rows[1][6]
    assert "225x225 input -> 55x55 output" in root.find(".//caption").text


def test_stage_table_lists_every_stage(chelsea):
    image = convlens.load_image(chelsea, max_side=50)
    stages = convlens.compute_stages(image, convlens.parse_kernels(["sobel-h"]))
    rows = [[td.text for td in tr.iter("td")] for tr in _xml(stages_html(stages)).iter("tr")][1:]
    assert [row[0] for row in rows] == ["input", "conv", "activated", "pooled"]
    height, width = image.shape[1:]
    assert rows[1][1] == f"1x{height - 2}x{width - 2}"
    assert rows[3][1] == f"1x{(height - 2) // 2}x{(width - 2) // 2}"
    assert rows[1][3] == format_number(float(stages.conv.max()))


# --------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def opened():
    from convlens.models import ModelInfo, ModelKind, OpenedModel

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3),
    ).eval()
    return OpenedModel(model, ModelKind.FACTORY, "test net",
                       ModelInfo(in_channels=1, input_size=(8, 8), class_names=["a", "b", "c"]))


def test_layer_table_lists_every_layer_and_marks_the_failure(opened):
    from convlens.display import layer_table_html
    from convlens.inspect import layer_table

    root = _xml(layer_table_html(layer_table(opened)))
    rows = [[td.text for td in tr.iter("td")] for tr in root.iter("tr")][1:]
    assert [row[1] for row in rows] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert rows[0][2] == "1x4x8x8" and rows[0][3] == "40"  # 4 * 9 weights + 4 biases
    assert rows[4][2] == "1x3" and rows[4][3] == "195"      # 64 * 3 + 3
    assert "235 parameters" in "".join(root.itertext())

    failed = _xml(layer_table_html(layer_table(opened, (10, 10), strict=False)))
    marked = [tr for tr in failed.iter("tr") if tr.get("title") == "failed"]
    assert len(marked) == 1 and [td.text for td in marked[0].iter("td")][1] == "Linear"
    assert "the model failed here" in "".join(failed.itertext())


def test_inspected_model_shows_each_layers_maps_as_png(opened):
    from convlens.display import feature_maps_png, inspection_html
    from convlens.inspect import feature_maps

    image = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))
    inspection = feature_maps(opened, image, ["0", "2"])
    assert _png(feature_maps_png(inspection.layers["0"])).size[0] > 200
    root = _xml(inspection_html(inspection))
    sources = [img.get("src") for img in root.iter("img")]
    assert len(sources) == 2
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        _png(__import__("base64").b64decode(source.split(",", 1)[1]))
    assert [b.text for b in root.iter("b")] == ["0", "2"]


def test_saliency_result_renders_as_png(opened):
    from convlens.display import saliency_png
    from convlens.saliency import explain_class

    image = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(2))
    result = explain_class(opened, image, methods=["gradcam"])
    assert _png(saliency_png(result)).size[0] > 300


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from convlens.results.training import train
    from convlens.train import TrainConfig

    out = tmp_path_factory.mktemp("train") / "run"
    return train(TrainConfig(data="digits", epochs=1, out=out, filters_gif=False,
                             baseline=False), console=None, progress=False)


def test_training_run_shows_its_metrics_and_figures(trained):
    from convlens.display import train_result_html

    root = _xml(train_result_html(trained))
    cells = [td.text for td in root.iter("td")]
    accuracy = trained.metrics["val_accuracy"]
    assert f"{accuracy:.2%}" in cells and str(trained.out_dir) in cells
    images = [img for img in root.iter("img")]
    assert [img.get("alt") for img in images] == ["curves.png", "confusion.png"]
    for img in images:
        _png(__import__("base64").b64decode(img.get("src").split(",", 1)[1]))


# --------------------------------------------------------------------------- wiring

SHOWN_AS = {
    "Stages": {"image/png"},
    "PixelExplanation": {"text/html"},
    "PooledExplanation": {"text/html"},
    "SizeChain": {"text/html"},
    "LayerTable": {"text/html"},
    "FeatureMaps": {"image/png"},
    "Inspection": {"text/html"},
    "SaliencyResult": {"image/png"},
    "RunResult": {"image/png"},
    "TrainResult": {"text/html"},
}
"""What Jupyter shows of each result class once convlens is imported (through its
``_repr_png_``/``_repr_html_``, or the formatter :func:`enable_notebook_display` registers for
a foundation module's result), besides plain text."""


def _results(chelsea, opened, trained, tmp_path) -> dict:
    from convlens.inspect import feature_maps, layer_table
    from convlens.runs import run_image
    from convlens.saliency import explain_class

    image = convlens.load_image(chelsea, max_side=40)
    kernels = convlens.parse_kernels(["sobel-h"])
    stages = convlens.compute_stages(image, kernels)
    digit = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(3))
    inspection = feature_maps(opened, digit, ["0"])
    return {
        "Stages": stages,
        "PixelExplanation": _tutorial_explanation(),
        "PooledExplanation": explain_pooled(image, stages.kernels, stages.config, 0, 1, 1),
        "SizeChain": size_chain(32, "conv3, pool2"),
        "LayerTable": layer_table(opened),
        "FeatureMaps": inspection.layers["0"],
        "Inspection": inspection,
        "SaliencyResult": explain_class(opened, digit, methods=["gradcam"]),
        "RunResult": run_image(chelsea, kernels, LayerConfig(), tmp_path / "run", max_side=40),
        "TrainResult": trained,
    }


def test_results_display_themselves_in_jupyter(chelsea, opened, trained, tmp_path):
    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    enable_notebook_display(shell)  # what `import convlens` does in a notebook
    formatter = shell.display_formatter
    results = _results(chelsea, opened, trained, tmp_path)
    assert set(results) == set(SHOWN_AS)
    failures = []
    for name, result in results.items():
        data, _ = formatter.format(result)
        shown = {"image/png", "text/html"} & set(data)
        if shown != SHOWN_AS[name]:
            failures.append(f"{name} shows {sorted(shown) or 'only text'} in Jupyter, not "
                            f"{sorted(SHOWN_AS[name])}")
        if "image/png" in shown:
            _png(data["image/png"])
        if "text/html" in shown:
            _xml(data["text/html"])
    assert failures == []


def test_explanations_say_in_html_every_sentence_the_parts_hold(chelsea):
    """The words are the parts' own: each sentence, note and written sum of an explanation
    appears as it is in its HTML, and each number a sentence names carries its exact value."""
    from convlens.explain.parts import Note, Sentence, WrittenSum

    image = convlens.load_image(chelsea, mode="rgb", max_side=40)
    weights = kernel_bank(convlens.parse_kernels(["sobel-h", "laplacian"]), 3)
    config = LayerConfig(padding=1, pool=3, pool_stride=2, bias=(0.5, -1.0))
    pixel = explain_pixel(image, weights, config, 1, 0, 5, flip=True)
    pooled = explain_pooled(image, weights, config, 0, 2, 3)
    numbers = {id(pixel): {"conv": pixel.value, "activated": pixel.activated,
                           "pooled": pixel.pooled[0]["value"],
                           "convolution": pixel.flipped_total + pixel.bias},
               id(pooled): {"pooled": pooled.value}}
    for explanation, html in ((pixel, pixel_explanation_html),
                              (pooled, pooled_explanation_html)):
        root = _xml(html(explanation))
        text = "".join(root.itertext())
        for part in explanation.parts():
            if isinstance(part, (Sentence, Note)):
                assert part.text in text
            elif isinstance(part, WrittenSum):
                assert " = ".join(part.lines) in text
        keyed = {element.get("data-key"): float(element.get("data-value"))
                 for element in root.iter() if element.get("data-key")}
        assert keyed == pytest.approx(numbers[id(explanation)], rel=1e-12)


class _EveryKind(torch.nn.Module):
    """conv, batch norm, ReLU, max pool, a residual add, flatten and a dense layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(3)
        self.relu = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.flatten = torch.nn.Flatten()
        self.fc = torch.nn.Linear(3 * 3 * 3, 4)

    def forward(self, x):
        y = self.relu(self.bn(self.conv(x)))
        return self.fc(self.flatten(self.pool(y + self.conv(x))))


@pytest.mark.parametrize("layer, position", [
    ("conv", (1, 2, 3)), ("bn", (0, 5, 5)), ("relu", (2, 0, 1)), ("add", (1, 3, 3)),
    ("pool", (2, 1, 2)), ("flatten", (7, None, None)), ("fc", (3, None, None))])
def test_an_activation_explanation_displays_itself_in_jupyter(layer, position):
    """Any layer's number (convlens.activations) shows inline as its parts: the HTML holds
    every sentence's words and the total's exact value."""
    from convlens.activations import Explainer
    from convlens.explain.parts import Sentence

    torch.manual_seed(0)
    model = _EveryKind().eval()
    explainer = Explainer(model, torch.rand(2, 6, 6))
    explanation = explainer.explain(layer, *position)
    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    enable_notebook_display(shell)
    data, _ = shell.display_formatter.format(explanation)
    root = _xml(data["text/html"])
    text = "".join(root.itertext())
    for part in explanation.parts():
        if isinstance(part, Sentence):
            assert "".join(span.text for span in part.spans) in text
    totals = [node.get("data-value") for node in root.iter() if node.get("data-key") == "total"]
    assert totals and set(totals) == {str(explanation.total)}
    trace, _ = shell.display_formatter.format(explainer.trace(layer, *position))
    assert "trace back to the input" in "".join(_xml(trace["text/html"]).itertext())


@pytest.mark.parametrize("layer, position, layers", [
    ("relu", (2, 0, 1), ["conv", "bn", "relu"]), ("conv", (1, 2, 3), ["conv"]),
    ("pool", (2, 1, 2), ["add", "pool"])])  # a residual add: the chain starts there, says why
def test_a_chain_displays_itself_in_jupyter_step_by_step(layer, position, layers):
    """A number shown from the conv before it (explain_chain) shows inline as the page shows
    it: the chain's words, then one section per step in the order the layers ran, each with
    every sentence of its parts and its exact total."""
    from convlens.activations import Explainer, explain_chain
    from convlens.display import chain_html
    from convlens.explain.parts import Sentence

    torch.manual_seed(0)
    model = _EveryKind().eval()
    chain = explain_chain(Explainer(model, torch.rand(2, 6, 6)), layer, *position)
    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    enable_notebook_display(shell)
    data, _ = shell.display_formatter.format(chain)
    assert data["text/html"] == chain_html(chain)
    root = _xml(data["text/html"])
    for part in chain.intro()[1:]:
        assert "".join(span.text for span in part.spans) in "".join(root.itertext())
    assert bool(chain.end) == (layer == "pool")
    sections = [node for node in root.iter() if node.get("class") == "convlens-chain-step"]
    assert [node.get("data-layer") for node in sections] == layers
    for node, step in zip(sections, chain.steps, strict=True):
        text = "".join(node.itertext())
        for part in step.parts():
            if isinstance(part, Sentence):
                assert "".join(span.text for span in part.spans) in text
        totals = {n.get("data-value") for n in node.iter() if n.get("data-key") == "total"}
        assert totals == {str(step.total)}
    without = _xml(chain_html(chain, last=False))
    assert [node.get("data-layer") for node in without.iter()
            if node.get("class") == "convlens-chain-step"] == layers[:-1]
