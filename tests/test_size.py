"""The size calculator against real PyTorch layers: shapes, receptive fields, errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convlens.config import LayerConfig
from convlens.errors import ConfigError
from convlens.sizes import (
    LayerSpec,
    check_fits,
    config_chain,
    parse_layers,
    same_padding,
    size_chain,
)

TEXT = "conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"


def _torch_layers(specs: list[LayerSpec], ones: bool = False) -> list[nn.Module]:
    """Real PyTorch modules for a chain; 'same' conv padding through F.pad (also at stride > 1)."""
    modules: list[nn.Module] = []
    for spec in specs:
        if spec.kind == "conv":
            if spec.padding == "same":
                top, bottom = same_padding(spec.kernel[0], spec.dilation)
                left, right = same_padding(spec.kernel[1], spec.dilation)
                modules.append(nn.ZeroPad2d((left, right, top, bottom)))
                padding = 0
            else:
                padding = spec.padding
            conv = nn.Conv2d(1, 1, spec.kernel, stride=spec.stride or 1, padding=padding,
                             dilation=spec.dilation, bias=False)
            if ones:
                nn.init.ones_(conv.weight)
            modules.append(conv)
        else:
            pool = nn.MaxPool2d if spec.pool_type == "max" and not ones else nn.AvgPool2d
            modules.append(pool(spec.kernel, spec.stride, spec.padding, ceil_mode=spec.ceil_mode))
    return modules


@st.composite
def layer_specs(draw) -> LayerSpec:
    kind = draw(st.sampled_from(["conv", "pool"]))
    size = draw(st.integers(1, 5))
    kernel = (size, draw(st.sampled_from([size, draw(st.integers(1, 5))])))
    stride = draw(st.one_of(st.none(), st.integers(1, 3)))
    if kind == "conv":
        padding = draw(st.one_of(st.integers(0, 3), st.just("same")))
        return LayerSpec("conv", kernel, stride, padding, draw(st.integers(1, 3)))
    return LayerSpec("pool", kernel, stride, draw(st.integers(0, 2)),
                     ceil_mode=draw(st.booleans()), pool_type=draw(st.sampled_from(["max", "avg"])))


def test_tutorial_five_by_three_is_three():
    chain = size_chain(5, [LayerSpec("conv", 3)])
    assert chain.output_size == (3, 3)
    assert chain.steps[0].rows.formula() == "(5 - 3 + 2×0)/1 + 1 = 3"
    assert chain.receptive_field == (3, 3)
    assert chain.warnings() == []


def test_issue_chain_matches_pytorch_and_hand_worked_fields():
    specs = parse_layers(TEXT)
    assert [spec.describe() for spec in specs] == TEXT.split(", ")
    chain = size_chain(224, TEXT)
    x = torch.zeros(1, 1, 224, 224)
    for step, module in zip(chain.steps, _torch_layers(specs)):
        x = module(x)
        assert step.size_out == tuple(x.shape[-2:])
    # fields by hand: 3; +1*1 = 4; +(5-1)*2 = 12; +(3-1)*4 = 20; jumps 1, 2, 4, 8
    assert [step.rows.field for step in chain.steps] == [3, 4, 12, 20]
    assert [step.rows.jump for step in chain.steps] == [1, 2, 4, 8]
    assert chain.output_size == (27, 27)
    formula = chain.steps[2].rows.formula()
    assert formula == "(112 - 5 + 2×1)/2 + 1 = floor(109/2) + 1 = 55"
    assert any("floors" in warning and "layer 3" in warning for warning in chain.warnings())
    json.dumps(chain.to_dict())


@settings(max_examples=150, deadline=None)
@given(specs=st.lists(layer_specs(), min_size=1, max_size=3), height=st.integers(1, 40),
       width=st.integers(1, 40))
def test_sizes_match_real_pytorch_layers(specs, height, width):
    x = torch.zeros(1, 1, height, width)
    try:
        for module in _torch_layers(specs):
            x = module(x)
        torch_shape = tuple(x.shape[-2:])
        assert min(torch_shape) > 0
    except (RuntimeError, ValueError):
        torch_shape = None
    try:
        ours = size_chain((height, width), specs).output_size
    except ConfigError:
        ours = None
    assert ours == torch_shape


@settings(max_examples=40, deadline=None)
@given(specs=st.lists(layer_specs(), min_size=1, max_size=3))
def test_receptive_field_is_the_gradient_support(specs):
    """Oracle: which input pixels the middle output pixel's gradient reaches (positive weights)."""
    size = 48
    try:
        chain = size_chain(size, specs)
    except ConfigError:
        assume(False)
    row, col = chain.output_size[0] // 2, chain.output_size[1] // 2
    box = chain.field_of(row, col)
    assume(box["top"] >= 0 and box["left"] >= 0 and box["bottom"] < size and box["right"] < size)
    x = torch.ones(1, 1, size, size, requires_grad=True)
    y = x
    for module in _torch_layers(specs, ones=True):
        y = module(y)
    y[0, 0, row, col].backward()
    rows, cols = torch.nonzero(x.grad[0, 0] > 0, as_tuple=True)
    assert (int(rows.min()), int(rows.max())) == (box["top"], box["bottom"])
    assert (int(cols.min()), int(cols.max())) == (box["left"], box["right"])
    assert box["bottom"] - box["top"] + 1 == chain.receptive_field[0]


def test_inexact_division_warns_floor_or_ceil():
    floor = size_chain(6, "conv3 s2")
    assert floor.output_size == (2, 2)
    assert "floor(3/2)" in floor.steps[0].rows.formula()
    assert "PyTorch floors" in floor.warnings()[0]
    ceil = size_chain(6, "pool3 s2 ceil")
    assert ceil.output_size == (3, 3)
    assert nn.MaxPool2d(3, 2, ceil_mode=True)(torch.zeros(1, 1, 6, 6)).shape[-1] == 3
    assert "ceil(3/2)" in ceil.steps[0].rows.formula()
    assert "ceil mode rounds up" in ceil.warnings()[0]


def test_ceil_window_starting_in_the_padding_is_dropped_like_pytorch():
    # (5 - 2 + 2)/2 rounds up to 3, + 1 = 4, but window 4 would start at 6, in the padding
    chain = size_chain(5, "pool2 s2 p1 ceil")
    expected = nn.MaxPool2d(2, 2, 1, ceil_mode=True)(torch.zeros(1, 1, 5, 5)).shape[-1]
    assert chain.output_size[0] == expected == 3
    assert chain.steps[0].rows.formula() == (
        "(5 - 2 + 2×1)/2 + 1 = ceil(5/2) + 1 - 1 = 3 (the last window would start in the right "
        "padding, so PyTorch drops it)")
    assert "PyTorch drops it" in chain.warnings()[0]
    kept = size_chain(6, "pool2 s2 p1 ceil")
    real = nn.MaxPool2d(2, 2, 1, ceil_mode=True)(torch.zeros(1, 1, 6, 6)).shape[-1]
    assert kept.output_size[0] == real == 4
    assert "drops it" not in kept.steps[0].rows.formula()


def test_same_padding_keeps_the_size():
    chain = size_chain((37, 50), "conv5 same, conv4 same d2, conv3 same s2")
    assert chain.steps[0].size_out == (37, 50)
    assert chain.steps[1].size_out == (37, 50)
    assert chain.steps[2].size_out == (19, 25)  # ceil(I / S)
    assert chain.steps[0].same_padding() == "2"
    assert chain.steps[1].same_padding() == "3"  # D (F - 1) = 6 split 3 + 3
    assert size_chain(10, "conv4").steps[0].same_padding() == "1+2"
    assert size_chain(10, "pool2").steps[0].same_padding() == ""


def test_no_output_is_a_clear_error_naming_the_layer():
    with pytest.raises(ConfigError, match=r"layer 3 \(conv5\): no output: the kernel spans 5 px"):
        size_chain(10, "conv3, pool2, conv5")
    with pytest.raises(ConfigError, match="more than half"):
        size_chain(10, "pool2 p2")


@pytest.mark.parametrize(("text", "message"), [
    ("", "no layers"),
    ("conv", "must start with conv<F>"),
    ("conv3, ,pool2", "layer 2 is empty"),
    ("conv3 x2", "unknown option 'x2'"),
    ("pool2 same", "'same' padding applies to conv"),
    ("conv3 ceil", "ceil mode applies to pool"),
    ("pool2 d2", "dilation applies to conv"),
    ("conv0", "kernel must be a whole number >= 1"),
    ("conv3 s0", "stride must be a whole number >= 1"),
])
def test_bad_layer_text_explains_the_syntax(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_layers(text)


def test_layer_spec_guards():
    for kernel in ("3", (3, 3, 3), (0, 3)):
        with pytest.raises(ConfigError):
            LayerSpec("conv", kernel)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="conv or pool"):
        LayerSpec("dense", 3)


def test_input_size_forms():
    assert size_chain("300x451", "conv3").output_size == (298, 449)
    assert size_chain((300, 451), "conv3x5").output_size == (298, 447)
    for bad in ("0", "axb", (3,), -2):
        with pytest.raises(ConfigError, match="input size"):
            size_chain(bad, "conv3")


@pytest.mark.parametrize("config", [
    LayerConfig(), LayerConfig(stride=2, padding="same", dilation=2, pool=3, pool_stride=2),
    LayerConfig(padding=(1, 0, 2, 1), pool=None), LayerConfig(stride=3, padding=2, pool=2),
])
def test_config_chain_matches_the_run_layer(config):
    steps = check_fits(config, 41, 57, (3, 5))
    chain = config_chain(config, (41, 57), (3, 5))
    assert [step.size_out for step in chain.steps] == [step.outputs for step in steps]
