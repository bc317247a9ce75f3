"""Saliency: Grad-CAM against Captum's LayerGradCam, on models built to respond to one region,
and integrated gradients against their closed form for a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from captum.attr import LayerGradCam

from convlens.errors import ConvlensError, ModelError
from convlens.models import ModelInfo, ModelKind, OpenedModel, create_model, prepare_input
from convlens.plot.models import plot_predictions, plot_saliency
from convlens.saliency import (
    SaliencyMethod,
    explain_class,
    gradcam,
    guided_backprop,
    parse_methods,
    resolve_target,
)
from several_outputs import build as build_onet

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

class ColourDetector(nn.Module):
    """Class 0 = "there is red", class 1 = "there is green": a 1x1 conv finds each colour, a
    3x3 conv widens it, and global average pooling reads how much there is."""

    def __init__(self) -> None:
        super().__init__()
        self.detect = nn.Conv2d(3, 2, 1)
        self.spread = nn.Conv2d(2, 2, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.detect.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]])
                                     .view(2, 3, 1, 1))
            self.detect.bias.fill_(-0.2)
            self.spread.weight.zero_()
            self.spread.weight[0, 0] = 1.0 / 9
            self.spread.weight[1, 1] = 1.0 / 9
            self.head.weight.copy_(torch.eye(2) * 10)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.detect(x))
        y = self.relu(self.spread(y))
        return self.head(self.pool(y).flatten(1))


def _colour_scene() -> torch.Tensor:
    """Dark gray 32x32 with a red square at rows/cols 4-11 and a green one at 20-27."""
    image = torch.full((3, 32, 32), 0.1)
    image[:, 4:12, 4:12] = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
    image[:, 20:28, 20:28] = torch.tensor([0.1, 0.9, 0.1]).view(3, 1, 1)
    return image


def _sized(side: int) -> ModelInfo:
    return ModelInfo(in_channels=3, input_size=(side, side))


def _opened(model: nn.Module, names=None) -> OpenedModel:
    return OpenedModel(model.eval(), ModelKind.FACTORY, "test",
                       ModelInfo(in_channels=3, input_size=(32, 32), class_names=names))


def _peak(heat: torch.Tensor) -> tuple[int, int]:
    index = int(heat.argmax())
    return index // heat.shape[1], index % heat.shape[1]


@pytest.mark.parametrize("scripted", [False, True])
def test_gradcam_peaks_on_the_region_the_class_responds_to(scripted):
    model = ColourDetector().eval()
    opened = _opened(torch.jit.script(model) if scripted else model, ["red", "green"])
    result = explain_class(opened, _colour_scene(), ["gradcam"], target="red", layer="spread")
    row, col = _peak(result.maps[0].heatmap)
    assert 4 <= row < 12 and 4 <= col < 12
    green = explain_class(opened, _colour_scene(), ["gradcam"], target=1, layer="spread")
    row, col = _peak(green.maps[0].heatmap)
    assert 20 <= row < 28 and 20 <= col < 28
    assert green.label == "green" and result.predictions is not None


def test_gradcam_equals_captums_layer_gradcam():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, stride=2),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(20, 4)).eval()
    opened = _opened(model)
    batch = prepare_input(torch.rand(3, 32, 32), opened).batch
    for target in range(4):
        ours = gradcam(opened, batch, target, "2")
        oracle = LayerGradCam(model, model[2]).attribute(batch, target=target,
                                                         relu_attributions=True)
        torch.testing.assert_close(ours.raw, oracle[0, 0].detach(), atol=1e-6, rtol=1e-5)
        assert ours.heatmap.shape == (32, 32)
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


def test_integrated_gradients_of_a_linear_region_model_is_input_times_weight():
    mask = torch.zeros(3, 16, 16)
    mask[:, 2:6, 9:14] = 1.0
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 2, bias=False))
    with torch.no_grad():
        model[1].weight[0] = mask.flatten()
        model[1].weight[1] = 1 - mask.flatten()
    opened = OpenedModel(model.eval(), ModelKind.FACTORY, "linear", _sized(16))
    image = torch.rand(3, 16, 16)
    result = explain_class(opened, image, ["integrated-gradients"], target=0)
    attribution = result.maps[0].raw
    # closed form for a linear score from a black baseline: (x - 0) * weight
    torch.testing.assert_close(attribution, image * mask, atol=1e-5, rtol=1e-5)
    assert result.maps[0].heatmap[~mask[0].bool()].abs().max() == 0
    assert "convergence delta" in result.maps[0].note


def test_guided_backprop_keeps_the_model_as_it_was():
    model = ColourDetector()
    model.relu.inplace = True
    model.train()
    opened = OpenedModel(model, ModelKind.FACTORY, "test", _sized(32))
    result = guided_backprop(opened, prepare_input(_colour_scene(), opened).batch, 0)
    assert result.heatmap.shape == (32, 32)
    row, col = _peak(result.heatmap)
    assert 3 <= row < 13 and 3 <= col < 13
    assert model.relu.inplace and model.training
    assert sum(len(m._backward_hooks) + len(m._forward_hooks) for m in model.modules()) == 0


def test_guided_backprop_refuses_torchscript():
    opened = _opened(torch.jit.script(ColourDetector()))
    with pytest.raises(ModelError, match=r"TorchScript.*use gradcam or integrated-gradients"):
        explain_class(opened, _colour_scene(), ["guided-backprop"])


def test_all_methods_run_and_default_to_the_top_class():
    opened = _opened(ColourDetector(), ["red", "green"])
    result = explain_class(opened, _colour_scene(), ["all"], steps=8)
    assert [m.method for m in result.maps] == list(SaliencyMethod)
    assert result.maps[0].layer == "spread"  # the last conv layer by default
    with torch.no_grad():
        logits = opened.module(prepare_input(_colour_scene(), opened).batch)
    assert result.target == int(logits.argmax())
    assert result.probability == pytest.approx(float(torch.softmax(logits, 1)[0, result.target]))


def test_target_by_name_index_and_errors():
    opened = _opened(ColourDetector(), ["red", "green"])
    logits = torch.tensor([[0.1, 2.0]])
    assert resolve_target(opened, None, logits) == 1
    assert resolve_target(opened, "RED", logits) == 0
    assert resolve_target(opened, "1", logits) == 1
    with pytest.raises(ModelError, match=r"unknown class 'rex' \(did you mean red\?\); the "
                                         "classes are red, green"):
        resolve_target(opened, "rex", logits)
    with pytest.raises(ModelError, match=r"class index 5 is out of range.*\(0-1\)"):
        resolve_target(opened, 5, logits)
    with pytest.raises(ModelError, match="needs a classifier"):
        resolve_target(opened, None, torch.zeros(1, 2, 3, 3))


def test_gradcam_needs_feature_maps():
    opened = _opened(ColourDetector())
    batch = prepare_input(_colour_scene(), opened).batch
    with pytest.raises(ModelError, match=r"Grad-CAM needs feature maps.*'head' \(Linear\)"):
        gradcam(opened, batch, 0, "head")


def test_parse_methods():
    assert parse_methods(["gradcam", "all"]) == list(SaliencyMethod)
    with pytest.raises(ConvlensError, match="saliency method must be one of"):
        parse_methods(["lime"])


def test_gradcam_before_an_inplace_relu_matches_captum_and_torchscript():
    torch.manual_seed(2)
    model = create_model("tinyvgg", 3, 4, (16, 16)).eval()  # conv -> ReLU(inplace=True)
    opened = OpenedModel(model, ModelKind.CONVLENS, "tinyvgg", _sized(16))
    batch = prepare_input(torch.rand(3, 16, 16), opened).batch
    ours = gradcam(opened, batch, 1, "features.conv3")
    oracle = LayerGradCam(model, model.features.conv3).attribute(batch, target=1,
                                                                 relu_attributions=True)
    torch.testing.assert_close(ours.raw, oracle[0, 0].detach(), atol=1e-6, rtol=1e-5)
    scripted = OpenedModel(torch.jit.script(model), ModelKind.TORCHSCRIPT, "ts", _sized(16))
    torch.testing.assert_close(gradcam(scripted, batch, 1, "features.conv3").raw, ours.raw,
                               atol=1e-6, rtol=1e-5)


def test_saliency_and_prediction_figures_hold_the_maps():
    opened = _opened(ColourDetector(), ["red", "green"])
    result = explain_class(opened, _colour_scene(), ["gradcam", "integrated-gradients"],
                           target="green", steps=4)
    figure = plot_saliency(result, "scene.png")
    heat_axes = [ax for ax in figure.axes if ax.images and "range" in ax.get_title()]
    assert len(heat_axes) == 2
    for ax, item in zip(heat_axes, result.maps):
        np.testing.assert_allclose(ax.images[0].get_array(), item.heatmap.numpy())
        assert f"{item.heatmap.shape[0]}x{item.heatmap.shape[1]}" in ax.get_title()
    assert "at spread" in heat_axes[0].get_title()
    assert "Why class 'green'" in figure._suptitle.get_text()
    bars = plot_predictions(result.predictions, highlight=result.target)
    widths = sorted(patch.get_width() for patch in bars.axes[0].patches)
    np.testing.assert_allclose(widths, sorted(p.probability for p in result.predictions))


# --------------------------------------------------------------------------- several outputs


class _Only(nn.Module):
    """The oracle's view of a model with several outputs: output ``index`` alone."""

    def __init__(self, model: nn.Module, index: int) -> None:
        super().__init__()
        self.model, self.index = model, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[self.index]


def _onet(**kwargs) -> OpenedModel:
    return OpenedModel(build_onet().eval(), ModelKind.FACTORY, "onet", _sized(48), **kwargs)


def test_a_face_detector_is_explained_by_its_face_probability_not_its_box_offsets():
    from captum.attr import IntegratedGradients

    opened = _onet()
    image = torch.rand(3, 48, 48)
    batch = prepare_input(image, opened).batch
    with torch.no_grad():
        face = opened.module(batch)[2]
    result = explain_class(opened, image, ["gradcam", "integrated-gradients"], steps=8)
    assert result.outputs.part.index == 2 and "used #2 (1, 2)" in result.outputs.note()
    assert result.target == int(face.argmax())
    # two classes (face or not), not four box offsets ranked as classes
    assert [p.index for p in result.predictions] == face[0].argsort(descending=True).tolist()
    # the face output is already probabilities: read as it is, not softmaxed again
    assert result.probability == pytest.approx(float(face[0, result.target]), rel=1e-6)
    face_only = _Only(opened.module, 2)
    oracle = LayerGradCam(face_only, opened.module.body[9]).attribute(
        batch, target=result.target, relu_attributions=True)
    assert result.maps[0].layer == "body.9"  # the last conv layer
    torch.testing.assert_close(result.maps[0].raw, oracle[0, 0].detach(), atol=1e-6, rtol=1e-5)
    integrated = IntegratedGradients(face_only).attribute(
        batch, baselines=torch.zeros_like(batch), target=result.target, n_steps=8)
    torch.testing.assert_close(result.maps[1].raw, integrated[0].detach(), atol=1e-6, rtol=1e-4)


def test_the_user_picks_which_output_to_explain():
    opened = _onet(output=0)
    image = torch.rand(3, 48, 48)
    with torch.no_grad():
        box = opened.module(prepare_input(image, opened).batch)[0]
    result = explain_class(opened, image, ["gradcam"], top_k=4)
    assert result.outputs.reason == "as asked" and result.target == int(box.argmax())
    assert len(result.predictions) == 4
    assert result.probability == pytest.approx(float(torch.softmax(box[0], 0).max()), rel=1e-6)
    with pytest.raises(ModelError, match=r"no output 3; it returns #0 \(1, 4\), #1 \(1, 10\)"):
        explain_class(_onet(output=3), image, ["gradcam"])


def test_gradcam_layer_error_points_to_each_surfaces_list_of_layers():
    opened = _opened(ColourDetector())
    batch = prepare_input(_colour_scene(), opened).batch
    with pytest.raises(ModelError) as caught:
        gradcam(opened, batch, 0, "head")
    assert str(caught.value).endswith("pick a conv layer (see layer_table(model))")
    assert caught.value.worded("cli").endswith("pick a conv layer (see `convlens layers MODEL`)")
    assert caught.value.worded("page").endswith("(see Grad-CAM's \"at layer\" menu)")
