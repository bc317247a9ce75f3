"""`run`, `explain`, `inspect`, the library and the page give the same numbers and the same words
for the same input (issue 12's "Done when").

For one image, kernel and pixel, four surfaces explain the same conv pixel and the pooled cell it
feeds: ``convlens run --explain Y,X`` (its explain.json), ``convlens explain --at Y,X --json``,
the library's ``explain_pixel(...).to_dict()`` / ``explain_pooled(...).to_dict()``, and the
page's ``POST /api/explain``. Their JSON must agree key by key: every word exactly (the
``parts``' sentences, headings, tables of words and written sums included), every number up to
float32 rounding. The page adds keys of its own (``kind``, ``text``, ``command``, ``stage``);
everything else it sends is the library's dict; run's report.html words its worked examples
with the same parts. ``convlens inspect`` and the page's model panel are compared the same way
on one model and image: predictions, one layer's channel statistics and one feature-map value.
"""

from __future__ import annotations

import html
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from convlens.config import Activation, LayerConfig, PaddingMode, PoolType
from convlens.explain import explain_pixel, explain_pooled
from convlens.images import load_image, sample_path
from convlens.kernels import get_kernel, kernel_bank
from convlens.serve import create_app, unpack
from convlens.serve.guard import TOKEN_HEADER

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FLOAT32_ULP = 2.0 ** -23
"""float32's relative rounding step: numbers may differ by a few of these, never more."""

PAGE_ONLY = {"kind", "text", "command", "stage"}
"""Keys the page's explain JSON adds to the library's dict (formatted numbers, the command)."""


def differences(a, b, where: str = "") -> list[str]:
    """Where ``a`` and ``b`` (JSON values) differ: words and keys exactly, numbers beyond float32
    rounding (4 ulps relative, or 1e-7 absolute near 0). Empty when they agree."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(set(a) ^ set(b))} in one only"]
        return [d for key in a for d in differences(a[key], b[key], f"{where}.{key}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    numbers = (int, float)
    if (isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool)
            and not isinstance(b, bool)):
        if math.isclose(a, b, rel_tol=4 * FLOAT32_ULP, abs_tol=1e-7):
            return []
        return [f"{where}: {a!r} against {b!r}"]
    return [] if a == b and type(a) is type(b) else [f"{where}: {a!r} against {b!r}"]


def as_json(value):
    """``value`` as the JSON surfaces carry it (tuples become lists): what a surface writes."""
    return json.loads(json.dumps(value))


def assert_same(surfaces: dict[str, object], reference: str) -> None:
    """Every surface's value agrees with ``surfaces[reference]``."""
    wanted = surfaces[reference]
    for name, value in surfaces.items():
        found = differences(wanted, value)
        assert not found, f"{name} disagrees with {reference}:\n" + "\n".join(found[:20])


def words_of(parts: list[dict]) -> list[str]:
    """The sentences, notes and written sums of an explanation's parts (to prove the comparison
    covers words, not only numbers)."""
    said = []
    for part in parts:
        if part["kind"] in ("sentence", "note", "heading"):
            said.append(part["text"])
        elif part["kind"] == "sum":
            said.extend(part["lines"])
    return said


# --------------------------------------------------------------------------- the page

def api_client(app) -> TestClient:
    return TestClient(app, headers={TOKEN_HEADER: app.state.token})


@pytest.fixture(scope="module")
def page():
    with api_client(create_app()) as client:
        yield client


# --------------------------------------------------------------------------- explain

# name: (CLI options, the page's mode / working size / layer, the library's layer, the pixel)
CASES = {
    # the tutorial's defaults: the bundled photo (451x300, not shrunk), three kernels
    "defaults": ([], {"mode": "gray", "max_side": 1024, "layer": {}}, {}, (120, 45)),
    # the photo shrunk to 256 (where issue 12 saw the page and the CLI differ), RGB, and a
    # layer with every setting changed
    "shrunk-rgb": (["--mode", "rgb", "--max-side", "256", "--stride", "2", "--padding", "same",
                    "--padding-mode", "reflect", "--activation", "tanh", "--pool", "3",
                    "--pool-type", "avg"],
                   {"mode": "rgb", "max_side": 256,
                    "layer": {"stride": 2, "padding": "same", "padding_mode": "reflect",
                              "activation": "tanh", "pool": 3, "pool_type": "avg"}},
                   {"stride": 2, "padding": "same", "padding_mode": PaddingMode.REFLECT,
                    "activation": Activation.TANH, "pool": 3, "pool_type": PoolType.AVG},
                   (50, 37)),
    # the corner pixel, its taps partly in the zero padding (marked), dilated, overlapping pools
    "padded-corner": (["--padding", "2", "--dilation", "2", "--pool-stride", "1",
                       "--activation", "leaky-relu"],
                      {"mode": "gray", "max_side": 1024,
                       "layer": {"padding": 2, "dilation": 2, "pool_stride": 1,
                                 "activation": "leaky-relu"}},
                      {"padding": 2, "dilation": 2, "pool_stride": 1,
                       "activation": Activation.LEAKY_RELU},
                      (0, 0)),
}
KERNELS = ("sobel-h", "laplacian", "sobel-v")  # run's and explain's default kernels


def _library(case: str, pixel: tuple[int, int], cell: tuple[int, int]) -> list[dict]:
    _, page_state, layer, _ = CASES[case]
    config = LayerConfig(**layer)
    image = load_image(sample_path("chelsea"), page_state["mode"], page_state["max_side"])
    bank = kernel_bank([get_kernel(name) for name in KERNELS], image.shape[0])
    items = []
    for index, name in enumerate(KERNELS):
        items.append(explain_pixel(image, bank, config, index, *pixel, kernel_name=name,
                                   flip=True).to_dict())
        items.append(explain_pooled(image, bank, config, index, *cell,
                                    kernel_name=name).to_dict())
    return as_json(items)


def _page(client, case: str, pixel: tuple[int, int], cell: tuple[int, int]) -> list[dict]:
    _, page_state, _, _ = CASES[case]
    body = {"image": "sample-chelsea", **page_state,
            "kernels": [{"name": name, "weights": get_kernel(name).as_2d().tolist()}
                        for name in KERNELS]}
    items = []
    for index in range(len(KERNELS)):
        for stage, (row, col) in (("conv", pixel), ("pooled", cell)):
            response = client.post("/api/explain", json={
                **body, "kernel": index, "stage": stage, "row": row, "col": col,
                "flip": stage == "conv"})
            assert response.status_code == 200, response.text
            data = response.json()
            if stage == "conv":
                _text_says_what_the_parts_say(data)
            items.append({key: value for key, value in data.items() if key not in PAGE_ONLY})
    return items


def _text_says_what_the_parts_say(data: dict) -> None:
    """The page's ``text`` (its numbers formatted for API clients) writes each number as the
    parts' grids and written sum do: one wording of every number."""
    tables = {(table["key"], table["channel"]): table["cells"]
              for part in data["parts"] if part["kind"] == "grids" and part["key"] == "products"
              for table in part["tables"]}
    channels = [""] if len(data["patch"]) == 1 else ["R", "G", "B"]
    for text_key, table_key in (("patch_raw", "patch"), ("kernel", "kernel"),
                                ("products_raw", "products")):
        assert data["text"][text_key] == [tables[table_key, c] for c in channels], text_key
    written = next(part for part in data["parts"] if part["kind"] == "sum")
    assert data["text"]["sum_lines"] == written["lines"]


@pytest.mark.parametrize("case", list(CASES))
def test_run_explain_the_library_and_the_page_explain_a_pixel_alike(cli, page, case):
    options, _, _, pixel = CASES[case]
    at = f"{pixel[0]},{pixel[1]}"
    ran = cli("run", "--device", "cpu", "--out", "out", "--explain", at, *options)
    assert ran.code == 0, ran.err
    saved = json.loads((Path("out") / "explain.json").read_text(encoding="utf-8"))
    assert saved["at"] == list(pixel)
    run_items = saved["explanations"]
    assert [item["what"] for item in run_items] == ["conv pixel", "pooled cell"] * 3
    cell = tuple(run_items[0]["pooled_cell"])
    printed = cli("explain", "--at", at, "--pooled-at", f"{cell[0]},{cell[1]}", "--flip",
                  "--json", *options)
    assert printed.code == 0, printed.err
    surfaces = {"convlens run --explain (explain.json)": run_items,
                "convlens explain --json": json.loads(printed.out),
                "explain_pixel/explain_pooled(...).to_dict()": _library(case, pixel, cell),
                "the page (POST /api/explain)": _page(page, case, pixel, cell)}
    assert_same(surfaces, "explain_pixel/explain_pooled(...).to_dict()")
    said = words_of(run_items[0]["parts"])
    assert any("conv pixel" in words for words in said) and len(said) >= 4, said
    if case == "padded-corner":  # the taps in the padding are marked alike on every surface
        assert any(any(row) for row in run_items[0]["padded"])
    _report_says_the_same_words(Path("out") / "report.html", run_items)


REPORTED = {"conv pixel": ("where", "padding", "sum", "divided", "conv", "activation",
                           "cross_correlation"),
            "pooled cell": ("where", "max", "mean")}
"""The parts of the first kernel's pixel and pooled cell that report.html's worked examples
show, by ``what`` and part key."""


def _report_says_the_same_words(report: Path, items: list[dict]) -> None:
    """report.html's worked examples word the first kernel's pixel and pooled cell as its
    explain.json does: each sentence and written sum is in the page's text (tags and
    whitespace, which HTML is free to change, left out of the comparison)."""
    page = html.unescape(re.sub(r"<[^>]+>", "", report.read_text(encoding="utf-8")))
    squeezed = "".join(page.split())
    checked = 0
    for item in items[:2]:
        for part in item["parts"]:
            if part.get("key") not in REPORTED[item["what"]]:
                continue
            text = " = ".join(part["lines"]) if part["kind"] == "sum" else part["text"]
            assert "".join(text.split()) in squeezed, f"report.html does not say: {text}"
            checked += 1
    assert checked >= 6, checked


def test_the_comparison_catches_a_changed_word_or_number():
    """The comparer is strict where it should be: one word, one key, one digit past float32."""
    base = {"parts": [{"kind": "sentence", "text": "the kernel covers rows 1..3"}], "sum": 0.25}
    assert differences(base, json.loads(json.dumps(base))) == []
    assert differences(base, {**base, "sum": 0.25 * (1 + FLOAT32_ULP)}) == []
    assert differences(base, {**base, "sum": 0.2501})
    assert differences(base, {**base, "parts": [{"kind": "sentence",
                                                 "text": "the kernel covers rows 1..4"}]})
    assert differences(base, {**base, "extra": 1})
    assert differences({"a": 1}, {"a": True}) and differences({"a": None}, {"a": 0})


# --------------------------------------------------------------------------- inspect

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small tinyvgg (RGB 16x16, 3 classes) with seeded random weights, as a checkpoint."""
    from convlens.models import ModelInfo, create_model, save_checkpoint

    torch.manual_seed(3)
    model = create_model("tinyvgg", 3, 3, (16, 16), width=4).eval()
    info = ModelInfo("tinyvgg", 3, (16, 16), ["cat", "dog", "cup"], [0.5, 0.45, 0.4],
                     [0.25, 0.25, 0.3], {"width": 4})
    return save_checkpoint(model, info, tmp_path_factory.mktemp("model") / "model.safetensors")


LAYER = "features.conv2"


def test_inspect_the_library_and_the_model_panel_show_the_same_numbers(cli, checkpoint):
    from convlens.models import open_model
    from convlens.results.inspection import inspect_image

    coffee = sample_path("coffee")
    result = cli("inspect", str(checkpoint), str(coffee), "--layer", LAYER, "--top", "4",
                 "--out", "seen")
    assert result.code == 0, result.err
    printed = json.loads((Path("seen") / "inspect.json").read_text(encoding="utf-8"))
    with np.load(Path("seen") / "feature-maps.npz") as stored:
        npz_maps = stored[LAYER]
    library = inspect_image(open_model(checkpoint), coffee, [LAYER])
    from_library = as_json(library.to_dict())
    with api_client(create_app(checkpoint)) as client:
        response = client.post("/api/model/run", json={"image": "sample-coffee", "layer": LAYER,
                                                       "top": 4})
    assert response.status_code == 200, response.text
    header, arrays = unpack(response.content)

    # predictions: the same classes in the same order, the same probabilities
    assert_same({"inspect.json": printed["predictions"],
                 "inspect_image(...).to_dict()": from_library["predictions"],
                 "the model panel": header["predictions"]}, "inspect_image(...).to_dict()")
    assert len(printed["predictions"]) == 3
    # the layer's channels, most active first, with their statistics
    keys = ("channel", "mean", "std", "min", "max", "zero_fraction")
    channels = {name: [{key: entry[key] for key in keys} for entry in entries]
                for name, entries in (
                    ("inspect.json", printed["layers"][LAYER]["channels"]),
                    ("inspect_image(...).to_dict()", from_library["layers"][LAYER]["channels"]),
                    ("the model panel", header["channels"]))}
    assert_same(channels, "inspect_image(...).to_dict()")
    assert header["layer"]["shape"] == printed["layers"][LAYER]["shape"] == [4, 16, 16]
    # one feature-map value: the npz, the library's maps, and the page's drawn map decoded
    channel = header["channels"][0]["channel"]
    row, col = 7, 11
    full = library.layers[LAYER].maps[channel].numpy()
    assert npz_maps.shape == (4, 16, 16)
    assert npz_maps[channel, row, col] == pytest.approx(full[row, col], rel=4 * FLOAT32_ULP)
    shown = header["channels"][0]
    level = float(arrays["maps"][0, row, col])
    if shown["signed"]:  # 0 at mid-gray, +-vmax at the ends
        drawn, step = (level - 127.5) / 127.5 * shown["vmax"], shown["vmax"] / 127.5
    else:                # vmin..vmax onto 0..255
        step = (shown["vmax"] - shown["vmin"]) / 255
        drawn = shown["vmin"] + level * step
    assert drawn == pytest.approx(float(full[row, col]), abs=step / 2 + 1e-6)


# --------------------------------------------------------------------------- sizes

def test_size_run_and_the_page_work_out_the_same_sizes(cli, page):
    """One layer on the photo: ``convlens size --json``, the page's chain (``/api/stages``) and
    run.json's size formulas are the same numbers and the same written formulas (issue 12 saw
    two ways of writing one formula)."""
    layer = {"stride": 2, "padding": 1, "dilation": 2, "pool": 3, "pool_stride": 2}
    sized = cli("size", "--input", "300x451", "--layers", "conv3 s2 p1 d2, pool3 s2", "--json")
    assert sized.code == 0, sized.err
    printed = json.loads(sized.out)
    response = page.post("/api/stages", json={
        "image": "sample-chelsea", "mode": "gray", "max_side": 1024, "display": 64,
        "layer": layer, "kernels": [{"name": "sobel-h",
                                     "weights": get_kernel("sobel-h").as_2d().tolist()}]})
    assert response.status_code == 200, response.text
    header, _ = unpack(response.content)
    assert_same({"convlens size --json": printed, "the page's chain": header["chain"]},
                "convlens size --json")
    ran = cli("run", "--device", "cpu", "--no-report", "--out", "sized", "--kernels", "sobel-h",
              "--stride", "2", "--padding", "1", "--dilation", "2", "--pool", "3",
              "--pool-stride", "2")
    assert ran.code == 0, ran.err
    summary = json.loads((Path("sized") / "run.json").read_text(encoding="utf-8"))
    assert len(summary["sizes"]) == len(printed["layers"]) == 2
    for line, step in zip(summary["sizes"], printed["layers"]):
        for axis in ("rows", "cols"):
            assert step[axis]["formula"] in line, (step[axis]["formula"], line)
    assert summary["shapes"]["pooled"][1:] == printed["output"]
