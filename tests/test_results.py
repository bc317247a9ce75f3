"""Command results (convlens.results): what inspect and saliency compute, as data
(``to_dict``) and as files (``write``), checked against hand-built models and plain torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from convlens import __version__
from convlens.errors import ConfigError, OutputError
from convlens.images import iter_image_files
from convlens.kernels import get_kernel
from convlens.models import open_model
from convlens.results.inspection import MAPS_FILE, inspect_image
from convlens.results.saliency import saliency_image

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")


class EdgeNet(nn.Module):
    """A conv layer whose filters are known kernels (filter 0: sobel-v on every channel, filter
    1: minus the laplacian), then ReLU, global average pooling and a linear head of 3 classes."""

    def __init__(self, side: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, side, padding=side // 2)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2, 3)
        torch.manual_seed(0)
        with torch.no_grad():
            if side == 3:
                self.conv.weight[0] = torch.from_numpy(get_kernel("sobel-v").as_2d()) * 0.1
                self.conv.weight[1] = -torch.from_numpy(get_kernel("laplacian").as_2d()) * 0.2
            self.head.weight.copy_(torch.tensor([[4.0, 0.0], [0.0, 4.0], [-2.0, -2.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.relu(self.conv(x))).flatten(1))


@pytest.fixture
def edge_net(tmp_path):
    """The model as a TorchScript file opened through the one public opener, and the module."""
    model = EdgeNet().eval()
    path = tmp_path / "edge.pt"
    torch.jit.script(model).save(str(path))
    return open_model(path, trust_code=True), model


def _picture(seed: int = 0, size: tuple[int, int] = (12, 16)) -> torch.Tensor:
    return torch.rand(3, *size, generator=torch.Generator().manual_seed(seed))


def test_inspection_holds_the_maps_predictions_filters_and_nearest_kernels(edge_net):
    opened, model = edge_net
    image = _picture()
    inspection = inspect_image(opened, image, ["conv", "relu"], max_side=None, top_k=2)
    with torch.no_grad():  # oracle: plain torch on the same weights
        conv = F.conv2d(image[None], model.conv.weight, model.conv.bias, padding=1)[0]
        probabilities = torch.softmax(model(image[None]), 1)[0]
    torch.testing.assert_close(inspection.layers["conv"].maps, conv)
    torch.testing.assert_close(inspection.layers["relu"].maps, conv.clamp(min=0))
    best = torch.argsort(probabilities, descending=True)[:2]
    assert [p.index for p in inspection.predictions] == best.tolist()
    assert [p.probability for p in inspection.predictions] == pytest.approx(
        probabilities[best].tolist(), rel=1e-5)
    assert list(inspection.filters) == ["conv"]  # relu has no filters
    torch.testing.assert_close(inspection.filters["conv"], model.conv.weight.detach())
    nearest = inspection.nearest
    assert nearest.layer == "conv" and nearest.note is None
    by_filter = {m.filter_index: m for m in nearest.found}
    assert by_filter[0].similarity == pytest.approx(1.0)
    np.testing.assert_allclose(by_filter[0].kernel, get_kernel("sobel-v").as_2d())
    # the matched kernel is drawn with its sign: minus the laplacian, named so
    assert by_filter[1].label.startswith("-") and by_filter[1].similarity == pytest.approx(1.0)
    np.testing.assert_allclose(by_filter[1].kernel, -get_kernel("laplacian").as_2d())


def test_to_dict_is_the_inspect_json_contract(edge_net):
    opened, _ = edge_net
    inspection = inspect_image(opened, _picture(), ["conv"], top_k=3, source="dog.png")
    data = json.loads(json.dumps(inspection.to_dict()))  # JSON-ready as it is
    assert list(data) == ["model", "image", "model_input_shape", "predictions", "layers",
                          "learned_vs_classical", "top_images"]
    assert data["model"]["source"] == opened.source and data["model"]["kind"] == "TorchScript"
    assert data["image"] == "dog.png" and data["model_input_shape"] == [3, 12, 16]
    assert [set(p) for p in data["predictions"]] == [{"index", "label", "probability"}] * 3
    layer = data["layers"]["conv"]
    maps = inspection.layers["conv"]
    assert layer["shape"] == [2, 12, 16] and layer["type"] == "Conv2d"
    assert [c["channel"] for c in layer["channels"]] == maps.top()
    full = maps.maps.numpy()
    for entry in layer["channels"]:
        assert entry["mean"] == pytest.approx(float(full[entry["channel"]].mean()), abs=1e-6)
        assert entry["max"] == pytest.approx(float(full[entry["channel"]].max()), abs=1e-6)
    matches = data["learned_vs_classical"]
    assert matches["layer"] == "conv"
    assert {m["filter"] for m in matches["matches"]} == {0, 1}
    assert data["top_images"] is None


def test_write_fills_the_folder_at_once_with_the_contract_files(edge_net, tmp_path):
    opened, _ = edge_net
    inspection = inspect_image(opened, _picture(), ["conv", "relu"], max_side=None)
    folder = tmp_path / "out" / "inspect-x"
    files = inspection.write(folder, command="convlens inspect edge.pt")
    expected = {"input.png", "predictions.png", "maps-conv.png", "maps-relu.png", MAPS_FILE,
                "filters-conv.png", "learned-vs-classical.png", "inspect.json"}
    assert {path.name for path in files} == expected
    assert {path.name for path in folder.iterdir()} == expected
    assert all(path.parent == folder for path in files)
    with np.load(folder / MAPS_FILE) as arrays:
        assert sorted(arrays.files) == ["conv", "relu"]
        for name in ("conv", "relu"):
            assert arrays[name].dtype == np.float32
            np.testing.assert_array_equal(arrays[name], inspection.layers[name].maps.numpy())
    summary = json.loads((folder / "inspect.json").read_text())
    assert summary == {"convlens_version": __version__, "command": "convlens inspect edge.pt",
                       **json.loads(json.dumps(inspection.to_dict())),
                       "files": sorted(expected)}
    for name in expected - {MAPS_FILE, "inspect.json"}:
        with Image.open(folder / name) as figure:
            figure.verify()
    with pytest.raises(OutputError, match="not empty"):
        inspection.write(folder)
    assert len(inspection.write(folder, force=True)) == len(expected)


def test_a_failing_figure_leaves_no_result_folder(edge_net, tmp_path, monkeypatch):
    import convlens.results.inspection as module

    opened, _ = edge_net
    inspection = inspect_image(opened, _picture(), ["conv"])

    def broken(*args, **kwargs):
        raise ConfigError("no filters today")

    monkeypatch.setattr(module, "plot_filters", broken)
    with pytest.raises(ConfigError, match="no filters today"):
        inspection.write(tmp_path / "made" / "here")
    assert list(tmp_path.iterdir()) == [tmp_path / "edge.pt"]


def test_filters_no_builtin_kernel_fits_say_so(tmp_path):
    model = EdgeNet(side=4).eval()  # 4x4 filters: the 3x3 and 5x5 kernels cannot be centred
    path = tmp_path / "four.pt"
    torch.jit.script(model).save(str(path))
    inspection = inspect_image(open_model(path, trust_code=True), _picture(size=(9, 9)))
    assert inspection.nearest.found == []
    assert inspection.nearest.note == "no built-in kernel fits the 4x4 filters of conv"
    assert inspection.to_dict()["learned_vs_classical"] is None
    files = {path.name for path in inspection.write(tmp_path / "out")}
    assert "learned-vs-classical.png" not in files and "filters-conv.png" in files


def test_data_images_that_drive_a_channel_best_first(edge_net, tmp_path):
    opened, model = edge_net
    folder = tmp_path / "data" / "inner"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for index in range(5):
        pixels = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")
    sources = list(iter_image_files([tmp_path / "data"], recursive=True))
    assert len(sources) == 5
    seen: list[int] = []
    inspection = inspect_image(opened, _picture(), ["conv"], data=sources, channel=1,
                               images=2, progress=seen.append)
    assert sum(seen) == 5
    scores = {}
    for path in sources:
        pixels = torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32) / 255)
        with torch.no_grad():
            maps = F.conv2d(pixels.permute(2, 0, 1)[None], model.conv.weight, model.conv.bias,
                            padding=1)
        scores[str(path)] = float(maps[0, 1].mean())
    best = sorted(scores, key=scores.get, reverse=True)[:2]
    tops = inspection.top_images
    assert (tops.layer, tops.channel, tops.searched) == ("conv", 1, 5)
    assert [item.source for item in tops.images] == best
    assert [item.score for item in tops.images] == pytest.approx([scores[s] for s in best],
                                                                 abs=1e-5)
    assert inspection.to_dict()["top_images"]["images"][0]["source"] == best[0]
    files = {path.name for path in inspection.write(tmp_path / "out")}
    assert "top-images-conv-ch1.png" in files


def test_saliency_result_skips_what_the_model_cannot_take_and_writes_its_files(edge_net,
                                                                               tmp_path):
    opened, model = edge_net
    image = _picture(seed=5)
    result = saliency_image(opened, image, ["all"], steps=4, source="cat.png")
    # TorchScript takes no backward hooks: guided backprop is left out, and the result says so
    assert [m.method.value for m in result.saliency.maps] == ["gradcam", "integrated-gradients"]
    assert len(result.notes) == 1 and result.notes[0].endswith(": skipped")
    with torch.no_grad():
        probabilities = torch.softmax(model(image[None]), 1)[0]
    data = result.to_dict()
    assert data["class"] == {"index": int(probabilities.argmax()),
                             "label": f"class {int(probabilities.argmax())}",
                             "probability": pytest.approx(float(probabilities.max()))}
    assert data["methods"][0]["layer"] == "conv" and data["image"] == "cat.png"
    files = result.write(tmp_path / "sal", command="convlens saliency")
    names = {"saliency.png", "predictions.png", "saliency.npz", "saliency.json"}
    assert {path.name for path in files} == names
    with np.load(tmp_path / "sal" / "saliency.npz") as arrays:
        assert sorted(arrays.files) == ["gradcam", "input", "integrated_gradients"]
        np.testing.assert_array_equal(arrays["input"], image.numpy())
        np.testing.assert_array_equal(arrays["gradcam"],
                                      result.saliency.maps[0].heatmap.numpy())
    summary = json.loads((tmp_path / "sal" / "saliency.json").read_text())
    assert summary["files"] == sorted(names) and summary["command"] == "convlens saliency"
    assert summary["class"]["index"] == data["class"]["index"]


def test_a_failed_prediction_keeps_its_error_for_each_surface_to_word(tmp_path):
    """predict_files keeps a file it could not read with its error (data, not text): the
    library's words by default, the CLI's flags where the CLI words it."""
    from convlens.errors import ImageError, Option
    from convlens.results.prediction import Failure, Predictions

    error = ImageError("too big; raise max_pixels=N", options=[Option("max_pixels=N",
                                                                      "--max-pixels N")])
    failure = Failure(tmp_path / "big.png", error)
    path, kept = failure  # a (file, error) pair, as before
    assert path == tmp_path / "big.png" and kept is error
    assert failure.message() == "too big; raise max_pixels=N"
    assert failure.message("cli") == "too big; raise --max-pixels N"
    predictions = Predictions([], [failure])
    assert predictions.total == 1 and predictions.to_dict() == []
