"""The notebook explorer: built in code, driven like a user would, checked against SciPy and
the library's own explanation of each number."""

from __future__ import annotations

import datetime
import io
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

pytest.importorskip("ipywidgets")

import convlens
from convlens.config import LayerConfig
from convlens.explain import explain_pixel, explain_pooled
from convlens.kernels import get_kernel, parse_kernel
from convlens.widgets import Explorer, explore, plot_probe

RNG = np.random.default_rng(11)
PICTURE = RNG.integers(0, 256, size=(36, 44), dtype=np.uint8)
"""A small gray test image (H=36, W=44): every redraw takes a fraction of a second."""


def _valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Cross-correlation with no padding of an odd-sized kernel, by SciPy (the oracle)."""
    kh, kw = kernel.shape
    assert kh % 2 == 1 and kw % 2 == 1
    full = ndimage.correlate(image.astype(np.float64), kernel.astype(np.float64),
                             mode="constant")
    return full[kh // 2: image.shape[0] - kh // 2, kw // 2: image.shape[1] - kw // 2]


def _max_pool(maps: np.ndarray, size: int, stride: int) -> np.ndarray:
    rows = (maps.shape[0] - size) // stride + 1
    cols = (maps.shape[1] - size) // stride + 1
    return np.array([[maps[r * stride: r * stride + size, c * stride: c * stride + size].max()
                      for c in range(cols)] for r in range(rows)])


def _png_ok(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.size


@pytest.fixture
def explorer() -> Explorer:
    return explore(PICTURE, max_side=None, device="cpu")


def _image() -> np.ndarray:
    return PICTURE.astype(np.float64) / 255


def test_importing_convlens_does_not_need_ipywidgets():
    code = textwrap.dedent("""
        import sys
        sys.modules["ipywidgets"] = None          # as if it were not installed
        import convlens, convlens.cli, convlens.display
        assert "ipywidgets" not in [m for m in sys.modules if sys.modules[m] is not None]
        try:
            import convlens.widgets
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("convlens.widgets imported without ipywidgets")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'convlens[widgets]'" in done.stdout


def test_defaults_show_the_tutorial_layer_on_the_sample():
    explorer = explore(max_side=64, device="cpu")
    stages = explorer.stages
    assert stages.kernel_names == ["sobel-h", "laplacian", "sobel-v"]
    image = convlens.load_image(convlens.sample_path("chelsea"), max_side=64)
    np.testing.assert_array_equal(stages.input.numpy(), image.numpy())
    gray = image[0].double().numpy()
    for index, name in enumerate(stages.kernel_names):
        conv = _valid(gray, get_kernel(name).as_2d())
        np.testing.assert_allclose(stages.conv[index].numpy(), conv, atol=1e-5)
        np.testing.assert_allclose(stages.pooled[index].numpy(),
                                   _max_pool(np.maximum(conv, 0), 2, 2), atol=1e-5)
    assert _png_ok(explorer.maps.value)[0] > 400
    ET.fromstring(explorer.status.value)
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()


def test_editing_a_kernel_cell_updates_the_stages_live(explorer):
    before_png = explorer.maps.value
    before = explorer.stages.conv.clone()
    editor = explorer.editors[0]
    editor.cells[0][1][1].value = 8.0
    edited = np.array([[-1, -2, -1], [0, 8, 0], [1, 2, 1]], dtype=np.float64)
    np.testing.assert_array_equal(editor.weights[0], edited)
    assert not torch.equal(explorer.stages.conv[0], before[0])
    np.testing.assert_allclose(explorer.stages.conv[0].numpy(), _valid(_image(), edited),
                               atol=1e-5)
    torch.testing.assert_close(explorer.stages.conv[1:], before[1:])
    reference = convlens.compute_stages(
        convlens.load_image(PICTURE), [parse_kernel(edited), *explorer.kernels[1:]],
        LayerConfig(), backend="torch")
    torch.testing.assert_close(explorer.stages.pooled, reference.pooled)
    assert explorer.maps.value != before_png
    assert editor.preset.value == "(custom)" and editor.name == "sobel-h (edited)"
    assert explorer.stages.kernel_names[0] == "sobel-h (edited)"


def test_presets_typed_rows_and_size_replace_the_grid(explorer):
    editor = explorer.editors[1]
    editor.preset.value = "gaussian-5"
    assert (editor.rows.value, editor.cols.value) == (5, 5)
    assert len(editor.cells[0]) == 5 and len(editor.cells[0][0]) == 5
    np.testing.assert_array_equal(editor.weights, get_kernel("gaussian-5").weights)
    assert explorer.error == "" and explorer.stages.kernels.shape == (3, 1, 5, 5)
    np.testing.assert_allclose(explorer.stages.conv[1].numpy(),
                               _valid(_image(), get_kernel("gaussian-5").as_2d()), atol=1e-5)
    centred = np.pad(get_kernel("sobel-h").as_2d(), 1)  # a 3x3 kernel in a 5x5 layer
    np.testing.assert_allclose(explorer.stages.conv[0].numpy(), _valid(_image(), centred),
                               atol=1e-5)

    editor.text.value = "0 1 0; 1 -4 1; 0 1 0"
    assert editor.cells[0][1][1].value == -4 and explorer.stages.conv.shape == (3, 34, 42)
    np.testing.assert_allclose(explorer.stages.conv[1].numpy(),
                               _valid(_image(), -get_kernel("laplacian").as_2d()), atol=1e-5)

    editor.rows.value = 4
    assert explorer.error.startswith("kernel 'sobel-h' is 3x3 and cannot be centred")
    editor.rows.value = 5
    editor.cols.value = 5
    grown = np.pad(-get_kernel("laplacian").as_2d(), 1)
    np.testing.assert_array_equal(editor.weights[0], grown)
    assert explorer.error == ""
    np.testing.assert_allclose(explorer.stages.conv[1].numpy(), _valid(_image(), grown),
                               atol=1e-5)


def test_layer_controls_set_every_setting(explorer):
    with explorer.batch():
        explorer.stride.value = 2
        explorer.padding.value = "same"
        explorer.padding_mode.value = "reflect"
        explorer.dilation.value = 2
        explorer.activation.value = "abs"
        explorer.pool.value = 3
        explorer.pool_type.value = "avg"
        explorer.pool_stride.value = 2
    assert explorer.config == LayerConfig(stride=2, padding="same", padding_mode="reflect",
                                          dilation=2, activation="abs", pool=3,
                                          pool_type="avg", pool_stride=2)
    dilated = np.zeros((5, 5))
    dilated[::2, ::2] = get_kernel("sobel-v").as_2d()
    # 'same' with a dilated 3x3 kernel pads 2 cells a side: SciPy's 'mirror' is reflect padding
    conv = ndimage.correlate(_image(), dilated, mode="mirror")[::2, ::2]
    np.testing.assert_allclose(explorer.stages.conv[2].numpy(), conv, atol=1e-5)
    activated = np.abs(conv)
    pooled = np.array([[activated[r: r + 3, c: c + 3].mean()
                        for c in range(0, activated.shape[1] - 2, 2)]
                       for r in range(0, activated.shape[0] - 2, 2)])
    np.testing.assert_allclose(explorer.stages.pooled[2].numpy(), pooled, atol=1e-5)


def test_probe_readout_equals_the_library_and_a_hand_sum(explorer):
    explorer.probe(7, 9, kernel=1)
    explanation = explorer.explanation
    reference = explain_pixel(explorer.stages.input, explorer.stages.kernels,
                              explorer.stages.config, 1, 7, 9)
    by_hand = float((_image()[7:10, 9:12] * get_kernel("laplacian").as_2d()).sum())
    assert explanation.value == pytest.approx(reference.value, abs=1e-12)
    assert explanation.value == pytest.approx(by_hand, abs=1e-6)
    assert explanation.value == pytest.approx(float(explorer.stages.conv[1, 7, 9]), abs=1e-5)
    text = "".join(ET.fromstring(explorer.readout.value).itertext())
    assert " = ".join(reference.sum_lines()) in text
    assert f"conv value = {reference.value:.6g}" in text
    assert _png_ok(explorer.locator.value)[0] > 200

    explorer.probe(3, 4, kernel=2, stage="pooled")
    pooled = explorer.explanation
    reference = explain_pooled(explorer.stages.input, explorer.stages.kernels,
                               explorer.stages.config, 2, 3, 4)
    assert pooled.value == pytest.approx(reference.value, abs=1e-12)
    assert pooled.value == pytest.approx(float(explorer.stages.pooled[2, 3, 4]), abs=1e-5)
    assert pooled.winner == reference.winner
    text = "".join(ET.fromstring(explorer.readout.value).itertext())
    assert f"max = {reference.value:.6g}, won by conv pixel {reference.winner}" in text


def test_probe_follows_edits_and_map_sizes(explorer):
    explorer.probe(30, 40, kernel=0)
    assert (explorer.probe_row.max, explorer.probe_col.max) == (33, 41)
    explorer.editors[0].cells[0][0][0].value = 5.0
    assert explorer.explanation.weights[0, 0, 0] == 5.0
    assert explorer.explanation.value == pytest.approx(float(explorer.stages.conv[0, 30, 40]),
                                                       abs=1e-5)
    explorer.stride.value = 3
    assert explorer.probe_row.max == explorer.stages.conv.shape[1] - 1 == 11
    assert (explorer.explanation.row, explorer.explanation.col) == (11, 13)
    explorer.probe_stage.value = "pooled"
    assert explorer.probe_row.max == explorer.stages.pooled.shape[1] - 1
    explorer.pool.value = None
    assert explorer.probe_stage.value == "conv" and explorer.probe_stage.disabled
    explorer.strongest.click()
    conv = explorer.stages.conv[0].abs()
    assert abs(explorer.explanation.value) == pytest.approx(float(conv.max()), abs=1e-6)


def test_kernels_can_be_added_and_removed(explorer):
    explorer.add_kernel("emboss")
    assert explorer.stages.kernel_names[-1] == "emboss"
    assert [label for label, _ in explorer.probe_kernel.options][-1] == "emboss"
    explorer.editors[-1].remove.click()
    for _ in range(2):
        explorer.remove_kernel(0)
    assert explorer.stages.kernel_names == ["sobel-v"]
    explorer.remove_kernel(0)
    assert explorer.error == "a layer needs at least one kernel"
    assert len(explorer.editors) == 1


def test_bad_settings_show_one_line_and_keep_the_last_maps(explorer):
    stages, png = explorer.stages, explorer.maps.value
    explorer.editors[0].text.value = "1 2; 3"
    assert explorer.error == "kernel text '1 2; 3' is ragged: rows have 2, 1 numbers"
    assert explorer.stages is stages and explorer.maps.value == png
    status = ET.fromstring(explorer.status.value)
    assert status.get("class") == "convlens-error" and "ragged" in status.text
    explorer.pool.value = 6
    explorer.stride.value = 8
    assert "pool window 6x6 is larger than the 5x6 conv map" in explorer.error
    explorer.pool.value = 2
    assert explorer.error == "" and explorer.stages.pooled.shape[1:] == (2, 3)


def test_bad_starting_input_raises_the_library_error(tmp_path):
    with pytest.raises(convlens.ImageError, match="no such file"):
        explore(tmp_path / "missing.png")
    with pytest.raises(convlens.KernelError, match="unknown kernel 'sobel'"):
        explore(PICTURE, ["sobel"])
    with pytest.raises(convlens.ConfigError, match="no output"):
        explore(PICTURE[:2, :2], ["sobel-h"], LayerConfig(pool=None))


def test_upload_goes_through_the_library_loader(explorer):
    buffer = io.BytesIO()
    picture = RNG.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    Image.fromarray(picture).save(buffer, format="PNG")
    explorer.upload.value = (_upload("mine.png", buffer.getvalue()),)
    assert explorer.sample.value == "__uploaded__"
    np.testing.assert_array_equal(explorer.stages.input.numpy(),
                                  convlens.load_image(picture).numpy())
    explorer.mode.value = "rgb"
    assert explorer.stages.input.shape == (3, 20, 30)
    gray_kernel = get_kernel("sobel-h").as_2d()
    mean = picture.astype(np.float64).mean(axis=2) / 255
    np.testing.assert_allclose(explorer.stages.conv[0].numpy(), _valid(mean, gray_kernel),
                               atol=1e-5)
    stages = explorer.stages
    explorer.upload.value = (_upload("broken.png", b"\x89PNG\r\n\x1a\n not really"),)
    assert "broken.png" in explorer.error and explorer.stages is stages
    explorer.sample.value = "coffee"
    assert explorer.error == "" and explorer.stages.input.shape == (3, 400, 600)


def test_probe_figure_outlines_the_receptive_field(explorer):
    explorer.padding.value = 1
    explorer.probe(0, 5, kernel=0)
    figure = plot_probe(explorer.stages, explorer.explanation)
    box = figure.axes[0].patches[0]
    assert (box.get_x(), box.get_y()) == (4 - 0.5, -1 - 0.5)
    assert (box.get_width(), box.get_height()) == (3, 3)
    marker = figure.axes[1].patches[0]
    assert (marker.get_x(), marker.get_y(), marker.get_width()) == (4.5, -0.5, 1)


def _upload(name: str, content: bytes) -> dict:
    return {"name": name, "type": "image/png", "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime.now(tz=datetime.timezone.utc)}


# ---------------------------------------------------------------- pointing at the drawn maps

def _centre_on_png(explorer: Explorer, kernel: int, column: int, row: float, col: float
                   ) -> tuple[float, float]:
    """Where drawn pixel (row, col) of one overview panel lands in the maps PNG (x right,
    y down), by matplotlib's own data transform of an independently drawn copy."""
    figure = convlens.plot.plot_overview(explorer.stages, 320)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    assert buffer.getvalue() == explorer.maps.value  # the same picture the explorer shows
    png_h = _png_ok(buffer.getvalue())[1]
    ax = figure.axes[kernel * 5 + column]
    left, right, bottom, top = ax.images[0].get_extent()  # the map's place in its panel
    drawn_h, drawn_w = ax.images[0].get_array().shape[:2]
    x, y = ax.transData.transform((left + (col + 0.5) * (right - left) / drawn_w,
                                   top + (row + 0.5) * (bottom - top) / drawn_h))
    scale = 80 / figure.dpi  # display pixels are at the figure's own dpi, the PNG's at 80
    return float(x) * scale, png_h - float(y) * scale


def _event(explorer: Explorer, x: float, y: float, kind: str = "click",
           scale: float = 0.75) -> dict:
    """An ipyevents mouse message for PNG point (x, y) with the image shown at ``scale``."""
    png_w, png_h = _png_ok(explorer.maps.value)
    return {"type": kind, "relativeX": round(x * scale, 3), "relativeY": round(y * scale, 3),
            "boundingRectWidth": png_w * scale, "boundingRectHeight": png_h * scale,
            "altKey": False, "ctrlKey": False, "metaKey": False, "shiftKey": False}


def test_a_tight_savefig_setting_does_not_shift_the_pointer(explorer):
    pytest.importorskip("ipyevents")
    with matplotlib.rc_context({"savefig.bbox": "tight"}):  # a user's matplotlibrc may say so
        explorer.refresh()
    x, y = _centre_on_png(explorer, kernel=1, column=2, row=10, col=20)
    assert explorer.point_at(_event(explorer, x, y)) == (1, "conv", 10, 20)


def test_clicking_a_conv_map_pixel_probes_it(explorer):
    pytest.importorskip("ipyevents")
    x, y = _centre_on_png(explorer, kernel=2, column=2, row=12, col=17)
    assert explorer.point_at(_event(explorer, x, y)) == (2, "conv", 12, 17)
    assert (explorer.probe_kernel.value, explorer.probe_stage.value) == (2, "conv")
    assert (explorer.probe_row.value, explorer.probe_col.value) == (12, 17)
    explanation = explorer.explanation
    assert (explanation.kernel, explanation.row, explanation.col) == (2, 12, 17)
    by_hand = float((_image()[12:15, 17:20] * get_kernel("sobel-v").as_2d()).sum())
    reference = explain_pixel(explorer.stages.input, explorer.stages.kernels,
                              explorer.stages.config, 2, 12, 17)
    assert explanation.value == pytest.approx(by_hand, abs=1e-6)
    assert explanation.value == pytest.approx(reference.value, abs=1e-12)
    text = "".join(ET.fromstring(explorer.readout.value).itertext())
    assert f"conv value = {by_hand:.6g}" in text

    # the activated map has conv coordinates too; a hover through the real ipyevents
    # dispatch (the image's own pixels in dataX/dataY) does what a click does
    x, y = _centre_on_png(explorer, kernel=0, column=3, row=0, col=41)
    click, hover = explorer.map_events
    assert click.watched_events == ["click"] and not click.throttle_or_debounce
    assert hover.watched_events == ["mousemove"] and hover.throttle_or_debounce == "throttle"
    assert hover.wait > 0
    hover._handle_mouse_msg(None, {"type": "mousemove", "dataX": round(x), "dataY": round(y)},
                            None)
    assert (explorer.explanation.kernel, explorer.explanation.row,
            explorer.explanation.col) == (0, 0, 41)
    by_hand = float((_image()[0:3, 41:44] * get_kernel("sobel-h").as_2d()).sum())
    assert explorer.explanation.value == pytest.approx(by_hand, abs=1e-6)


def test_clicking_a_pooled_map_probes_the_pooled_cell(explorer):
    pytest.importorskip("ipyevents")
    x, y = _centre_on_png(explorer, kernel=1, column=4, row=5, col=9)
    assert explorer.point_at(_event(explorer, x, y, scale=1.3)) == (1, "pooled", 5, 9)
    assert explorer.probe_stage.value == "pooled" and explorer.probe_row.max == 16
    conv = _valid(_image(), get_kernel("laplacian").as_2d())
    expected = np.maximum(conv[10:12, 18:20], 0).max()
    assert explorer.explanation.value == pytest.approx(expected, abs=1e-6)

    explorer.pool.value = None  # no pooling: the last column is the activated map again
    x, y = _centre_on_png(explorer, kernel=1, column=4, row=30, col=2)
    assert explorer.point_at(_event(explorer, x, y)) == (1, "conv", 30, 2)
    assert explorer.explanation.value == pytest.approx(conv[30, 2], abs=1e-6)


def test_clicking_a_shrunk_map_picks_a_pixel_it_covers():
    pytest.importorskip("ipyevents")
    wide = RNG.integers(0, 256, size=(12, 700), dtype=np.uint8)  # conv 10x698, drawn at 1/3
    explorer = explore(wide, ["sobel-h"], max_side=None, device="cpu")
    x, y = _centre_on_png(explorer, kernel=0, column=2, row=2, col=100)
    kernel, stage, row, col = explorer.point_at(_event(explorer, x, y))
    assert (kernel, stage) == (0, "conv")
    assert 6 <= row <= 8 and 300 <= col <= 302
    patch = wide[row: row + 3, col: col + 3].astype(np.float64) / 255
    assert explorer.explanation.value == pytest.approx(
        float((patch * get_kernel("sobel-h").as_2d()).sum()), abs=1e-6)


def test_pointing_outside_the_maps_changes_nothing(explorer):
    explorer.probe(4, 6, kernel=1)
    before = explorer.explanation
    png_w, png_h = _png_ok(explorer.maps.value)
    input_x, input_y = _centre_on_png(explorer, kernel=0, column=0, row=5, col=5)
    kernel_x, kernel_y = _centre_on_png(explorer, kernel=1, column=1, row=1, col=1)
    between = _centre_on_png(explorer, kernel=0, column=2, row=16, col=-3)  # left of the map
    for event in (_event(explorer, input_x, input_y), _event(explorer, kernel_x, kernel_y),
                  _event(explorer, *between), _event(explorer, 1, 1),
                  _event(explorer, png_w + 50, png_h / 2), _event(explorer, -5, -5),
                  {"type": "click"}, {"type": "click", "relativeX": 3, "relativeY": 4,
                                      "boundingRectWidth": 0, "boundingRectHeight": 0},
                  {"type": "click", "dataX": None, "relativeX": "x"}):
        assert explorer.point_at(event) is None
    assert explorer.explanation is before and explorer.error == ""
    assert (explorer.probe_row.value, explorer.probe_col.value) == (4, 6)


def test_without_ipyevents_the_sliders_still_probe(monkeypatch):
    monkeypatch.setattr("convlens.widgets.DomEvent", None)
    explorer = explore(PICTURE, max_side=None, device="cpu")
    assert explorer.map_events == []
    helps = [child.value for child in explorer.ui.children
             if isinstance(child, type(explorer.status)) and "Probe" in child.value]
    assert len(helps) == 1 and "pip install ipyevents" in helps[0]
    explorer.probe(7, 9, kernel=1)
    by_hand = float((_image()[7:10, 9:12] * get_kernel("laplacian").as_2d()).sum())
    assert explorer.explanation.value == pytest.approx(by_hand, abs=1e-6)


# --------------------------------------------------------------------------- in a live notebook

LIVE_NOTEBOOK = "from convlens.widgets import explore\nexplorer = explore()\nexplorer"
READOUT = re.compile(r"(conv pixel|pooled cell) \(\d+, \d+\) of")


@pytest.fixture
def live_page(browser, tmp_path):
    """The explorer in a notebook that Voila runs (a real Jupyter kernel, ipywidgets' and
    ipyevents' own front ends), open in Chromium."""
    pytest.importorskip("voila")
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LIVE_NOTEBOOK)])
    nbformat.write(notebook, tmp_path / "explore.ipynb")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(tmp_path / "voila.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "voila", "explore.ipynb", "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "MPLBACKEND": "Agg"})
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert server.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "voila.log").read_text()
            time.sleep(0.2)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/", timeout=90000)
        page.wait_for_function("document.querySelectorAll('img').length >= 2", timeout=90000)
        yield page
    finally:
        context.close()
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_hovering_and_clicking_maps_in_a_live_notebook_explain_them(live_page, artifacts):
    from playwright.sync_api import expect

    page = live_page
    readout = page.locator(".widget-html-content", has_text=READOUT)
    maps = page.locator("img").first
    maps.scroll_into_view_if_needed()
    box = maps.bounding_box()
    # what the explorer shows by default: the sample, gray, full size (as the CLI and the
    # page compute it), the tutorial's layer
    names = ["sobel-h", "laplacian", "sobel-v"]
    reference = convlens.compute_stages(
        convlens.load_image(convlens.images.sample_path("chelsea"), "gray"),
        convlens.parse_kernels(names), LayerConfig(), backend="torch")

    def settled() -> str:
        """The readout once it has stopped changing (the kernel sends each update on its own)."""
        text, deadline = readout.inner_text(), time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.4)
            if (latest := readout.inner_text()) == text:
                return text
            text = latest
        raise AssertionError(f"the readout kept changing: {text[:80]!r}")

    def shown_after(fx: float, fy: float, click: bool = False) -> str:
        before = settled()
        x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
        page.mouse.click(x, y) if click else page.mouse.move(x, y)
        expect(readout).not_to_have_text(before, timeout=20000)
        return settled()

    # hover over the middle of the first kernel's conv map (columns: input, kernel, conv,
    # activated, pooled): the readout works out that pixel, as the library computes it
    text = shown_after(0.5, 0.2)
    row, col, name = re.search(r"conv pixel \((\d+), (\d+)\) of (\S+) in", text).groups()
    k, row, col = names.index(name), int(row), int(col)
    value = float(re.search(r"conv value = (\S+)", text).group(1))
    assert value == pytest.approx(float(reference.conv[k, row, col]), rel=1e-5, abs=1e-6)
    # further right on the same map: a pixel further right
    text = shown_after(0.55, 0.2)
    assert re.search(rf"conv pixel \({row}, (\d+)\) of {name}", text)
    assert int(re.search(r"conv pixel \(\d+, (\d+)\)", text).group(1)) > col

    # a click on a pooled map: that pooled cell, its window and winner
    text = shown_after(0.9, 0.5, click=True)
    row, col, name = re.search(r"pooled cell \((\d+), (\d+)\) of (\S+) in", text).groups()
    k, row, col = names.index(name), int(row), int(col)
    pooled = float(re.search(r"max = (\S+), won by", text).group(1))
    assert pooled == pytest.approx(float(reference.pooled[k, row, col]), rel=1e-5, abs=1e-6)
    readout.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "widgets-live.png"))


# ---------------------------------------------------------------------------- the network view

def test_the_network_view_explains_any_number_as_the_library_does():
    """Pick a layer, channel and cell (in code, as the controls do) or click the map: the
    number shown is explain_activation's, in its words."""
    from convlens.activations import explain_activation
    from convlens.display import activation_explanation_html
    from convlens.images import bundled_model_path
    from convlens.models import open_model
    from convlens.widgets import NetworkExplorer, explore_network

    opened = open_model(bundled_model_path())
    digit = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(5))
    view = explore_network(opened, digit)
    assert isinstance(view, NetworkExplorer) and view.layer.value == "features.conv1"
    assert "classifier.fc" in view.layer.options and view.error == ""
    for layer, channel, y, x in (("features.conv2", 3, 2, 4), ("features.pool1", 7, 1, 3),
                                 ("features.bn3", 0, 3, 0), ("classifier.fc", 4, None, None)):
        view.select(layer, channel, y, x)
        want = explain_activation(opened, digit, layer, channel, y, x)
        assert view.explanation.total == pytest.approx(want.total, rel=1e-12)
        assert view.readout.value == activation_explanation_html(want)
        assert view.row.disabled == (y is None)
        assert Image.open(io.BytesIO(view.map.value)).size[0] >= 150
    view.select("features.conv4", 2, 0, 0)
    assert view.point_at({"dataX": 3 * 48 + 5, "dataY": 1 * 48 + 40}) == (1, 3)  # 48 px a cell
    assert (view.explanation.y, view.explanation.x) == (1, 3)
    assert view.point_at({"dataX": 400, "dataY": 10}) is None
    view.channel.value = 99                        # past the 32 channels: clamped by the box
    assert view.channel.value == 31 and view.explanation.channel == 31
    assert "text/html" in view._repr_mimebundle_() and "network view" in repr(view)


def test_a_clicked_cell_after_a_conv_shows_the_chain_from_that_conv():
    """A click on a batch norm's, a ReLU's or a max pool's cell shows the steps from the conv
    before it in explain_chain's words (``steps``), then the number's own step
    (``readout``); a conv's cell is its own arithmetic alone."""
    from xml.etree import ElementTree

    from convlens.activations import Explainer, explain_chain
    from convlens.display import activation_explanation_html, chain_html
    from convlens.explain.parts import Sentence
    from convlens.images import bundled_model_path
    from convlens.models import open_model
    from convlens.widgets import explore_network

    opened = open_model(bundled_model_path())
    digit = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(5))
    view = explore_network(opened, digit, "features.pool1")
    explainer = Explainer(opened, digit)
    view.channel.value = 7
    assert view.point_at({"dataX": 3 * 48 + 5, "dataY": 1 * 48 + 40}) == (1, 3)  # 48 px a cell
    want = explain_chain(explainer, "features.pool1", 7, 1, 3, top=view.top)
    assert [step.layer for step in view.chain.steps] == [
        "features.conv2", "features.bn2", "features.relu2", "features.pool1"]
    assert view.steps.value == chain_html(want, last=False)
    assert view.readout.value == activation_explanation_html(want.last)
    assert view.steps in view.ui.children and view.readout in view.ui.children
    shown = "".join(ElementTree.fromstring(view.steps.value).itertext()) + "".join(
        ElementTree.fromstring(view.readout.value).itertext())
    for part in want.parts():
        if isinstance(part, Sentence):
            assert "".join(span.text for span in part.spans) in shown
    for mine, theirs in zip(view.chain.steps, want.steps, strict=True):
        assert mine.total == pytest.approx(theirs.total, rel=1e-12)
    assert view._repr_mimebundle_()["text/html"] == chain_html(want)
    view.select("features.bn3", 0, 3, 0)
    assert [step.layer for step in view.chain.steps] == ["features.conv3", "features.bn3"]
    assert "how features.bn3 (0, 3, 0) was made, step by step" in view.steps.value
    view.select("features.conv2", 3, 2, 4)                 # a conv: its own arithmetic
    assert view.steps.value == "" and len(view.chain.steps) == 1
    assert view.readout.value == activation_explanation_html(
        explainer.explain("features.conv2", 3, 2, 4, top=view.top))

def test_the_explorer_computes_at_full_size_and_says_both_sizes_when_shrunk():
    """The explorer's default working size is the one every surface shares (full size), so a
    probed pixel's numbers are the CLI's; a smaller longer side picked is said beside the
    image's own size."""
    from convlens.defaults import DEFAULT_MAX_SIDE

    chelsea = convlens.load_image(convlens.images.sample_path("chelsea"))
    explorer = explore(device="cpu")
    assert DEFAULT_MAX_SIDE is None and explorer.max_side.value is None
    assert tuple(explorer.image.shape) == tuple(chelsea.shape) == (1, 300, 451)
    assert explorer.image_size == (300, 451)
    assert "image 451x300 px, computed at its own size" in explorer.status.value
    explorer.max_side.value = 128
    assert tuple(explorer.image.shape) == (1, 85, 128)
    assert torch.equal(explorer.image, convlens.load_image(convlens.images.sample_path("chelsea"),
                                                           max_side=128))
    assert "image 451x300 px, computed at 128x85 (longer side 128 px)" in explorer.status.value
