"""`convlens explain`, `size`, `animate` and `run --winners/--explain/report.html`, in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from convlens.runs import load_stages

PATCH = "88 126 145; 86 125 142; 85 124 141"
KERNEL = "1 0 1; 1 1 0; 0 0 0"


def _photo(path: Path, seed: int = 0, size: tuple[int, int] = (33, 41)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def _green_pixels(path: Path) -> int:
    """Pixels of a PNG in the winners' green (#00c853), give or take antialiasing."""
    with Image.open(path) as picture:
        rgb = np.asarray(picture.convert("RGB"), dtype=np.int16)
    return int((np.abs(rgb - np.array([0, 200, 83])).max(axis=2) < 40).sum())


def _no_traceback(result) -> None:
    assert "Traceback" not in result.err and "Traceback" not in result.out


# --------------------------------------------------------------------------- explain


def test_tutorial_patch_prints_the_sum_written_out_and_444(cli):
    result = cli("explain", "--patch", PATCH, "--kernel", KERNEL)
    assert result.code == 0, result.err
    assert "(88×1 + 126×0 + 145×1) + (86×1 + 125×1 + 142×0) + (85×0 + 124×0 + 141×0)" in result.out
    assert "= 233 + 211 + 0" in result.out
    assert "= 444" in result.out
    assert "444 / 255 = 1.74118" in result.out
    assert "cross-correlation" in result.out


def test_tutorial_patch_as_json(cli):
    result = cli("explain", "--patch", PATCH, "--kernel", KERNEL, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    for key in ("patch", "kernel", "products", "sum", "activated", "pooled_cell"):
        assert key in data
    assert data["sum_raw"] == pytest.approx(444, abs=1e-3)
    assert data["sum"] == pytest.approx(444 / 255, rel=1e-6)
    assert np.allclose(np.array(data["patch"][0]) * 255, np.array(
        [[88, 126, 145], [86, 125, 142], [85, 124, 141]]), atol=1e-3)
    assert data["kernel"] == [[[1, 0, 1], [1, 1, 0], [0, 0, 0]]]
    assert data["pooled_cell"] is None


@pytest.mark.parametrize("flags", [
    ["--padding", "same", "--padding-mode", "reflect", "--stride", "2"],
    ["--padding", "2", "--padding-mode", "circular", "--dilation", "2", "--pool", "3",
     "--pool-stride", "2"],
    ["--padding", "1", "--padding-mode", "replicate", "--mode", "rgb", "--activation", "tanh"],
])
def test_explain_equals_stages_npz_at_random_pixels(cli, tmp_path, flags):
    image = _photo(tmp_path / "noise.png", seed=len(flags))
    kernels = ["--kernels", "sobel-h,laplacian"]
    run = cli("run", image, *kernels, *flags, "--out", "out", "--no-report")
    assert run.code == 0, run.err
    stages = load_stages(tmp_path / "out" / "stages.npz")
    rng = np.random.default_rng(len(flags))
    _, height, width = stages["conv"].shape
    for _ in range(3):
        row, col = int(rng.integers(0, height)), int(rng.integers(0, width))
        result = cli("explain", image, *kernels, *flags, "--at", f"{row},{col}", "--json")
        assert result.code == 0, result.err
        for k, item in enumerate(json.loads(result.out)):
            assert item["at"] == [row, col]
            assert item["conv"] == pytest.approx(float(stages["conv"][k, row, col]), abs=1e-5)
            assert item["activated"] == pytest.approx(
                float(stages["activated"][k, row, col]), abs=1e-5)
            if item["pooled_cell"] is not None:
                pooled = stages["pooled"][(k, *item["pooled_cell"])]
                assert item["pooled_cells"][0]["value"] == pytest.approx(float(pooled), abs=1e-5)
    pooled_h, pooled_w = stages["pooled"].shape[1:]
    row, col = int(rng.integers(0, pooled_h)), int(rng.integers(0, pooled_w))
    result = cli("explain", image, *kernels, *flags, "--pooled-at", f"{row},{col}", "--json")
    assert result.code == 0, result.err
    for k, item in enumerate(json.loads(result.out)):
        assert item["what"] == "pooled cell"
        assert item["value"] == pytest.approx(float(stages["pooled"][k, row, col]), abs=1e-5)
        winner = item["winner"]
        assert float(stages["activated"][k, winner["row"], winner["col"]]) == pytest.approx(
            item["value"], abs=1e-5)


def test_explain_tables_pooled_cell_and_flip(cli, tmp_path):
    image = _photo(tmp_path / "noise.png")
    result = cli("explain", image, "--kernel", "sobel-h", "--at", "0,3", "--padding", "1",
                 "--flip")
    assert result.code == 0, result.err
    out = result.out
    assert "sobel-h: conv pixel (0, 3)" in out
    assert "covers input rows -1..1 and cols 2..4" in out
    assert "3 of 9 cells lie in the padding" in out
    for title in ("patch, 0-255", "normalized", "kernel", "products, 0-255"):
        assert title in out
    assert "feeds pooled cell (0, 1)" in out
    assert "true convolution: the kernel turned 180 degrees" in out and "kernel 180°" in out
    pooled = cli("explain", image, "--kernel", "laplacian", "--pooled-at", "3,4")
    assert pooled.code == 0, pooled.err
    assert "laplacian: pooled cell (3, 4)" in pooled.out
    assert "window = conv rows 6..7, cols 8..9" in pooled.out
    assert "max of the 4 values" in pooled.out


def test_explain_figure_and_no_overwrite(cli, tmp_path):
    image = _photo(tmp_path / "noise.png")
    args = ("explain", image, "--kernel", "sobel-v", "--at", "5,6", "--pooled-at", "2,3",
            "--figure", "explain.png")
    result = cli(*args)
    assert result.code == 0, result.err
    with Image.open(tmp_path / "explain.png") as figure:
        assert figure.width > 300 and figure.height > 300
    before = (tmp_path / "explain.png").read_bytes()
    again = cli(*args)
    assert again.code == 2 and "--force" in again.err
    assert (tmp_path / "explain.png").read_bytes() == before
    assert cli(*args, "--force").code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "400,10"], r"conv pixel \(400, 10\) is outside the 31x39 conv map: row must be "
                         r"0\.\.30 and col 0\.\.38"),
    (["--at", "5"], "--at must be ROW,COL"),
    (["--pooled-at", "0,19"], r"outside the 15x19 pooled map: row must be 0\.\.14 and col "
                              r"0\.\.18"),
    (["--pooled-at", "1,1", "--pool", "none"], "no pool stage"),
    (["--figure", "out.gif"], "--figure must end in"),
])
def test_explain_bad_input_is_one_clear_line(cli, tmp_path, args, message):
    image = _photo(tmp_path / "noise.png")
    result = cli("explain", image, "--kernel", "sobel-h", *args)
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1
    assert re.search(message, result.err), result.err
    _no_traceback(result)


@pytest.mark.parametrize(("args", "message"), [
    (["--stride", "2"], "--stride do not apply"),
    (["--at", "1,1"], "--at do not apply"),
    (["--kernel", "laplacian-8", "--patch", "1 2; 3 4"], "the patch is 2x2 but the kernel is 3x3"),
    (["--patch", "300 0 0; 0 0 0; 0 0 0"], "raw pixel values 0-255"),
    (["--patch", "1 2 3; 4 5"], "ragged"),
])
def test_patch_mode_errors(cli, args, message):
    base = ["explain", "--patch", PATCH, "--kernel", KERNEL]
    if "--patch" in args:
        base = ["explain", "--kernel", KERNEL]
    result = cli(*base, *args)
    assert result.code == 2, result.out
    assert message in result.err
    _no_traceback(result)


# --------------------------------------------------------------------------- golden outputs

# the golden fixture (tests/conftest.py) compares with tests/golden/<name>


@pytest.mark.parametrize(("name", "args"), [
    ("explain-patch.txt", ["--patch", PATCH, "--kernel", KERNEL]),
    ("explain-pixel-flip.txt", ["noise.png", "--kernel", "sobel-h", "--at", "0,3", "--padding",
                                "1", "--flip"]),
    ("explain-rgb.txt", ["noise.png", "--kernel", "laplacian", "--at", "4,5", "--mode", "rgb",
                         "--stride", "2", "--dilation", "2", "--activation", "tanh"]),
    ("explain-pooled-max.txt", ["noise.png", "--kernel", "sobel-v", "--pooled-at", "3,4",
                                "--pool", "3", "--pool-stride", "2"]),
    ("explain-pooled-avg.txt", ["noise.png", "--kernel", "laplacian", "--pooled-at", "2,2",
                                "--pool-type", "avg"]),
])
def test_printed_explanations_match_the_golden_files(cli, tmp_path, golden, name, args):
    _photo(tmp_path / "noise.png")
    result = cli("explain", *args)
    assert result.code == 0, result.err
    golden(name, result.out)


@pytest.mark.parametrize(("name", "width", "args"), [
    ("size-chain.txt", 160, ["--input", "224", "--layers",
                             "conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"]),
    ("size-chain-narrow.txt", 80, ["--input", "300x451", "--layers", "conv3x5 s2, pool2 s2 p1 "
                                   "ceil, conv4 same"]),
])
def test_printed_size_tables_match_the_golden_files(cli, golden, monkeypatch, name, width, args):
    from convlens.cli._app import console

    monkeypatch.setattr(console, "width", width)
    result = cli("size", *args)
    assert result.code == 0, result.err
    golden(name, result.out)


def test_the_text_and_the_json_say_the_same_words(cli, tmp_path):
    """The printed explanation styles the parts its JSON carries: every sentence, note and
    written sum of the JSON is in the text (rich wraps lines, so spaces are compared loosely)."""
    _photo(tmp_path / "noise.png")
    args = ("explain", "noise.png", "--kernel", "sobel-h", "--at", "0,3", "--pooled-at", "1,1",
            "--padding", "1", "--flip")
    text = " ".join(cli(*args).out.split())
    items = json.loads(cli(*args, "--json").out)
    assert [item["what"] for item in items] == ["conv pixel", "pooled cell"]
    said = 0
    for item in items:
        for part in item["parts"]:
            if part["kind"] in ("heading", "sentence", "note"):
                assert " ".join(part["text"].split()) in text
                said += 1
            elif part["kind"] == "sum":
                for line in part["lines"]:
                    assert line in text
    assert said >= 10


# --------------------------------------------------------------------------- size


def test_size_of_the_tutorial(cli):
    result = cli("size", "--input", "5", "--kernel", "3", "--padding", "0", "--stride", "1")
    assert result.code == 0, result.err
    assert "(5 - 3 + 2×0)/1 + 1 = 3" in result.out
    assert "output 3x3" in result.out


def test_size_chain_shapes_match_pytorch(cli):
    text = "conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"
    result = cli("size", "--input", "224", "--layers", text, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2),
                        nn.Conv2d(1, 1, 3, stride=2, padding=1, dilation=2),
                        nn.MaxPool2d(3, 2, ceil_mode=True))
    assert data["output"] == list(net(torch.zeros(1, 1, 224, 224)).shape[-2:])
    assert data["receptive_field"] == [20, 20]
    table = cli("size", "--input", "224", "--layers", text)
    assert "warning: layer 3 (conv3 s2 p1 d2)" in table.out
    assert "floor(109/2)" in table.out
    assert "20x20 region of the input" in table.out


def test_size_and_explain_fit_an_80_column_terminal(cli, monkeypatch):
    from convlens.cli._app import console

    monkeypatch.setattr(console, "width", 80)
    text = "conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"
    sizes = cli("size", "--input", "224", "--layers", text)
    explained = cli("explain", "--kernel", "laplacian", "--at", "120,45")
    for result in (sizes, explained):
        assert result.code == 0, result.err
    sum_lines = [line for line in explained.out.splitlines() if line.startswith("  (")]
    # every line fits but the written-out sum, which stays one line to copy
    assert all(len(line.rstrip()) <= 80 for line in
               sizes.out.splitlines() + explained.out.splitlines() if line not in sum_lines)
    # each formula whole on one line, worked by hand: (112 - 5 + 2*1)/2 + 1 = floor(109/2) + 1
    assert "3 H=W  (112 - 5 + 2×1)/2 + 1 = floor(109/2) + 1 = 55" in sizes.out
    assert "(224 - 2 + 2×0)/2 + 1 = 111 + 1 = 112" in sizes.out


def test_size_errors(cli):
    result = cli("size", "--input", "5", "--layers", "conv3, conv5")
    assert result.code == 2 and "layer 2 (conv5): no output" in result.err
    assert cli("size", "--input", "5").code == 2
    both = cli("size", "--input", "5", "--kernel", "3", "--layers", "conv3")
    assert both.code == 2 and "not both" in both.err
    bad = cli("size", "--input", "5", "--layers", "conv3 q2")
    assert bad.code == 2 and "unknown option 'q2'" in bad.err
    _no_traceback(bad)


# --------------------------------------------------------------------------- animate


def test_animate_values_makes_a_gif(cli, tmp_path):
    result = cli("animate", "--values", "1 2 3 0; 0 1 2 3; 3 0 1 2; 2 3 0 1", "--kernel",
                 "2 0 1; 0 1 2; 1 0 2", "--padding", "1", "--frames", "6", "--fps", "5",
                 "--out", "slide.gif")
    assert result.code == 0, result.err
    with Image.open(tmp_path / "slide.gif") as gif:
        assert gif.n_frames == 6  # 5 of the 16 cells step by step, then the finished output
        assert gif.info["duration"] == 200
    assert "first 5 of 16 cells" in result.out
    again = cli("animate", "--values", "1 2; 3 4", "--kernel", "1", "--out", "slide.gif")
    assert again.code == 2 and "--force" in again.err


def test_animate_image_crop_and_limits(cli, tmp_path):
    image = _photo(tmp_path / "noise.png")
    result = cli("animate", image, "--at", "3,4", "--crop", "5", "--stride", "2", "--out",
                 "crop.gif")
    assert result.code == 0, result.err
    with Image.open(tmp_path / "crop.gif") as gif:
        assert gif.n_frames == 5  # a 2x2 output, then the finished frame
    too_big = cli("animate", image, "--crop", "25", "--out", "big.gif")
    assert too_big.code == 2 and "at most 20" in too_big.err
    outside = cli("animate", image, "--at", "40,0", "--crop", "5", "--out", "x.gif")
    assert outside.code == 2 and "does not fit" in outside.err
    frames = cli("animate", "--values", "1 2 3; 4 5 6; 7 8 9", "--kernel", "1 1; 1 1",
                 "--frames", "1000", "--out", "f.gif")
    assert frames.code == 2 and "frames must be 2..400" in frames.err
    assert not (tmp_path / "big.gif").exists() and not (tmp_path / "f.gif").exists()


# --------------------------------------------------------------------------- run additions


def test_run_winners_explain_and_report(cli, tmp_path):
    image = _photo(tmp_path / "noise.png", size=(30, 36))
    result = cli("run", image, "--kernel", "laplacian", "--padding", "1",
                 "--winners", "--explain", "7,9", "--out", "out")
    assert result.code == 0, result.err
    out = tmp_path / "out"
    # the pictures show what they claim: winners.png boxes each window's winner in green,
    # explain.png draws the pixel and, below it, its pooled cell with the winner boxed
    assert _green_pixels(out / "winners.png") > 100
    with Image.open(out / "explain.png") as figure:
        assert figure.height > figure.width / 2  # two explanations stacked
    assert _green_pixels(out / "explain.png") > 20
    stages = load_stages(out / "stages.npz")
    data = json.loads((out / "explain.json").read_text())
    pixels = [item for item in data["explanations"] if item["what"] == "conv pixel"]
    cells = [item for item in data["explanations"] if item["what"] == "pooled cell"]
    assert len(pixels) == 1 and len(cells) == 1
    for k, item in enumerate(pixels):
        assert item["conv"] == pytest.approx(float(stages["conv"][k, 7, 9]), abs=1e-5)
        assert item["pooled_cell"] == [3, 4]
    for k, item in enumerate(cells):
        assert item["value"] == pytest.approx(float(stages["pooled"][k, 3, 4]), abs=1e-5)
    files = json.loads((out / "run.json").read_text())["files"]
    assert {"winners.png", "explain.json", "explain.png", "report.html"} <= set(files)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "conv[0, 7, 9]" in report  # the --explain pixel is the report's worked example
    assert "pooling winners" in report


def test_run_works_its_explained_pixel_out_once(tmp_path, monkeypatch):
    """run --explain works each kernel's pixel out once: the check before writing, explain.json
    and the report's worked example all use those explanations."""
    import convlens.report
    import convlens.runs
    from convlens.config import LayerConfig
    from convlens.explain import explain_pixel, explain_pooled
    from convlens.kernels import parse_kernels

    calls = []

    def counted(function):
        def wrapper(*args, **kwargs):
            calls.append(function.__name__)
            return function(*args, **kwargs)
        return wrapper

    for module in (convlens.runs, convlens.report):
        monkeypatch.setattr(module, "explain_pixel", counted(explain_pixel))
        monkeypatch.setattr(module, "explain_pooled", counted(explain_pooled))
    image = _photo(tmp_path / "noise.png", size=(20, 24))
    convlens.runs.run_image(image, parse_kernels(["sobel-h", "laplacian"]), LayerConfig(),
                            tmp_path / "out", explain_at=(4, 6))
    assert sorted(calls) == ["explain_pixel"] * 2 + ["explain_pooled"] * 2  # one per kernel
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "conv[0, 4, 6] in stages.npz" in report


def test_run_checks_teaching_options_before_writing(cli, tmp_path):
    image = _photo(tmp_path / "noise.png")
    bad_pixel = cli("run", image, "--explain", "99,0", "--out", "a")
    assert bad_pixel.code == 2 and "row must be 0..30" in bad_pixel.err
    assert not (tmp_path / "a").exists()
    avg = cli("run", image, "--winners", "--pool-type", "avg", "--out", "b")
    assert avg.code == 2 and "--winners needs max pooling" in avg.err
    assert not (tmp_path / "b").exists()
    plain = cli("run", image, "--no-report", "--out", "c")
    assert plain.code == 0, plain.err
    assert not (tmp_path / "c" / "report.html").exists()
