"""The page's network view (``/api/network``, ``/api/network/explain``, network.js) on the
bundled digits CNN: the columns and every shown number are checked against the library
(:func:`convlens.activations.explain_activation` and a forward hook on the same model and
image), the page's clicks in a real headless Chromium too."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from architectures import ResNet18, own_weights
from convlens.activations import Explainer, explain_activation
from convlens.defaults import DEFAULT_MAX_SIDE
from convlens.images import bundled_model_path, load_image, sample_path
from convlens.models import open_model, prepare_input
from convlens.serve import create_app
from convlens.serve.guard import TOKEN_HEADER
from convlens.serve.network import MAX_COLUMNS, build_pass
from convlens.serve.wire import unpack
from servers import serving

IMAGE = "sample-chelsea"


@pytest.fixture(scope="module")
def opened():
    return open_model(bundled_model_path())


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """The image as the server loads it for the model panel (rgb, the default working size)."""
    return load_image(sample_path("chelsea"), "rgb", DEFAULT_MAX_SIDE)


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    app = create_app(bundled_model_path())
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as test_client:
        yield test_client


def hooked(opened, image, layer: str) -> np.ndarray:
    """Layer ``layer``'s output on ``image`` by a plain forward hook (the oracle), batch
    dropped."""
    seen = {}
    module = opened.module.get_submodule(layer)
    handle = module.register_forward_hook(lambda _m, _i, out: seen.update(out=out.clone()))
    try:
        with torch.no_grad():
            opened.module.eval()(prepare_input(image, opened).batch)
    finally:
        handle.remove()
    return seen["out"][0].numpy().astype(np.float64)


def network(client, **body) -> tuple[dict, dict]:
    response = client.post("/api/network", json={"image": IMAGE, **body})
    assert response.status_code == 200, response.text
    return unpack(response.content)


def test_the_columns_are_the_layers_in_the_order_they_ran(client, opened):
    head, arrays = network(client, columns=[])
    names = [layer["name"] for layer in head["layers"]]
    convs = [name for name, m in opened.module.named_modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert names[0] == "input" and names[-1] == "classifier.fc"
    assert [n for n in names if "conv" in n] == convs
    assert names.index("features.conv1") < names.index("features.pool1") < names.index(
        "features.conv3")
    by_name = {layer["name"]: layer for layer in head["layers"]}
    assert by_name["input"]["shape"] == [1, 8, 8]
    assert by_name["features.pool1"]["shape"] == [32, 4, 4]
    assert by_name["classifier.fc"]["shape"] == [10]
    assert by_name["features.conv2"]["shown"] == 16 and by_name["features.conv2"]["channels"] == 32
    assert head["collapsed"] is False and head["columns"] == {} and arrays == {}
    assert head["scale"] == "layer" and "per layer" in head["scale_words"]


def test_thumbnails_are_the_most_active_channels_on_the_scale_said(client, opened, image):
    head, arrays = network(client, columns=["features.relu2", "features.conv2"], top=4)
    for name in ("features.relu2", "features.conv2"):
        want = hooked(opened, image, name)
        order = np.argsort(-np.abs(want).mean(axis=(1, 2)), kind="stable")[:4]
        column = head["columns"][name]
        assert [c["channel"] for c in column["channels"]] == order.tolist()
        for entry in column["channels"]:
            c = entry["channel"]
            assert entry["min"] == pytest.approx(want[c].min(), abs=1e-5)
            assert entry["max"] == pytest.approx(want[c].max(), abs=1e-5)
        assert arrays[f"maps:{name}"].shape == (4, 8, 8)
        assert column["scale"]["mode"] == "layer"
        # one scale per layer: the same limits for every channel, the brightest cell shared
        assert len({(c["vmin"], c["vmax"]) for c in column["channels"]}) == 1
    relu = head["columns"]["features.relu2"]
    assert relu["scale"]["signed"] is False          # a ReLU's output: gray, 0 = black
    assert head["columns"]["features.conv2"]["scale"]["signed"] is True
    head, _ = network(client, columns=["features.relu2"], top=4, scale="channel")
    assert head["scale"] == "channel" and "own" in head["scale_words"]
    assert len({c["vmax"] for c in head["columns"]["features.relu2"]["channels"]}) > 1


def test_get_takes_the_same_query(client):
    response = client.get(f"/api/network?image={IMAGE}&columns=features.pool2&top=3")
    assert response.status_code == 200, response.text
    head, arrays = unpack(response.content)
    assert list(head["columns"]) == ["features.pool2"]
    assert arrays["maps:features.pool2"].shape == (3, 2, 2)


@pytest.mark.parametrize("layer, channel, y, x", [
    ("features.conv1", 5, 0, 7),          # a padded corner of the first conv
    ("features.conv2", 3, 2, 4),
    ("features.bn3", 7, 1, 1),
    ("features.relu4", 0, 3, 2),
    ("features.pool1", 11, 2, 3),
    ("classifier.fc", 4, None, None),
])
def test_a_cell_is_explained_as_the_library_explains_it(client, opened, image, layer, channel,
                                                        y, x):
    response = client.post("/api/network/explain", json={
        "image": IMAGE, "layer": layer, "channel": channel, "y": y, "x": x})
    assert response.status_code == 200, response.text
    got = response.json()
    want = explain_activation(opened, image, layer, channel, y, x)
    assert got["total"] == pytest.approx(want.total, rel=1e-9, abs=1e-12)
    assert got["value"] == pytest.approx(want.value, rel=1e-9, abs=1e-12)
    assert got["parts"] == json.loads(json.dumps(want.to_dict()["parts"]))  # same words
    assert got["receptive_field"] == want.field
    assert got["image_shape"] == [1, 8, 8]
    # the hooked output holds the number
    out = hooked(opened, image, layer)
    at = (channel,) if y is None else (channel, y, x)
    assert got["value"] == pytest.approx(float(out[at]), abs=1e-6)


def test_the_cells_read_in_the_layer_before_are_given(client):
    conv = client.post("/api/network/explain", json={
        "image": IMAGE, "layer": "features.conv1", "channel": 0, "y": 0, "x": 7}).json()
    assert conv["previous"] == {"layer": "input", "top": 0, "bottom": 1, "left": 6, "right": 7}
    assert conv["receptive_field"] == {"top": 0, "bottom": 1, "left": 6, "right": 7}
    # on the page's photo (the working image, resized whole to 8x8 for the model)
    height, width = load_image(sample_path("chelsea"), "rgb", DEFAULT_MAX_SIDE).shape[1:]
    assert conv["photo_field"] == {"top": 0, "bottom": -(-2 * height // 8) - 1,
                                   "left": 6 * width // 8, "right": width - 1}
    pool = client.post("/api/network/explain", json={
        "image": IMAGE, "layer": "features.pool1", "channel": 2, "y": 1, "x": 3}).json()
    assert pool["previous"] == {"layer": "features.relu2", "top": 2, "bottom": 3, "left": 6,
                                "right": 7}
    relu = client.post("/api/network/explain", json={
        "image": IMAGE, "layer": "features.relu1", "channel": 2, "y": 4, "x": 5}).json()
    assert relu["previous"] == {"layer": "features.bn1", "top": 4, "bottom": 4, "left": 5,
                                "right": 5}
    dense = client.post("/api/network/explain", json={
        "image": IMAGE, "layer": "classifier.fc", "channel": 0}).json()
    assert dense["previous"] is None


def test_one_forward_pass_serves_the_columns_and_every_click(monkeypatch):
    from fastapi.testclient import TestClient

    import convlens.serve.network as network_module

    passes = []
    real = network_module.build_pass
    monkeypatch.setattr(network_module, "build_pass",
                        lambda *args: passes.append(1) or real(*args))
    app = create_app(bundled_model_path())
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as fresh:
        assert fresh.post("/api/network", json={"image": IMAGE}).status_code == 200
        for x in range(8):
            response = fresh.post("/api/network/explain", json={
                "image": IMAGE, "layer": "features.conv2", "channel": 1, "y": 3, "x": x})
            assert response.status_code == 200
        assert len(passes) == 1
        # another working size is another image for the model: one more pass
        assert fresh.post("/api/network", json={"image": IMAGE, "max_side": 256,
                                                "columns": []}).status_code == 200
        assert len(passes) == 2


@pytest.mark.parametrize("body, words", [
    ({"layer": "features.conv2", "channel": 40, "y": 0, "x": 0}, "outside the 32 channels"),
    ({"layer": "features.conv2", "channel": 0, "y": 9, "x": 0}, "outside the 8x8 maps"),
    ({"layer": "nope", "channel": 0, "y": 0, "x": 0}, "no column named 'nope'"),
    ({"layer": "input", "channel": 0, "y": 0, "x": 0}, "the input image"),
])
def test_bad_cells_get_one_line(client, body, words):
    response = client.post("/api/network/explain", json={"image": IMAGE, **body})
    assert response.status_code == 400
    message = response.json()["error"]
    assert words in message and "\n" not in message and "--" not in message


def test_without_a_model_the_view_says_so():
    from fastapi.testclient import TestClient

    app = create_app(None)
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as plain:
        response = plain.post("/api/network", json={"image": IMAGE})
    assert response.status_code == 400 and "no model is open" in response.json()["error"]


def test_the_view_needs_the_page_token():
    from fastapi.testclient import TestClient

    app = create_app(bundled_model_path())
    with TestClient(app) as stranger:
        response = stranger.post("/api/network/explain", json={
            "image": IMAGE, "layer": "features.conv1", "channel": 0, "y": 0, "x": 0})
    assert response.status_code == 403


def test_the_view_is_refused_past_the_memory_budget():
    from convlens.limits import BudgetError, use_budget

    wide = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.ReLU())
    with use_budget("1M"), pytest.raises(BudgetError, match="the network view"):
        build_pass(wide, torch.rand(3, 128, 128))   # the ReLU's input alone is 4 MiB


def test_a_deep_network_is_collapsed_into_its_blocks():
    layers = [m for _ in range(MAX_COLUMNS) for m in (torch.nn.Conv2d(2, 2, 1), torch.nn.ReLU())]
    deep = torch.nn.Sequential(torch.nn.Sequential(*layers[:MAX_COLUMNS]),
                               torch.nn.Sequential(*layers[MAX_COLUMNS:]))
    made = build_pass(deep, torch.rand(2, 6, 6))
    assert made.collapsed
    assert [c.name for c in made.columns] == ["input", "0", "1"]


class _Residual(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(width, width, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(width)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)) + x)


def _deep_residual() -> torch.nn.Module:
    """Two stages of residual blocks (more layers than MAX_COLUMNS), a global pool, a head."""
    torch.manual_seed(1)
    blocks = MAX_COLUMNS // 8 + 2
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
        torch.nn.Sequential(*[_Residual(4) for _ in range(blocks)]),
        torch.nn.Sequential(*[_Residual(4) for _ in range(blocks)]),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()


def test_a_deep_network_shows_its_blocks_and_explains_their_numbers(image):
    from fastapi.testclient import TestClient

    from convlens.activations.core import opened_of

    model = _deep_residual()
    app = create_app(opened_of(model))
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as deep:
        head, arrays = network(deep, columns=["1", "3"])
        assert head["collapsed"] is True and head["collapsed_words"]
        layers = {layer["name"]: layer for layer in head["layers"]}
        assert list(layers) == ["input", "0", "1", "2", "3", "4", "5"]
        assert layers["3"]["shape"] == [4, 1, 1]          # a global pool keeps its maps
        assert layers["5"]["shape"] == [3]
        assert arrays["maps:1"].shape[0] == 4
        # a block's number is explained as the layer inside that gave it: the same number
        got = deep.post("/api/network/explain", json={
            "image": IMAGE, "layer": "2", "channel": 1, "y": 3, "x": 5}).json()
        assert got["column"] == "2" and got["layer"].startswith("2.") and got["kind"] == "ReLU"
        out = hooked(opened_of(model), image, "2")
        assert got["value"] == pytest.approx(float(out[1, 3, 5]), abs=1e-6)
        assert got["total"] == pytest.approx(got["value"], abs=1e-5)
        pooled = deep.post("/api/network/explain", json={
            "image": IMAGE, "layer": "3", "channel": 2, "y": 0, "x": 0})
        assert pooled.status_code == 200, pooled.text
        assert pooled.json()["what"] == "pool"


def test_a_cell_comes_with_the_steps_from_its_conv(client, opened, image):
    """A pooled number's chain: conv2, bn2, relu2, pool1, each step the library's number at
    its place (the pool's winner, then the same place), and the conv's kernel on its way into
    place ending on the cells the conv reads."""
    got = client.post("/api/network/explain", json={
        "image": IMAGE, "layer": "features.pool1", "channel": 6, "y": 2, "x": 1}).json()
    steps = got["chain"]["steps"]
    assert [s["layer"] for s in steps] == ["features.conv2", "features.bn2", "features.relu2",
                                           "features.pool1"]
    assert [s["what"] for s in steps] == ["conv", "batchnorm", "activation", "pool"]
    for step in steps:
        want = explain_activation(opened, image, step["layer"], step["channel"], step["y"],
                                  step["x"])
        assert step["total"] == pytest.approx(want.total, rel=1e-9, abs=1e-12)
        assert step["parts"] == json.loads(json.dumps(want.to_dict()["parts"]))
    assert (steps[0]["y"], steps[0]["x"]) == tuple(steps[-1]["winner"])
    assert got["chain"]["intro"][0]["text"] == "how features.pool1 (6, 2, 1) was made, step by step"
    assert steps[-1]["parts"] == got["parts"]                 # the last step is the click
    slide = got["slide"]
    assert slide["layer"] == "features.relu1"
    conv = client.post("/api/network/explain", json={
        "image": IMAGE, "layer": "features.conv2", "channel": 6, "y": steps[0]["y"],
        "x": steps[0]["x"]}).json()
    last = conv["previous"]
    assert slide["boxes"][-1] == [last["top"], last["bottom"], last["left"], last["right"]]
    assert slide["boxes"][0] == [0, 1, 0, 1]                  # the corner: padding 1
    assert got["selected"] == (
        f"features.pool1 (MaxPool2d) at (6, 2, 1) = {steps[-1]['parts'][-2]['spans'][1]['text']}"
        f"; receptive field in the input: rows {got['receptive_field']['top']}.."
        f"{got['receptive_field']['bottom']}, cols {got['receptive_field']['left']}.."
        f"{got['receptive_field']['right']}; reads features.relu2 rows 4..5, cols 2..3")
    dense = client.post("/api/network/explain", json={
        "image": IMAGE, "layer": "classifier.fc", "channel": 2}).json()
    assert len(dense["chain"]["steps"]) == 1 and dense["slide"] is None
    assert dense["selected"].startswith("classifier.fc (Linear) at [2] = ")
    assert "combines many numbers" in dense["chain"]["end"]


def _read_box(layer: torch.nn.Module, shape: tuple[int, int, int], y: int, x: int):
    """The oracle: the input cells whose value changes output ``(0, y, x)`` of ``layer``
    (where its gradient is not 0, every weight 1), as ``[top, bottom, left, right]``."""
    probe = torch.rand(1, *shape, requires_grad=True)
    out = layer(probe + 1.0)                                 # > 0: no tie, no zero
    out[0, 0, y, x].backward()
    rows, cols = torch.nonzero(probe.grad[0].abs().sum(0), as_tuple=True)
    return [int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())]


@pytest.mark.parametrize("conv", [
    torch.nn.Conv2d(2, 1, 3, stride=2, padding=1),
    torch.nn.Conv2d(2, 1, (3, 5), stride=(1, 3), padding=(0, 2), dilation=(2, 1)),
    torch.nn.Conv2d(2, 1, 4, stride=3, padding=2, padding_mode="reflect"),
    torch.nn.Conv2d(2, 1, 1, stride=2),
], ids=["stride2-pad1", "dilated", "reflect", "1x1"])
def test_the_window_and_its_slide_are_the_cells_the_conv_reads(conv):
    """previous_box and slide_boxes against the gradient of the conv: stride, padding (zeros
    and reflect) and dilation; the slide starts at the top left, ends on the number's window
    and moves down the first column, then along the row."""
    from convlens.serve.network import SLIDE_STEPS, previous_box, slide_boxes

    torch.nn.init.ones_(conv.weight)
    shape = (2, 11, 13)
    explainer = Explainer(torch.nn.Sequential(conv), torch.rand(1, *shape))
    out = explainer.output("0")[0]
    for y, x in [(0, 0), (out.shape[1] - 1, out.shape[2] - 1), (out.shape[1] // 2, 1)]:
        e = explainer.explain("0", 0, y, x)
        want = _read_box(conv, shape, y, x)
        box = previous_box(e, "input")
        assert [box["top"], box["bottom"], box["left"], box["right"]] == want
        slide = slide_boxes(e, "input")
        assert slide["layer"] == "input" and slide["boxes"][-1] == want
        assert slide["boxes"][0] == _read_box(conv, shape, 0, 0)
        assert 1 <= len(slide["boxes"]) <= SLIDE_STEPS
        tops = [b[0] for b in slide["boxes"]]
        assert tops == sorted(tops)                          # down first, then along
        for box in slide["boxes"]:
            assert 0 <= box[0] <= box[1] < shape[1] and 0 <= box[2] <= box[3] < shape[2]


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """resnet18's layout (a quarter of its width) with weights of our own making, opened as
    the page opens a model, at 64x64 px."""
    from convlens.models import ModelInfo, ModelKind, OpenedModel

    model = own_weights(lambda: ResNet18(width=16, classes=10),
                        tmp_path_factory.mktemp("resnet"))
    info = ModelInfo("resnet18", 3, (64, 64), [str(k) for k in range(10)],
                     [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    return OpenedModel(model, ModelKind.FACTORY, "resnet18 (our weights)", info)


def test_a_collapsed_block_opens_into_its_layers_and_closes(resnet, image):
    from fastapi.testclient import TestClient

    app = create_app(resnet)
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as served:
        head, _ = network(served, columns=[])
        closed = [layer["name"] for layer in head["layers"]]
        assert head["collapsed"] is True
        assert closed == ["input", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                          "layer3", "layer4", "avgpool", "fc"]
        by_name = {layer["name"]: layer for layer in head["layers"]}
        assert by_name["layer2"]["inner"] == 16 and by_name["conv1"]["inner"] == 0
        head, arrays = network(served, columns=["layer2.0.conv1", "add_2"], open=["layer2"],
                               top=4)
        names = [layer["name"] for layer in head["layers"]]
        inner = [layer["name"] for layer in head["layers"] if layer["block"] == "layer2"]
        assert names == closed[:6] + inner + closed[7:]
        assert inner[:3] == ["layer2.0.downsample.0", "layer2.0.downsample.1", "layer2.0.conv1"]
        assert "add_2" in inner and inner[-1] == "layer2.1.relu#2" and len(inner) == 16
        # the thumbnails of a layer inside are its hooked output's most active channels
        want = hooked(resnet, image, "layer2.0.conv1")
        order = np.argsort(-np.abs(want).mean(axis=(1, 2)), kind="stable")[:4]
        assert [c["channel"] for c in head["columns"]["layer2.0.conv1"]["channels"]] == \
            order.tolist()
        assert arrays["maps:layer2.0.conv1"].shape == (4, 8, 8)
        # a cell inside is explained as the library explains it
        got = served.post("/api/network/explain", json={
            "image": IMAGE, "layer": "layer2.0.conv2", "channel": 5, "y": 0, "x": 7}).json()
        want_e = explain_activation(resnet, image, "layer2.0.conv2", 5, 0, 7)
        assert got["total"] == pytest.approx(want_e.total, rel=1e-9)
        assert got["previous"]["layer"] == "layer2.0.relu"
        # the GET form takes the blocks to open too
        response = served.get(f"/api/network?image={IMAGE}&columns=add_2&open=layer2&top=2")
        assert response.status_code == 200, response.text
        got_head, got_arrays = unpack(response.content)
        assert [layer["name"] for layer in got_head["layers"]] == names
        assert got_arrays["maps:add_2"].shape[0] == 2
        # closed again: one column
        head, _ = network(served, columns=[], open=[])
        assert [layer["name"] for layer in head["layers"]] == closed
        bad = served.post("/api/network", json={"image": IMAGE, "columns": [],
                                                "open": ["layer9"]})
        assert bad.status_code == 400
        assert "no collapsed block named 'layer9'" in bad.json()["error"]
        assert "layer1, layer2" in bad.json()["error"]


HALF = MAX_COLUMNS // 8 + 2
"""Residual blocks (4 layers each) in one stage of :func:`_two_stages`: two stages hold more
layers than a view shows at once, one does not."""


def _two_stages() -> torch.nn.Module:
    torch.manual_seed(2)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.Sequential(*[torch.nn.Sequential(*[_Residual(4) for _ in range(HALF)])
                              for _ in range(2)]),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()


def test_a_block_of_many_layers_opens_into_its_blocks(image):
    """A block holding more layers than a view shows at once opens into its children (each a
    block of its own, as timm's efficientnet ``blocks`` opens into its stages), which open into
    their layers; a cell inside is found and explained before its block was ever opened."""
    from fastapi.testclient import TestClient

    from convlens.activations.core import opened_of

    half = HALF
    model = _two_stages()
    app = create_app(opened_of(model))
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as served:
        inside = served.post("/api/network/explain", json={
            "image": IMAGE, "layer": "1.1.2.conv", "channel": 1, "y": 2, "x": 3})
        assert inside.status_code == 200, inside.text       # found though no block is open
        want = explain_activation(opened_of(model), image, "1.1.2.conv", 1, 2, 3)
        assert inside.json()["total"] == pytest.approx(want.total, rel=1e-9)
        head, _ = network(served, columns=[])
        layers = {layer["name"]: layer for layer in head["layers"]}
        assert layers["1"]["inner"] == 2 and layers["1"]["blocks"] == []
        head, _ = network(served, columns=[], open=["1"])
        shown = [(layer["name"], layer["block"], layer["blocks"], layer["inner"])
                 for layer in head["layers"]]
        assert shown[2:4] == [("1.0", "1", ["1"], 4 * half), ("1.1", "1", ["1"], 4 * half)]
        head, arrays = network(served, columns=["1.1.0.conv"], open=["1", "1.1"], top=2)
        names = [layer["name"] for layer in head["layers"]]
        inner = [layer for layer in head["layers"] if layer["block"] == "1.1"]
        assert names[2] == "1.0" and len(inner) == 4 * half
        assert inner[0]["name"] == "1.1.0.conv" and inner[0]["blocks"] == ["1", "1.1"]
        assert arrays["maps:1.1.0.conv"].shape[0] == 2
        # a sub-block's cell is explained as the layer inside that gave it
        got = served.post("/api/network/explain", json={
            "image": IMAGE, "layer": "1.0", "channel": 0, "y": 1, "x": 1}).json()
        assert got["column"] == "1.0" and got["layer"].startswith("1.0.")
        assert got["total"] == pytest.approx(got["value"], abs=1e-5)


# ---------------------------------------------------------------------------- the page

@pytest.fixture(scope="module")
def server():
    with serving(create_app(bundled_model_path(), allowed_hosts=["127.0.0.1"])) as url:
        yield url


def click_cell(page, layer: str, channel: int, fy: float, fx: float) -> dict:
    """Click at fraction ``(fy, fx)`` of channel ``channel``'s thumbnail in column ``layer``;
    the explanation panel's data-at and total once it shows that cell."""
    column = page.locator(f'.net-col[data-layer="{layer}"]')
    column.scroll_into_view_if_needed()
    canvas = column.locator(f'.net-cell[data-channel="{channel}"] canvas')
    canvas.wait_for(timeout=20000)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.wait_for_function(
        f"(document.querySelector('#explain-body').dataset.at || '')"
        f".startsWith('network,{layer},{channel},')", timeout=10000)
    at = page.locator("#explain-body").get_attribute("data-at").split(",")
    total = page.locator("#explain-body [data-testid=total-value]").first
    return {"y": int(at[3]) if at[3] else None, "x": int(at[4]) if at[4] else None,
            "total": float(total.get_attribute("data-value")), "shown": total.inner_text()}


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_clicks_in_three_layers_show_the_library_numbers(browser, server, opened, image,
                                                         artifacts):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    page.wait_for_function("Number(document.body.dataset.networkColumns || 0) >= 3",
                           timeout=30000)
    assert "per layer" in page.locator("[data-testid=network-scale]").inner_text()
    cases = [("features.conv1", 0.1, 0.9), ("features.pool1", 0.6, 0.3),
             ("classifier.fc", 0.5, 0.5)]
    assert page.locator("#network-slide").is_checked()   # the sliding window, on by default
    for layer, fy, fx in cases:
        channel = int(page.locator(f'.net-col[data-layer="{layer}"] .net-cell').first
                      .get_attribute("data-channel") or 0) if page.locator(
            f'.net-col[data-layer="{layer}"] .net-cell').count() else None
        if channel is None:  # not loaded yet: scrolling it into view loads it
            page.locator(f'.net-col[data-layer="{layer}"]').scroll_into_view_if_needed()
            page.locator(f'.net-col[data-layer="{layer}"] .net-cell').first.wait_for(
                timeout=20000)
            channel = int(page.locator(f'.net-col[data-layer="{layer}"] .net-cell').first
                          .get_attribute("data-channel"))
        got = click_cell(page, layer, channel, fy, fx)
        if layer == "classifier.fc":
            assert got["y"] is None
        else:
            side = 8 if layer == "features.conv1" else 4
            assert (got["y"], got["x"]) == (int(fy * side), int(fx * side))
        want = explain_activation(opened, image, layer, channel, got["y"], got["x"])
        assert got["total"] == pytest.approx(want.total, rel=1e-9, abs=1e-12)
        assert got["shown"] in [p["spans"][1]["text"] for p in want.to_dict()["parts"]
                                if p.get("key") == "total"]
        # the receptive field is outlined on the input, the clicked cell on its thumbnail
        field = page.locator('.net-col[data-layer="input"] .box.field').first
        assert field.is_visible()
        assert page.locator("#field-box").is_visible()       # and on the page's photo
        probe = page.locator(f'.net-col[data-layer="{layer}"] '
                             f'.net-cell[data-channel="{channel}"] .box.probe')
        assert probe.is_visible()
        if layer == "features.pool1":   # the window it reads, on the layer before, and lines
            assert page.locator('.net-col[data-layer="features.relu2"] .box.probe').first \
                .is_visible()
            page.wait_for_function(  # drawn once the window has slid into place
                "document.querySelectorAll('#network-columns svg.net-lines line').length === 16",
                timeout=5000)
    page.screenshot(path=str(artifacts / "network-view.png"), full_page=True)
    # the slide switched off: the window is put in place at once, the lines with it
    page.locator("#network-slide").uncheck()
    channel = int(page.locator('.net-col[data-layer="features.conv2"] .net-cell').first
                  .get_attribute("data-channel"))
    got = click_cell(page, "features.conv2", channel, 0.3, 0.7)
    assert (got["y"], got["x"]) == (2, 5)
    assert got["total"] == pytest.approx(
        explain_activation(opened, image, "features.conv2", channel, 2, 5).total, rel=1e-9)
    relu1 = page.locator('.net-col[data-layer="features.relu1"] .box.probe')
    assert relu1.count() == 16 and page.locator(".box.sliding").count() == 0
    assert page.locator("#network-columns svg.net-lines line").count() == 16
    # the scale switch: each channel on its own, and the page says so
    before = int(page.evaluate("document.body.dataset.networkColumns"))
    page.select_option("#network-scale", "channel")
    page.wait_for_function(f"Number(document.body.dataset.networkColumns) > {before}",
                           timeout=20000)
    assert "own colour scale" in page.locator("[data-testid=network-scale]").inner_text()
    assert errors == []
    context.close()


def _total_of(section) -> float:
    """The total a step's section shows (the clicked number's, or a step's before it)."""
    node = section.locator("[data-testid=total-value], [data-testid=step-total-value]").first
    return float(node.get_attribute("data-value"))


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_one_panel_shows_every_step_from_the_conv_and_the_lines(browser, server, opened,
                                                                 image):
    """A click on a max pool's cell: the panel shows the conv's patches, kernels and partial
    sums, the batch norm, the ReLU and the pool, each step's numbers the library's at its
    place; the kernel slides into place step by step on the conv's input; the lines run from
    the cell to the cells the pool reads (their right edges) and to the receptive field in
    the input. The switch off, or the system asking for less motion, puts it in place at
    once."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    page.wait_for_function("Number(document.body.dataset.networkColumns || 0) >= 3",
                           timeout=30000)
    page.locator('.net-col[data-layer="features.pool1"]').scroll_into_view_if_needed()
    page.locator('.net-col[data-layer="features.pool1"] .net-cell').first.wait_for(timeout=20000)
    channel = int(page.locator('.net-col[data-layer="features.pool1"] .net-cell').first
                  .get_attribute("data-channel"))
    got = click_cell(page, "features.pool1", channel, 0.4, 0.6)
    steps = page.locator("#explain-body section.chain-step")
    assert steps.count() == 4
    layers = [steps.nth(i).get_attribute("data-layer") for i in range(4)]
    assert layers == ["features.conv2", "features.bn2", "features.relu2", "features.pool1"]
    assert [steps.nth(i).get_attribute("data-what") for i in range(4)] == [
        "conv", "batchnorm", "activation", "pool"]
    for i, layer in enumerate(layers):
        c, y, x = (int(v) for v in steps.nth(i).get_attribute("data-position").split(","))
        want = explain_activation(opened, image, layer, c, y, x)
        assert _total_of(steps.nth(i)) == pytest.approx(want.total, rel=1e-9, abs=1e-12)
    assert got["total"] == pytest.approx(_total_of(steps.nth(3)))
    # the receptive field on the page's photo: the part of the photo photo_box says
    from convlens.serve.network import photo_box

    height, width = image.shape[-2:]
    want_field = photo_box(explain_activation(opened, image, "features.pool1", channel,
                                              got["y"], got["x"]).field,
                           (height, width), (8, 8))
    shown = page.evaluate("""() => {
      const b = document.querySelector('#field-box').getBoundingClientRect();
      const c = document.querySelector('#input-canvas').getBoundingClientRect();
      return [(b.top - c.top) / c.height, (b.bottom - c.top) / c.height,
              (b.left - c.left) / c.width, (b.right - c.left) / c.width];
    }""")
    assert shown == pytest.approx([want_field["top"] / height,
                                   (want_field["bottom"] + 1) / height,
                                   want_field["left"] / width,
                                   (want_field["right"] + 1) / width], abs=0.02)
    assert page.locator("#network-selected").inner_text().startswith(
        f"features.pool1 (MaxPool2d) at ({channel}, {got['y']}, {got['x']}) = {got['shown']}")
    conv = steps.nth(0)     # patch × kernel = products → partial sum, for the top 8 channels
    assert conv.locator(".eq[data-key=products]").count() == 8
    assert conv.locator("table.mat[data-key=patch]").count() == 8
    assert conv.locator("[data-testid=sum-written]").count() == 1     # partial sums + bias
    # the slide went down the first column and along the row, step by step, into place
    page.wait_for_function("(window.convlens.networkSlides || 0) >= 1", timeout=5000)
    path = page.evaluate("window.convlens.networkSlidePath")
    assert len(path) > 2 and path[0] == [0, 1, 0, 1]
    c, y, x = (int(v) for v in steps.nth(0).get_attribute("data-position").split(","))
    want_conv = explain_activation(opened, image, "features.conv2", c, y, x)
    rows = [r for r in want_conv.input_rows if 0 <= r < 8]
    cols = [q for q in want_conv.input_cols if 0 <= q < 8]
    assert path[-1] == [min(rows), max(rows), min(cols), max(cols)]
    # the lines: one to each shown channel of relu2 (the pool's window), ending at the box's
    # right edge, and one to the receptive field in the input
    page.wait_for_function(
        "document.querySelectorAll('#network-columns svg.net-lines line').length === 16",
        timeout=5000)
    ends = page.evaluate("""() => {
      const strip = document.querySelector('#network-columns');
      const o = strip.getBoundingClientRect();
      const lines = [...strip.querySelectorAll('svg.net-lines line')].map(
        (l) => [Number(l.getAttribute('x2')), Number(l.getAttribute('y2'))]);
      const boxes = [...strip.querySelectorAll(
        '.net-col[data-layer="features.relu2"] .box.probe')].map((b) => {
        const r = b.getBoundingClientRect();
        return [r.right - o.left + strip.scrollLeft,
                r.top + r.height / 2 - o.top + strip.scrollTop];
      });
      return {lines, boxes, fields: strip.querySelectorAll('svg.net-lines path.to-field').length};
    }""")
    assert ends["fields"] == 1
    for line, box in zip(ends["lines"], ends["boxes"]):
        assert line == pytest.approx(box, abs=0.5)
    # the switch off: in place at once
    page.locator("#network-slide").uncheck()
    explained = page.evaluate("window.convlens.networkExplained")
    click_cell(page, "features.pool1", channel, 0.1, 0.1)
    page.wait_for_function(f"window.convlens.networkExplained > {explained}", timeout=10000)
    assert len(page.evaluate("window.convlens.networkSlidePath")) == 1
    context.close()
    # the system asks for less motion: no slide, though the switch is on
    reduced = browser.new_context(viewport={"width": 1366, "height": 900},
                                  reduced_motion="reduce")
    page = reduced.new_page()
    page.goto(server + "/")
    page.wait_for_function("Number(document.body.dataset.networkColumns || 0) >= 3",
                           timeout=30000)
    assert page.locator("#network-slide").is_checked()
    channel = int(page.locator('.net-col[data-layer="features.conv1"] .net-cell').first
                  .get_attribute("data-channel"))
    click_cell(page, "features.conv1", channel, 0.9, 0.9)
    assert len(page.evaluate("window.convlens.networkSlidePath")) == 1
    # and the tutorial layer's slide (slide.js): the clicked pixel is explained at once
    target = page.locator(".krow:nth-child(1) .stage[data-stage=conv] canvas")
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    page.mouse.click(box["x"] + 0.45 * box["width"], box["y"] + 0.3 * box["height"])
    page.wait_for_function("(document.querySelector('#explain-body').dataset.at || '')"
                           ".split(',')[1] === 'conv'", timeout=10000)
    assert page.evaluate("window.convlens.slidePath === undefined")
    assert page.evaluate("document.body.dataset.sliding") is None
    reduced.close()
    assert errors == []


@pytest.fixture(scope="module")
def resnet_server(resnet):
    with serving(create_app(resnet, allowed_hosts=["127.0.0.1"])) as url:
        yield url


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_a_collapsed_block_opens_on_the_page_and_closes(browser, resnet_server, resnet, image):
    """resnet18's layout: the page shows its blocks; 'open' shows layer2's layers (their
    thumbnails loaded as they scroll into view), a cell inside is explained as the library
    explains it, and 'close' shows the block as one column again."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(resnet_server + "/")
    page.wait_for_function("Number(document.body.dataset.networkColumns || 0) >= 3",
                           timeout=30000)
    assert "open one to see its layers" in page.locator("[data-testid=network-scale]").inner_text()
    assert page.locator('.net-col[data-block="layer2"]').count() == 0
    page.locator('.net-col[data-layer="layer2"] [data-testid=open-block]').click()
    page.wait_for_function("document.body.dataset.networkOpen === 'layer2'", timeout=10000)
    inner = page.locator('.net-col[data-block="layer2"]')
    assert inner.count() == 16 and page.locator('.net-col[data-layer="layer2"]').count() == 0
    assert inner.first.locator("[data-testid=close-block]").count() == 1
    page.locator('.net-col[data-layer="layer2.0.conv2"]').scroll_into_view_if_needed()
    page.locator('.net-col[data-layer="layer2.0.conv2"] .net-cell').first.wait_for(
        timeout=20000)                                       # loaded once in view
    channel = int(page.locator('.net-col[data-layer="layer2.0.conv2"] .net-cell').first
                  .get_attribute("data-channel"))
    got = click_cell(page, "layer2.0.conv2", channel, 0.05, 0.95)
    assert (got["y"], got["x"]) == (0, 7)
    want = explain_activation(resnet, image, "layer2.0.conv2", channel, 0, 7)
    assert got["total"] == pytest.approx(want.total, rel=1e-9, abs=1e-12)
    page.locator('.net-col[data-block="layer2"] [data-testid=close-block]').click()
    page.wait_for_function("document.body.dataset.networkOpen === ''", timeout=10000)
    assert page.locator('.net-col[data-block="layer2"]').count() == 0
    assert page.locator('.net-col[data-layer="layer2"]').count() == 1
    assert errors == []
    context.close()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_blocks_inside_blocks_open_and_close_on_the_page(browser):
    """Stage ``1`` opens into its two stages, ``1.1`` into its layers; each open block has a
    close button on its first column, and closing ``1`` closes ``1.1`` with it."""
    from convlens.activations.core import opened_of

    with serving(create_app(opened_of(_two_stages()), allowed_hosts=["127.0.0.1"])) as url:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        page.wait_for_function("Number(document.body.dataset.networkColumns || 0) >= 3",
                               timeout=30000)
        page.locator('.net-col[data-layer="1"] [data-testid=open-block]').click()
        page.wait_for_function("document.body.dataset.networkOpen === '1'", timeout=10000)
        assert page.locator('.net-col[data-block="1"]').count() == 2
        page.locator('.net-col[data-layer="1.1"] [data-testid=open-block]').click()
        page.wait_for_function("document.body.dataset.networkOpen === '1,1.1'", timeout=10000)
        assert page.locator('.net-col[data-block="1.1"]').count() == 4 * HALF
        closers = page.locator("[data-testid=close-block]")
        assert [closers.nth(i).get_attribute("data-block") for i in range(closers.count())] == \
            ["1", "1.1"]
        page.locator('.net-col[data-layer="1.1.0.conv"] .net-cell').first.wait_for(
            timeout=20000)                                 # loaded: it is in view
        page.locator('[data-testid=close-block][data-block="1"]').click()
        page.wait_for_function("document.body.dataset.networkOpen === ''", timeout=10000)
        assert page.locator(".net-col.in-block").count() == 0
        assert page.locator('.net-col[data-layer="1"]').count() == 1
        assert errors == []
        context.close()
