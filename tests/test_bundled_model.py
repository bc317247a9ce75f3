"""The digits CNN that ships with convlens: what it is, that its reported accuracy is what it
scores on the held-out test split now, and that the repository's script rebuilds it bit for bit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits

from convlens.data import load_eval_set
from convlens.images import bundled_model_path
from convlens.models import INFO_FILE, WEIGHTS_FILE, ModelKind, open_model
from convlens.train import evaluate
from convlens.train.files import METRICS_FILE

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_bundled_model.py"
SHIPPED = (WEIGHTS_FILE, INFO_FILE, METRICS_FILE)


@pytest.fixture(scope="module")
def bundled():
    return open_model(bundled_model_path())  # safetensors + json: no trust needed


@pytest.fixture(scope="module")
def metrics() -> dict:
    return json.loads((bundled_model_path().parent / METRICS_FILE).read_text(encoding="utf-8"))


def test_the_bundled_model_is_a_small_gray_8x8_digits_classifier(bundled):
    folder = bundled_model_path().parent
    assert bundled_model_path().name == WEIGHTS_FILE and folder.name == "digits-cnn"
    assert sorted(path.name for path in folder.iterdir()) == sorted(SHIPPED)  # no train-state
    assert sum((folder / name).stat().st_size for name in SHIPPED) < 300 * 1024
    assert bundled.kind is ModelKind.CONVLENS
    info = bundled.info
    assert info.architecture == "tinyvgg"
    assert info.class_names == [str(digit) for digit in range(10)]
    assert info.in_channels == 1 and info.input_size == (8, 8)
    assert info.metrics["data"] == "digits" and info.metrics["split_seed"] == 0
    assert not bundled.module.training


def test_its_reported_accuracy_is_what_it_scores_on_the_held_out_test_split(bundled, metrics):
    info = bundled.info
    reported = metrics["test_accuracy"]
    assert info.metrics["test_accuracy"] == reported
    assert reported > 0.97
    # the three splits cover scikit-learn's digits once each; the test split is 20% of them
    sizes = metrics["split_sizes"]
    assert sum(sizes.values()) == len(load_digits().target) == 1797
    assert sizes["test"] == 359
    # the same held-out split as training, measured now by the library's evaluate ...
    images, skipped = load_eval_set("digits", info.class_names, 1, (8, 8), split_seed=0)
    assert not skipped and len(images) == sizes["test"]
    result = evaluate(bundled.module, info, images)
    assert result.accuracy == reported
    assert result.confusion.astype(int).tolist() == metrics["confusion"]
    # ... and by a plain forward pass, normalized by hand with the model's own statistics
    x = (images.floats() - info.mean[0]) / info.std[0]
    with torch.no_grad():
        predicted = bundled.module(x).argmax(1)
    assert float((predicted == images.labels).double().mean()) == pytest.approx(reported)
    # an untuned comparison is not what is reported beside it
    assert metrics["baseline"]["test_accuracy"] < 1 and "chosen on the val split" in (
        metrics["baseline"]["model"])


@pytest.mark.slow
def test_the_build_script_rebuilds_the_bundled_weights_bit_for_bit(tmp_path, metrics):
    if not SCRIPT.is_file():
        pytest.skip("scripts/ is part of the repository, not of the installed package")
    built = metrics["torch_version"].split("+")[0]
    if built != torch.__version__.split("+")[0]:  # its CPU kernels decide the last bits
        pytest.skip(f"the bundled model was built with torch {metrics['torch_version']}; this "
                    f"is {torch.__version__}")
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout
    shipped = load_file(str(bundled_model_path()))
    rebuilt = load_file(str(tmp_path / WEIGHTS_FILE))
    assert shipped.keys() == rebuilt.keys()
    for name, tensor in shipped.items():
        assert tensor.dtype == rebuilt[name].dtype and tensor.shape == rebuilt[name].shape
        assert tensor.numpy().tobytes() == rebuilt[name].numpy().tobytes(), name  # every bit
    # the numbers that do not depend on the clock are the same too
    again = json.loads((tmp_path / METRICS_FILE).read_text(encoding="utf-8"))
    for key in ("test_accuracy", "val_accuracy", "best_epoch", "confusion", "split_sizes",
                "baseline"):
        if key == "baseline":
            assert again[key]["test_accuracy"] == metrics[key]["test_accuracy"]
        else:
            assert again[key] == metrics[key], key
    info = json.loads((tmp_path / INFO_FILE).read_text(encoding="utf-8"))
    shipped_info = json.loads((bundled_model_path().parent / INFO_FILE).read_text("utf-8"))
    for key in ("architecture", "arch_kwargs", "class_names", "mean", "std", "input_size"):
        assert info[key] == shipped_info[key], key
