"""``convlens explain MODEL IMAGE --layer NAME --channel C --at Y,X``: the model form of explain.

The numbers printed are checked against the library (itself checked against PyTorch's hooks in
test_activations.py); bad input is one line and exit 2.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from convlens.activations import Explainer
from convlens.cli._routing import route
from convlens.images import load_image, sample_path
from convlens.models import ModelInfo, create_model, open_model, prepare_input, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small convlens checkpoint: tinyvgg, RGB 16x16, four named classes."""
    folder = tmp_path_factory.mktemp("model") / "run"
    torch.manual_seed(0)
    model = create_model("tinyvgg", 3, 4, (16, 16), width=4)
    info = ModelInfo("tinyvgg", 3, (16, 16), ["cat", "dog", "fox", "owl"], [0.5] * 3,
                     [0.25] * 3, {"width": 4})
    save_checkpoint(model, info, folder)
    return folder


def library(folder, layer, channel, y=None, x=None):
    opened = open_model(folder)
    prepared = prepare_input(load_image(sample_path(), mode="rgb"), opened)
    return Explainer(opened, prepared).explain(layer, channel, y, x)


def test_route_only_takes_explain_with_a_layer():
    assert route(["explain", "m", "--layer", "a"]) == ["explain-model", "m", "--layer", "a"]
    assert route(["--budget", "1G", "explain", "m", "-l", "a"])[2] == "explain-model"
    assert route(["explain", "--kernel", "sobel-h"]) == ["explain", "--kernel", "sobel-h"]
    assert route(["inspect", "m", "--layer", "a"]) == ["inspect", "m", "--layer", "a"]


def test_text_shows_the_arithmetic_and_the_trace(cli, checkpoint):
    result = cli("explain", checkpoint, "--layer", "features.conv3", "--channel", "2", "--at",
                 "3,4", "--top", "2", "--trace")
    assert result.code == 0, result.err
    e = library(checkpoint, "features.conv3", 2, 3, 4)
    out = " ".join(result.out.split())
    assert "features.conv3 (Conv2d): conv output (2, 3, 4)" in out
    assert f"conv output = {e.total:.6g} (the layer's output holds {e.value:.6g})" in out
    assert "(the other 2 input channels)" in out  # --top 2 of 4
    assert "trace back to the input" in out and "features.conv1" in out
    assert "the input image at" in out


def test_json_is_one_object_with_the_documented_keys(cli, checkpoint):
    result = cli("explain", checkpoint, "--layer", "classifier.fc", "--channel", "1", "--json",
                 "--trace")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) == {"model", "image", "input_shape", "explanation", "chain", "trace"}
    e = data["explanation"]
    for key in ("what", "layer", "kind", "channel", "y", "x", "shape", "value", "total",
                "receptive_field", "parts", "inputs", "rest", "softmax", "share", "map_shape"):
        assert key in e, key
    assert e["what"] == "linear" and e["map_shape"] == [4, 4, 4]
    assert e["total"] == pytest.approx(e["value"], rel=1e-5)
    assert e["total"] == pytest.approx(library(checkpoint, "classifier.fc", 1).total)
    assert data["input_shape"] == [3, 16, 16]
    assert data["trace"]["steps"][0]["layer"] == "classifier.fc"
    assert e["parts"][0] == {"kind": "heading", "text": "classifier.fc (Linear): dense output "
                             "[1]", "level": 1}


def test_defaults_pick_the_centre_and_the_largest_channel(cli, checkpoint):
    result = cli("explain", checkpoint, "--layer", "features.relu1", "--json")
    e = json.loads(result.out)["explanation"]
    assert (e["y"], e["x"]) == (8, 8)
    opened = open_model(checkpoint)
    explainer = Explainer(opened, prepare_input(load_image(sample_path(), mode="rgb"), opened))
    column = explainer.output("features.relu1")[0, :, 8, 8]
    assert e["channel"] == int(column.argmax())


def test_figure_outlines_the_receptive_field(cli, checkpoint, tmp_path):
    result = cli("explain", checkpoint, "--layer", "features.conv2", "--at", "5,6",
                 "--channel", "0", "--figure", tmp_path / "conv.png")
    assert result.code == 0, result.err
    with Image.open(tmp_path / "conv.png") as picture:
        assert picture.width > 600 and picture.height > 200
    again = cli("explain", checkpoint, "--layer", "features.conv2", "--figure",
                tmp_path / "conv.png")
    assert again.code == 2 and "--force" in again.err


def test_plot_draws_the_field_where_the_explanation_says():
    from matplotlib.patches import Rectangle

    from convlens.plot.activations import plot_activation

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, stride=2)).eval()
    image = torch.rand(1, 12, 12)
    e = Explainer(model, image).explain("1", 1, 2, 3)
    figure = plot_activation(e, image)
    photo = figure.axes[0]
    boxes = [p for p in photo.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 1
    f = e.field
    assert boxes[0].get_xy() == (f["left"] - 0.5, f["top"] - 0.5)
    assert (boxes[0].get_width(), boxes[0].get_height()) == (f["right"] - f["left"] + 1,
                                                             f["bottom"] - f["top"] + 1)
    titles = [ax.get_title() for ax in figure.axes]
    assert "× kernel [in 0]" in titles and "= products [in 1]" in titles
    grid = next(ax for ax in figure.axes if ax.get_title() == "× kernel [in 1]")
    assert np.allclose(grid.images[0].get_array(), e.kernel[1])
    # the text panel writes the sum as the CLI does: each line after the first starts "= "
    from convlens.explain.parts import WrittenSum

    lines = "\n".join(t.get_text() for ax in figure.axes for t in ax.texts).splitlines()
    written = next(part for part in e.parts() if isinstance(part, WrittenSum))
    assert f"  = {written.lines[-1]}" in lines


@pytest.mark.parametrize("args,words", [
    (("--layer", "features.conv9"), "did you mean features.conv"),
    (("--layer", "features.conv1", "--channel", "7"), "--channel 7 is outside the 4 channels"),
    (("--layer", "features.conv1", "--at", "16,0"), "y must be 0..15 and x 0..15"),
    (("--layer", "features.conv1", "--at", "a,b"), "--at must be ROW,COL"),
    (("--layer", "classifier.fc", "--at", "1,1"), "leave out --at"),
    (("--layer", "features.conv1", "--top", "0"), "--top must be at least 1"),
    # a usage error names the command the user typed, not the hidden explain-model
    (("--layer", "features.conv1", "--channel", "1e9"), "(see `convlens explain --help`)"),
])
def test_bad_input_is_one_line_and_exit_2(cli, checkpoint, args, words):
    result = cli("explain", checkpoint, *args)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.err


def test_the_tutorial_form_keeps_its_flags(cli):
    result = cli("explain", "--kernel", "sobel-h", "--at", "3,3", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["what"] == "conv pixel"


def test_torchscript_needs_trust_and_is_explained(cli, tmp_path):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(str(tmp_path / "net.pt"))
    refused = cli("explain", tmp_path / "net.pt", "--layer", "1")
    assert refused.code == 2 and "--trust-code" in refused.err
    result = cli("explain", tmp_path / "net.pt", "--layer", "1", "--channel", "2", "--at",
                 "10,20", "--trust-code", "--input-size", "32x48", "--json")
    assert result.code == 0, result.err
    e = json.loads(result.out)["explanation"]
    assert e["what"] == "batchnorm" and e["folded"]["conv"] == "0"
    prepared = load_image(sample_path(), mode="rgb")
    batch = prepare_input(prepared, open_model(tmp_path / "net.pt", trust_code=True,
                                               input_size="32x48")).batch
    with torch.no_grad():
        expected = float(model[1](model[0](batch))[0, 2, 10, 20])
    assert e["value"] == pytest.approx(expected, rel=1e-5)
    assert e["total"] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_an_unknown_layer_says_where_to_look_the_names_up(cli, checkpoint):
    """The library lists the layers; the command line adds its own command to look them up
    (once)."""
    result = cli("explain", checkpoint, "--layer", "features.conv9")
    assert result.code == 2
    assert result.err.count("(see `convlens layers MODEL`)") == 1, result.err
    assert "the layers are: features.conv1" in result.err


# ---------------------------------------------------------------- the chain from the conv

def _hooked(module: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every named layer's output for ``batch``, recorded by forward hooks (the oracle)."""
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone()))
        for name, m in module.named_modules() if name]
    with torch.no_grad():
        module(batch)
    for handle in handles:
        handle.remove()
    return seen


def _said(text: str) -> str:
    return " ".join(text.split())


def _check_chain(result_text: str, data: dict, chain: dict, hooked: dict, layers: list[str]):
    """The JSON's chain is the library's, its steps run from the conv to the number, each
    step's total is the hooked number at its place, and the text says every step's words."""
    assert data["chain"] == chain
    steps = chain["steps"]
    assert [step["layer"] for step in steps] == layers
    assert steps[0]["what"] == "conv" and chain["end"] == ""
    assert steps[-1] == data["explanation"]
    for step in steps:
        at = (0, step["channel"]) + ((step["y"], step["x"]) if step["y"] is not None else ())
        want = float(hooked[step["layer"]][at])
        assert step["value"] == pytest.approx(want, rel=1e-6, abs=1e-7)
        assert step["total"] == pytest.approx(want, rel=1e-5, abs=1e-6)
    text = _said(result_text)
    assert _said(chain["intro"][0]["text"]) in text and _said(chain["intro"][1]["text"]) in text
    for step in steps:
        for part in step["parts"]:
            if part["kind"] in ("heading", "sentence"):
                assert _said(part["text"]) in text, part["text"]
    # each step once, in the order the layers ran
    places = [text.index(_said(step["parts"][0]["text"])) for step in steps]
    assert places == sorted(places)


class _Block(nn.Sequential):
    """conv, batch norm (with running statistics of its own), leaky ReLU, max pool."""

    def __init__(self) -> None:
        from collections import OrderedDict

        super().__init__(OrderedDict(conv=nn.Conv2d(3, 4, 3, padding=1), bn=nn.BatchNorm2d(4),
                                     act=nn.LeakyReLU(0.1), pool=nn.MaxPool2d(2),
                                     gap=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(),
                                     fc=nn.Linear(4, 2)))
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.3, 0.3)


@pytest.mark.parametrize("layer, steps", [
    ("bn", ["conv", "bn"]), ("act", ["conv", "bn", "act"]),
    ("pool", ["conv", "bn", "act", "pool"])])
def test_a_number_after_a_conv_is_shown_from_that_conv(cli, tmp_path, layer, steps):
    """A layer written in the test (TorchScript, so the CLI opens it): the text shows the steps
    from the conv in the parts' words, the JSON adds them as `chain` (the library's
    explain_chain), and every step's total is the number a forward hook records."""
    from convlens.activations import explain_chain

    torch.manual_seed(7)
    model = _Block().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(str(tmp_path / "net.pt"))
    args = ("explain", tmp_path / "net.pt", "--layer", layer, "--channel", "1", "--at", "3,2",
            "--top", "2", "--trust-code", "--input-size", "12x10")
    text, as_json = cli(*args), cli(*args, "--json")
    assert text.code == 0 and as_json.code == 0, text.err + as_json.err
    opened = open_model(tmp_path / "net.pt", trust_code=True, input_size="12x10")
    batch = prepare_input(load_image(sample_path(), mode="rgb"), opened).batch
    chain = explain_chain(Explainer(opened, batch), layer, 1, 3, 2, top=2).to_dict()
    _check_chain(text.out, json.loads(as_json.out), json.loads(json.dumps(chain)),
                 _hooked(model, batch), steps)


@pytest.mark.parametrize("layer, channel, y, x, steps", [
    ("features.bn3", 0, 3, 0, ["features.conv3", "features.bn3"]),
    ("features.relu1", 5, 2, 6, ["features.conv1", "features.bn1", "features.relu1"]),
    ("features.pool2", 7, 1, 0, ["features.conv4", "features.bn4", "features.relu4",
                                 "features.pool2"])])
def test_the_bundled_digits_model_is_shown_from_the_conv(cli, layer, channel, y, x, steps):
    from convlens.activations import explain_chain
    from convlens.images import bundled_model_path

    args = ("explain", bundled_model_path(), "--layer", layer, "--channel", str(channel),
            "--at", f"{y},{x}", "--top", "3")
    text, as_json = cli(*args), cli(*args, "--json")
    assert text.code == 0 and as_json.code == 0, text.err + as_json.err
    opened = open_model(bundled_model_path())
    batch = prepare_input(load_image(sample_path(), mode="rgb"), opened).batch
    chain = explain_chain(Explainer(opened, batch), layer, channel, y, x, top=3).to_dict()
    _check_chain(text.out, json.loads(as_json.out), json.loads(json.dumps(chain)),
                 _hooked(opened.module, batch), steps)


def test_a_conv_and_a_dense_layer_print_as_before(cli, checkpoint):
    """A conv's number is its own arithmetic (a chain of one step), and so is a layer the
    chain cannot walk back from (a dense layer): no step-by-step heading; the JSON's chain
    is that one step."""
    for layer, at in (("features.conv2", ("--at", "3,4")), ("classifier.fc", ())):
        result = cli("explain", checkpoint, "--layer", layer, "--channel", "1", *at)
        assert result.code == 0, result.err
        assert "step by step" not in result.out
        data = json.loads(cli("explain", checkpoint, "--layer", layer, "--channel", "1", *at,
                              "--json").out)
        assert data["chain"]["steps"] == [data["explanation"]]


def test_a_chain_prints_as_the_golden_file(cli, golden, tmp_path, monkeypatch):
    """The bundled digits model's max pool, from its conv, as a learner's 80-column terminal
    shows it (a path relative to the folder, so the file is the same on every clone)."""
    import shutil

    from convlens.cli._app import console
    from convlens.images import bundled_model_path

    shutil.copytree(bundled_model_path().parent, tmp_path / "digits")
    shutil.copy(sample_path(), tmp_path / "photo.png")
    monkeypatch.setattr(console, "width", 80)
    result = cli("explain", "digits/model.safetensors", "photo.png", "--layer",
                 "features.pool1", "--channel", "7", "--at", "1,3", "--top", "2")
    assert result.code == 0, result.err
    golden("explain-model-chain-80.txt", result.out)
