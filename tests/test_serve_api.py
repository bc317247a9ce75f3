"""The explorer's API through FastAPI's test client, and the `serve` command.

Numbers are checked against independent references: SciPy's ``correlate`` and PyTorch's own
``F.conv2d`` / ``F.max_pool2d`` on the image loaded here, never the server's own output.
"""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import socket
import sys
import warnings
import zipfile

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from scipy import ndimage

from convlens.images import load_image, sample_path
from convlens.kernels import get_kernel
from convlens.serve import STATIC_DIR, create_app, pack, unpack
from convlens.serve.guard import TOKEN_HEADER

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SOBEL_H = get_kernel("sobel-h").as_2d().tolist()
LAPLACIAN = get_kernel("laplacian").as_2d().tolist()
SOBEL_V = get_kernel("sobel-v").as_2d().tolist()


def state(image: str = "sample-chelsea", kernels=None, **layer) -> dict:
    kernels = kernels or [("sobel-h", SOBEL_H), ("laplacian", LAPLACIAN)]
    return {"image": image, "mode": "gray", "max_side": 1024,
            "kernels": [{"name": name, "weights": [list(row) for row in weights]}
                        for name, weights in kernels],
            "layer": layer}


def api_client(app, **options) -> TestClient:
    """A test client that sends the app's token with every request, as the page does."""
    return TestClient(app, headers={TOKEN_HEADER: app.state.token}, **options)


@pytest.fixture(scope="module")
def client():
    with api_client(create_app()) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def chelsea_gray() -> np.ndarray:
    """The sample as the page loads it, (H, W) float in [0, 1]."""
    return load_image(sample_path("chelsea"), "gray").numpy()[0].astype(np.float64)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def reference_layer(image: np.ndarray, kernel, stride=1, padding=0, mode="zeros",
                    dilation=1, pool=2):
    """conv -> relu -> max pool with PyTorch's functional ops (the oracle)."""
    x = torch.from_numpy(image)[None, None]
    weights = torch.tensor(kernel, dtype=torch.float64)[None, None]
    if padding:
        x = F.pad(x, (padding,) * 4, mode="constant" if mode == "zeros" else mode)
    conv = F.conv2d(x, weights, stride=stride, dilation=dilation)[0, 0]
    pooled = F.max_pool2d(conv.relu()[None], pool)[0] if pool else conv.relu()
    return conv.numpy(), pooled.numpy()


# --------------------------------------------------------------------------- the page's assets


def test_page_and_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "convlens explorer" in page.text
    for asset in ("/static/js/main.js", "/static/style.css", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200, asset
    # ES modules run only when served as JavaScript
    assert client.get("/static/js/main.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/docs").status_code == 404          # FastAPI's docs pull in a CDN
    # no file of the page refers to anything outside this server
    for path in (path for path in STATIC_DIR.rglob("*") if path.is_file()):
        text = path.read_text(encoding="utf-8").replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


def test_every_file_of_the_page_ships_in_the_package():
    tomllib = pytest.importorskip("tomllib")                       # Python 3.11+
    root = STATIC_DIR.parents[1]                                     # src/convlens
    pyproject = tomllib.loads((root.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["convlens"]
    shipped = {path for pattern in globs for path in root.glob(pattern)}
    files = [path for path in STATIC_DIR.rglob("*") if path.is_file()]
    assert STATIC_DIR / "js" / "main.js" in files
    assert [path for path in files if path not in shipped] == []


def test_meta_lists_presets_limits_and_colour_tables(client):
    meta = client.get("/api/meta").json()
    names = [preset["name"] for preset in meta["presets"]]
    assert meta["default_kernels"] == ["sobel-h", "laplacian", "sobel-v"]
    assert set(meta["default_kernels"]) <= set(names)
    gaussian = next(p for p in meta["presets"] if p["name"] == "gaussian-3")
    assert gaussian["cells"][1] == ["2/16", "4/16", "2/16"]     # exact fractions in the cells
    assert meta["limits"]["kernel_side"] == 31     # convlens.limits.MAX_KERNEL_SIDE, as the CLI
    assert meta["limits"]["kernels"] == 16
    # every menu and kind the page offers is the library's, not a copy in the script
    from convlens.config import Activation, PaddingMode, PoolType
    from convlens.images import ColorMode
    from convlens.inspect.names import CONV_TYPES

    choices = meta["choices"]
    assert choices["activation"] == [a.value for a in Activation]
    assert choices["padding_mode"] == [m.value for m in PaddingMode]
    assert choices["pool_type"] == [p.value for p in PoolType]
    assert choices["mode"] == [m.value for m in ColorMode]
    assert meta["layer_kinds"]["conv"] == list(CONV_TYPES)
    assert "Linear" in meta["layer_kinds"]["without_maps"]
    assert len(meta["colours"]["signed"]) == 256
    assert meta["colours"]["signed"][0] != meta["colours"]["signed"][255]
    assert meta["colours"]["unsigned"][0] == [0, 0, 0]
    assert meta["colours"]["unsigned"][255] == [255, 255, 255]


# --------------------------------------------------------------------------- stages


def test_stages_match_scipy_in_range_shape_and_drawn_values(client, chelsea_gray):
    response = client.post("/api/stages", json={**state(), "display": 1024})
    assert response.status_code == 200
    header, maps = unpack(response.content)
    expected = ndimage.correlate(chelsea_gray, np.array(SOBEL_H), mode="constant")[1:-1, 1:-1]
    stats = header["maps"][0]["conv"]
    assert stats["shape"] == list(expected.shape) == [298, 449]
    assert stats["min"] == pytest.approx(expected.min(), abs=1e-5)
    assert stats["max"] == pytest.approx(expected.max(), abs=1e-5)
    # drawn at full size (display 1024 > 449): 128 is zero, 0/255 the colour scale's ends
    drawn = maps["conv0"].astype(np.float64)
    top = stats["vmax"]
    decoded = (drawn - 127.5) / 127.5 * top
    assert np.abs(decoded - np.clip(expected, -top, top)).max() <= top / 255 + 1e-6
    pooled = header["maps"][0]["pooled"]
    assert pooled["shape"] == [149, 224]
    reference_pooled = reference_layer(chelsea_gray, SOBEL_H)[1]
    assert pooled["max"] == pytest.approx(reference_pooled.max(), abs=1e-5)
    assert header["chain"]["layers"][0]["rows"]["formula"].startswith("(300 - 3 + 2×0)/1 + 1")
    assert header["chain"]["layers"][1]["output"] == [149, 224]


def test_maps_are_area_averaged_to_the_display_size(client, chelsea_gray):
    header, maps = unpack(client.post("/api/stages", json={**state(), "display": 128}).content)
    stats = header["maps"][1]["activated"]
    factor = stats["factor"]
    assert factor == 4                        # ceil(449 / 128)
    assert maps["activated1"].shape == (75, 113)
    activated = np.maximum(ndimage.correlate(chelsea_gray, np.array(LAPLACIAN),
                                             mode="constant")[1:-1, 1:-1], 0)
    padded = np.pad(activated, ((0, 300 - 298), (0, 452 - 449)), constant_values=np.nan)
    blocks = np.nanmean(padded.reshape(75, 4, 113, 4), axis=(1, 3))
    decoded = maps["activated1"] / 255 * (stats["vmax"] - stats["vmin"]) + stats["vmin"]
    assert np.abs(decoded - np.clip(blocks, stats["vmin"], stats["vmax"])).max() <= (
        stats["vmax"] / 255 + 1e-6)


def test_only_changed_kernels_are_recomputed_and_the_image_loads_once(client):
    app = client.app
    loads = app.state.images.loads
    body = {**state(kernels=[("a", SOBEL_H), ("b", LAPLACIAN), ("c", SOBEL_V)]),
            "display": 256, "max_side": 512}
    first = unpack(client.post("/api/stages", json=body).content)[0]
    assert first["timing"]["recomputed"] == 3
    again = unpack(client.post("/api/stages", json=body).content)[0]
    assert again["timing"]["recomputed"] == 0
    body["kernels"][1]["weights"][1][1] = 5.0
    edited = unpack(client.post("/api/stages", json=body).content)[0]
    assert edited["timing"]["recomputed"] == 1
    assert edited["maps"][0]["key"] == first["maps"][0]["key"]
    assert edited["maps"][1]["key"] != first["maps"][1]["key"]
    assert app.state.images.loads == loads + 1


def test_maps_the_page_already_shows_are_not_sent_again(client):
    body = {**state(), "display": 256}
    header = unpack(client.post("/api/stages", json=body).content)[0]
    keys = [entry["key"] for entry in header["maps"]]
    body["have"] = [keys[0], "something-else"]
    header2, maps2 = unpack(client.post("/api/stages", json=body).content)
    assert [entry["sent"] for entry in header2["maps"]] == [False, True]
    assert "conv0" not in maps2 and "conv1" in maps2 and "pooled1" in maps2


def test_settings_reach_the_library(client, chelsea_gray):
    body = {**state(stride=2, padding=1, padding_mode="reflect", dilation=2, pool=3,
                    activation="abs"), "display": 1024}
    header, _ = unpack(client.post("/api/stages", json=body).content)
    conv, _ = reference_layer(chelsea_gray, SOBEL_H, stride=2, padding=1, mode="reflect",
                              dilation=2, pool=None)
    stats = header["maps"][0]["conv"]
    assert stats["shape"] == list(conv.shape)
    assert stats["min"] == pytest.approx(conv.min(), abs=1e-5)
    assert header["maps"][0]["activated"]["min"] >= 0                    # abs
    assert header["chain"]["layers"][1]["layer"] == "pool3 s3"
    nopool = unpack(client.post("/api/stages", json={**state(pool=None)}).content)[0]
    assert nopool["pooling"] is False and "pooled" not in nopool["maps"][0]


# --------------------------------------------------------------------------- explain


@pytest.mark.parametrize("layer", [
    {},
    {"padding": "same", "padding_mode": "reflect"},
    {"stride": 2, "padding": 2, "dilation": 2, "padding_mode": "circular"},
])
def test_explained_pixels_equal_pytorch(client, chelsea_gray, layer):
    mode = layer.get("padding_mode", "zeros")
    pad = {"same": 1}.get(layer.get("padding"), layer.get("padding", 0))
    conv, _ = reference_layer(chelsea_gray, SOBEL_V, layer.get("stride", 1), pad, mode,
                              layer.get("dilation", 1), None)
    rng = np.random.default_rng(6)
    points = [(0, 0), (conv.shape[0] - 1, conv.shape[1] - 1),
              *zip(rng.integers(0, conv.shape[0], 4), rng.integers(0, conv.shape[1], 4))]
    body = state(kernels=[("sobel-h", SOBEL_H), ("sobel-v", SOBEL_V)], **layer)
    for row, col in points:
        data = client.post("/api/explain", json={**body, "kernel": 1, "row": int(row),
                                                 "col": int(col)}).json()
        assert data["conv"] == pytest.approx(conv[row, col], abs=1e-5), (row, col)
        assert data["activated"] == pytest.approx(max(conv[row, col], 0.0), abs=1e-5)
        assert data["text"]["conv"] == f"{data['conv']:.6g}"
        assert data["kernel_name"] == "sobel-v"


def test_the_panel_gets_the_numbers_convlens_explain_prints(client, cli):
    body = state(kernels=[("laplacian", LAPLACIAN)], padding=1, stride=2)
    page = client.post("/api/explain", json={**body, "row": 40, "col": 17, "flip": True}).json()
    result = cli("explain", "--kernel", "laplacian", "--padding", "1", "--stride", "2",
                 "--at", "40,17", "--flip", "--json")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    for key in ("patch", "patch_raw", "kernel", "products", "sum", "sum_written", "activated",
                "pooled_cell", "receptive_field", "padded", "convolution"):
        assert page[key] == printed[key], key
    assert page["text"]["sum_lines"][-1] == printed["sum_written"].split(" = ")[-1]


def run_page_command(cli, command: str) -> dict:
    """Run the ``convlens explain ...`` command the page offers, with ``--json``."""
    words = shlex.split(command)
    assert words[:2] == ["convlens", "explain"], command
    result = cli(*words[1:], "--json")
    assert result.code == 0, (command, result.err)
    return json.loads(result.out)


@pytest.mark.parametrize("edit", [
    {},
    {"kernels": [("edited", [[1 / 3, 0.1, -0.5], [0, 1 / 16, 2], [-2 / 3, 0, 1e-3]])],
     "layer": {"stride": 2, "padding": "same", "padding_mode": "reflect", "dilation": 2,
               "activation": "tanh", "pool": 3, "pool_type": "avg", "pool_stride": 2}},
    {"mode": "rgb", "image": "sample-coffee", "flip": True,
     "kernels": [("rgb", [[[1, 0, -1]] * 3, [[0, 2, 0]] * 3, [[-1 / 3, 0, 0.25]] * 3])]},
    {"stage": "pooled", "layer": {"pool": None}},
    {"stage": "pooled", "layer": {"activation": "leaky-relu"}},
])
def test_every_hovered_pixel_offers_the_command_that_prints_its_numbers(client, cli, edit):
    kernels = edit.get("kernels", [("sobel-h", SOBEL_H), ("laplacian", LAPLACIAN)])
    body = {**state(edit.get("image", "sample-chelsea"), kernels, **edit.get("layer", {})),
            "mode": edit.get("mode", "gray"), "stage": edit.get("stage", "conv"),
            "kernel": len(kernels) - 1, "row": 7, "col": 11, "flip": edit.get("flip", False)}
    if body["stage"] == "pooled" and body["layer"].get("pool", 2) is None:
        response = client.post("/api/explain", json=body)    # no pooled map: nothing to offer
        assert response.status_code == 400
        return
    page = client.post("/api/explain", json=body).json()
    command = page["command"]["text"]
    assert "--max-side" not in command                          # the samples are not shrunk
    printed = run_page_command(cli, command)
    keys = (("value", "values", "winner", "window") if body["stage"] == "pooled" else
            ("patch", "kernel", "products", "sum", "conv", "activated", "pooled_cells"))
    for key in keys:
        assert page[key] == printed[key], (key, command)
    if body["flip"]:
        assert "--flip" in command and page["convolution"] == printed["convolution"]


def test_a_shrunk_upload_gives_both_sizes_and_a_command_with_max_side(client, cli, tmp_path):
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (700, 1100), dtype=np.uint8)        # width 1100, height 700
    data = png_bytes(photo)
    info = client.post("/api/image?name=big%20photo.png&mode=gray&max_side=512",
                       content=data).json()
    assert info["original"] == [1100, 700] and info["working"] == [512, 326]
    assert info["shrunk"] is True
    header, _ = unpack(client.get(f"/api/input?image={info['id']}&mode=gray&max_side=512"
                                  "&display=64").content)
    assert header["original"] == [1100, 700] and header["working"] == [512, 326]
    body = {**state(info["id"]), "max_side": 512, "kernel": 1, "row": 100, "col": 200}
    page = client.post("/api/explain", json=body).json()
    command = page["command"]["text"]
    assert "--max-side 512" in command and "'big photo.png'" in command
    assert "big photo.png" in page["command"]["where"]
    (tmp_path / "big photo.png").write_bytes(data)                  # where the user has it
    printed = run_page_command(cli, command)
    assert printed["conv"] == page["conv"] and printed["patch"] == page["patch"]
    # the same photo not shrunk: no --max-side
    unshrunk = client.post("/api/explain", json={**body, "max_side": 2048}).json()
    assert "--max-side" not in unshrunk["command"]["text"]


def test_the_command_quotes_what_a_shell_would_split_and_names_files_not_flags(cli, tmp_path):
    from convlens.config import LayerConfig
    from convlens.kernels import parse_kernel
    from convlens.serve.reproduce import explain_command, image_argument

    name = image_argument("upload-1", "-my cat's photo.png", tmp_path / "x.png")
    assert name == "./-my cat's photo.png"
    command = explain_command(name, mode="rgb", max_side=256, kernel=parse_kernel("1/3 -2; 0 1"),
                              config=LayerConfig(pool=None, padding="same"), at=(3, 4))
    words = shlex.split(command)
    assert words[:3] == ["convlens", "explain", "./-my cat's photo.png"]
    assert words[3:] == ["--kernel", "1/3 -2; 0 1", "--at", "3,4", "--mode", "rgb",
                         "--max-side", "256", "--padding", "same", "--pool", "none"]
    Image.fromarray(np.full((300, 500, 3), 80, np.uint8)).save(tmp_path / "-my cat's photo.png")
    printed = run_page_command(cli, command)
    assert printed["at"] == [3, 4] and printed["image_shape"] == [3, 154, 256]


def test_page_and_cli_share_one_default_max_side(client):
    from convlens.defaults import DEFAULT_MAX_SIDE

    meta = client.get("/api/meta").json()
    assert meta["default_working_side"] == DEFAULT_MAX_SIDE
    assert DEFAULT_MAX_SIDE in meta["choices"]["working_sides"]


def test_a_pooled_cell_shows_its_window_and_winner(client, chelsea_gray):
    conv, pooled = reference_layer(chelsea_gray, SOBEL_H)
    data = client.post("/api/explain", json={**state(), "stage": "pooled", "row": 60,
                                             "col": 100}).json()
    assert data["kind"] == "pooled"
    assert data["window"]["rows"] == [120, 121] and data["window"]["cols"] == [200, 201]
    assert data["value"] == pytest.approx(pooled[60, 100], abs=1e-5)
    window = np.maximum(conv[120:122, 200:202], 0)
    winner = np.unravel_index(np.argmax(window), window.shape)
    assert (data["winner"]["row"], data["winner"]["col"]) == (120 + winner[0], 200 + winner[1])


def test_a_pixel_outside_the_map_names_the_valid_range(client):
    response = client.post("/api/explain", json={**state(), "row": 298, "col": 0})
    assert response.status_code == 400
    assert "row must be 0..297" in response.json()["error"]


# --------------------------------------------------------------------------- uploads


def test_upload_loads_once_and_is_used_by_id(client):
    gradient = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (30, 1))       # 30 x 50
    response = client.post("/api/image?name=ramp.png&mode=gray&max_side=256",
                           content=png_bytes(gradient))
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["shape"] == [1, 30, 50] and info["name"] == "ramp.png"
    pixels = client.get(f"/api/input?image={info['id']}&mode=gray&max_side=256&display=64")
    assert np.array_equal(unpack(pixels.content)[1]["input"][0], gradient)
    # a horizontal ramp of 5/255 per pixel: sobel-v gives 4 * 2 * 5/255 everywhere inside
    stages = unpack(client.post("/api/stages", json=state(
        image=info["id"], kernels=[("sobel-v", SOBEL_V)])).content)[0]
    assert stages["maps"][0]["conv"]["min"] == pytest.approx(40 / 255, abs=1e-6)
    assert stages["maps"][0]["conv"]["max"] == pytest.approx(40 / 255, abs=1e-6)


def test_bad_uploads_get_a_message_and_the_server_keeps_serving():
    app = create_app(max_upload_bytes=2000, max_pixels=10_000)
    with api_client(app) as local:
        corrupt = local.post("/api/image?name=photo.jpg", content=b"\xff\xd8\xff not a jpeg")
        assert corrupt.status_code == 400
        assert "photo.jpg" in corrupt.json()["error"]
        assert "\n" not in corrupt.json()["error"]
        truncated = local.post("/api/image?name=cut.png",
                               content=png_bytes(np.zeros((20, 20), np.uint8))[:-30])
        assert truncated.status_code == 400 and "cut.png" in truncated.json()["error"]
        big = local.post("/api/image?name=big.png", content=b"x" * 5000)
        assert big.status_code == 413 and "over the 2.0 KiB limit" in big.json()["error"]
        noise = np.random.default_rng(0).integers(0, 255, (120, 120), dtype=np.uint8)
        many = local.post("/api/image?name=wide.png", content=png_bytes(noise))
        assert many.status_code == 413           # 14 KiB of noise: over the byte limit first
        assert "over the 2.0 KiB limit" in many.json()["error"]
        empty = local.post("/api/image?name=e.png", content=b"")
        assert empty.status_code == 400 and "empty" in empty.json()["error"]
        assert local.get("/api/meta").status_code == 200
        unknown = local.post("/api/stages", json=state(image="upload-doesnotexist"))
        assert unknown.status_code == 400 and "unknown image" in unknown.json()["error"]


def test_pixel_limit_applies_to_uploads():
    with api_client(create_app(max_pixels=2_000)) as local:
        response = local.post("/api/image?name=big.png",
                              content=png_bytes(np.zeros((100, 100), np.uint8)))
        assert response.status_code == 400
        assert "limit" in response.json()["error"]


# --------------------------------------------------------------------------- bad kernels, settings


@pytest.mark.parametrize(("kernels", "message"), [
    ([("big", np.ones((40, 40)).tolist())], "40x40; the largest supported side is 31"),
    ([("ragged", [[1, 2, 3], [1, 2]])], "ragged"),
    ([("a", SOBEL_H), ("even", [[1, 0], [0, -1]])], "parity"),
    ([("k", SOBEL_H)] * 17, "kernels"),
    ([("empty", [])], "kernel 1 (empty) is empty"),
])
def test_bad_kernels_get_one_line_messages(client, kernels, message):
    response = client.post("/api/stages", json=state(kernels=kernels))
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error and "\n" not in error


def test_non_numbers_and_nan_in_a_kernel_are_refused(client):
    body = state()
    body["kernels"][0]["weights"][0][0] = "abc"
    response = client.post("/api/stages", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "kernel 1 (sobel-h), row 1, column 1: 'abc' is not a number"
    raw = json.dumps(state()).replace("-2.0", "NaN", 1)
    response = client.post("/api/stages", content=raw,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "NaN" in response.json()["error"]


@pytest.mark.parametrize(("layer", "message"), [
    ({"stride": 0}, "stride"),
    ({"activation": "gelu"}, "activation must be one of"),
    ({"padding_mode": "mirror"}, "padding mode"),
    ({"padding": 33}, "padding"),
])
def test_bad_settings_get_one_line_messages(client, layer, message):
    response = client.post("/api/stages", json=state(image="sample-camera", **layer))
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_settings_that_leave_no_output_say_why(client):
    tiny = client.post("/api/image?name=tiny.png", content=png_bytes(np.zeros((10, 12), np.uint8)))
    image = tiny.json()["id"]
    pool = client.post("/api/stages", json=state(image=image, pool=16))
    assert pool.status_code == 400
    assert "pool window 16x16 is larger than the 8x10 conv map" in pool.json()["error"]
    dilated = client.post("/api/stages", json=state(image=image, dilation=8))
    assert dilated.status_code == 400 and "no output" in dilated.json()["error"]
    explain = client.post("/api/explain", json={**state(image=image, dilation=8), "row": 0,
                                                "col": 0})
    assert explain.status_code == 400 and "no output" in explain.json()["error"]


def test_host_header_is_checked_when_asked():
    with api_client(create_app(allowed_hosts=["127.0.0.1"]), base_url="http://127.0.0.1") as c:
        assert c.get("/api/meta").status_code == 200
        assert c.get("/api/meta", headers={"host": "evil.example"}).status_code == 400


# --------------------------------------------------------------------------- latest edit wins


def test_a_burst_of_edits_computes_the_latest_not_every_one():
    app = create_app()

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers={TOKEN_HEADER: app.state.token}) as client:
            bodies = []
            for seq in range(1, 7):
                kernel = [[0, 0, 0], [0, float(seq), 0], [0, 0, 0]]
                bodies.append({**state(kernels=[("k", kernel)]), "client": "page-1",
                               "seq": seq, "max_side": 2048})
            return await asyncio.gather(*(client.post("/api/stages", json=b) for b in bodies))

    responses = asyncio.run(burst())
    codes = [r.status_code for r in responses]
    assert codes[-1] == 200
    assert codes.count(409) >= 4
    assert app.state.gate.computed <= 2
    assert all(r.json() == {"superseded": True, "seq": i + 1}
               for i, r in enumerate(responses) if r.status_code == 409)


def test_the_stage_cache_is_bounded_in_bytes():
    from convlens.serve.cache import LRU

    cache = LRU(100, max_bytes=1000, weigh=len)
    for key in range(5):
        cache.put(key, b"x" * 300)
    assert len(cache) == 3 and cache.bytes == 900        # the oldest two went
    assert cache.get(0) is None and cache.get(4) is not None
    cache.put("big", b"x" * 5000)                         # one value over the budget stays alone
    assert len(cache) == 1 and cache.get("big") is not None


def test_fifty_pages_editing_at_once_recompute_only_the_edited_kernel(client):
    """Every page's unchanged kernels stay cached between its edits (they were evicted by the
    other pages' edits once, and each edit recomputed all of a page's kernels)."""
    rng = np.random.default_rng(7)
    pages = [[rng.integers(-3, 4, (3, 3)).tolist() for _ in range(3)] for _ in range(50)]

    def send(page: int, seq: int) -> dict:
        body = {**state(image="sample-camera", kernels=[(f"k{i}", w) for i, w in
                                                          enumerate(pages[page])]),
                "max_side": 256, "client": f"page-{page}", "seq": seq}
        return unpack(client.post("/api/stages", json=body).content)[0]["timing"]

    for page in range(50):
        send(page, 1)
    for page in range(50):
        pages[page][1][0][0] += 1                          # edit one cell of one kernel
        assert send(page, 2)["recomputed"] == 1, page


# --------------------------------------------------------------------------- downloads


def test_downloads_hold_the_full_stages(client, chelsea_gray):
    body = state(kernels=[("sobel-h", SOBEL_H)], pool=2)
    npz = client.post("/api/download/npz", json=body)
    assert npz.status_code == 200
    assert 'filename="stages.npz"' in npz.headers["content-disposition"]
    with np.load(io.BytesIO(npz.content)) as data:
        assert sorted(data.files) == ["activated", "conv", "input", "kernels", "pooled"]
        conv, pooled = reference_layer(chelsea_gray, SOBEL_H)
        np.testing.assert_allclose(data["conv"][0], conv, atol=1e-5)
        np.testing.assert_allclose(data["pooled"][0], pooled, atol=1e-5)
    overview = client.post("/api/download/overview", json=body)
    assert overview.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_rgb_kernels_with_a_grid_per_channel_match_scipy(client):
    rgb = load_image(sample_path("chelsea"), "rgb").numpy().astype(np.float64)
    weights = np.random.default_rng(11).integers(-3, 4, size=(3, 3, 3)).astype(float)
    shared = np.array(SOBEL_H)
    body = {**state(kernels=[("mine", weights.tolist()), ("sobel-h", SOBEL_H)]), "mode": "rgb"}
    # the oracle: each channel correlated with its own grid, summed; a shared kernel sees the mean
    expected = [sum(ndimage.correlate(rgb[c], weights[c], mode="constant")[1:-1, 1:-1]
                    for c in range(3)),
                ndimage.correlate(rgb.mean(axis=0), shared, mode="constant")[1:-1, 1:-1]]
    with np.load(io.BytesIO(client.post("/api/download/npz", json=body).content)) as data:
        assert data["kernels"].shape == (2, 3, 3, 3)
        for k in range(2):
            np.testing.assert_allclose(data["conv"][k], expected[k], atol=1e-5)
    for row, col in [(0, 0), (123, 321), (297, 448)]:
        explained = client.post("/api/explain", json={**body, "row": row, "col": col}).json()
        assert explained["conv"] == pytest.approx(expected[0][row, col], abs=1e-5)
        assert np.array(explained["kernel"]).tolist() == weights.tolist()


@pytest.mark.parametrize(("weights", "mode", "message"), [
    ([SOBEL_H, SOBEL_H], "rgb", "has 2 grids; give 1, or 3 (R, G, B)"),
    ([SOBEL_H, SOBEL_H, [[1.0]]], "rgb", "R, G and B grids differ in size"),
    ([SOBEL_H, SOBEL_H, [[1.0, 2.0], [3.0]]], "rgb", "channel B is ragged"),
    ([SOBEL_H] * 3, "gray", "has R, G and B grids but the image is gray"),
    ([[1.0, "x"]], "gray", "row 1, column 2: 'x' is not a number"),
])
def test_bad_rgb_kernels_get_one_line_messages(client, weights, mode, message):
    body = {**state(kernels=[("rgb", weights)]), "mode": mode}
    response = client.post("/api/stages", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error and "\n" not in error


@pytest.mark.slow
def test_figures_download_is_a_zip_of_the_run_figures(client):
    body = {**state(kernels=[("sobel-h", SOBEL_H)]), "max_side": 256}
    response = client.post("/api/download/figures", json=body)
    names = set(zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    assert {"filters.png", "conv.png", "activated.png", "pooled.png", "overview.png",
            "stages.npz"} <= names


# --------------------------------------------------------------------------- binary packing


@settings(max_examples=40, deadline=None)
@given(st.lists(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9))),
                min_size=1, max_size=4),
       st.text(max_size=20))
def test_pack_round_trips_any_arrays(items, note):
    message = pack({"note": note}, {f"a{i}": item for i, item in enumerate(items)})
    header, unpacked = unpack(message)
    assert header["note"] == note
    for i, item in enumerate(items):
        assert np.array_equal(unpacked[f"a{i}"], item)
        assert header["arrays"][i]["offset"] % 8 == 0     # typed-array views need alignment


# --------------------------------------------------------------------------- the command


@pytest.fixture
def fake_uvicorn(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    return calls


def test_serve_binds_loopback_by_default_and_prints_the_address(cli, fake_uvicorn):
    result = cli("serve", "--port", "0")
    assert result.code == 0, result.err
    _, options = fake_uvicorn[0]
    assert options["host"] == "127.0.0.1"
    assert f"http://127.0.0.1:{options['port']}/" in result.out
    assert "warning" not in result.err


def test_serve_warns_when_not_on_loopback(cli, fake_uvicorn):
    result = cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.code == 0
    assert "warning: listening on 0.0.0.0" in result.err
    assert fake_uvicorn[0][1]["host"] == "0.0.0.0"


def test_serve_answers_to_the_address_it_is_bound_to(cli, fake_uvicorn):
    result = cli("serve", "--host", "127.0.0.2", "--port", "0")
    assert result.code == 0, result.err
    app, options = fake_uvicorn[0]
    port = options["port"]
    assert options["host"] == "127.0.0.2" and f"http://127.0.0.2:{port}/" in result.out
    for host in (f"127.0.0.2:{port}", "127.0.0.2", f"localhost:{port}", f"127.0.0.1:{port}"):
        with api_client(app, base_url=f"http://{host}") as local:
            page = local.get("/")
            assert page.status_code == 200, (host, page.text)
            assert f'<meta name="convlens-token" content="{app.state.token}">' in page.text
            same_origin = {"Origin": f"http://{host}"}
            stages = local.post("/api/stages", json=state(), headers=same_origin)
            assert stages.status_code == 200, (host, stages.text)
    with api_client(app, base_url=f"http://rebound.example:{port}") as foreign:
        refused = foreign.get("/")
        assert refused.status_code == 400 and "rebound.example" in refused.json()["error"]


def test_a_wildcard_bind_answers_to_addresses_and_this_computer_not_to_other_names(
        cli, fake_uvicorn):
    result = cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.code == 0, result.err
    app = fake_uvicorn[0][0]
    for host in ("192.168.1.7:8765", "localhost", socket.gethostname()):
        with api_client(app, base_url=f"http://{host}") as local:
            assert local.get("/api/meta").status_code == 200, host
    with api_client(app, base_url="http://evil.example") as foreign:
        assert foreign.get("/api/meta").status_code == 400


def test_serve_help_states_the_limits_and_the_trust_flag(cli):
    from convlens.serve.limits import MAX_JSON_BYTES, MAX_MODEL_BYTES, MAX_UPLOAD_BYTES

    text = " ".join(cli("serve", "--help").out.split())
    for limit in (MAX_JSON_BYTES, MAX_UPLOAD_BYTES, MAX_MODEL_BYTES):
        assert f"{limit // 2**20} MiB" in text
    assert "--trust-code" in text and "token" in text and "origin" in text


def test_serve_says_when_the_port_is_taken(cli, fake_uvicorn):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port))
    assert result.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.err
    assert not fake_uvicorn


def test_serve_refuses_a_missing_model(cli, fake_uvicorn, tmp_path):
    result = cli("serve", "--model", str(tmp_path / "nope.safetensors"))
    assert result.code == 2 and "no such model file" in result.err


# --------------------------------------------------------------------------- the model panel


def tiny_checkpoint(folder) -> tuple:
    """A small tinyvgg (RGB 16x16, 3 classes) with seeded random weights, saved as a convlens
    checkpoint; returns ``(path, model, info)``."""
    from convlens.models import ModelInfo, create_model, save_checkpoint

    torch.manual_seed(3)
    model = create_model("tinyvgg", 3, 3, (16, 16), width=4).eval()
    info = ModelInfo("tinyvgg", 3, (16, 16), ["cat", "dog", "cup"], [0.5, 0.45, 0.4],
                     [0.25, 0.25, 0.3], {"width": 4})
    return save_checkpoint(model, info, folder / "model.safetensors"), model, info


@pytest.fixture(scope="module")
def model_client(tmp_path_factory):
    path, model, info = tiny_checkpoint(tmp_path_factory.mktemp("model"))
    with api_client(create_app(path)) as test_client:
        yield test_client, model, info


def test_model_panel_numbers_equal_a_manual_forward_pass(model_client):
    import copy

    from convlens.models import ModelKind, OpenedModel, prepare_input

    client, model, info = model_client
    response = client.post("/api/model/run", json={"image": "sample-coffee", "layer":
                                                   "features.conv2", "target": "dog"})
    assert response.status_code == 200, response.text
    header, arrays = unpack(response.content)
    image = load_image(sample_path("coffee"), "rgb")
    x = prepare_input(image, OpenedModel(model, ModelKind.CONVLENS, "tiny", info)).batch
    reference = copy.deepcopy(model)
    for module in reference.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    layers = list(reference.features)
    with torch.no_grad():
        probabilities = torch.softmax(reference(x), 1)[0]
        conv2 = torch.nn.Sequential(*layers[:3])(x)[0]
    shown = [p["probability"] for p in header["predictions"]]
    assert shown == pytest.approx(sorted(probabilities.tolist(), reverse=True), abs=1e-6)
    assert header["predictions"][0]["label"] == info.class_names[int(probabilities.argmax())]
    # feature maps of features.conv2, most active (highest mean) channel first
    means = conv2.mean(dim=(1, 2))
    order = torch.argsort(-means, stable=True).tolist()
    assert [c["channel"] for c in header["channels"]] == order
    first = header["channels"][0]
    assert first["mean"] == pytest.approx(float(means[order[0]]), abs=1e-5)
    assert first["max"] == pytest.approx(float(conv2[order[0]].max()), abs=1e-5)
    assert arrays["maps"].shape == (4, 16, 16)
    # the filters are the layer's weights, averaged over input channels on one signed scale
    weights = reference.features.conv2.weight.detach().double().mean(1)
    limit = header["filters"]["limit"]
    decoded = (arrays["filters"][:, 0].astype(np.float64) - 127.5) / 127.5 * limit
    assert np.abs(decoded - weights.numpy()).max() <= limit / 255 + 1e-9
    # Grad-CAM of "dog" at the last conv layer, worked out by hand
    maps = torch.nn.Sequential(*layers[:8])(x).detach().requires_grad_(True)
    logits = reference.classifier(torch.nn.Sequential(*layers[8:])(maps))
    (grad,) = torch.autograd.grad(logits[0, 1], maps)
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * maps).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(16, 16), mode="bilinear", align_corners=False)[0, 0].detach()
    assert header["gradcam"]["label"] == "dog"
    assert header["gradcam"]["layer"] == "features.conv4"            # the last conv layer
    assert header["gradcam"]["max"] == pytest.approx(float(cam.max()), rel=1e-4)
    expected = cam.numpy() / float(cam.max()) * 255
    assert np.abs(arrays["cam"].astype(np.float64) - expected).max() <= 0.51 + 1e-3
    assert arrays["seen"].shape == (3, 16, 16)


def test_model_panel_errors_are_one_line(model_client):
    client, _, _ = model_client
    unknown = client.post("/api/model/run", json={"image": "sample-chelsea", "layer": "nope"})
    assert unknown.status_code == 400 and "features.conv1" in unknown.json()["error"]
    linear = client.post("/api/model/run", json={"image": "sample-chelsea",
                                                 "layer": "classifier.fc"})
    assert linear.status_code == 400 and "not feature maps" in linear.json()["error"]
    target = client.post("/api/model/run", json={"image": "sample-chelsea", "target": "horse"})
    assert target.status_code == 400 and "unknown class 'horse'" in target.json()["error"]
    with api_client(create_app()) as plain:
        none = plain.post("/api/model/run", json={"image": "sample-chelsea"})
        assert none.status_code == 400 and "no model is open" in none.json()["error"]


def test_models_found_here_open_by_name_only(tmp_path, monkeypatch):
    tiny_checkpoint(tmp_path / "runs" / "pets")
    monkeypatch.chdir(tmp_path)
    with api_client(create_app()) as local:
        listing = local.get("/api/model").json()
        assert listing == {"model": None, "found": ["runs/pets/model.safetensors"]}
        opened = local.post("/api/model/open", json={"path": "runs/pets/model.safetensors"})
        assert opened.status_code == 200 and opened.json()["classes"] == ["cat", "dog", "cup"]
        outside = local.post("/api/model/open", json={"path": "../../etc/passwd"})
        assert outside.status_code == 400 and "upload it instead" in outside.json()["error"]
        assert local.get("/api/meta").json()["model"]["source"] == "runs/pets/model.safetensors"


def test_the_models_found_are_models_not_a_runs_training_state(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from convlens.errors import ModelError
    from convlens.models import load_checkpoint, save_checkpoint

    path, model, info = tiny_checkpoint(tmp_path / "runs" / "pets")
    folder = path.parent
    # what `convlens train` keeps for resuming beside the model: weights, optimizer, snapshots
    state = {f"model.{key}": value.contiguous() for key, value in model.state_dict().items()}
    save_file({**state, "optim.0.exp_avg": torch.zeros(3)}, str(folder / "train-state.safetensors"))
    (folder / "train-state.json").write_text("{}")
    save_file({"x": torch.zeros(2)}, str(folder / "tensors.safetensors"))  # not a model
    save_checkpoint(model, info, folder / "best.safetensors")  # a model under another name
    monkeypatch.chdir(tmp_path)
    with api_client(create_app()) as local:
        found = local.get("/api/model").json()["found"]
        assert found == ["runs/pets/best.safetensors", "runs/pets/model.safetensors"]
        for name in found:  # every one listed opens
            opened = local.post("/api/model/open", json={"path": name})
            assert opened.status_code == 200 and opened.json()["classes"] == info.class_names
        refused = local.post("/api/model/open", json={"path": "runs/pets/train-state.safetensors"})
        assert refused.status_code == 400 and "upload it instead" in refused.json()["error"]
    with pytest.raises(ModelError, match="does not fit tinyvgg"):  # indeed no loadable model
        load_checkpoint(folder / "train-state.safetensors")


def test_the_model_panel_reads_the_output_that_holds_the_class_scores():
    from convlens.models import ModelInfo, ModelKind, OpenedModel, prepare_input
    from several_outputs import build

    def opened(**kwargs) -> OpenedModel:
        return OpenedModel(build().eval(), ModelKind.FACTORY, "onet",
                           ModelInfo(in_channels=3, input_size=(48, 48)), **kwargs)

    image = load_image(sample_path("chelsea"), "rgb")
    faces = opened()
    with torch.no_grad():
        face = faces.module(prepare_input(image, faces).batch)[2][0]
    run = {"image": "sample-chelsea", "layer": "body.0"}
    with api_client(create_app(faces)) as local:
        header, _ = unpack(local.post("/api/model/run", json=run).content)
    assert header["outputs"]["used"] == 2 and len(header["predictions"]) == 2
    assert [p["probability"] for p in header["predictions"]] == pytest.approx(
        sorted(face.tolist(), reverse=True), abs=1e-6)  # the face probability, as it is
    assert header["gradcam"]["target"] == int(face.argmax())
    with api_client(create_app(opened(output=0))) as boxes:
        header, _ = unpack(boxes.post("/api/model/run", json=run).content)
    assert header["outputs"]["used"] == 0 and len(header["predictions"]) == 4


def test_a_checkpoint_can_be_uploaded_and_a_bad_one_is_refused(tmp_path):
    path, _, _ = tiny_checkpoint(tmp_path)
    files = {"weights": ("model.safetensors", path.read_bytes()),
             "info": ("model.json", (tmp_path / "model.json").read_bytes())}
    with api_client(create_app()) as local:
        response = local.post("/api/model/upload", files=files)
        assert response.status_code == 200, response.text
        assert response.json()["kind"] == "convlens checkpoint"
        run = local.post("/api/model/run", json={"image": "sample-camera"})
        assert run.status_code == 200
        broken = {"weights": ("model.safetensors", b"not safetensors"), "info": files["info"]}
        refused = local.post("/api/model/upload", files=broken)
        assert refused.status_code == 400 and "safetensors" in refused.json()["error"]
        one = local.post("/api/model/upload", files={"weights": files["weights"]})
        assert one.status_code == 400 and "two files" in one.json()["error"]
        # the model that was open before the bad upload still answers
        assert local.post("/api/model/run", json={"image": "sample-camera"}).status_code == 200


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
def test_torchscript_and_pickles_are_uploaded_only_when_the_server_trusts_code():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2)).eval()
    scripted, pickled = io.BytesIO(), io.BytesIO()
    torch.jit.save(torch.jit.script(model), scripted)
    torch.save(model, pickled)
    with api_client(create_app()) as untrusting:  # TorchScript runs code on load: refused
        refused = untrusting.post("/api/model/upload",
                                  files={"model": ("net.pt", scripted.getvalue())})
        assert refused.status_code == 400 and "--trust-code" in refused.json()["error"]
        pickle = untrusting.post("/api/model/upload",
                                 files={"model": ("whole.pt", pickled.getvalue())})
        assert pickle.status_code == 400 and "pickle" in pickle.json()["error"]
        assert untrusting.get("/api/model").json()["model"] is None
    with api_client(create_app(trust_code=True)) as local:
        opened = local.post("/api/model/upload",
                            files={"model": ("net.pt", scripted.getvalue())})
        assert opened.status_code == 200, opened.text
        assert opened.json()["kind"] == "TorchScript" and opened.json()["source"] == "net.pt"
        run = local.post("/api/model/run", json={"image": "sample-coffee"})
        header, _ = unpack(run.content)
        image = load_image(sample_path("coffee"), "rgb")
        with torch.no_grad():  # the image as it is: no input size or normalization known
            expected = torch.softmax(model(image[None]), 1)[0].tolist()
        shown = sorted(p["probability"] for p in header["predictions"])
        assert shown == pytest.approx(sorted(expected), abs=1e-5)
        other = local.post("/api/model/upload", files={"model": ("notes.txt", b"hello")})
        assert other.status_code == 400 and "TorchScript (.pt)" in other.json()["error"]
        # the TorchScript model is still the one open
        assert local.get("/api/model").json()["model"]["source"] == "net.pt"


def test_serve_opens_the_model_given(cli, fake_uvicorn, tmp_path):
    path, _, _ = tiny_checkpoint(tmp_path)
    result = cli("serve", "--port", "0", "--model", str(path))
    assert result.code == 0, result.err
    app, _ = fake_uvicorn[0]
    assert app.state.models.opened is not None
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    refused = cli("serve", "--port", "0", "--model", str(bad))
    assert refused.code == 2 and refused.err.startswith("error: ")


SERVE_NETS = """
import torch.nn as nn

def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
"""


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
def test_serve_opens_any_model_inspect_opens(cli, fake_uvicorn, tmp_path, monkeypatch):
    import importlib

    from safetensors.torch import save_file

    (tmp_path / "servenets.py").write_text(SERVE_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "servenets", raising=False)
    torch.manual_seed(0)
    model = importlib.import_module("servenets").build().eval()
    save_file(model.state_dict(), str(tmp_path / "net.safetensors"))
    torch.jit.script(model).save(str(tmp_path / "net.pt"))
    shown = {}
    for label, args in (("factory", ("servenets:build", "--weights", "net.safetensors")),
                        ("torchscript", ("net.pt",))):
        refused = cli("serve", "--port", "0", "--model", *args, "--input-size", "16")
        assert refused.code == 2 and "--trust-code" in refused.err  # code runs only when asked
        args = (*args, "--trust-code")
        result = cli("serve", "--port", "0", "--model", *args, "--input-size", "16")
        assert result.code == 0, result.err
        assert result.out.startswith("model: ")
        with api_client(fake_uvicorn[-1][0], base_url="http://127.0.0.1") as client:
            info = client.get("/api/model").json()["model"]
            assert info["input_size"] == [16, 16]
            assert [layer["name"] for layer in info["layers"] if layer["conv"]] == ["0"]
            response = client.post("/api/model/run", json={"image": "sample-coffee"})
            assert response.status_code == 200, response.text
            shown[label] = unpack(response.content)[0]["predictions"]
    # two ways of opening the same weights give the same predictions
    assert shown["factory"] == shown["torchscript"]
    assert sum(p["probability"] for p in shown["factory"]) == pytest.approx(1, abs=1e-5)


def test_serve_output_picks_the_output_the_model_panel_reads(cli, fake_uvicorn):
    model = ("--model", "several_outputs:build", "--trust-code", "--input-size", "48")
    shown = {}
    for output in ("0", None):
        chosen = ("--output", output) if output else ()
        result = cli("serve", "--port", "0", *model, *chosen)
        assert result.code == 0, result.err
        with api_client(fake_uvicorn[-1][0], base_url="http://127.0.0.1") as client:
            response = client.post("/api/model/run", json={"image": "sample-coffee"})
            assert response.status_code == 200, response.text
            shown[output] = unpack(response.content)[0]
    assert shown["0"]["outputs"]["used"] == 0 and len(shown["0"]["predictions"]) == 4
    assert shown[None]["outputs"]["used"] == 2 and len(shown[None]["predictions"]) == 2


# --------------------------------------------------------------------------- the bundled model


def test_serve_opens_on_the_bundled_digits_cnn(cli, fake_uvicorn):
    from sklearn.datasets import load_digits

    from convlens.images import bundled_model_path
    from convlens.models import open_model

    result = cli("serve", "--port", "0")
    assert result.code == 0, result.err
    assert result.out.startswith("model: ") and "digits-cnn" in result.out
    app = fake_uvicorn[0][0]
    with api_client(app, base_url="http://127.0.0.1") as local:
        shown = local.get("/api/meta").json()["model"]
        info = local.get("/api/model").json()["model"]
        assert shown == info
        assert info["source"] == str(bundled_model_path())
        assert info["classes"] == [str(digit) for digit in range(10)]
        assert info["input_size"] == [8, 8] and info["in_channels"] == 1
        assert info["default_layer"] == "features.conv1"
        # a digit of scikit-learn's set, as a user would upload it: the panel's top class is
        # the bundled model's own answer, computed here by hand
        bundled = open_model(bundled_model_path())
        digits = load_digits()
        for index in (0, 1, 2):
            pixels = np.round(digits.images[index] * 255 / 16).astype(np.uint8)
            upload = local.post(f"/api/image?name=digit{index}.png&mode=gray&max_side=128",
                                content=png_bytes(pixels)).json()
            run = local.post("/api/model/run", json={"image": upload["id"], "max_side": 128})
            assert run.status_code == 200, run.text
            header, arrays = unpack(run.content)
            x = (torch.from_numpy(pixels / 255).float()[None, None] - bundled.info.mean[0]) / (
                bundled.info.std[0])
            with torch.no_grad():
                expected = bundled.module(x).softmax(1)[0]
            top = header["predictions"][0]
            assert top["label"] == str(int(expected.argmax())) == str(digits.target[index])
            assert top["probability"] == pytest.approx(float(expected.max()), abs=1e-5)
            assert header["layer"]["name"] == "features.conv1"
            assert arrays["maps"].shape[1:] == (8, 8) and header["gradcam"] is not None


def test_serve_model_none_starts_with_no_model(cli, fake_uvicorn):
    result = cli("serve", "--port", "0", "--model", "none")
    assert result.code == 0, result.err
    assert "model: " not in result.out
    app = fake_uvicorn[0][0]
    assert app.state.models.opened is None
    with api_client(app, base_url="http://127.0.0.1") as local:
        assert local.get("/api/model").json()["model"] is None
