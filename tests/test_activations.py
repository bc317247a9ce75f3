"""convlens.activations: every number of every layer kind is explained exactly.

The oracle is always PyTorch itself: forward hooks registered here (not convlens') record what
each layer gives, and ``F.conv2d`` / the module computes the reference in the property tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from architectures import EfficientNetLike, ResNet18, own_weights
from convlens.activations import (
    ActivationFunctionExplanation,
    AddExplanation,
    BatchNormExplanation,
    ConcatExplanation,
    ConvExplanation,
    Explainer,
    FlattenExplanation,
    LinearExplanation,
    MulExplanation,
    OtherExplanation,
    PoolExplanation,
    explain_activation,
    explain_chain,
)
from convlens.activations.ops import ACTIVATIONS as ACTIVATION_CLASSES
from convlens.errors import ConfigError, ModelError
from convlens.explain.parts import find
from convlens.sizes import LayerSpec, size_chain

ACTIVATIONS = [nn.ReLU(), nn.LeakyReLU(0.2), nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(),
               nn.Hardswish(), nn.Sigmoid(), nn.Tanh(), nn.ReLU6(), nn.Hardsigmoid()]


def hooked(module: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """What every named submodule outputs, recorded by our own forward hooks."""
    seen: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(_module, _inputs, output) -> None:  # None: the output is left as it is
            seen.setdefault(name, output.detach().clone())
        return hook

    handles = [m.register_forward_hook(record(name))
               for name, m in module.named_modules() if name]
    try:
        with torch.no_grad():
            module(batch)
    finally:
        for handle in handles:
            handle.remove()
    return seen


class Zoo(nn.Module):
    """One of every layer kind, with a residual add and a concatenation; ``branchy`` adds
    control flow so torch.fx cannot trace it (forward hooks are used then)."""

    def __init__(self, branchy: bool = False) -> None:
        super().__init__()
        self.branchy = branchy
        self.conv = nn.Conv2d(3, 6, 3, padding=1, padding_mode="reflect")
        self.bn = nn.BatchNorm2d(6)
        self.act = nn.ReLU(inplace=True)
        self.grouped = nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=3,
                                 padding_mode="replicate")
        self.depthwise = nn.Conv2d(6, 6, 3, padding="same", groups=6, padding_mode="circular",
                                   bias=False)
        self.strided = nn.Conv2d(12, 4, 2, stride=2)
        self.gelu = nn.GELU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avgpool = nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)
        self.adaptive = nn.AdaptiveAvgPool2d((3, 2))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act(self.bn(self.conv(x)))
        b = self.grouped(a)
        c = a + self.depthwise(b)
        d = torch.cat([c, b], 1)
        if self.branchy and d.sum() > -1e9:
            d = d * 1
        e = self.gelu(self.strided(d))
        f = self.adaptive(self.avgpool(self.maxpool(e)))
        return self.fc(self.flatten(f))


def zoo(branchy: bool = False) -> Zoo:
    torch.manual_seed(0)
    model = Zoo(branchy).eval()
    model.bn.running_mean.uniform_(-0.5, 0.5)
    model.bn.running_var.uniform_(0.5, 2.0)
    model.bn.weight.data.uniform_(0.5, 1.5)
    model.bn.bias.data.uniform_(-0.2, 0.2)
    return model


KINDS = {"conv": ConvExplanation, "bn": BatchNormExplanation,
         "act": ActivationFunctionExplanation, "grouped": ConvExplanation,
         "depthwise": ConvExplanation, "strided": ConvExplanation,
         "gelu": ActivationFunctionExplanation, "maxpool": PoolExplanation,
         "avgpool": PoolExplanation, "adaptive": PoolExplanation, "flatten": FlattenExplanation,
         "fc": LinearExplanation}


def positions(shape: tuple[int, ...]) -> list[tuple]:
    """Corners, the middle and an edge of a layer's output."""
    if len(shape) == 1:
        return [(0, None, None), (shape[0] - 1, None, None)]
    c, h, w = shape
    return [(0, 0, 0), (c - 1, h - 1, w - 1), (c // 2, h // 2, w // 2), (c - 1, 0, w - 1)]


@pytest.mark.parametrize("branchy", [False, True], ids=["fx", "hooks"])
def test_every_layer_kind_totals_the_hooked_value(branchy):
    model = zoo(branchy)
    image = torch.rand(3, 9, 7)
    truth = hooked(model, image[None])
    explainer = Explainer(model, image)
    assert explainer.capture.how == ("forward hooks" if branchy else "torch.fx graph")
    for name, kind in KINDS.items():
        out = truth[name][0]
        for channel, y, x in positions(tuple(out.shape)):
            e = explainer.explain(name, channel, y, x, top=2)
            assert isinstance(e, kind), (name, e)
            index = (channel,) if y is None else (channel, y, x)
            expected = float(out[index])
            assert e.value == pytest.approx(expected, abs=0)
            assert e.total == pytest.approx(expected, rel=1e-5, abs=1e-6), name
            json.dumps(e.to_dict())  # JSON-ready, parts included
            assert e.to_dict()["parts"][0]["kind"] == "heading"


def test_residual_add_and_concat_name_their_branches():
    model = zoo()
    image = torch.rand(3, 9, 7)
    truth = hooked(model, image[None])
    explainer = Explainer(model, image)
    add = explainer.explain("add", 2, 4, 3)
    assert isinstance(add, AddExplanation)
    assert add.branches == ("act", "depthwise")
    assert add.terms == pytest.approx((float(truth["act"][0, 2, 4, 3]),
                                       float(truth["depthwise"][0, 2, 4, 3])))
    cat = explainer.explain("cat", 8, 1, 1)
    assert isinstance(cat, ConcatExplanation)
    assert (cat.part, cat.source, cat.source_channel, cat.sizes) == (1, "grouped", 2, (6, 6))
    assert cat.total == pytest.approx(float(truth["grouped"][0, 2, 1, 1]))


def test_conv_ranks_channels_and_sums_the_rest_exactly():
    model = zoo()
    e = explain_activation(model, torch.rand(3, 9, 7), "strided", 1, 2, 1, top=3)
    assert isinstance(e, ConvExplanation)
    shown, rest = e.ranked()
    magnitudes = np.abs(e.partial)
    assert [magnitudes[i] for i in shown] == sorted(magnitudes, reverse=True)[:3]
    assert sum(e.partial[i] for i in shown) + rest + e.bias == pytest.approx(e.total)
    assert e.products.shape == (12, 2, 2)
    assert e.to_dict()["rest"]["channels"] == 9
    written = find(e.parts(), "sum")
    assert "the other 9 input channels" in written.lines[0]


def test_grouped_conv_reads_only_its_group():
    e = explain_activation(zoo(), torch.rand(3, 9, 7), "grouped", 5, 0, 0)
    assert e.in_channels == (4, 5)  # group 2 of 3
    d = explain_activation(zoo(), torch.rand(3, 9, 7), "depthwise", 3, 0, 6)
    assert d.in_channels == (3,) and d.bias == 0.0
    assert d.padded.any()  # 'same' padding at the corner, circular


def test_batchnorm_folded_into_the_conv_gives_the_same_number():
    e = explain_activation(zoo(), torch.rand(3, 9, 7), "bn", 4, 3, 2)
    assert isinstance(e, BatchNormExplanation) and e.folded is not None
    assert e.source == "conv"
    assert e.folded.total == pytest.approx(e.value, rel=1e-5, abs=1e-6)
    assert find(e.parts(), "folded") is not None


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda m: repr(m))
def test_each_activation_formula(activation):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), activation).eval()
    image = torch.randn(1, 6, 6) * 3
    truth = hooked(model, image[None])["1"][0]
    explainer = Explainer(model, image)
    for c, y, x in [(0, 0, 0), (1, 3, 2), (0, 2, 3)]:
        e = explainer.explain("1", c, y, x)
        assert isinstance(e, ActivationFunctionExplanation)
        assert e.total == pytest.approx(float(truth[c, y, x]), rel=1e-5, abs=1e-6)
        assert e.lines[-1] == find(e.parts(), "sum").lines[-1]


@pytest.mark.parametrize("pool", [
    nn.MaxPool2d(3, stride=2, padding=1), nn.MaxPool2d(2, dilation=2, stride=1),
    nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.AvgPool2d(3, stride=2, padding=1),
    nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
    nn.AvgPool2d(2, divisor_override=3), nn.AdaptiveAvgPool2d((3, 2)), nn.AdaptiveMaxPool2d(2),
    nn.AdaptiveAvgPool2d(1)], ids=repr)
def test_pools(pool):
    model = nn.Sequential(nn.Conv2d(1, 2, 1), pool).eval()
    image = torch.randn(1, 7, 5)
    out = hooked(model, image[None])["1"][0]
    explainer = Explainer(model, image)
    for c, y, x in positions(tuple(out.shape)):
        e = explainer.explain("1", c, y, x)
        assert isinstance(e, PoolExplanation)
        assert e.total == pytest.approx(float(out[c, y, x]), rel=1e-6, abs=1e-6)
        if "Max" in type(pool).__name__:
            assert e.values[e.rows.index(e.winner[0]), e.cols.index(e.winner[1])] == e.total
    if isinstance(pool, nn.AdaptiveAvgPool2d) and pool.output_size == 1:
        assert explainer.explain("1", 0, 0, 0).pool == "global avg"
    if getattr(pool, "padding", 0) == 1:  # the corner window reaches past the map
        corner = find(explainer.explain("1", 0, 0, 0).parts(), "padding")
        assert corner is not None and "5 of the window's 9 cells lie outside the map" in \
            corner.text
        kept = "counted as 0" if getattr(pool, "count_include_pad", False) else "left out"
        assert kept in corner.text


def test_linear_maps_inputs_back_and_gives_softmax_shares():
    model = zoo()
    image = torch.rand(3, 9, 7)
    explainer = Explainer(model, image)
    e = explainer.explain("fc", 3, top=4)
    assert isinstance(e, LinearExplanation)
    assert e.map_shape == (4, 3, 2)
    adaptive = hooked(model, explainer.batch)["adaptive"][0]
    for index in range(24):
        assert e.inputs[index] == pytest.approx(float(adaptive[e.position_of(index)]))
    logits = hooked(model, explainer.batch)["fc"][0].double()
    assert e.share == pytest.approx(float(torch.softmax(logits, 0)[3]))
    assert e.shares[0][0] == int(logits.argmax())
    data = e.to_dict()
    assert len(data["inputs"]) == 4 and data["rest"]["inputs"] == 20
    assert sum(item["product"] for item in data["inputs"]) + data["rest"]["sum"] + e.bias == \
        pytest.approx(e.total)


def test_other_layers_are_shown_not_guessed():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.norm = nn.GroupNorm(1, 2)

        def forward(self, x):
            return self.norm(self.conv(x)) + x

    model = nn.Sequential(Block(), nn.Upsample(scale_factor=2)).eval()
    image = torch.rand(2, 4, 4)
    truth = hooked(model, image[None])
    explainer = Explainer(model, image)
    norm = explainer.explain("0.norm", 1, 2, 2)
    assert isinstance(norm, OtherExplanation) and norm.kind == "GroupNorm"
    assert norm.value == pytest.approx(float(truth["0.norm"][0, 1, 2, 2]))
    assert norm.inputs[0] == pytest.approx(float(truth["0.conv"][0, 1, 2, 2]))
    block = explainer.explain("0", 0, 1, 1)  # a container: its children are named
    assert isinstance(block, OtherExplanation) and "0.conv" in block.children
    up = explainer.explain("1", 0, 7, 7)
    assert isinstance(up, OtherExplanation) and up.inputs == (None,)
    assert up.field is None  # convlens does not know what Upsample reads: no field


def test_receptive_field_matches_the_size_chain():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2),
                          nn.Conv2d(1, 1, 3, stride=2, dilation=2, padding=2), nn.ReLU(),
                          nn.AvgPool2d(3, stride=2)).eval()
    explainer = Explainer(model, torch.rand(1, 40, 40))
    chain = size_chain((40, 40), [LayerSpec("conv", (3, 3), None, 1), LayerSpec("pool", (2, 2)),
                                  LayerSpec("conv", (3, 3), 2, 2, 2),
                                  LayerSpec("pool", (3, 3), 2, pool_type="avg")])
    out = hooked(model, explainer.batch)["4"][0]
    for y in range(out.shape[1]):
        for x in range(out.shape[2]):
            box = chain.field_of(y, x)
            clipped = {"top": max(box["top"], 0), "bottom": min(box["bottom"], 39),
                       "left": max(box["left"], 0), "right": min(box["right"], 39)}
            assert explainer.field("4", (0, y, x)) == clipped


def test_field_follows_only_the_channels_that_feed_it():
    model = zoo()
    explainer = Explainer(model, torch.rand(3, 9, 7))
    # channels 6.. of the concatenation are the grouped conv's: its taps 2 apart over rows
    # 2..6 of a 3x3 conv's output, so rows 1..7; channels 0..5 add the depthwise conv on top
    # of it (rows 2..6 of the grouped conv's output, so rows 0..8). Cols clip at the edge.
    narrow = explainer.explain("cat", 6, 4, 3).field
    wide = explainer.explain("cat", 0, 4, 3).field
    assert narrow == {"top": 1, "bottom": 7, "left": 0, "right": 6}
    assert wide == {"top": 0, "bottom": 8, "left": 0, "right": 6}
    assert explainer.explain("conv", 0, 4, 3).field == {"top": 3, "bottom": 5, "left": 2,
                                                          "right": 4}


def test_trace_walks_back_to_the_input_strongest_first():
    model = zoo()
    explainer = Explainer(model, torch.rand(3, 9, 7))
    trace = explainer.trace("fc", 1)
    layers = [step.layer for step in trace.steps]
    assert layers[0] == "fc" and layers[-1] == "conv"
    assert "input image" in trace.end
    for step in trace.steps:  # every step's number is the layer's own
        y, x = (step.position[1], step.position[2]) if len(step.position) == 3 else (None, None)
        assert explainer.explain(step.layer, step.position[0], y, x).value == step.value
    conv = explainer.explain("conv", *trace.steps[-1].position)
    assert trace.steps[-1].because.endswith(str(conv.strongest()))
    assert find(trace.parts(), "trace").rows[0][0] == "fc"


def test_hooks_are_removed_and_mode_restored():
    model = zoo(branchy=True).train()
    Explainer(model, torch.rand(3, 9, 7)).explain("bn", 0, 0, 0)
    assert model.training
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_bad_requests_get_one_clear_line():
    explainer = Explainer(zoo(), torch.rand(3, 9, 7))
    with pytest.raises(ModelError, match=r"did you mean .*grouped"):
        explainer.explain("groupd", 0, 0, 0)
    with pytest.raises(ConfigError, match=r"channel must be 0\.\.5") as info:
        explainer.explain("conv", 6, 0, 0)
    assert "--channel" in info.value.worded("cli")
    with pytest.raises(ConfigError, match=r"y must be 0\.\.8 and x 0\.\.6"):
        explainer.explain("conv", 0, 9, 0)
    with pytest.raises(ConfigError, match="give y, x"):
        explainer.explain("conv", 0)
    with pytest.raises(ConfigError, match="give no y, x"):
        explainer.explain("fc", 0, 1, 1)
    with pytest.raises(ConfigError, match="top must be at least 1"):
        explainer.explain("fc", 0, top=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    groups=st.sampled_from([1, 2]), per_group=st.integers(1, 3), out_per_group=st.integers(1, 2),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from([0, 1, 2, "same", (1, 0)]),
    mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    size=st.tuples(st.integers(5, 11), st.integers(5, 11)), bias=st.booleans(),
    data=st.data())
def test_conv_property(groups, per_group, out_per_group, kernel, stride, dilation, padding,
                       mode, size, bias, data):
    if padding == "same":
        stride = (1, 1)  # PyTorch allows 'same' at stride 1 only
    cells = padding if isinstance(padding, tuple) else (padding, padding)
    if mode in ("reflect", "circular") and padding != "same" and max(cells) >= min(size):
        return
    conv = nn.Conv2d(groups * per_group, groups * out_per_group, kernel, stride=stride,
                     padding=padding, dilation=dilation, groups=groups, bias=bias,
                     padding_mode=mode).eval()
    image = torch.randn(groups * per_group, *size)
    try:
        with torch.no_grad():
            out = conv(image[None])[0]
    except RuntimeError:
        return  # PyTorch refuses this geometry (no output, or padding too large)
    if out.numel() == 0:
        return
    c = data.draw(st.integers(0, out.shape[0] - 1))
    y = data.draw(st.integers(0, out.shape[1] - 1))
    x = data.draw(st.integers(0, out.shape[2] - 1))
    e = explain_activation(nn.Sequential(conv), image, "0", c, y, x, top=1)
    assert isinstance(e, ConvExplanation)
    assert e.total == pytest.approx(float(out[c, y, x]), rel=1e-5, abs=1e-5)
    # the taps: row y*S + i*D - top, as the size arithmetic says
    assert e.input_rows[0] == y * stride[0] - e.pads[0]
    assert e.input_cols[-1] == x * stride[1] - e.pads[2] + dilation[1] * (kernel[1] - 1)
    assert e.padded.any() == (min(e.input_rows) < 0 or max(e.input_rows) >= size[0]
                              or min(e.input_cols) < 0 or max(e.input_cols) >= size[1])


def test_model_input_is_prepared_as_the_model_wants():
    from convlens.models import ModelInfo, ModelKind, OpenedModel, prepare_input

    module = nn.Sequential(nn.Conv2d(1, 2, 3)).eval()
    opened = OpenedModel(module, ModelKind.FACTORY, "net",
                         ModelInfo(in_channels=1, input_size=(6, 6), mean=[0.5], std=[0.25]))
    image = torch.rand(3, 12, 10)
    e = explain_activation(opened, image, "0", 1, 2, 2)
    batch = prepare_input(image, opened).batch
    with torch.no_grad():
        expected = float(module(batch)[0, 1, 2, 2])
    assert e.total == pytest.approx(expected, rel=1e-5)
    assert e.input_shape == (1, 6, 6)


WORKED_OUT = {"Conv2d", "BatchNorm2d", "Linear", "Flatten", "MaxPool2d", "AvgPool2d",
              "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", *ACTIVATION_CLASSES}


def assert_every_layer_exact(opened, image) -> int:
    """Explain a few numbers of every layer that gives a map or a vector; each total must be
    the value our own hook (or, for TorchScript, the layer's own output) holds. Returns how
    many layers were checked."""
    explainer = Explainer(opened, image)
    module = opened.module if hasattr(opened, "module") else opened
    truth = {} if isinstance(module, torch.jit.ScriptModule) else hooked(module, explainer.batch)
    checked = 0
    for name in explainer.layers():
        out = explainer.output(name)[0]
        if out.ndim not in (1, 3):
            continue
        for channel, y, x in positions(tuple(out.shape)):
            e = explainer.explain(name, channel, y, x, top=3)
            index = (channel,) if y is None else (channel, y, x)
            expected = float(truth[name][0][index]) if name in truth else float(out[index])
            assert e.value == pytest.approx(expected, rel=1e-6, abs=1e-7), name
            assert e.total == pytest.approx(expected, rel=1e-4, abs=1e-5), name
            if e.kind in WORKED_OUT:
                assert not isinstance(e, OtherExplanation), (name, e.why)
        checked += 1
    return checked


@pytest.mark.parametrize("arch,kwargs", [("tinyvgg", {"width": 4}), ("lenet", {}),
                                         ("resnet9", {"width": 4})])
def test_convlens_models_from_a_checkpoint(tmp_path, arch, kwargs):
    from convlens.models import ModelInfo, create_model, open_model, save_checkpoint

    torch.manual_seed(1)
    model = create_model(arch, 3, 4, (16, 16), **kwargs)
    for module in model.modules():  # trained-looking batch-norm statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    info = ModelInfo(arch, 3, (16, 16), ["a", "b", "c", "d"], [0.5] * 3, [0.25] * 3, kwargs)
    save_checkpoint(model, info, tmp_path / "run")
    opened = open_model(tmp_path / "run")
    assert assert_every_layer_exact(opened, torch.rand(3, 20, 18)) >= 6
    explainer = Explainer(opened, torch.rand(3, 20, 18))
    last = [n for n in explainer.layers() if explainer.capture.get(n).op.kind == "linear"][-1]
    head = explainer.explain(last, 2)
    assert isinstance(head, LinearExplanation)
    if arch == "resnet9":  # a Scale layer follows: the linear's output is not the model's
        assert head.shares == () and head.share is None
    else:
        assert head.shares[0][1] in "abcd" and 0 < head.share < 1
    trace = explainer.trace(last, 2)
    assert "input image" in trace.end and len(trace.steps) >= 4


@pytest.fixture(scope="module")
def saved_zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    model = zoo()
    torch.jit.script(model).save(str(folder / "zoo.pt"))
    torch.export.save(torch.export.export(model, (torch.rand(1, 3, 9, 7),)),
                      str(folder / "zoo.pt2"))
    return folder, model


@pytest.mark.parametrize("suffix", ["pt", "pt2"])
def test_torchscript_and_export_files(saved_zoo, suffix):
    import warnings

    from convlens.models import open_model

    folder, model = saved_zoo
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opened = open_model(folder / f"zoo.{suffix}", trust_code=True)
    image = torch.rand(3, 9, 7)
    truth = hooked(model, image[None])  # the eager model the file was made from
    explainer = Explainer(opened, image)
    for name, kind in KINDS.items():
        out = truth[name][0]
        for channel, y, x in positions(tuple(out.shape)):
            e = explainer.explain(name, channel, y, x, top=2)
            assert isinstance(e, kind), (suffix, name, e)
            index = (channel,) if y is None else (channel, y, x)
            assert e.total == pytest.approx(float(out[index]), rel=1e-5, abs=1e-6)
    bn = explainer.explain("bn", 1, 2, 2)
    assert bn.folded is not None and bn.folded.total == pytest.approx(bn.value, abs=1e-5)
    eager = Explainer(model, image)
    trace, expected = explainer.trace("fc", 0), eager.trace("fc", 0)
    if suffix == "pt2":  # the program's own graph: x + y and torch.cat are layers too
        assert explainer.capture.how == "torch.fx graph"
        assert explainer.explain("strided", 0, 1, 1).field == eager.explain(
            "strided", 0, 1, 1).field
        assert trace == expected
    else:  # TorchScript: the trace stops where no layer made the input (torch.cat)
        assert explainer.explain("strided", 0, 1, 1).field is None
        assert trace.steps == expected.steps[:len(trace.steps)]
        assert trace.steps[-1].layer == "strided" and "stops" in trace.end


class Gated(nn.Module):
    """A squeeze-and-excitation gate (x times a per-channel sigmoid of its global mean, as in
    MobileNetV3 and EfficientNet), a functional global pool and an eval-mode Dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.squeeze = nn.Conv2d(4, 4, 1)
        self.gate = nn.Hardsigmoid()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        s = self.gate(self.squeeze(F.adaptive_avg_pool2d(x, 1)))
        x = x * s
        return self.fc(self.drop(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))


def test_gates_functional_pools_and_layers_that_pass_their_input_through():
    torch.manual_seed(2)
    model = Gated().eval()
    image = torch.rand(2, 6, 5)
    truth = hooked(model, image[None])
    explainer = Explainer(model, image)
    mul = explainer.explain("mul", 3, 2, 4)
    assert isinstance(mul, MulExplanation) and mul.branches == ("conv", "gate")
    assert mul.factors == pytest.approx((float(truth["conv"][0, 3, 2, 4]),
                                         float(truth["gate"][0, 3, 0, 0])))
    assert mul.field == {"top": 0, "bottom": 5, "left": 0, "right": 4}  # the gate sees all
    pool = explainer.explain("adaptive_avg_pool2d_1", 1, 0, 0)
    assert isinstance(pool, PoolExplanation) and pool.pool == "global avg"
    drop = explainer.explain("drop", 2)
    assert isinstance(drop, OtherExplanation) and drop.inputs == (drop.value,)
    assert explainer.passes_through(explainer.capture.get("drop"))
    trace = explainer.trace("fc", 0)
    assert [s.layer for s in trace.steps][:3] == ["fc", "drop", "flatten"]
    assert "passed through unchanged" in trace.steps[1].because
    assert "mul" in [s.layer for s in trace.steps] and "input image" in trace.end


def test_a_cell_that_reads_only_padding_has_no_receptive_field():
    """A 1x1 conv with padding 1: its corner output reads one cell of zero padding and no
    pixel of the image (found by the property test above)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1, padding=1, bias=False))
    image = torch.rand(1, 5, 5)
    corner = explain_activation(model, image, "0", 0, 0, 0)
    assert corner.field is None and corner.value == 0.0 and corner.total == 0.0
    inside = explain_activation(model, image, "0", 0, 1, 1)
    assert inside.field == {"top": 0, "bottom": 0, "left": 0, "right": 0}


def test_an_unknown_layer_is_worded_for_the_library():
    """The library's message lists the layers and names no command; the CLI adds where to
    look them up (tests/test_cli_explain_model.py)."""
    with pytest.raises(ModelError) as info:
        Explainer(zoo(), torch.rand(3, 9, 7)).explain("groupd", 0, 0, 0)
    message = str(info.value)
    assert "did you mean grouped" in message and "the layers are: conv, bn" in message
    assert "convlens" not in message and "--" not in message and "\n" not in message


# ---------------------------------------------------------------------------- the chain

def test_a_chain_runs_from_the_conv_to_the_number():
    """A max pool's number, back through its winner, the activation and the batch norm to
    the conv: each step is the layer's hooked number at its place, each step's input the
    step before's output."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Dropout(), nn.MaxPool2d(2), nn.AvgPool2d(2)).eval()
    torch.manual_seed(3)
    model[1].running_mean.uniform_(-0.5, 0.5)
    image = torch.rand(3, 8, 8)
    explainer = Explainer(model, image)
    truth = hooked(model, explainer.batch)
    chain = explain_chain(explainer, "4", 2, 1, 3)
    kinds = [type(step) for step in chain.steps]
    assert kinds == [ConvExplanation, BatchNormExplanation, ActivationFunctionExplanation,
                     OtherExplanation, PoolExplanation]
    assert [step.layer for step in chain.steps] == ["0", "1", "2", "3", "4"]
    assert chain.conv is chain.steps[0] and chain.end == ""
    for step in chain.steps:
        value = float(truth[step.layer][0][step.channel, step.y, step.x])
        assert step.total == pytest.approx(value, rel=1e-4, abs=1e-5), step.layer
    conv, bn, relu, dropout, pool = chain.steps
    assert bn.input == pytest.approx(conv.value) and relu.input == pytest.approx(bn.value)
    assert dropout.inputs[0] == pytest.approx(relu.value)
    assert (conv.y, conv.x) == pool.winner and pool.total == pytest.approx(dropout.value)
    words = chain.to_dict()
    assert [s["layer"] for s in words["steps"]] == ["0", "1", "2", "3", "4"]
    assert "5 steps: conv (0) → batch norm (1) → relu (2)" in words["intro"][1]["spans"][0][
        "text"]
    # an average pool reads many numbers: the chain starts there and says why
    mean = explain_chain(explainer, "5", 0, 0, 0)
    assert len(mean.steps) == 1 and "combines many numbers" in mean.end
    # a conv's chain is the conv
    assert [type(s) for s in explain_chain(explainer, "0", 1, 0, 0).steps] == [ConvExplanation]


# ---------------------------------------------------------------- real architectures

@pytest.mark.parametrize("build, kinds", [
    (lambda: ResNet18(width=16),
     {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "add", "AdaptiveAvgPool2d", "flatten",
      "Linear"}),
    (EfficientNetLike,
     {"Conv2d", "BatchNorm2d", "SiLU", "Hardswish", "Sigmoid", "mul", "add",
      "AdaptiveAvgPool2d", "Dropout", "Identity", "flatten", "Linear"}),
], ids=["resnet18", "efficientnet-like"])
def test_real_architectures_with_their_own_weights_are_exact(tmp_path, build, kinds):
    """torchvision's resnet18 layout and an EfficientNet-like net (depthwise convs,
    squeeze-and-excitation gates, SiLU, Hardswish, residual adds), weights loaded from a file
    of our own making: every layer's numbers total the hooked value, each layer kind is worked
    out, and every chain's steps are the hooked numbers."""
    model = own_weights(build, tmp_path)
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(5))
    assert assert_every_layer_exact(model, image) > 40
    explainer = Explainer(model, image)
    seen = {explainer.capture.get(name).op.name for name in explainer.layers()}
    assert kinds <= seen
    truth = hooked(model, explainer.batch)
    chains = 0
    for name in explainer.layers():
        out = explainer.output(name)[0]
        if out.ndim != 3 or name not in truth:
            continue
        chain = explain_chain(explainer, name, out.shape[0] - 1, out.shape[1] // 2,
                              out.shape[2] - 1, top=2)
        for step in chain.steps:
            if step.layer in truth:
                want = float(truth[step.layer][0][step.channel, step.y, step.x])
                assert step.total == pytest.approx(want, rel=1e-4, abs=1e-5), step.layer
        chains += len(chain.steps) > 1
    assert chains > 10


class BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d: a batch norm whose forward calls F.batch_norm itself (torch.fx
    traces into it), then an activation."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         False, 0.1, self.eps)
        return self.act(x)


class FunctionalLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class FunctionalNet(nn.Module):
    """Functions in forward as timm writes them: F.batch_norm with the module's statistics,
    a squeeze-and-excitation gate on x.mean((2, 3), keepdim=True), F.linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = BatchNormAct(4)
        self.reduce = nn.Conv2d(4, 4, 1)
        self.fc = FunctionalLinear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        x = x * torch.sigmoid(self.reduce(x.mean((2, 3), keepdim=True)))
        return self.fc(torch.mean(x, dim=[-2, -1], keepdim=True).flatten(1))


def test_functions_timm_writes_in_forward_are_worked_out(tmp_path):
    """F.batch_norm reading the module's running statistics is a batch norm (the conv folded
    in), a spatial mean that keeps its dims a global average pool, F.linear a dense layer: each
    worked out exactly, not shown as an unknown layer (found on timm's efficientnet_b0 and
    mobilenetv3, whose every batch norm is a BatchNormAct2d)."""
    model = own_weights(FunctionalNet, tmp_path)
    explainer = Explainer(model, torch.rand(3, 6, 6))
    assert explainer.capture.how == "torch.fx graph"
    kinds = {name: explainer.capture.get(name).op.kind for name in explainer.layers()
             if explainer.capture.get(name).op.name != "FunctionalNet"}
    assert kinds["batch_norm"] == "batchnorm" and kinds["mean"] == "adaptive_avg"
    assert kinds["mean_1"] == "adaptive_avg" and kinds["linear"] == "linear"
    bn = explainer.explain("batch_norm", 2, 3, 4)
    assert isinstance(bn, BatchNormExplanation) and bn.folded is not None
    assert bn.folded.total == pytest.approx(bn.value, rel=1e-4, abs=1e-6)
    with torch.no_grad():  # the oracle: the formula on the module's own numbers
        bn_module = model.bn
        normed = (model.conv(explainer.batch) - bn_module.running_mean[:, None, None]) / \
            torch.sqrt(bn_module.running_var[:, None, None] + bn_module.eps) * \
            bn_module.weight[:, None, None] + bn_module.bias[:, None, None]
        want = F.silu(normed)
    assert explainer.explain("bn.act", 2, 3, 4).value == pytest.approx(
        float(want[0, 2, 3, 4]), rel=1e-6)
    for name, position in [("batch_norm", (1, 0, 5)), ("mean", (3, 0, 0)),
                           ("mean_1", (0, 0, 0)), ("linear", (2, None, None))]:
        e = explainer.explain(name, *position)
        assert not isinstance(e, OtherExplanation), (name, e)
        assert e.total == pytest.approx(e.value, rel=1e-5, abs=1e-6), name
    assert explain_chain(explainer, "bn.act", 1, 2, 2).conv is not None
    # a batch norm that normalizes with the batch's statistics is shown, not worked out

    class Training(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(2))
            self.register_buffer("var", torch.ones(2))

        def forward(self, x):
            return F.batch_norm(x, self.mean, self.var, None, None, True, 0.1, 1e-5)

    trained = Explainer(Training(), torch.rand(1, 2, 3, 3)).explain("batch_norm", 0, 1, 1)
    assert isinstance(trained, OtherExplanation) and "own statistics" in trained.why
