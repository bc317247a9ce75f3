"""The explorer end to end in a real headless Chromium (Debian's, driven by Playwright).

One server (uvicorn in a thread) and one browser serve the whole module. The numbers read from
the page are checked against ``compute_stages(..., backend="torch")``, the nn.Conv2d reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convlens.config import LayerConfig
from convlens.images import load_image, sample_path
from convlens.kernels import get_kernel, parse_kernel
from convlens.layers import compute_stages
from servers import serving

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SOBEL_H = get_kernel("sobel-h").as_2d()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small RGB classifier (3 classes, 16x16 input) with seeded random weights."""
    import torch

    from convlens.models import ModelInfo, create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("tinyvgg", 3, 3, (16, 16), width=4)
    info = ModelInfo("tinyvgg", 3, (16, 16), ["cat", "dog", "cup"], [0.5] * 3, [0.25] * 3,
                     {"width": 4})
    return save_checkpoint(model, info, tmp_path_factory.mktemp("model") / "model.safetensors")


@pytest.fixture(scope="module")
def server(checkpoint):
    """The app (with a model) on a free loopback port, served by uvicorn in a thread."""
    from convlens.serve import create_app

    with serving(create_app(checkpoint, allowed_hosts=["127.0.0.1"])) as url:
        yield url


def open_page(browser, server, viewport=LAPTOP, **options):
    """A fresh page with the explorer loaded and drawn; every request it makes is recorded."""
    context = browser.new_context(viewport=viewport, **options)
    page = context.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(server + "/")
    wait_renders(page, 1)
    return page


def wait_renders(page, count: int) -> None:
    page.wait_for_function(f"window.convlens.renders >= {count}", timeout=20000)


def renders(page) -> int:
    return page.evaluate("window.convlens.renders")


def canvas_pixels(page, selector: str) -> np.ndarray:
    data = page.evaluate(
        """(selector) => { const c = document.querySelector(selector);
           return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""",
        selector)
    return np.array(data, dtype=np.uint8)


def hover_fraction(page, selector: str, fx: float, fy: float) -> None:
    target = page.locator(selector)
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def explained_at(page, stage: str) -> tuple[int, int, int]:
    page.wait_for_function(
        f"(document.querySelector('#explain-body').dataset.at || '').split(',')[1] === '{stage}'",
        timeout=10000)
    k, _, row, col = page.locator("#explain-body").get_attribute("data-at").split(",")
    return int(k), int(row), int(col)


def row_selector(k: int, stage: str) -> str:
    return f".krow:nth-child({k + 1}) .stage[data-stage={stage}] canvas"


def test_edit_a_kernel_hover_a_pixel_and_read_the_library_sum(browser, server, artifacts):
    page = open_page(browser, server)
    conv_canvas = row_selector(0, "conv")
    before = canvas_pixels(page, conv_canvas)

    # edit one cell of the first kernel (sobel-h): the conv canvas changes
    count = renders(page)
    cell = page.get_by_label("kernel 1 row 1 column 1", exact=True)
    cell.fill("3")
    wait_renders(page, count + 1)
    after = canvas_pixels(page, conv_canvas)
    assert before.shape == after.shape
    assert np.abs(before.astype(int) - after.astype(int)).sum() > 0
    assert page.locator(".krow:nth-child(1) .preset").input_value() == ""   # now "custom"

    # hover a conv pixel: the panel's sum is the library's conv value at that pixel
    image = load_image(sample_path("chelsea"), "gray")
    edited = parse_kernel("3 -2 -1; 0 0 0; 1 2 1")
    reference = compute_stages(image, [edited, parse_kernel("laplacian"), parse_kernel("sobel-v")],
                               LayerConfig(), device="cpu", backend="torch")
    hover_fraction(page, conv_canvas, 0.37, 0.58)
    k, row, col = explained_at(page, "conv")
    shown = page.get_by_test_id("conv-value")
    expected = float(reference.conv[k, row, col])
    assert float(shown.get_attribute("data-value")) == pytest.approx(expected, abs=1e-5)
    assert float(shown.inner_text()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    written = page.get_by_test_id("sum-written").inner_text()
    assert written.startswith("sum of products = (") and "×3" in written
    assert page.locator("#field-box").is_visible()       # the patch is outlined on the input

    # a pooled cell: its window, winner and value, as the library pools
    hover_fraction(page, row_selector(1, "pooled"), 0.52, 0.41)
    k, row, col = explained_at(page, "pooled")
    pooled = float(page.get_by_test_id("pooled-value").get_attribute("data-value"))
    assert pooled == pytest.approx(float(reference.pooled[k, row, col]), abs=1e-5)
    assert page.locator(".krow:nth-child(2) .stage[data-stage=activated] .box.window").is_visible()

    # keyboard alone: arrows walk the kernel grid and move the probe on a focused map
    cell.focus()
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "kernel 1 row 2 column 1"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"                                    # visible focus
    page.locator(".krow:nth-child(3) .stage[data-stage=activated] .map-wrap").focus()
    k, row, col = explained_at(page, "activated")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"document.querySelector('#explain-body').dataset.at === '{k},activated,{row},{col + 1}'")
    activated = float(page.get_by_test_id("activated-value").get_attribute("data-value"))
    assert activated == pytest.approx(float(reference.activated[k, row, col + 1]), abs=1e-5)

    hover_fraction(page, conv_canvas, 0.37, 0.58)
    explained_at(page, "conv")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "serve.png"))
    origin = server + "/"
    assert page.requests and all(url.startswith(origin) for url in page.requests), page.requests
    assert not page.errors
    page.context.close()


def test_rgb_kernels_get_a_grid_per_channel(browser, server):
    page = open_page(browser, server)
    count = renders(page)
    page.select_option("#mode", "rgb")
    wait_renders(page, count + 1)
    conv_canvas = row_selector(0, "conv")
    caption = page.locator(".krow:nth-child(1) .stage[data-stage=conv] .caption")

    def conv_range() -> str:                       # e.g. "[-2.13, 1.34]"
        text = caption.inner_text()
        return text[text.index("["):text.index("]") + 1]

    shared = conv_range()

    # splitting a shared kernel gives each channel a third of it: the maps stay as they were
    count = renders(page)
    split = page.locator(".krow:nth-child(1) .split")
    assert split.get_attribute("aria-pressed") == "false"
    split.click()
    wait_renders(page, count + 1)
    first_row = [page.get_by_label(f"kernel 1 R row 1 column {c}", exact=True).input_value()
                 for c in (1, 2, 3)]
    assert first_row == ["-1/3", "-2/3", "-1/3"]
    assert conv_range() == shared

    # the green grid alone changes: the map changes, and the panel adds up each channel
    count = renders(page)
    page.get_by_label("kernel 1 G row 1 column 1", exact=True).fill("2")
    wait_renders(page, count + 1)
    assert conv_range() != shared
    rgb = load_image(sample_path("chelsea"), "rgb").numpy().astype(np.float64)
    weights = np.repeat(np.array(SOBEL_H, dtype=np.float64)[None] / 3, 3, axis=0)
    weights[1, 0, 0] = 2
    hover_fraction(page, conv_canvas, 0.61, 0.33)
    _, row, col = explained_at(page, "conv")
    expected = float((rgb[:, row:row + 3, col:col + 3] * weights).sum())   # worked by hand
    shown = float(page.get_by_test_id("conv-value").get_attribute("data-value"))
    assert shown == pytest.approx(expected, abs=1e-5)
    assert page.locator("#explain-body table caption", has_text="kernel [G]").count() == 1

    # back to gray: the three grids become one, their sum (what a gray image R = G = B sees)
    count = renders(page)
    page.select_option("#mode", "gray")
    wait_renders(page, count + 1)
    assert page.locator(".krow:nth-child(1) .split").is_hidden()
    merged = page.get_by_label("kernel 1 row 1 column 1", exact=True).input_value()
    assert float(merged) == pytest.approx(2 - 2 / 3)
    assert not page.errors
    page.context.close()


def test_bad_input_shows_a_message_and_the_page_keeps_working(browser, server):
    page = open_page(browser, server)
    page.set_input_files("#file", files=[{"name": "broken.png", "mimeType": "image/png",
                                          "buffer": b"\x89PNG\r\n\x1a\n this is not a png"}])
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert "broken.png" in message.inner_text()

    # a bad kernel value is marked and explained; nothing is sent until it is fixed
    count = renders(page)
    cell = page.get_by_label("kernel 2 row 2 column 2", exact=True)
    cell.fill("4x")
    assert cell.get_attribute("aria-invalid") == "true"
    page.wait_for_function("document.querySelector('#message-text').textContent.includes("
                           "\"'4x' is not a number\")")
    cell.fill("1/2")
    wait_renders(page, count + 1)
    assert message.is_hidden()

    # kernels of different parity cannot be stacked: the server's message is shown
    page.locator(".krow:nth-child(1) .size").select_option("4")
    page.wait_for_function("document.querySelector('#message-text').textContent"
                           ".includes('matching parity')")

    # a good image dropped on the page replaces the sample
    count = renders(page)
    page.evaluate("""async () => {
        const canvas = Object.assign(document.createElement('canvas'), {width: 40, height: 30});
        const context = canvas.getContext('2d');
        context.fillStyle = '#fff'; context.fillRect(0, 0, 40, 30);
        context.fillStyle = '#000'; context.fillRect(10, 0, 20, 30);
        const blob = await new Promise((done) => canvas.toBlob(done, 'image/png'));
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], 'stripes.png', {type: 'image/png'}));
        window.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));
    }""")
    # its picture and sizes show though the kernels cannot be stacked yet
    page.wait_for_function("document.querySelector('#image-info').textContent"
                           ".startsWith('stripes.png: 40×30')")
    page.locator(".krow:nth-child(1) .size").select_option("3")
    wait_renders(page, count + 1)
    page.wait_for_function("document.querySelector('#image-info').textContent"
                           ".startsWith('stripes.png: 40×30')")

    # and a pasted one too
    page.evaluate("""async () => {
        const canvas = Object.assign(document.createElement('canvas'), {width: 24, height: 20});
        const blob = await new Promise((done) => canvas.toBlob(done, 'image/png'));
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], 'pasted.png', {type: 'image/png'}));
        window.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer}));
    }""")
    page.wait_for_function("document.querySelector('#image-info').textContent"
                           ".startsWith('pasted.png: 24×20')")
    assert not page.errors
    page.context.close()


def test_phone_layout_fits_and_a_tap_explains_the_pixel(browser, server, artifacts):
    page = open_page(browser, server, viewport=PHONE, has_touch=True, is_mobile=True,
                     device_scale_factor=2)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # the maps come first, the controls after them
    first_map = page.locator(row_selector(0, "conv")).bounding_box()
    controls = page.locator(".controls").bounding_box()
    assert first_map["y"] + first_map["height"] < controls["y"]
    assert first_map["y"] < PHONE["height"]                      # on the first screen
    target = page.locator(row_selector(1, "conv"))
    target.scroll_into_view_if_needed()
    target.tap()
    explained_at(page, "conv")
    # the panel moves under the tapped row, so the explanation is where the finger is
    assert page.evaluate("document.querySelector('#explain').previousElementSibling"
                         " === document.querySelector('.krow:nth-child(2)')")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "serve-phone.png"), full_page=True)
    assert not page.errors
    page.context.close()


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
def test_model_panel_shows_predictions_feature_maps_filters_and_gradcam(browser, server, checkpoint,
                                                                        artifacts, tmp_path):
    page = open_page(browser, server)
    page.wait_for_function("document.body.dataset.modelRuns >= '1'", timeout=20000)
    bars = page.locator("#predictions li")
    assert bars.count() == 3
    total = sum(float(t.rstrip("%")) for t in page.locator("#predictions .pct").all_inner_texts())
    assert total == pytest.approx(100, abs=0.2)
    cam = canvas_pixels(page, "#cam-canvas")
    assert cam.size > 0 and cam.reshape(-1, 4)[:, :3].std() > 0
    assert page.locator("#feature-grid canvas").count() == 4
    assert page.locator("#filter-grid canvas").count() == 4
    assert "Grad-CAM" in page.locator("#cam-caption").inner_text()

    runs = page.evaluate("window.convlens.modelRuns")
    page.select_option("#model-layer", "features.pool1")
    page.wait_for_function(f"window.convlens.modelRuns > {runs}")
    assert "features.pool1 (MaxPool2d): 4×8×8" in page.locator("#layer-caption").inner_text()
    assert page.locator("#filter-grid canvas").count() == 0           # a pool has no filters
    runs = page.evaluate("window.convlens.modelRuns")
    page.select_option("#cam-target", "2")
    page.wait_for_function(f"window.convlens.modelRuns > {runs}")
    assert '"cup"' in page.locator("#cam-caption").inner_text()
    page.locator("#model-card").scroll_into_view_if_needed()
    page.locator("#model-card").screenshot(path=str(artifacts / "serve-model.png"))

    # a TorchScript file runs code when loaded: this server (no --trust-code) refuses it and
    # says how to opt in; the checkpoint (its two files) opens
    import torch

    scripted = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(
        torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())), scripted)
    page.set_input_files("#model-file", files=[str(scripted)])
    page.wait_for_function("!document.querySelector('#message').hidden", timeout=20000)
    assert "--trust-code" in page.locator("#message-text").inner_text()
    runs = page.evaluate("window.convlens.modelRuns")
    page.set_input_files("#model-file", files=[str(checkpoint), str(checkpoint.with_name(
        "model.json"))])
    page.wait_for_function(f"window.convlens.modelRuns > {runs}", timeout=20000)
    assert "model.safetensors (convlens checkpoint" in page.locator("#model-describe").inner_text()
    assert page.locator("#predictions li").count() == 3
    assert all(url.startswith(server + "/") for url in page.requests)
    assert not page.errors
    page.context.close()


def png_bytes(array: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def explained_value(page, test_id: str) -> float:
    return float(page.get_by_test_id(test_id).get_attribute("data-value"))


def test_the_explanation_follows_every_change_of_its_inputs(browser, server):
    page = open_page(browser, server)
    image = load_image(sample_path("chelsea"), "gray")
    conv_canvas = row_selector(0, "conv")
    hover_fraction(page, conv_canvas, 0.4, 0.5)
    _, row, col = explained_at(page, "conv")
    first = explained_value(page, "conv-value")

    # a kernel edit: the same pixel, worked out again with the new weights
    count = renders(page)
    page.get_by_label("kernel 1 row 3 column 3", exact=True).fill("5")
    wait_renders(page, count + 1)
    edited = parse_kernel("-1 -2 -1; 0 0 0; 1 2 5")
    reference = compute_stages(image, [edited], LayerConfig(), device="cpu", backend="torch")
    expected = float(reference.conv[0, row, col])
    assert expected != pytest.approx(first, abs=1e-4)
    page.wait_for_function(
        f"Math.abs(Number(document.querySelector('[data-testid=conv-value]')"
        f"?.dataset.value) - {expected}) < 1e-5", timeout=10000)
    assert page.locator("#explain-body").get_attribute("data-stale") is None

    # a layer setting: the panel says tanh and its value
    count = renders(page)
    page.select_option("#activation", "tanh")
    wait_renders(page, count + 1)
    page.wait_for_function("document.querySelector('#explain-body').textContent"
                           ".includes('tanh(')", timeout=10000)
    assert explained_value(page, "activated-value") == pytest.approx(np.tanh(expected), abs=1e-5)

    # another sample: the cat's pixel is gone from the panel until a pixel is probed again
    count = renders(page)
    page.select_option("#sample", "sample-coffee")
    wait_renders(page, count + 1)
    body = page.locator("#explain-body")
    assert body.get_attribute("data-at") is None
    assert page.get_by_test_id("conv-value").count() == 0
    assert page.locator("#field-box").is_hidden()
    hover_fraction(page, conv_canvas, 0.6, 0.5)
    explained_at(page, "conv")
    assert body.get_attribute("data-image") == "sample-coffee"

    # an upload: cleared again
    count = renders(page)
    page.set_input_files("#file", files=[{"name": "plain.png", "mimeType": "image/png",
                                          "buffer": png_bytes(np.full((40, 60), 90, np.uint8))}])
    wait_renders(page, count + 1)
    assert body.get_attribute("data-at") is None
    assert page.get_by_test_id("conv-value").count() == 0
    assert not page.errors
    page.context.close()


def test_a_shrunk_photo_shows_both_sizes_and_each_pixel_its_command(browser, server, cli):
    page = open_page(browser, server, permissions=["clipboard-read", "clipboard-write"])
    ramp = np.add.outer(np.arange(1000) // 5, np.arange(1500) // 7).astype(np.uint8)
    data = png_bytes(ramp)                                       # width 1500, height 1000
    count = renders(page)
    page.set_input_files("#file", files=[{"name": "big.png", "mimeType": "image/png",
                                          "buffer": data}])
    wait_renders(page, count + 1)
    # 1.5 Mpx is within the page's working budget: full size, as the CLI computes it
    page.wait_for_function("document.querySelector('#image-info').textContent"
                           ".startsWith('big.png: 1500×1000 px (width×height)')")
    assert page.locator("#max-side").input_value() == "full"
    count = renders(page)
    page.select_option("#max-side", "1024")                        # a working size picked
    wait_renders(page, count + 1)
    page.wait_for_function("document.querySelector('#image-info').textContent"
                           ".startsWith('big.png: 1500×1000 → 1024×683 px (width×height)')")
    assert "the working size picked" in page.get_by_test_id("size-note").inner_text()

    hover_fraction(page, row_selector(0, "conv"), 0.3, 0.6)
    _, row, col = explained_at(page, "conv")
    command = page.get_by_test_id("command").inner_text()
    assert command.startswith("convlens explain big.png --kernel sobel-h ")
    assert f"--at {row},{col}" in command and "--max-side 1024" in command
    page.get_by_test_id("copy-command").click()
    page.wait_for_function("document.querySelector('[data-testid=copy-command]')"
                           ".textContent === 'copied'")
    assert page.evaluate("navigator.clipboard.readText()") == command

    # the command prints the number the page shows
    import json
    import shlex

    Path("big.png").write_bytes(data)                  # cli runs in its own tmp folder
    result = cli(*shlex.split(command)[1:], "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["conv"] == pytest.approx(explained_value(page, "conv-value"),
                                                           abs=1e-6)
    # developer words stay folded away
    assert "recomputed" not in page.locator("#status").inner_text()
    timing = page.locator("details#timing")
    assert timing.get_attribute("open") is None and "recomputed" in timing.text_content()
    assert not page.errors
    page.context.close()


def test_a_magnifier_a_sliding_kernel_and_maps_that_fill_the_width(browser, server):
    page = open_page(browser, server)
    hover_fraction(page, row_selector(0, "conv"), 0.5, 0.5)
    explained_at(page, "conv")
    magnifier = page.get_by_test_id("magnifier")
    magnifier.wait_for(state="visible")
    # the magnifier sits in the hovered map and shows the panel's patch, number for number
    assert page.locator(".krow:nth-child(1) .stage[data-stage=conv] [data-testid=magnifier]"
                        ).count() == 1
    patch = page.locator("#explain-body table.mat").first.locator("td").all_inner_texts()
    assert magnifier.locator("td").all_inner_texts() == patch and len(patch) == 9
    shown = page.get_by_test_id("conv-value").inner_text()
    assert magnifier.inner_text().endswith(f"conv = {shown}")

    # a pooled cell: its 2x2 window with the winner marked
    hover_fraction(page, row_selector(0, "pooled"), 0.5, 0.5)
    explained_at(page, "pooled")
    pooled = page.locator(".krow:nth-child(1) .stage[data-stage=pooled] [data-testid=magnifier]")
    pooled.wait_for(state="visible")
    assert pooled.locator("td").count() == 4 and pooled.locator("td.win").count() == 1
    value = page.get_by_test_id("pooled-value").inner_text()
    assert pooled.inner_text().endswith(f"max = {value}")

    # a click slides the kernel to the pixel: down the first column, then along its row
    target = page.locator(row_selector(1, "conv"))
    box = target.bounding_box()
    page.mouse.click(box["x"] + 0.45 * box["width"], box["y"] + 0.3 * box["height"])
    page.wait_for_function("window.convlens.slides >= 1", timeout=10000)
    k, row, col = explained_at(page, "conv")
    assert k == 1
    path = page.evaluate("window.convlens.slidePath")
    assert path[0] == [0, 0] and path[-1] == [row, col] and len(path) > 10
    steps = [r + c for r, c in path]
    assert steps == sorted(steps) and all(c == 0 for r, c in path if r < row)
    assert page.evaluate("document.body.dataset.sliding") is None
    magnifier.wait_for(state="visible")

    # maps at their true size against the input: the 2x2-pooled map is half as wide
    conv_width = page.locator(row_selector(0, "conv")).bounding_box()["width"]
    pooled_width = page.locator(row_selector(0, "pooled")).bounding_box()["width"]
    assert pooled_width / conv_width == pytest.approx(224 / 449, abs=0.01)

    # larger maps: the row's maps take the whole width, drawn at a finer scale
    conv = page.locator(row_selector(0, "conv"))
    before = conv.bounding_box()["width"], page.evaluate(
        f"document.querySelector('{row_selector(0, 'conv')}').width")
    count = renders(page)
    page.locator("#larger").click()
    wait_renders(page, count + 1)
    after = conv.bounding_box()["width"], page.evaluate(
        f"document.querySelector('{row_selector(0, 'conv')}').width")
    assert after[0] > 1.8 * before[0] and after[1] > before[1]
    assert page.locator("#larger").get_attribute("aria-pressed") == "true"
    assert not page.errors
    page.context.close()


def test_one_colour_scale_per_stage_lets_kernels_be_compared(browser, server):
    page = open_page(browser, server)
    maps = [row_selector(k, "conv") for k in range(3)]      # sobel-h, laplacian, sobel-v
    assert page.locator("#scale").input_value() == "stage"        # as overview.png draws them
    shared = [canvas_pixels(page, selector).reshape(-1, 4)[:, :3].astype(float)
              for selector in maps]
    caption = page.locator(".krow:nth-child(2) .stage[data-stage=conv] .caption")
    before = caption.inner_text()
    page.select_option("#scale", "map")
    page.wait_for_function("(text) => document.querySelector('.krow:nth-child(2) "
                           ".stage[data-stage=conv] .caption').innerText !== text", arg=before)
    own = [canvas_pixels(page, selector).reshape(-1, 4)[:, :3].astype(float)
           for selector in maps]
    # the strongest kernel sets the stage's scale: its map is drawn the same either way ...
    assert any(np.array_equal(a, b) for a, b in zip(shared, own))
    # ... and the weak laplacian looks weak beside it only on the shared scale
    white = np.array([247.0, 247.0, 247.0])                       # the diverging map's 0
    assert (np.abs(shared[1] - white).mean() < 0.8 * np.abs(own[1] - white).mean())
    # a scale cut at a percentile says so under the map
    assert "colours cut at ±" in caption.inner_text()
    assert not page.errors
    page.context.close()


def test_the_first_render_of_an_uploaded_photo_shows_its_own_maps(browser, server, cli):
    import json
    import shlex

    from convlens.kernels import TUTORIAL_KERNELS

    page = open_page(browser, server, permissions=["clipboard-read", "clipboard-write"])
    photo = (np.add.outer(np.arange(400), 2 * np.arange(600)) % 251).astype(np.uint8)
    photo[100:300, 200:260] = np.random.default_rng(5).integers(0, 256, (200, 60))
    data = png_bytes(photo)                                        # width 600, height 400
    loads = page.evaluate("window.convlens.loads.length")
    runs = page.evaluate("window.convlens.modelRuns || 0")
    page.requests.clear()
    page.set_input_files("#file", files=[{"name": "photo.png", "mimeType": "image/png",
                                          "buffer": data}])
    page.wait_for_function(f"window.convlens.loads.length > {loads}", timeout=20000)
    page.wait_for_function(f"window.convlens.modelRuns > {runs}", timeout=20000)
    # the first drawing took the upload and one stages request, which brought the picture too
    # (the model panel and the network view follow it)
    asked = [url.split("/api/")[1].split("?")[0] for url in page.requests if "/api/" in url]
    assert [name for name in asked if name in ("image", "stages", "input")] == [
        "image", "stages"], asked
    assert asked.index("model/run") > asked.index("stages")
    assert page.evaluate("window.convlens.loads.at(-1)")["width"] == 600

    # its sizes: full size, as the CLI computes it, and nothing shrunk
    info = page.locator("#image-info").inner_text()
    assert info.startswith("photo.png: 600×400 px (width×height), 1 channel (gray)"), info
    assert page.get_by_test_id("size-note").count() == 0
    assert page.locator("#max-side").input_value() == "full"
    conv_caption = page.locator(".krow:nth-child(1) .stage[data-stage=conv] .caption")
    assert conv_caption.inner_text().startswith("conv 598×398")

    # the input drawn is this photo, area-averaged as the server shrinks it for drawing
    from convlens.images import downsample_for_display

    size = page.evaluate("[document.querySelector('#input-canvas').width, "
                         "document.querySelector('#input-canvas').height]")
    drawn = canvas_pixels(page, "#input-canvas").reshape(size[1], size[0], 4)[..., 0]
    expected, _ = downsample_for_display(photo[None] / 255.0, max(size))
    assert np.abs(drawn.astype(int) - np.rint(expected[0] * 255).astype(int)).max() <= 1

    # a hovered pixel: the library's number, and a command without --max-side that prints it
    Path("photo.png").write_bytes(data)                # cli runs in its own tmp folder
    image = load_image("photo.png", "gray")
    reference = compute_stages(image, [get_kernel(name) for name in TUTORIAL_KERNELS],
                               LayerConfig(), device="cpu", backend="torch")
    hover_fraction(page, row_selector(0, "conv"), 0.42, 0.33)
    k, row, col = explained_at(page, "conv")
    assert explained_value(page, "conv-value") == pytest.approx(
        float(reference.conv[k, row, col]), abs=1e-5)
    assert page.locator("#explain-body").get_attribute("data-image").startswith("upload-")
    # the 3x3 patch is outlined where it lies on the input picture
    box = page.locator("#field-box").bounding_box()
    drawn_box = page.locator("#input-canvas").bounding_box()
    assert box["y"] == pytest.approx(drawn_box["y"] + drawn_box["height"] * row / 400, abs=1.5)
    assert box["x"] == pytest.approx(drawn_box["x"] + drawn_box["width"] * col / 600, abs=1.5)
    assert box["width"] == pytest.approx(max(5, drawn_box["width"] * 3 / 600), abs=1.5)
    command = page.get_by_test_id("command").inner_text()
    assert command == f"convlens explain photo.png --kernel sobel-h --at {row},{col}"
    page.get_by_test_id("copy-command").click()
    page.wait_for_function("document.querySelector('[data-testid=copy-command]')"
                           ".textContent === 'copied'")
    assert page.evaluate("navigator.clipboard.readText()") == command
    result = cli(*shlex.split(command)[1:], "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["conv"] == pytest.approx(explained_value(page, "conv-value"),
                                                           abs=1e-6)
    assert not page.errors
    page.context.close()


def test_a_photo_over_the_working_budget_is_shrunk_to_fit_and_says_why(browser, server):
    from convlens.serve.limits import budget_text

    page = open_page(browser, server)
    ramp = (np.add.outer(np.arange(2000) // 3, np.arange(3000) // 5) % 256).astype(np.uint8)
    count = renders(page)
    page.set_input_files("#file", files=[{"name": "huge.png", "mimeType": "image/png",
                                          "buffer": png_bytes(ramp)}])     # 3000x2000, 6 Mpx
    wait_renders(page, count + 1)
    page.wait_for_function("document.querySelector('#image-info').textContent"
                           ".startsWith('huge.png: 3000×2000 → 2048×1365 px (width×height)')")
    note = page.get_by_test_id("size-note").inner_text()
    assert note == (f": shrunk to fit the page's working budget of {budget_text()}; pick a "
                    "working size to change it")
    assert page.locator("#max-side").input_value() == "2048"
    hover_fraction(page, row_selector(0, "conv"), 0.5, 0.5)
    _, row, col = explained_at(page, "conv")
    command = page.get_by_test_id("command").inner_text()
    assert command.endswith(f"--at {row},{col} --max-side 2048"), command

    # full size picked from the menu: the photo's own size, and the page says it is over
    count = renders(page)
    page.select_option("#max-side", "full")
    wait_renders(page, count + 1)
    page.wait_for_function("document.querySelector('#image-info').textContent"
                           ".startsWith('huge.png: 3000×2000 px (width×height)')")
    assert f"over the page's working budget of {budget_text()}" in page.get_by_test_id(
        "size-note").inner_text()
    assert page.locator(".krow:nth-child(1) .stage[data-stage=conv] .caption").inner_text(
        ).startswith("conv 2998×1998")
    hover_fraction(page, row_selector(0, "conv"), 0.5, 0.5)
    _, row, col = explained_at(page, "conv")
    assert page.get_by_test_id("command").inner_text().endswith(f"--at {row},{col}")

    # a sample, then the photo again from the menu: each starts at its own working size
    count = renders(page)
    page.select_option("#sample", "sample-chelsea")
    wait_renders(page, count + 1)
    assert page.locator("#max-side").input_value() == "full"
    assert page.get_by_test_id("size-note").count() == 0
    count = renders(page)
    page.select_option("#sample", label="huge.png (yours)")
    wait_renders(page, count + 1)
    page.wait_for_function("document.querySelector('#image-info').textContent"
                           ".startsWith('huge.png: 3000×2000 → 2048×1365 px (width×height)')")
    assert page.locator("#max-side").input_value() == "2048"
    assert not page.errors
    page.context.close()
