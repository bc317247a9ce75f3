"""The page's network view (``/api/network``, ``/api/network/explain``, network.js) on the
bundled digits CNN: the columns and every shown number are checked against the library
(:func:`convlens.activations.explain_activation` and a forward hook on the same model and
image), the page's clicks in a real headless Chromium too."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convlens.activations import explain_activation
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
