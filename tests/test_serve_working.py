"""The page's working size: full size by default, as the CLI computes, unless a photo is over the
page's working budget; and the one request that brings a new photo's first drawing.

Sizes are checked against :func:`convlens.images.load_image` (the CLI's loader) and the maps
against a server that computes every kernel at once, never against the code under test alone.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from convlens.defaults import DEFAULT_MAX_SIDE, WORKING_SIDES
from convlens.images import downsample_for_display, load_image
from convlens.kernels import get_kernel
from convlens.serve import create_app, unpack
from convlens.serve import stages as stages_module
from convlens.serve.guard import TOKEN_HEADER
from convlens.serve.limits import (
    PAGE_BUDGET_BYTES,
    STAGE_BYTES_PER_PIXEL,
    budget_text,
    fit_side,
    working_size,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

KERNELS = ["sobel-h", "laplacian", "sobel-v", "emboss", "sharpen"]


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def body(image: str, kernels=KERNELS, **extra) -> dict:
    return {"image": image, "mode": "gray",
            "kernels": [{"name": name, "weights": get_kernel(name).as_2d().tolist()}
                        for name in kernels], **extra}


@pytest.fixture(scope="module")
def client():
    app = create_app(model=None)
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as test_client:
        yield test_client


def test_one_default_for_the_cli_and_the_page_full_size():
    assert DEFAULT_MAX_SIDE is None
    # within the budget: the photo's own size
    assert fit_side(600, 400) is None and fit_side(2800, 1900) is None
    # over it: the largest offered side whose stages fit, e.g. a 12 Mpx phone photo and 24 Mpx
    assert fit_side(4000, 3000) == 2048 and fit_side(6000, 4000) == 2048
    for width, height in [(4000, 3000), (6000, 4000), (3000, 2000), (20000, 1000)]:
        side = fit_side(width, height)
        assert side in WORKING_SIDES
        w, h = working_size(width, height, side)
        assert w * h * STAGE_BYTES_PER_PIXEL <= PAGE_BUDGET_BYTES
        larger = [s for s in WORKING_SIDES if s > side]
        if larger:                                              # the next one would not fit
            w, h = working_size(width, height, min(larger))
            assert w * h * STAGE_BYTES_PER_PIXEL > PAGE_BUDGET_BYTES
    assert budget_text() == "1 GiB"


@pytest.mark.parametrize(("width", "height", "side"), [(1100, 700, 512), (3000, 2000, 2048),
                                                        (701, 1333, 384), (50, 30, None)])
def test_working_size_is_the_size_load_image_gives(width, height, side):
    image = load_image(np.zeros((height, width), np.uint8), "gray", side)
    assert working_size(width, height, side) == (image.shape[2], image.shape[1])


def test_meta_offers_full_size_first_and_the_budget(client):
    meta = client.get("/api/meta").json()
    assert meta["default_working_side"] is None
    assert meta["choices"]["working_sides"] == [None, *sorted(WORKING_SIDES, reverse=True)]
    assert meta["limits"]["working_budget"] == {"bytes": PAGE_BUDGET_BYTES,
                                                "text": budget_text()}
    assert all(sample["fit_side"] is None for sample in meta["samples"])   # all small


def test_an_upload_over_the_budget_starts_shrunk_and_says_why(client):
    ramp = (np.add.outer(np.arange(2000) // 3, np.arange(3000) // 5) % 256).astype(np.uint8)
    data = png_bytes(ramp)
    info = client.post("/api/image?name=huge.png&mode=gray", content=data).json()
    assert info["original"] == [3000, 2000] and info["working"] == [2048, 1365]
    assert info["fit_side"] == 2048 and info["max_side"] == 2048 and info["shrunk"]
    assert info["note"] == (f"shrunk to fit the page's working budget of {budget_text()}; "
                            "pick a working size to change it")
    # its stages at full size, asked for: computed, and the page is told it is over budget
    header, _ = unpack(client.post("/api/stages", json=body(info["id"], max_side=None,
                                                            display=64)).content)
    assert header["image"]["working"] == [3000, 2000] and not header["image"]["shrunk"]
    assert "over the page's working budget" in header["image"]["note"]
    assert header["maps"][0]["conv"]["shape"] == [1998, 2998]
    # a working size picked
    header, _ = unpack(client.post("/api/stages", json=body(info["id"], max_side=512,
                                                            display=64)).content)
    assert header["image"]["working"] == [512, 341]
    assert header["image"]["note"] == "shrunk to the working size picked, 512 px on the longer side"


def test_a_normal_upload_is_full_size_and_its_command_has_no_max_side(client):
    photo = (np.add.outer(np.arange(300), np.arange(500)) % 256).astype(np.uint8)
    info = client.post("/api/image?name=photo.png", content=png_bytes(photo)).json()
    assert info["working"] == [500, 300] and info["fit_side"] is None and info["note"] is None
    explained = client.post("/api/explain", json={**body(info["id"]), "row": 10,
                                                  "col": 20}).json()
    assert explained["command"]["text"] == "convlens explain photo.png --kernel sobel-h --at 10,20"


def test_a_new_images_stages_bring_its_picture(client):
    photo = np.random.default_rng(1).integers(0, 256, (90, 130), dtype=np.uint8)
    info = client.post("/api/image?name=noise.png", content=png_bytes(photo)).json()
    header, arrays = unpack(client.post("/api/stages", json=body(info["id"], input=64)).content)
    expected, factor = downsample_for_display(photo[None] / 255.0, 64)
    assert header["input_factor"] == factor == 3
    assert np.abs(arrays["input"].astype(int) - np.rint(expected * 255).astype(int)).max() <= 1
    assert header["image"]["original"] == [130, 90] and header["image"]["fit_side"] is None
    # without `input` the picture is not sent
    _, arrays = unpack(client.post("/api/stages", json=body(info["id"])).content)
    assert "input" not in arrays


def test_kernels_computed_a_few_at_a_time_give_the_same_maps(client, monkeypatch):
    photo = np.random.default_rng(2).integers(0, 256, (120, 160), dtype=np.uint8)
    info = client.post("/api/image?name=chunks.png", content=png_bytes(photo)).json()
    whole_header, whole = unpack(client.post("/api/stages", json=body(
        info["id"], display=200)).content)
    # a budget that holds two kernels' stages at a time: the same five kernels in three runs
    monkeypatch.setattr(stages_module, "PAGE_BUDGET_BYTES", 2 * 12 * 118 * 158 + 1)
    assert stages_module._chunks(list(range(5)), 118 * 158) == [[0, 1], [2, 3], [4]]
    header, chunked = unpack(client.post("/api/stages", json=body(
        info["id"], display=199)).content)                  # another display: no cache hit
    assert header["timing"]["recomputed"] == 5
    for name, array in whole.items():
        assert np.array_equal(array, chunked[name]), name
    for a, b in zip(whole_header["maps"], header["maps"]):
        assert a["conv"]["min"] == b["conv"]["min"] and a["pooled"] == b["pooled"]


def test_the_pages_modules_import_each_other_without_cycles():
    """The page's ES modules form a tree of imports (a cycle only works by the order modules
    happen to run in); an import names a module that exists."""
    import re

    from convlens.serve import STATIC_DIR

    folder = STATIC_DIR / "js"
    imports = {path.stem: set(re.findall(r'from "\./([a-z]+)\.js"', path.read_text()))
               for path in folder.glob("*.js")}
    assert all(name in imports for names in imports.values() for name in names)
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name not in done:
            for other in sorted(imports[name]):
                visit(other, (*path, name))
            done.add(name)

    for name in sorted(imports):
        visit(name, ())
