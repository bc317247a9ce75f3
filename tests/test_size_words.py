"""Every size a learner reads says its order (issue 13: the page wrote "600×400 px"
(width×height) next to "gray 400×600" (height×width)). Pixel sizes of a photo are width x height
px, as the page writes them; shapes are in array order, channels x height x width (a map: height x
width), and each place that writes one says so."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from convlens.config import LayerConfig
from convlens.errors import ImageError
from convlens.explain import explain_pixel, explain_pooled
from convlens.explain.parts import find
from convlens.images import load_image, sample_path
from convlens.kernels import kernel_bank, parse_kernels


def test_explanations_label_their_sizes():
    image = load_image(sample_path("chelsea"), mode="gray")[:, :20, :30]
    weights = kernel_bank(parse_kernels(["sobel-h"]), 1)
    pixel = find(explain_pixel(image, weights, LayerConfig(), 0, 3, 4).parts(), "where").text
    assert "in the 18x28 conv map of the 1x20x30 input" in pixel
    assert pixel.endswith("; sizes are height x width, channels first.")
    pooled = find(explain_pooled(image, weights, LayerConfig(), 0, 3, 4).parts(), "where").text
    assert "in the 9x14 pooled map (height x width):" in pooled


def test_printed_sizes_say_their_order(cli, chelsea, tmp_path):
    explained = cli("explain", chelsea, "--kernel", "sobel-h", "--at", "3,4")
    assert explained.code == 0, explained.err
    assert "chelsea.png (1x300x451, channels x height x width) through" in explained.out
    ran = cli("run", chelsea, "--out", "r")
    assert ran.code == 0, ran.err
    assert "shape: channels x height x width" in ran.out and "1x300x451" in ran.out
    report = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    for words in ("1x300x451 in, 3x149x224 out (channels x height x width)",
                  "shape 1x300x451 (channels x height x width)",
                  "3 maps of 298x449 (height x width)", "298x449 (height x width) becomes 149x224",
                  "still 298x449 (height x width) per kernel"):
        assert words in " ".join(report.split()), words
    size = cli("size", "--input", "5", "--layers", "conv3")
    assert "5x5 input -> 3x3 output; one output pixel sees 3x3 input pixels (height x width)" \
        in " ".join(size.out.split())


def test_a_photo_too_large_is_written_width_by_height(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((20, 60), np.uint8)).save(path)
    with pytest.raises(ImageError, match=re.escape("is 60x20 px (width x height) = 0 Mpx")):
        load_image(path, max_pixels=100)


def test_a_batch_summary_says_its_shape_order(cli, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((20, 30), np.uint8)).save(folder / name)
    result = cli("run", folder, "--out", "out", "--no-report")
    assert result.code == 0, result.err
    assert "3x9x14" in result.out and "pooled shape: channels x height x width" in result.out
