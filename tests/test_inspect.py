"""Hooks, feature maps, layer tables, learned filters and data set search, against PyTorch
forwards done by hand, torchinfo, SciPy and gradient-measured receptive fields."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchinfo
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage
from scipy.spatial.distance import cosine as cosine_distance

from convlens.errors import ConvlensError, ModelError
from convlens.inspect import (
    LayerCapture,
    LayerTableError,
    check_layer_names,
    conv_layers,
    conv_weights,
    feature_maps,
    layer_table,
    nearest_kernels,
    tensor_bytes,
    top_images,
    top_predictions,
)
from convlens.kernels import get_kernel
from convlens.models import ModelInfo, ModelKind, OpenedModel, create_model, with_input_size
from convlens.numbers import format_number
from convlens.plot.models import (
    plot_feature_maps,
    plot_filters,
    plot_learned_vs_classical,
    plot_top_images,
)
from several_outputs import build as build_onet
from small_nets import sides_that_run

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

class Tiny(nn.Module):
    """conv3 p1 -> relu -> pool2 -> conv3 p1 -> relu -> pool2 -> flatten -> linear."""

    def __init__(self, in_channels: int = 3, flat: int = 10 * 8 * 8, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(flat, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


class Residual(nn.Module):
    """A block whose output is made outside any layer (``x + ...``), one ReLU used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.branch = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.stem(x))
        y = self.relu(self.branch(y)) + y
        return self.head(y.mean(dim=(2, 3)))


def _opened(model: nn.Module, size=(32, 32), channels=3) -> OpenedModel:
    torch.manual_seed(0)
    return OpenedModel(model.eval(), ModelKind.FACTORY, "test", ModelInfo(in_channels=channels,
                                                                       input_size=size))


def _scripted(model: nn.Module, size=(32, 32), channels=3) -> OpenedModel:
    return OpenedModel(torch.jit.script(model.eval()), ModelKind.TORCHSCRIPT, "ts",
                       ModelInfo(in_channels=channels, input_size=size))


@pytest.fixture
def tiny() -> OpenedModel:
    torch.manual_seed(0)
    return _opened(Tiny())


def test_hooked_maps_equal_a_manual_forward_to_that_layer(tiny):
    image = torch.rand(3, 32, 32)
    result = feature_maps(tiny, image, ["features.0", "features.4"], max_side=None)
    x = image[None]
    with torch.no_grad():
        manual_conv = tiny.module.features[0](x)[0]
        manual_relu = tiny.module.features[:5](x)[0]
        logits = tiny.module(x)
    torch.testing.assert_close(result.layers["features.0"].maps, manual_conv, rtol=0, atol=0)
    torch.testing.assert_close(result.layers["features.4"].maps, manual_relu, rtol=0, atol=0)
    torch.testing.assert_close(result.output, logits, rtol=0, atol=0)
    assert result.layers["features.4"].shape == (10, 16, 16)


@pytest.mark.parametrize("compile_", ["script", "trace"])
def test_torchscript_maps_equal_the_module_maps(tiny, compile_):
    image = torch.rand(3, 32, 32)
    names = ["features.0", "features.3", "features"]
    eager = feature_maps(tiny, image, names, max_side=None)
    if compile_ == "script":
        compiled = _scripted(tiny.module)
    else:
        traced = torch.jit.trace(tiny.module, image[None])
        compiled = OpenedModel(traced, ModelKind.TORCHSCRIPT, "traced",
                               ModelInfo(in_channels=3, input_size=(32, 32)))
    scripted = feature_maps(compiled, image, names, max_side=None)
    for name in names:
        torch.testing.assert_close(scripted.layers[name].maps, eager.layers[name].maps)
    torch.testing.assert_close(scripted.output, eager.output)


def test_layer_used_twice_gives_two_entries_in_both_kinds():
    torch.manual_seed(1)
    model = Residual().eval()
    image = torch.rand(3, 12, 12)
    x = image[None]
    with torch.no_grad():
        first = model.relu(model.stem(x))[0]
        second = model.relu(model.branch(first[None]))[0]
    for opened in (_opened(model, None), _scripted(model, None)):
        result = feature_maps(opened, image, ["relu"], max_side=None)
        assert list(result.layers) == ["relu", "relu#2"]
        torch.testing.assert_close(result.layers["relu"].maps, first)
        torch.testing.assert_close(result.layers["relu#2"].maps, second)


def test_channel_statistics_and_order_match_numpy(tiny):
    result = feature_maps(tiny, torch.rand(3, 32, 32), ["features.3"], max_side=None)
    maps = result.layers["features.3"]
    data = maps.maps.numpy().reshape(10, -1).astype(np.float64)
    np.testing.assert_allclose(maps.stats.mean, data.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.stats.std, data.std(1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps.stats.minimum, data.min(1), rtol=0, atol=0)
    np.testing.assert_allclose(maps.stats.maximum, data.max(1), rtol=0, atol=0)
    np.testing.assert_allclose(maps.stats.zero_fraction, (data == 0).mean(1))
    assert maps.top(3) == list(np.argsort(-data.mean(1), kind="stable")[:3])


def test_unknown_layer_name_lists_the_valid_ones(tiny):
    with pytest.raises(ModelError) as caught:
        feature_maps(tiny, torch.rand(3, 32, 32), ["featurs.3"])
    message = str(caught.value)
    assert "no layer named 'featurs.3'" in message and "did you mean features.3" in message
    for name in ("features.0", "features.5", "flatten", "classifier"):
        assert name in message
    with pytest.raises(ModelError, match=r"the layers are: features, features\.0"):
        check_layer_names(_scripted(tiny.module), ["nope"])


def test_layer_without_feature_maps_is_refused(tiny):
    with pytest.raises(ModelError, match=r"'classifier' \(Linear\) gives \(1, 5\), not feature"):
        feature_maps(tiny, torch.rand(3, 32, 32), ["classifier"])


def test_input_that_does_not_fit_says_what_the_model_expects(tiny):
    loose = with_input_size(tiny, None)
    with pytest.raises(ModelError) as caught:
        feature_maps(loose, torch.rand(3, 40, 40), ["features.0"])
    message = str(caught.value)
    assert "does not fit a 3x40x40 input" in message
    assert "'flatten' (Flatten) gives 1000 features, but 'classifier' (Linear) expects 640" \
        in message
    # the library names its own argument; the command line's flag is the CLI's wording
    assert message.endswith("it expects 32x32 images: pass input_size=(32, 32)")
    assert caught.value.worded("cli").endswith("pass --input-size 32x32")


def test_hooks_are_removed_and_mode_restored_after_a_failure(tiny):
    tiny.module.train()
    with pytest.raises(ModelError), LayerCapture(tiny, ["features.0"]) as capture:
        assert not tiny.module.training
        from convlens.inspect import run_model

        run_model(tiny, capture, torch.rand(1, 3, 40, 40))
    assert tiny.module.training
    assert _hook_count(tiny.module) == 0


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if issubclass(type(item), torch.Tensor))


def test_hook_context_used_100_times_leaves_nothing_behind(tiny):
    image = torch.rand(3, 32, 32)
    feature_maps(tiny, image, ["features.0"])  # warm-up: caches built once
    before = _live_tensors()
    for _ in range(100):
        result = feature_maps(tiny, image, ["features.0", "features.3"])
        del result
    assert _hook_count(tiny.module) == 0
    assert _live_tensors() <= before + 2


class Deep(nn.Module):
    """Twelve 'same' conv layers: every map is as large as the image."""

    def __init__(self, width: int = 8, depth: int = 12) -> None:
        super().__init__()
        layers = [nn.Conv2d(3, width, 3, padding=1)]
        for _ in range(depth - 1):
            layers += [nn.ReLU(), nn.Conv2d(width, width, 3, padding=1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


def test_memory_stays_bounded_hooking_every_conv_of_a_deep_model_on_a_large_image():
    torch.manual_seed(0)
    opened = _opened(Deep(), None)
    convs = conv_layers(opened)
    side, stored_side = 512, 64
    full_map = 8 * side * side
    result = feature_maps(opened, torch.rand(3, side, side), convs, max_side=stored_side)
    assert len(result.layers) == 12
    for maps in result.layers.values():
        assert maps.shape == (8, side, side)
        assert maps.maps.shape == (8, stored_side, stored_side) and maps.factor == 8
    bound = 12 * 8 * stored_side * stored_side * 4
    assert tensor_bytes(result.layers.values()) <= bound
    assert tensor_bytes(result.layers.values()) * 40 < 12 * full_map * 4
    # no full-size map is retained anywhere once the call has returned
    gc.collect()
    big = [t for t in gc.get_objects()
           if issubclass(type(t), torch.Tensor) and t.numel() >= full_map]
    assert big == []
    # the stored maps are area averages of the full maps
    x = torch.rand(3, 64, 64)
    small = feature_maps(opened, x, ["body.0"], max_side=16).layers["body.0"]
    with torch.no_grad():
        full = opened.module.body[0](x[None])[0]
    torch.testing.assert_close(small.maps, nn.functional.avg_pool2d(full[None], 4)[0])


# --------------------------------------------------------------------------- layer table


def test_layer_table_matches_torchinfo(tiny):
    table = layer_table(tiny)
    summary = torchinfo.summary(tiny.module, input_size=(1, 3, 32, 32), verbose=0, depth=5)
    expected = {}
    for info in summary.summary_list:
        if info.depth == 0:
            continue
        # torchinfo's var_name is the attribute name; rebuild the dotted path from the parents
        path, node = [info.var_name], info.parent_info
        while node is not None and node.depth > 0:
            path.insert(0, node.var_name)
            node = node.parent_info
        own = sum(p.numel() for p in info.module.parameters(recurse=False))
        expected[".".join(path)] = (tuple(info.output_size), own)
    got = {row.name: (row.output_shape, row.params) for row in table.rows}
    assert got == expected
    assert table.total_params == summary.total_params
    assert table.output_shape == (1, 5) and table.failure is None


def test_layer_table_receptive_fields_worked_by_hand(tiny):
    fields = {row.name: row.receptive_field for row in layer_table(tiny).rows}
    # conv3: 3; pool2: 3 + 1 = 4 (jump 2); conv3: 4 + 2*2 = 8; pool2: 8 + 1*2 = 10
    assert fields["features.0"] == (3, 3)
    assert fields["features.2"] == (4, 4)
    assert fields["features.3"] == (8, 8)
    assert fields["features.5"] == (10, 10)


def _measured_field(model: nn.Module, size: int) -> int:
    """Rows of input that one central output value depends on, read off its gradient."""
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out = model(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    return int(rows.max() - rows.min() + 1)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["conv", "pool"]), st.integers(1, 4),
                          st.integers(1, 2), st.integers(1, 2)), min_size=1, max_size=4))
def test_receptive_field_equals_the_measured_gradient_support(layers):
    modules = []
    for kind, kernel, stride, dilation in layers:
        if kind == "conv":
            conv = nn.Conv2d(1, 1, kernel, stride=stride, dilation=dilation, bias=False)
            nn.init.constant_(conv.weight, 1.0)
            modules.append(conv)
        else:
            modules.append(nn.AvgPool2d(kernel, stride=stride))
    model = nn.Sequential(*modules)
    size = 48
    try:
        model(torch.zeros(1, 1, size, size))
    except RuntimeError:
        assume(False)  # the stack shrinks 48 px to less than a later kernel: no output
    table = layer_table(_opened(model, (size, size), 1))
    last = table.rows[-1]
    assert last.receptive_field is not None
    assert last.receptive_field[0] == _measured_field(model, size)


def test_residual_block_field_follows_the_widest_branch():
    fields = {row.name: row.receptive_field for row in layer_table(_opened(Residual(),
                                                                             (16, 16))).rows}
    assert fields["stem"] == (3, 3)
    assert fields["branch"] == (5, 5)


def test_resnet_fields_follow_the_skip_connections_in_both_kinds():
    model = create_model("resnet9", 3, 10, (32, 32), width=4)
    eager = {r.name: r.receptive_field for r in layer_table(_opened(model)).rows}
    scripted = {r.name: r.receptive_field for r in layer_table(_scripted(model)).rows}
    assert eager == scripted
    # by hand: prep conv3 -> 3; layer1 conv -> 5, pool -> 6 (jump 2); two residual convs -> 10,
    # 14; layer2 conv -> 18, pool -> 20 (jump 4); layer3 conv -> 28, pool -> 32 (jump 8);
    # residual convs -> 48, 64; the global pool and the dense layer see the whole input
    for name, side in (("features.layer1.conv", 5), ("features.layer1.res.body.block2.conv", 14),
                       ("features.layer2.conv", 18), ("features.layer3.pool", 32),
                       ("features.layer3.res.body.block2.conv", 64), ("classifier.pool", 32),
                       ("classifier.fc", 32)):
        assert eager[name] == (side, side), name
    assert eager["classifier.flatten"] is None


def test_layer_table_stops_at_the_failing_layer_and_names_the_mismatch():
    class Wrong(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 20, 3, padding=1), nn.ReLU(),
                                          nn.MaxPool2d(4))
            self.flatten = nn.Flatten()
            self.classifier = nn.Linear(640, 10)
            self.never = nn.Linear(10, 2)

        def forward(self, x):
            return self.never(self.classifier(self.flatten(self.features(x))))

    for opened in (_opened(Wrong()), _scripted(Wrong())):
        with pytest.raises(LayerTableError) as caught:
            layer_table(opened)
        table = caught.value.table
        names = [row.name for row in table.rows]
        assert names[-1] == "classifier" and "never" not in names
        assert table.rows[-1].failed and table.rows[-1].output_shape is None
        assert {row.name: row.output_shape for row in table.rows}["flatten"] == (1, 1280)
        assert str(caught.value) == ("'flatten' (Flatten) gives 1280 features, but "
                                     "'classifier' (Linear) expects 640")


def test_layer_table_names_a_channel_mismatch(tiny):
    table = layer_table(tiny, in_channels=1, strict=False)
    assert table.failure == "the input gives 1 channel, but 'features.0' (Conv2d) expects 3"


def test_torchscript_layer_table_matches_the_module_one(tiny):
    eager = {r.name: (r.output_shape, r.params) for r in layer_table(tiny).rows}
    scripted = {r.name: (r.output_shape, r.params)
                for r in layer_table(_scripted(tiny.module)).rows}
    assert scripted == eager


def test_layer_table_needs_an_input_size(tiny):
    with pytest.raises(ModelError, match=r"input_size=\(H, W\)") as caught:
        layer_table(with_input_size(tiny, None))
    assert caught.value.worded("cli").endswith("pass --input-size HxW")


# --------------------------------------------------------------------------- filters


def test_nearest_kernels_finds_planted_kernels_and_scores_like_scipy():
    torch.manual_seed(0)
    weights = torch.randn(4, 3, 5, 5)
    sobel = np.zeros((5, 5))
    sobel[1:4, 1:4] = get_kernel("sobel-h").as_2d()
    weights[0] = torch.from_numpy(np.repeat(sobel[None], 3, axis=0))
    weights[1] = -2.5 * torch.from_numpy(np.repeat(get_kernel("gaussian-5").as_2d()[None], 3,
                                                   axis=0))
    matches = nearest_kernels(weights)
    assert (matches[0].name, round(matches[0].cosine, 6)) == ("sobel-h", 1.0)
    assert (matches[1].name, round(matches[1].cosine, 6)) == ("gaussian-5", -1.0)
    assert matches[1].label == "-gaussian-5"
    best = matches[2]
    padded = np.zeros((5, 5))
    kernel = get_kernel(best.name).as_2d()
    top = (5 - kernel.shape[0]) // 2
    padded[top:top + kernel.shape[0], top:top + kernel.shape[1]] = kernel
    bank = np.repeat(padded[None], 3, axis=0).ravel()
    oracle = 1 - cosine_distance(weights[2].numpy().ravel().astype(np.float64), bank)
    assert best.cosine == pytest.approx(oracle, abs=1e-9)


def test_nearest_kernels_has_no_match_for_filters_smaller_than_every_kernel():
    assert nearest_kernels(torch.randn(2, 1, 2, 2)) == [None, None]


def test_conv_weights_are_the_layer_weights_and_others_are_refused(tiny):
    torch.testing.assert_close(conv_weights(tiny, "features.3"),
                               tiny.module.features[3].weight.detach())
    with pytest.raises(ModelError, match=r"'features.1' \(ReLU\) has no 2-D filters; conv "
                                         r"layers: features.0, features.3"):
        conv_weights(tiny, "features.1")
    torch.testing.assert_close(conv_weights(_scripted(tiny.module), "features.0"),
                               tiny.module.features[0].weight.detach())


# --------------------------------------------------------------------------- predictions, data


def test_top_predictions_are_the_softmax_of_the_output(tiny):
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, 0.0]])
    tiny.class_names = ["a", "b", "c", "d", "e"]
    predictions = top_predictions(logits, tiny, 3)
    expected = np.exp(logits.numpy()[0]) / np.exp(logits.numpy()[0]).sum()
    assert [p.label for p in predictions] == ["d", "a", "c"]
    np.testing.assert_allclose([p.probability for p in predictions], expected[[3, 0, 2]],
                               rtol=1e-6)
    assert top_predictions(torch.zeros(1, 4, 2, 2), tiny) is None


def test_top_images_are_the_brightest_for_a_mean_detector(tmp_path):
    model = Tiny(in_channels=1)
    with torch.no_grad():
        model.features[0].weight.zero_()
        model.features[0].weight[2] = 1.0 / 9
        model.features[0].bias.zero_()
    opened = _opened(model, (16, 16), 1)
    rng = np.random.default_rng(0)
    paths, means = [], []
    for index in range(11):
        level = rng.uniform(0.1, 0.9)
        pixels = np.clip(rng.normal(level, 0.05, (16, 16)), 0, 1)
        path = tmp_path / f"img{index}.png"
        Image.fromarray((pixels * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
        gray = np.asarray(Image.open(path), dtype=np.float64) / 255
        # oracle: the channel is a 3x3 mean with zero padding
        means.append(ndimage.uniform_filter(gray, 3, mode="constant", cval=0.0).mean())
    seen = []
    tops = top_images(opened, "features.0", 2, paths, count=4, batch_size=3,
                      progress=seen.append)
    assert sum(seen) == 11
    expected = [str(paths[i]) for i in np.argsort(means)[::-1][:4]]
    assert [t.source for t in tops] == expected
    assert [t.score for t in tops] == pytest.approx(sorted(means)[::-1][:4], abs=1e-5)
    assert _hook_count(model) == 0


def test_top_images_checks_the_channel(tiny, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(path)
    with pytest.raises(ModelError, match=r"channel 99 does not exist: layer 'features.0' has 8 "
                                         r"channels \(0-7\)"):
        top_images(tiny, "features.0", 99, [path])


# --------------------------------------------------------------------------- figures


def _tiles(figure):
    """Axes that draw an image, in drawing order (colour bars excluded)."""
    return [ax for ax in figure.axes if ax.images]


def test_rgb_filter_tiles_hold_the_weights_on_a_shared_or_own_scale():
    torch.manual_seed(0)
    weights = torch.randn(5, 3, 3, 3)
    data = weights.numpy().astype(np.float64)
    for scale, limits in (("shared", np.full(5, np.abs(data).max())),
                          ("per-filter", np.abs(data.reshape(5, -1)).max(1))):
        figure = plot_filters(weights, "features.0", scale=scale)
        tiles = _tiles(figure)
        assert len(tiles) == 5
        for index, ax in enumerate(tiles):
            expected = 0.5 + data[index].transpose(1, 2, 0) / (2 * limits[index])
            np.testing.assert_allclose(ax.images[0].get_array(), expected, atol=1e-6)
        title = figure._suptitle.get_text()
        assert "features.0" in title and "5x3x3x3" in title
        assert f"[{format_number(float(data.min()))}, {format_number(float(data.max()))}]" \
            in title


def test_mean_and_channel_filter_views_hold_the_weights():
    torch.manual_seed(1)
    weights = torch.randn(4, 6, 3, 3)
    figure = plot_filters(weights, "conv2", scale="per-filter", view="mean")
    for index, ax in enumerate(_tiles(figure)):
        image = ax.images[0]
        np.testing.assert_allclose(image.get_array(), weights[index].mean(0).numpy(), atol=1e-6)
        limit = float(weights[index].mean(0).abs().max())
        assert image.get_clim() == pytest.approx((-limit, limit))
    figure = plot_filters(weights, "conv2", view="channels", max_channels=4)
    tiles = _tiles(figure)
    assert len(tiles) == 4 * 4
    for index, ax in enumerate(tiles):
        row, column = divmod(index, 4)
        np.testing.assert_allclose(ax.images[0].get_array(), weights[row, column].numpy())
    assert "first 4 of 6 input channels" in figure._suptitle.get_text()
    with pytest.raises(ConvlensError, match="rgb view needs 3 input channels"):
        plot_filters(weights, "conv2", view="rgb")
    with pytest.raises(ConvlensError, match="scale must be one of shared, per-filter") as caught:
        plot_filters(weights, "conv2", scale="global")
    assert "--scale must be one of shared, per-filter" in caught.value.worded("cli")
    assert "--" not in str(caught.value)  # notebooks and the page see no command-line flag


def test_deeper_filters_show_their_strongest_input_channels_on_one_honest_scale():
    # filter 0 is strong (+-0.165) in channels 4 and 1 with opposite signs, so its mean over
    # the channels is weak mush; filter 1 is weak everywhere but strongest in channel 2
    weights = torch.zeros(2, 6, 3, 3)
    edge = torch.tensor([[-1.0, 0.0, 1.0]] * 3)
    weights[0, 4] = 0.165 * edge
    weights[0, 1] = -0.12 * edge
    weights[0, 0, 1, 1] = 0.01
    weights[1, 2] = 0.02 * edge.T
    weights[1, 5, 0, 0] = -0.005
    figure = plot_filters(weights, "features.3")  # auto: strongest, one shared scale
    tiles = _tiles(figure)
    assert len(tiles) == 2 * 4
    expected = {0: [4, 1, 0, 2], 1: [2, 5, 0, 1]}  # by summed |weight|, ties in channel order
    for index, ax in enumerate(tiles):
        row, rank = divmod(index, 4)
        channel = expected[row][rank]
        np.testing.assert_allclose(ax.images[0].get_array(), weights[row, channel].numpy())
        assert f"in {channel}" in ax.get_title()
        # one scale for every tile: the largest |weight| of the layer, never a mean's range
        assert ax.images[0].get_clim() == pytest.approx((-0.165, 0.165))
    colour_bars = [ax for ax in figure.axes if not ax.images]
    assert len(colour_bars) == 1
    assert colour_bars[0].get_ylim() == pytest.approx((-0.165, 0.165))
    title = figure._suptitle.get_text()
    assert "weights [-0.165, 0.165]" in title and "±0.165" in title
    assert "4 strongest of 6 input channels" in title
    # the mean view says what it draws: a range far smaller than the weights'
    mean_title = plot_filters(weights, "features.3", view="mean")._suptitle.get_text()
    low, high = (float(v) for v in (weights.mean(1).min(), weights.mean(1).max()))
    assert f"values [{format_number(low)}, {format_number(high)}]" in mean_title


def test_learned_vs_classical_draws_each_filter_beside_its_kernel():
    weights = torch.zeros(2, 1, 3, 3)
    weights[0, 0] = torch.from_numpy(get_kernel("sobel-v").as_2d()) * 0.1
    weights[1, 0] = -torch.from_numpy(get_kernel("laplacian").as_2d())
    matches = nearest_kernels(weights)
    figure = plot_learned_vs_classical(weights, matches, "features.0")
    tiles = _tiles(figure)
    assert len(tiles) == 4
    for pair, match in enumerate(sorted(matches, key=lambda m: -abs(m.cosine))):
        np.testing.assert_allclose(tiles[2 * pair].images[0].get_array(),
                                   weights[match.filter_index, 0].numpy())
        np.testing.assert_allclose(tiles[2 * pair + 1].images[0].get_array(), match.kernel)
    titles = [ax.get_title() for ax in tiles]
    # the number is the cosine between the two pictures: the flipped kernel is drawn
    assert "sobel-v\ncos 1.00" in titles and "-laplacian\ncos 1.00" in titles
    for pair in range(2):
        learned = tiles[2 * pair].images[0].get_array().ravel()
        drawn = np.asarray(tiles[2 * pair + 1].images[0].get_array()).ravel()
        shown = float(tiles[2 * pair + 1].get_title().split("cos ")[1])
        cosine = learned @ drawn / (np.linalg.norm(learned) * np.linalg.norm(drawn))
        assert shown == pytest.approx(cosine, abs=0.005)


def test_feature_map_figure_shows_the_most_active_channels_with_full_size_ranges(tiny):
    result = feature_maps(tiny, torch.rand(3, 32, 32), ["features.0"], max_side=16)
    maps = result.layers["features.0"]
    figure = plot_feature_maps(maps, top=3, subtitle="prediction: cat 90%")
    tiles = _tiles(figure)[:3]
    for ax, channel in zip(tiles, maps.top(3)):
        np.testing.assert_allclose(ax.images[0].get_array(), maps.maps[channel].numpy())
        low, high = maps.stats.minimum[channel], maps.stats.maximum[channel]
        assert f"ch {channel}  32x32" in ax.get_title()
        assert f"[{format_number(low)}, {format_number(high)}]" in ax.get_title()
    title = figure._suptitle.get_text()
    assert "features.0 (Conv2d) output 8x32x32" in title and "stored at 1/2" in title
    assert "prediction: cat 90%" in title


def test_top_images_figure_names_layer_channel_and_range(tiny, tmp_path):
    paths = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        Image.fromarray(np.full((32, 32, 3), 60 * index, dtype=np.uint8)).save(path)
        paths.append(path)
    tops = top_images(tiny, "features.3", 1, paths, count=2)
    figure = plot_top_images(tops, "features.3", 1, len(paths))
    title = figure._suptitle.get_text()
    assert "features.3, channel 1 (maps 16x16)" in title and "2 of 3 images" in title
    overlays = [ax.images[1].get_array() for ax in _tiles(figure)]
    for overlay, item in zip(overlays, tops):
        np.testing.assert_allclose(overlay, item.activation.numpy())


# --------------------------------------------------------------------------- several outputs


def _onet(declared=(48, 48), scripted=False, **kwargs) -> OpenedModel:
    model = build_onet().eval()
    if scripted:
        return OpenedModel(torch.jit.script(model), ModelKind.TORCHSCRIPT, "onet.pt",
                           ModelInfo(in_channels=3, input_size=declared), **kwargs)
    return OpenedModel(model, ModelKind.FACTORY, "onet",
                       ModelInfo(in_channels=3, input_size=declared), **kwargs)


def test_the_table_of_a_model_with_several_outputs_shows_its_class_scores():
    opened = _onet()
    table = layer_table(opened)
    with torch.no_grad():
        face = opened.module(torch.zeros(1, 3, 48, 48))[2]
    assert table.output_shape == tuple(face.shape) == (1, 2)  # not the box offsets (1, 4)
    assert table.outputs.part.index == 2 and table.outputs.tensor is None
    assert "used #2 (1, 2)" in table.outputs.note() and "(1, 10)" in table.outputs.note()
    data = table.to_dict()
    assert data["output_shape"] == [1, 2]
    assert data["outputs"] == {
        "used": 2, "reason": table.outputs.reason,
        "outputs": [{"index": 0, "name": None, "shape": [1, 4]},
                    {"index": 1, "name": None, "shape": [1, 10]},
                    {"index": 2, "name": None, "shape": [1, 2]}]}
    boxes = layer_table(_onet(output=0))
    assert boxes.output_shape == (1, 4) and boxes.outputs.reason == "as asked"
    assert layer_table(_onet(scripted=True)).output_shape == (1, 2)
    with pytest.raises(ModelError, match=r"no output 5; it returns #0 \(1, 4\)"):
        layer_table(_onet(output=5))
    single = layer_table(OpenedModel(create_model("tinyvgg", 3, 4, (32, 32), width=4).eval(),
                                     ModelKind.REGISTRY, "tinyvgg",
                                     ModelInfo(in_channels=3, input_size=(32, 32))))
    assert single.outputs.note() is None and single.to_dict()["outputs"] is None


@pytest.mark.parametrize("scripted", [False, True])
def test_the_size_hint_is_the_declared_or_a_common_size_of_every_size_that_fits(scripted):
    fitting = sides_that_run(build_onet().eval(), range(30, 70))
    assert fitting == list(range(42, 50))
    with pytest.raises(LayerTableError) as caught:
        layer_table(_onet(declared=(44, 44), scripted=scripted), (64, 64))
    table = caught.value.table
    # TorchScript fails at the same layer as the eager model (it blamed the block, 'body')
    assert table.failure == ("'body.11' (Flatten) gives 400 features, but 'body.12' (Linear) "
                             "expects 144")
    assert [row.name for row in table.rows if row.failed] == ["body", "body.12"]
    hint = table.size_hint
    assert (hint.smallest, hint.largest) == (fitting[0], fitting[-1])
    assert (hint.side, hint.reason) == (44, "the size the model declares")
    # the old hint was the smallest side that fits: 42, for a model made for 48
    undeclared = _onet(declared=None, scripted=scripted)
    table = layer_table(undeclared, (64, 64), strict=False)
    assert (table.size_hint.side, table.size_hint.reason) == (48, "a common input size")
    assert table.suggested_size == 48
    assert table.to_dict()["size_hint"] == {"side": 48, "reason": "a common input size",
                                            "fits": [42, 49]}
    with pytest.raises(ModelError) as refused:
        feature_maps(undeclared, torch.rand(3, 64, 64), ["body.0"])
    message = str(refused.value)
    assert message.endswith("it takes 42x42 to 49x49 inputs, and 48x48 is a common input size; "
                            "it expects 48x48 images: pass input_size=(48, 48)")
    assert refused.value.worded("cli").endswith("pass --input-size 48x48")


def test_layer_errors_point_to_each_surfaces_list_of_layers(tiny):
    """The library points to layer_table(model); the CLI to `convlens layers`; the page to its
    layer menu. No library message names a command."""
    from convlens.inspect import default_layer

    flat = _opened(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2)))
    errors = []
    for call in (lambda: check_layer_names(tiny, ["nope"]), lambda: check_layer_names(tiny, []),
                 lambda: default_layer(flat)):
        with pytest.raises(ModelError) as caught:
            call()
        errors.append(caught.value)
    for error in errors:
        assert "(see layer_table(model))" in str(error) and "convlens" not in str(error)
        assert "(see `convlens layers MODEL`)" in error.worded("cli")
        assert "(see the \"Layer to look into\" menu)" in error.worded("page")
    assert "name one with --layer NAME" in errors[1].worded("cli")
