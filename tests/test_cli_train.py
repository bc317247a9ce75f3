"""`convlens train`, `evaluate` and `predict` run in-process: exit codes, messages, files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
from PIL import Image

from convlens.cli.train import parse_model_args
from convlens.data import download as download_module
from convlens.data import load_data
from convlens.errors import ConfigError

QUICK = ("--no-gif", "--no-baseline", "--no-progress")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-epoch digits run made through the CLI."""
    from convlens.cli import main

    folder = tmp_path_factory.mktemp("cli") / "digits-run"
    assert main(["train", "--epochs", "2", "--out", str(folder), *QUICK]) == 0
    return folder


def test_train_prints_the_table_and_writes_the_run(cli, tmp_path):
    result = cli("train", "--epochs", "1", "--out", "run", "--no-gif")
    assert result.code == 0, result.err
    assert "epoch  train loss  train acc" in result.out
    assert "SVC baseline on the same split" in result.out
    assert "wrote model.safetensors" in result.out
    assert (tmp_path / "run" / "model.safetensors").is_file()
    again = cli("train", "--epochs", "1", "--out", "run", *QUICK)
    assert again.code == 2
    assert "error: output folder run is not empty; pass --force" in again.err
    assert cli("train", "--epochs", "1", "--out", "run", "--force", *QUICK).code == 0


def test_train_model_args_and_seed(cli, tmp_path):
    result = cli("train", "--epochs", "1", "--out", "wide", "--model-arg", "width=8",
                 "--model-arg", "batchnorm=false", "--seed", "3", "--threads", "1", *QUICK)
    assert result.code == 0, result.err
    info = json.loads((tmp_path / "wide" / "model.json").read_text())
    assert info["arch_kwargs"] == {"width": 8, "batchnorm": False}
    assert "seed 3" in result.out


@pytest.mark.parametrize(("args", "message"), [
    (("--model", "lenett"), "unknown model 'lenett'; did you mean lenet"),
    (("--model", "lenet"), "model 'lenet' cannot take 8x8 images"),
    (("--model-arg", "width"), "--model-arg takes KEY=VALUE"),
    (("--model-arg", "depth=3"), "unexpected keyword argument 'depth'"),
    (("--data", "no/such/folder"), "no such data folder: no/such/folder"),
    (("--data", "mnist:nowhere"), "add --download to fetch them"),
    (("--epochs", "0"), "epochs must be at least 1"),
    (("--size", "big"), "size must be N or HxW"),
    (("--resume",), "--resume needs --out"),
    (("--device", "tpu"), "device must be one of"),
])
def test_train_bad_input_is_one_clear_line(cli, args, message):
    result = cli("train", "--epochs", "1", *QUICK, *args)
    assert result.code == 2
    assert result.err.startswith("error: ") and message in result.err
    assert "Traceback" not in result.err


def test_download_offline_says_so(cli, monkeypatch):
    def offline(url, timeout):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", offline)
    result = cli("train", "--data", "mnist:mnist-files", "--download", *QUICK)
    assert result.code == 2
    assert "could not download mnist" in result.err and "are you offline" in result.err


def test_train_on_an_image_folder_with_a_corrupt_file(cli, tmp_path):
    rng = np.random.default_rng(0)
    for label, name in enumerate(("dark", "light")):
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 60, (10, 10), dtype=np.uint8) + 150 * label
            Image.fromarray(pixels.astype(np.uint8)).save(
                tmp_path / "shapes" / name / f"{index}.{'png' if index % 2 else 'jpg'}")
    (tmp_path / "shapes" / "light" / "bad.png").write_bytes(b"garbage")
    result = cli("train", "--data", "shapes", "--epochs", "2", "--batch-size", "4",
                 "--out", "shapes-run", *QUICK)
    assert result.code == 0, result.err
    assert "skipped 1 unreadable image file(s)" in result.out
    assert "(--strict makes this an error)" in result.out  # the library says strict=True
    strict = cli("train", "--data", "shapes", "--epochs", "1", "--strict", "--out", "s2",
                 *QUICK)
    assert strict.code == 2 and "unreadable image" in strict.err
    predicted = cli("predict", "shapes-run", "shapes/light/0.jpg", "--json")
    assert predicted.code == 0, predicted.err
    assert json.loads(predicted.out)[0]["top"][0]["class"] in ("dark", "light")


def test_evaluate_prints_precision_and_recall(cli, trained, tmp_path):
    result = cli("evaluate", str(trained))
    assert result.code == 0, result.err
    assert "precision" in result.out and "recall" in result.out
    metrics = json.loads((trained / "metrics.json").read_text())
    # by default the model is evaluated on its held-out test split
    assert f"accuracy {100 * metrics['test_accuracy']:.2f}%" in result.out
    assert (trained / "eval-digits" / "confusion.png").is_file()
    as_json = cli("evaluate", str(trained / "model.safetensors"), "--json", "--out", "ev")
    report = json.loads(as_json.out)
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert report["per_class"]["3"]["support"] == 37
    assert (tmp_path / "ev" / "evaluation.json").is_file()
    assert cli("evaluate", str(trained), "--out", "ev").code == 2  # not overwritten unasked


def test_evaluate_on_a_test_folder_of_pngs(cli, trained, tmp_path):
    val = load_data("digits").val
    for index in range(40):
        folder = tmp_path / "test" / str(int(val.labels[index]))
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (val.images[index, 0].numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")
    result = cli("evaluate", str(trained), "--data", "test", "--json", "--out", "ev")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["images"] == 40 and report["accuracy"] > 0.8


def test_predict_top_k_and_json(cli, trained, tmp_path):
    digit = (load_data("digits").val.images[0, 0].numpy() * 255).astype(np.uint8)
    Image.fromarray(digit).resize((64, 64)).convert("RGB").save(tmp_path / "digit.png")
    result = cli("predict", str(trained / "model.safetensors"), "digit.png", "--top-k", "3")
    assert result.code == 0, result.err
    assert "digit.png" in result.out and "probability" in result.out
    parsed = json.loads(cli("predict", str(trained), "digit.png", "-k", "2", "--json").out)
    assert parsed[0]["image"] == "digit.png" and len(parsed[0]["top"]) == 2
    probs = [row["probability"] for row in parsed[0]["top"]]
    assert probs == sorted(probs, reverse=True)


def test_predict_refuses_what_is_not_a_checkpoint_or_an_image(cli, trained, tmp_path):
    (tmp_path / "weights.safetensors").write_bytes(b"\x00" * 64)
    result = cli("predict", "weights.safetensors", "x.png")
    assert result.code == 2 and "not a convlens checkpoint" in result.err
    (tmp_path / "notes.png").write_text("not an image")
    result = cli("predict", str(trained), "notes.png")
    assert result.code == 2 and "not an image" in result.err
    assert cli("predict", str(trained), "notes.png", "--top-k", "0").code == 2


def test_parse_model_args():
    assert parse_model_args(["width=64", "batchnorm=true", "dropout=0.5", "name=x"]) == {
        "width": 64, "batchnorm": True, "dropout": 0.5, "name": "x"}
    with pytest.raises(ConfigError):
        parse_model_args(["=3"])


def test_help_teaches(cli):
    for command in ("train", "evaluate", "predict"):
        result = cli(command, "--help")
        assert result.code == 0
        assert "Examples" in result.out
    from convlens.cli.train import MODEL_NAMES
    from convlens.models import list_models

    assert list(MODEL_NAMES) == list_models()   # what --help lists is the registry


def test_evaluate_mnist_needs_only_the_test_files(cli, trained, tmp_path):
    """The same 60 digits as t10k IDX files (nothing else in the folder) and as a folder of
    PNGs: both loaders must give the same evaluation."""
    import struct

    val = load_data("digits").val
    pixels = (val.images[:60, 0].numpy() * 255).round().astype(np.uint8)
    labels = val.labels[:60].numpy().astype(np.uint8)
    (tmp_path / "mnist").mkdir()
    for name, array in (("t10k-images-idx3-ubyte", pixels), ("t10k-labels-idx1-ubyte", labels)):
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (tmp_path / "mnist" / name).write_bytes(header + array.tobytes())
    for index, (image, label) in enumerate(zip(pixels, labels)):
        (tmp_path / "pngs" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "pngs" / str(label) / f"{index}.png")
    from_idx = cli("evaluate", str(trained), "--data", "mnist:mnist", "--json", "--out", "a")
    assert from_idx.code == 0, from_idx.err
    from_pngs = cli("evaluate", str(trained), "--data", "pngs", "--json", "--out", "b")
    assert from_pngs.code == 0, from_pngs.err
    idx_report, png_report = json.loads(from_idx.out), json.loads(from_pngs.out)
    assert idx_report["images"] == 60
    assert idx_report["confusion"] == png_report["confusion"]
    assert idx_report["accuracy"] == pytest.approx(png_report["accuracy"])


def test_predict_skips_a_bad_image_and_goes_on(cli, trained, tmp_path):
    digit = (load_data("digits").val.images[0, 0].numpy() * 255).astype(np.uint8)
    Image.fromarray(digit).save(tmp_path / "digit.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but cut short")
    result = cli("predict", str(trained), "broken.png", "digit.png", "--json")
    assert result.code == 1
    assert [row["image"] for row in json.loads(result.out)] == ["digit.png"]
    assert "skipped broken.png" in result.err and "error: 1 of 2 images failed" in result.err
    plain = cli("predict", str(trained), "digit.png", "broken.png")
    assert plain.code == 1 and "digit.png" in plain.out and "probability" in plain.out


def test_evaluate_checks_its_folder_before_evaluating(cli, trained, tmp_path, monkeypatch):
    from convlens import data as data_module

    def never(*args, **kwargs):
        raise AssertionError("evaluated although the output folder cannot be written")

    monkeypatch.setattr(data_module, "load_eval_set", never)
    (tmp_path / "notes.txt").write_text("mine")
    result = cli("evaluate", str(trained), "--out", "notes.txt/eval")
    assert result.code == 2 and "notes.txt is a file, not a folder" in result.err


def test_a_class_folder_named_in_latin1_trains_and_evaluates(cli, tmp_path):
    rng = np.random.default_rng(1)
    odd, accent = os.fsdecode(b"caf\xe9"), os.fsdecode(b"\xe9")
    for label, name in enumerate((odd, "tea")):
        (tmp_path / "drinks" / name).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 60, (8, 8), dtype=np.uint8) + 150 * label
            Image.fromarray(pixels.astype(np.uint8)).save(
                tmp_path / "drinks" / name / f"{accent}{index}.png", format="PNG")
    result = cli("train", "--data", "drinks", "--epochs", "1", "--out", "run", *QUICK)
    assert result.code == 0, result.err
    assert (tmp_path / "run" / "confusion.png").is_file()
    assert json.loads((tmp_path / "run" / "model.json").read_text())["class_names"][0] == odd
    evaluated = cli("evaluate", "run", "--data", "drinks", "--out", "ev")
    assert evaluated.code == 0, evaluated.err
    assert "caf\\xe9" in evaluated.out and (tmp_path / "ev" / "confusion.png").is_file()


def test_train_names_its_flags_in_notes(cli):
    """The library's notes say amp=True; the command line's say --amp."""
    result = cli("train", "--epochs", "1", "--out", "amp", "--amp", *QUICK)
    assert result.code == 0, result.err
    assert "--amp ignored on cpu" in result.out
    assert "amp=True" not in result.out
