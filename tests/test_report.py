"""report.html: self-contained, every stage captioned with its sizes and arithmetic."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from convlens.config import LayerConfig
from convlens.images import load_image
from convlens.kernels import parse_kernels
from convlens.layers import compute_stages
from convlens.report import render_report, write_report

SECTIONS = ("input", "normalization", "kernels", "conv", "activation", "pooling")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.ids: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if "id" in attributes:
            self.ids.append(attributes["id"])

    def handle_data(self, data):
        self.text.append(data)


def _parse(text: str) -> _Collector:
    collector = _Collector()
    collector.feed(text)
    return collector


@pytest.fixture(scope="module")
def small_stages():
    rng = np.random.default_rng(0)
    image = load_image(rng.integers(0, 256, (30, 41), dtype=np.uint8))
    config = LayerConfig(padding=1, stride=2, pool=2)
    return compute_stages(image, parse_kernels(["sobel-h", "laplacian"]), config, device="cpu")


@pytest.fixture(scope="module")
def report_text(small_stages) -> str:
    return render_report(small_stages, source="noise.png", command="convlens run noise.png",
                         pixel=(3, 4), descriptions=["horizontal edges", "all edges"])


def _tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), "blue").save(buffer, format="PNG")
    return buffer.getvalue()


def test_report_is_self_contained_with_every_stage(report_text):
    text = report_text
    page = _parse(text)
    assert set(SECTIONS) <= set(page.ids)
    # nothing is fetched: no scripts, stylesheets or frames from elsewhere, no http(s) at all
    assert not re.search(r"https?://", text)
    assert not any(tag in ("script", "link", "iframe", "object", "embed")
                   for tag, _ in page.tags)
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) >= 7  # input, kernels, conv, worked example, activated, pooled, window
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        assert attrs.get("alt")
        png = base64.b64decode(attrs["src"].split(",", 1)[1])
        with Image.open(io.BytesIO(png)) as picture:
            picture.verify()
    for _, attrs in page.tags:
        for name in ("href", "src"):
            if name in attrs:
                assert attrs[name].startswith(("#", "data:")), attrs[name]


def test_report_states_sizes_and_arithmetic(small_stages, report_text):
    words = " ".join(_parse(report_text).text)
    # input 30x41, conv (30 - 3 + 2)/2 + 1 = 15 by 21, pooled 7x10
    assert "1x30x41" in words
    assert "(30 - 3 + 2×1)/2 + 1 = floor(29/2) + 1 = 15" in words
    assert "(41 - 3 + 2×1)/2 + 1 = 20 + 1 = 21" in words
    assert "15x21" in words and "7x10" in words
    assert "divided by 255" in words
    assert "stride" in words and "ReLU" in words and "largest value" in words
    conv = float(small_stages.conv[0, 3, 4])
    assert f"{conv:.6g}" in words  # the worked pixel's value as stages.npz holds it
    assert "conv[0, 3, 4]" in words
    assert "cross-correlation" in words
    assert "horizontal edges" in words and "convlens run noise.png" in words


def test_report_without_pooling_and_with_avg_pooling():
    image = load_image(np.linspace(0, 255, 20 * 24).reshape(20, 24).astype(np.uint8))
    kernels = parse_kernels(["box-3"])
    drawn = {name: _tiny_png() for name in ("input", "filters", "conv", "activated", "pooled")}
    off = compute_stages(image, kernels, LayerConfig(pool=None), device="cpu")
    words = " ".join(_parse(render_report(off, figures=drawn)).text)
    assert "Pooling was off" in words and "18x22 values per kernel" in words
    avg = compute_stages(image, kernels, LayerConfig(pool=2, pool_type="avg"), device="cpu")
    words = " ".join(_parse(render_report(avg, figures=drawn)).text)
    assert "mean of" in words and "9x11" in words


def test_write_report_reuses_figures_in_the_folder(small_stages, tmp_path):
    for name in ("filters", "conv", "activated", "pooled", "winners"):
        (tmp_path / f"{name}.png").write_bytes(_tiny_png())
    path = write_report(small_stages, tmp_path, source="noise.png")
    assert path == tmp_path / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.count(base64.b64encode(_tiny_png()).decode()) == 5
    assert "pooling winners" in text


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_report_fits_a_phone_screen(browser, tmp_path):
    """At 390 px (a phone), nothing makes the page scroll sideways: not the section links,
    the command, or a 9x9 kernel's worked patch (which scrolls inside its own box)."""
    rng = np.random.default_rng(1)
    image = load_image(rng.integers(0, 256, (60, 80), dtype=np.uint8))
    big = "; ".join(" ".join(["1"] * 9) for _ in range(9))
    stages = compute_stages(image, parse_kernels(["sobel-h", big]), LayerConfig(pool=2),
                            device="cpu")
    path = tmp_path / "report.html"
    path.write_text(render_report(stages, source="noise.png", pixel=(20, 30),
                                  command="convlens run noise.png --kernel sobel-h --kernel "
                                  f"'{big}' --explain 20,30 --out a/rather/long/result/folder"),
                    encoding="utf-8")
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page.goto(path.as_uri())
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("table.grid").count() >= 2
    finally:
        page.close()


def test_report_text_names_no_command_line_flag():
    """The library's words name no CLI flag (``--pool none`` was one): the report is made by
    the library, whichever surface asked for it."""
    image = load_image(np.linspace(0, 255, 20 * 24).reshape(20, 24).astype(np.uint8))
    drawn = {name: _tiny_png() for name in ("input", "filters", "conv", "activated", "pooled")}
    for config in (LayerConfig(pool=None), LayerConfig(pool=2)):
        stages = compute_stages(image, parse_kernels(["box-3", "sobel-h"]), config)
        words = " ".join(_parse(render_report(stages, figures=drawn)).text)
        assert not re.search(r"(^|\s)--[a-z]", words), re.findall(r"--[a-z-]+", words)


def test_the_worked_pixel_is_the_strongest_inner_response():
    """The pixel worked out by hand: the largest |activated| of the first kernel away from a
    border of up to 8 cells (the first such in row-major order), found in blocks of rows, as
    an argmax over the whole inner map finds it."""
    from convlens.report import _ROWS_AT_A_TIME, _interesting_pixel

    rng = np.random.default_rng(7)
    image = load_image(rng.integers(0, 256, (_ROWS_AT_A_TIME * 2 + 40, 50), dtype=np.uint8))
    stages = compute_stages(image, parse_kernels(["laplacian", "sobel-v"]), LayerConfig())
    activated = np.abs(stages.arrays.activated[0])
    height, width = activated.shape
    inner = np.full_like(activated, -1.0)
    inner[8:height - 8, 8:width - 8] = activated[8:height - 8, 8:width - 8]
    expected = divmod(int(np.argmax(inner)), width)
    assert _interesting_pixel(stages) == expected
    # ties: the first in row-major order, even across blocks
    stages.arrays.activated[0][:] = 0.0
    stages.arrays.activated[0][height - 9, 9] = 5.0
    stages.arrays.activated[0][10, 20] = 5.0
    assert _interesting_pixel(stages) == (10, 20)
