"""Plain-text output names no colour (issue 13: `explain --pooled-at` printed "(green above)"
where a pipe or a log shows no colour). The CLI's words are the parts' words, so both the
printed text and every part's text are read; the winner of a max pool is starred instead."""

from __future__ import annotations

import re

import pytest

from convlens.config import LayerConfig
from convlens.explain import explain_pixel, explain_pooled
from convlens.explain.parts import Sentence, WrittenSum
from convlens.images import load_image, sample_path
from convlens.kernels import kernel_bank, parse_kernels

COLOUR_WORDS = re.compile(r"\b(green|red|blue|yellow|orange|colou?red|highlighted|in bold)\b",
                          re.IGNORECASE)


@pytest.mark.parametrize("mode", ["gray", "rgb"])
def test_explain_prints_no_colour_words(cli, mode):
    image = sample_path("coffee")
    result = cli("explain", image, "--mode", mode, "--kernel", "sobel-h", "--at", "20,30",
                 "--pooled-at", "10,15", "--flip")
    assert result.code == 0, result.err
    assert "\x1b[" not in result.out  # captured output is plain text: no colour codes
    assert not COLOUR_WORDS.search(result.out), COLOUR_WORDS.search(result.out)
    # the max pool's winner is marked in a way plain text shows: a star and its caption
    assert re.search(r"\d\*", result.out) and "* the winner" in " ".join(result.out.split())
    assert "won by conv pixel" in result.out


def test_explanation_parts_name_no_colour():
    image = load_image(sample_path("coffee"), mode="gray")[:, :40, :40]
    kernels = kernel_bank(parse_kernels(["sobel-h", "laplacian"]), 1)
    config = LayerConfig()
    texts = []
    for parts in (explain_pixel(image, kernels, config, 0, 5, 6).parts(),
                  explain_pooled(image, kernels, config, 0, 3, 4).parts()):
        for part in parts:
            if isinstance(part, Sentence):
                texts.append(part.text)
            elif isinstance(part, WrittenSum):
                texts.extend(part.lines)
    assert texts and not any(COLOUR_WORDS.search(text) for text in texts), texts
