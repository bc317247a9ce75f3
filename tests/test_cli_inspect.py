"""`convlens layers`, `convlens inspect` and `convlens saliency` end to end, in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import save_file

from convlens.cli._app import console
from convlens.images import load_image, sample_path
from convlens.models import (
    ModelInfo,
    ModelKind,
    OpenedModel,
    create_model,
    load_checkpoint,
    predict,
    prepare_input,
    save_checkpoint,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

NETS = (Path(__file__).parent / "small_nets.py").read_text(encoding="utf-8")
"""A user's module: the tests' small classifier and its ``build`` factory."""


@pytest.fixture(autouse=True)
def wide_console():
    """Tables as wide as their contents, whatever terminal (or xdist worker) runs the tests."""
    saved = console._width
    console.width = 200
    yield
    console._width = saved


@pytest.fixture
def workdir(tmp_path):
    """The current folder of the `cli` fixture, holding a user's module and model files."""
    (tmp_path / "clinets.py").write_text(NETS)
    sys.path.insert(0, str(tmp_path))
    import clinets

    torch.manual_seed(0)
    model = clinets.build().eval()
    torch.jit.script(model).save(str(tmp_path / "net.pt"))
    save_file(model.state_dict(), str(tmp_path / "net.safetensors"))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(tmp_path / "dog.png")
    yield tmp_path, model
    sys.path.remove(str(tmp_path))
    sys.modules.pop("clinets", None)


def _model_input(path: Path, size: int = 32) -> torch.Tensor:
    image = load_image(path, mode="rgb")[None]
    return nn.functional.interpolate(image, size=(size, size), mode="bilinear", antialias=True,
                                     align_corners=False).clamp(0, 1)


def test_layers_prints_every_layer_with_shapes(cli, workdir):
    result = cli("layers", "net.pt", "--trust-code", "--input-size", "32x32")
    assert result.code == 0, result.err
    for text in ("features.0", "Conv2d", "1x6x32x32", "1x8x8x8", "classifier", "1x512", "1x4",
                 "total params: 2,660"):  # 3*6*9+6 + 6*8*9+8 + 512*4+4
        assert text in result.out, text


def test_layers_of_a_factory_shows_receptive_fields(cli, workdir):
    result = cli("layers", "clinets:build", "--trust-code", "--input-size", "32", "--weights",
                 "net.safetensors", "--depth", "1")
    assert result.code == 0, result.err
    assert "features.0" not in result.out and "features" in result.out
    data = json.loads(cli("layers", "clinets:build", "--trust-code",
                          "--input-size", "32", "--json").out)
    fields = {row["name"]: row["receptive_field"] for row in data["layers"]}
    assert fields["features.3"] == [8, 8] and data["output_shape"] == [1, 4]


def test_layers_stops_at_the_mismatch_and_says_so(cli, workdir):
    result = cli("layers", "net.pt", "--trust-code", "--input-size", "40x40")
    assert result.code == 2
    assert "fails here" in result.out and "1x800" in result.out
    assert result.err.strip().endswith("error: 'flatten' (Flatten) gives 800 features, but "
                                       "'classifier' (Linear) expects 512")


def test_layers_without_input_size_asks_for_it(cli, workdir):
    result = cli("layers", "net.pt", "--trust-code")
    assert result.code == 2 and "pass --input-size HxW" in result.err


def test_inspect_torchscript_all_conv_writes_maps_filters_and_npz(cli, workdir):
    tmp_path, model = workdir
    result = cli("inspect", "net.pt", "--trust-code",
                 "dog.png", "--all-conv", "--top", "3", "--input-size",
                 "32", "--full-size", "--out", "res")
    assert result.code == 0, result.err
    out = tmp_path / "res"
    expected = {"input.png", "predictions.png", "maps-features.0.png", "maps-features.3.png",
                "filters-features.0.png", "filters-features.3.png", "learned-vs-classical.png",
                "feature-maps.npz", "inspect.json"}
    assert {p.name for p in out.iterdir()} == expected
    for name in expected - {"feature-maps.npz", "inspect.json"}:
        with Image.open(out / name) as figure:
            figure.verify()
    x = _model_input(tmp_path / "dog.png")
    with torch.no_grad():
        conv0 = model.features[0](x)[0].numpy()
        conv3 = model.features[:4](x)[0].numpy()
        probabilities = torch.softmax(model(x), 1)[0].numpy()
    with np.load(out / "feature-maps.npz") as maps:
        assert sorted(maps.files) == ["features.0", "features.3"]
        np.testing.assert_allclose(maps["features.0"], conv0, atol=1e-5)
        np.testing.assert_allclose(maps["features.3"], conv3, atol=1e-5)
    summary = json.loads((out / "inspect.json").read_text())
    assert summary["model"]["kind"] == "TorchScript"
    assert summary["layers"]["features.3"]["shape"] == [8, 16, 16]
    top = summary["predictions"][0]
    assert top["index"] == int(probabilities.argmax())
    assert top["probability"] == pytest.approx(float(probabilities.max()), rel=1e-5)
    assert "class " + str(top["index"]) in result.out and "most active channels" in result.out
    assert sorted(summary["files"]) == sorted(expected)


def test_inspect_default_folder_refuses_to_overwrite(cli, workdir):
    tmp_path, _ = workdir
    assert cli("inspect", "net.pt", "--trust-code", "dog.png", "--input-size", "32").code == 0
    folder = tmp_path / "convlens-out" / "inspect-dog"
    assert (folder / "maps-features.0.png").is_file()
    (folder / "mine.txt").write_text("keep")
    refused = cli("inspect", "net.pt", "--trust-code", "dog.png", "--input-size", "32")
    assert refused.code == 2 and "--force" in refused.err
    assert cli("inspect", "net.pt", "--trust-code",
               "dog.png", "--input-size", "32", "--force").code == 0


def test_inspect_unknown_layer_lists_the_valid_ones(cli, workdir):
    result = cli("inspect", "net.pt", "--trust-code",
                 "dog.png", "--layer", "feature.3", "--input-size", "32")
    assert result.code == 2
    assert "no layer named 'feature.3'" in result.err and "features.5, flatten" in result.err
    assert result.err.count("\n") == 1
    # the library points to layer_table(model); the command line to its own command
    assert result.err.endswith("(see `convlens layers MODEL`)\n")
    assert "layer_table" not in result.err


@pytest.mark.parametrize("model", [["clinets:build", "--trust-code",
                                    "--weights", "net.safetensors"],
                                   ["net.pt", "--trust-code"]])
def test_inspect_image_that_does_not_fit_says_what_the_model_expects(cli, workdir, model):
    result = cli("inspect", *model, "dog.png")
    assert result.code == 2
    assert "does not fit a 3x40x52 input" in result.err  # 8 channels x (40/4) x (52/4) = 1040
    assert "'flatten' (Flatten) gives 1040 features, but 'classifier' (Linear) expects 512" \
        in result.err
    assert result.err.strip().endswith("it expects 32x32 images: pass --input-size 32x32")


def test_inspect_data_finds_the_images_that_drive_a_channel(cli, workdir):
    tmp_path, model = workdir
    data = tmp_path / "data" / "cls"
    data.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for index in range(6):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(data / f"{index}.png")
    result = cli("inspect", "net.pt", "--trust-code",
                 "dog.png", "--layer", "features.3", "--input-size", "32",
                 "--data", "data", "--channel", "2", "--images", "3", "--out", "res")
    assert result.code == 0, result.err
    assert (tmp_path / "res" / "top-images-features.3-ch2.png").is_file()
    scores = {}
    for path in sorted(data.iterdir()):
        with torch.no_grad():
            maps = model.features[:4](_model_input(path))
        scores[str(Path("data") / "cls" / path.name)] = float(maps[0, 2].mean())
    best = sorted(scores, key=scores.get, reverse=True)[:3]
    summary = json.loads((tmp_path / "res" / "inspect.json").read_text())
    assert [item["source"] for item in summary["top_images"]["images"]] == best


def test_saliency_writes_every_method(cli, workdir):
    tmp_path, _ = workdir
    result = cli("saliency", "clinets:build", "--trust-code",
                 "dog.png", "--weights", "net.safetensors",
                 "--input-size", "32", "--method", "all", "--class", "2", "--steps", "8",
                 "--out", "sal")
    assert result.code == 0, result.err
    out = tmp_path / "sal"
    assert {p.name for p in out.iterdir()} == {"saliency.png", "predictions.png",
                                                "saliency.npz", "saliency.json"}
    with np.load(out / "saliency.npz") as arrays:
        assert sorted(arrays.files) == ["gradcam", "guided_backprop", "input",
                                        "integrated_gradients"]
        assert arrays["gradcam"].shape == (32, 32) and arrays["input"].shape == (3, 32, 32)
        assert arrays["gradcam"].min() >= 0
    summary = json.loads((out / "saliency.json").read_text())
    assert summary["class"]["index"] == 2
    assert summary["methods"][0]["layer"] == "features.3"
    assert "Grad-CAM" in result.out and "integrated gradients" in result.out


def test_saliency_on_torchscript_skips_guided_backprop_for_all(cli, workdir):
    result = cli("saliency", "net.pt", "--trust-code",
                 "dog.png", "--input-size", "32", "--method", "all",
                 "--steps", "4")
    assert result.code == 0, result.err
    assert "which TorchScript modules do not take: skipped" in result.err
    refused = cli("saliency", "net.pt", "--trust-code", "dog.png", "--input-size", "32", "--method",
                  "guided-backprop", "--force")
    assert refused.code == 2 and "TorchScript" in refused.err


def test_saliency_unknown_class_is_a_clear_error(cli, workdir):
    result = cli("saliency", "net.pt", "--trust-code",
                 "dog.png", "--input-size", "32", "--class", "dog")
    assert result.code == 2
    assert "unknown class 'dog'" in result.err and "index 0-3" in result.err


def test_pickled_model_is_refused_on_the_command_line(cli, workdir):
    tmp_path, model = workdir
    torch.save(model, tmp_path / "whole.pt")
    result = cli("layers", "whole.pt", "--input-size", "32")
    assert result.code == 2
    assert "unpickling runs code" in result.err and "--trust-code" in result.err
    trusted = cli("layers", "whole.pt", "--input-size", "32", "--trust-pickle")  # the old name
    assert trusted.code == 0, trusted.err
    assert "pickled module" in trusted.out


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(3)
    info = ModelInfo("tinyvgg", 3, (16, 16), ["cat", "dog", "fox"], [0.5, 0.5, 0.5],
                     [0.25, 0.25, 0.25])
    model = create_model("tinyvgg", 3, 3, (16, 16)).eval()
    save_checkpoint(model, info, tmp_path / "runs" / "pets")
    return model, info


def test_convlens_checkpoint_layers_inspect_and_saliency(cli, checkpoint, tmp_path):
    model, info = checkpoint
    layers = cli("layers", "runs/pets/model.safetensors")
    assert layers.code == 0, layers.err
    assert "features.conv1" in layers.out and "1x10x16x16" in layers.out
    assert "convlens checkpoint" in layers.out

    result = cli("inspect", "runs/pets", "--layer", "features.conv2", "--top-k", "3")
    assert result.code == 0, result.err
    out = tmp_path / "convlens-out" / "inspect-chelsea"
    summary = json.loads((out / "inspect.json").read_text())
    expected = [(p.label, p.probability) for p in predict(
        load_checkpoint(tmp_path / "runs" / "pets"), [load_image(sample_path(), mode="rgb")],
        top_k=3)[0]]
    got = [(p["label"], p["probability"]) for p in summary["predictions"]]
    assert [label for label, _ in got] == [label for label, _ in expected]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in expected], rtol=1e-5)
    # conv2 is followed by ReLU(inplace=True): the saved maps must still be conv2's own output
    batch = prepare_input(load_image(sample_path(), mode="rgb"),
                          OpenedModel(model, ModelKind.CONVLENS, "pets", info)).batch
    with torch.no_grad():
        conv2 = model.features[:3](batch)[0].numpy()
    with np.load(out / "feature-maps.npz") as maps:
        np.testing.assert_allclose(maps["features.conv2"], conv2, atol=1e-5)
    assert (conv2 < 0).any()

    saliency = cli("saliency", "runs/pets", "--class", "fox", "--method", "gradcam")
    assert saliency.code == 0, saliency.err
    sal = json.loads((tmp_path / "convlens-out" / "saliency-chelsea" / "saliency.json")
                     .read_text())
    with torch.no_grad():
        fox = float(torch.softmax(model(batch), 1)[0, 2])
    assert sal["class"] == {"index": 2, "label": "fox", "probability": pytest.approx(fox)}
    assert sal["methods"][0]["layer"] == "features.conv4"


def test_export_program_inspect_saliency_and_layers(cli, workdir):
    tmp_path, model = workdir
    program = torch.export.export(model, (torch.rand(1, 3, 32, 32),))
    torch.export.save(program, str(tmp_path / "net.pt2"))
    layers = cli("layers", "net.pt2", "--json")
    assert layers.code == 0, layers.err
    fields = {row["name"]: row["receptive_field"] for row in json.loads(layers.out)["layers"]}
    assert fields["features.3"] == [8, 8] and fields["features.5"] == [10, 10]

    result = cli("inspect", "net.pt2", "dog.png", "--layer", "features.3", "--out", "res",
                 "--full-size")
    assert result.code == 0, result.err
    with torch.no_grad():
        conv3 = model.features[:4](_model_input(tmp_path / "dog.png"))[0].numpy()
    with np.load(tmp_path / "res" / "feature-maps.npz") as maps:
        np.testing.assert_allclose(maps["features.3"], conv3, atol=1e-5)

    saliency = cli("saliency", "net.pt2", "dog.png", "--method", "all", "--steps", "4",
                   "--out", "sal")
    assert saliency.code == 0, saliency.err
    assert "has none (functional ReLUs, or an exported program): skipped" in saliency.err
    with np.load(tmp_path / "sal" / "saliency.npz") as arrays:
        assert sorted(arrays.files) == ["gradcam", "input", "integrated_gradients"]


def test_layers_keeps_names_whole_in_an_80_column_terminal(cli, monkeypatch):
    from convlens.cli._app import console
    from convlens.models import create_model

    monkeypatch.setattr(console, "width", 80)
    result = cli("layers", "resnet9", "--input-size", "32")
    assert result.code == 0, result.err
    names = [name for name, _ in create_model("resnet9", 3, 10, (32, 32)).named_modules() if name]
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in names:  # each name whole on one line, never folded ("features.c / onv1")
        assert any(line.split("│")[0].strip() == name for line in lines), name
    assert "params" in result.out and "left out to fit 80 columns: kernel" in result.out


# --------------------------------------------------------------------------- several outputs

ONET = ("several_outputs:build", "--trust-code")  # tests/several_outputs.py: ONet's outputs


def test_layers_shows_the_class_scores_of_a_model_with_several_outputs(cli):
    result = cli("layers", *ONET, "--input-size", "48")
    assert result.code == 0, result.err
    assert "output: 1x2 " in result.out  # the face probability, not the box offsets (1x4)
    assert ("note: the model returns 3 outputs: #0 (1, 4), #1 (1, 10), #2 (1, 2); used #2 "
            "(1, 2), the only one whose rows are probabilities") in result.err
    assert result.err.rstrip().endswith("(choose another with --output N)")
    boxes = cli("layers", *ONET, "--input-size", "48", "--output", "0")
    assert boxes.code == 0 and "output: 1x4 " in boxes.out
    assert "used #0 (1, 4), as asked" in boxes.err and "choose another" not in boxes.err
    data = json.loads(cli("layers", *ONET, "--input-size", "48", "--json").out)
    assert data["output_shape"] == [1, 2] and data["outputs"]["used"] == 2


def test_layers_at_a_size_the_model_cannot_take_prints_the_size_to_use(cli):
    result = cli("layers", *ONET, "--input-size", "64")
    assert result.code == 2
    assert ("hint: it takes 42x42 to 49x49 inputs, and 48x48 is a common input size: pass "
            "--input-size 48x48") in " ".join(result.out.split())
    assert result.err.strip().endswith("'body.12' (Linear) expects 144")
    data = json.loads(cli("layers", *ONET, "--input-size", "64", "--json").out)
    assert data["suggested_size"] == 48 and data["size_hint"]["fits"] == [42, 49]


def test_saliency_and_inspect_read_the_output_asked_for_and_say_which(cli, tmp_path):
    Image.fromarray(np.full((48, 48, 3), 128, np.uint8)).save(tmp_path / "face.png")
    result = cli("saliency", *ONET, "face.png", "--method", "gradcam", "--out", "faces")
    assert result.code == 0, result.err
    assert "used #2 (1, 2)" in result.err and "(choose another with --output N)" in result.err
    summary = json.loads((tmp_path / "faces" / "saliency.json").read_text())
    assert len(summary["predictions"]) == 2 and summary["model"]["outputs"]["used"] == 2
    boxes = cli("saliency", *ONET, "face.png", "--method", "gradcam", "--output", "0",
                "--out", "boxes")
    assert boxes.code == 0, boxes.err
    summary = json.loads((tmp_path / "boxes" / "saliency.json").read_text())
    assert len(summary["predictions"]) == 4 and summary["model"]["outputs"]["reason"] == "as asked"
    seen = cli("inspect", *ONET, "face.png", "--out", "seen")
    assert seen.code == 0, seen.err
    assert "used #2 (1, 2)" in seen.err
    summary = json.loads((tmp_path / "seen" / "inspect.json").read_text())
    assert len(summary["predictions"]) == 2 and summary["model"]["outputs"]["used"] == 2
    wrong = cli("inspect", *ONET, "face.png", "--output", "7", "--out", "wrong")
    assert wrong.code == 2
    assert wrong.err.strip().endswith("error: the model has no output 7; it returns #0 (1, 4), "
                                      "#1 (1, 10), #2 (1, 2)")
    huge = cli("inspect", *ONET, "face.png", "--output", "x" * 5000, "--out", "huge")
    assert huge.code == 2 and "(5002 characters)" in huge.err and len(huge.err) < 300
