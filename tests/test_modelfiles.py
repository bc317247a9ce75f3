"""Opening models: TorchScript, torch.export, factories with weights, pickles, torchvision."""

from __future__ import annotations

import importlib.machinery
import re
import sys
import textwrap
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save_file

from convlens.errors import ConvlensError, ModelError
from convlens.models import (
    ModelInfo,
    ModelKind,
    OpenedModel,
    audit_export_archive,
    create_model,
    load_checkpoint,
    load_state_dict,
    open_model,
    prepare_input,
    save_checkpoint,
)
from convlens.sizes import parse_size
from hostile_models import HOSTILE_BUILDERS, build_hostile

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")


def for_cli(refused: pytest.ExceptionInfo, pattern: str) -> None:
    """The refusal reads ``pattern`` as the command line prints it, while the library's own
    message names no flag (it says ``trust_code=True``, not ``--trust-code``)."""
    assert re.search(pattern, refused.value.worded("cli")), refused.value.worded("cli")
    assert " --" not in str(refused.value), str(refused.value)

NETS = textwrap.dedent('''
    import torch.nn as nn

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                                          nn.MaxPool2d(2))
            self.classifier = nn.Linear(4 * 8 * 8, 3)

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    def build():
        return Small()

    def not_a_model():
        return 42
''')


class Small(nn.Module):
    """The same net as NETS' ``Small``, defined here for TorchScript and export."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A user's module ``usernets`` in the current folder, forgotten again afterwards."""
    (tmp_path / "usernets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("usernets", None)


def _reference() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return Small().eval(), torch.rand(2, 3, 16, 16)


def test_torchscript_round_trip_gives_the_same_outputs(tmp_path):
    model, x = _reference()
    path = tmp_path / "small.pt"
    torch.jit.script(model).save(str(path))
    opened = open_model(path, trust_code=True)
    assert opened.kind is ModelKind.TORCHSCRIPT and opened.scripted
    assert opened.in_channels == 3 and opened.input_size is None
    with torch.no_grad():
        torch.testing.assert_close(opened.module(x), model(x), rtol=0, atol=0)


def test_traced_torchscript_opens_too(tmp_path):
    model, x = _reference()
    path = tmp_path / "traced.pt"
    torch.jit.trace(model, x).save(str(path))
    with torch.no_grad():
        opened = open_model(path, trust_code=True)
        torch.testing.assert_close(opened.module(x), model(x), rtol=0, atol=0)


def test_export_program_round_trip_knows_its_input_shape(tmp_path):
    model, x = _reference()
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(model, (x[:1],)), str(path))
    opened = open_model(path)
    assert opened.kind is ModelKind.EXPORT
    assert (opened.in_channels, opened.input_size, opened.fixed_input) == (3, (16, 16), True)
    assert opened.layer_types["features.0"] == "Conv2d"
    with torch.no_grad():
        torch.testing.assert_close(opened.module(x[:1]), model(x[:1]))


def test_factory_with_safetensors_weights_round_trip(nets):
    model, x = _reference()
    save_file(model.state_dict(), str(nets / "weights.safetensors"))
    opened = open_model("usernets:build", trust_code=True, weights=nets / "weights.safetensors")
    assert opened.kind is ModelKind.FACTORY and not opened.notes
    with torch.no_grad():
        torch.testing.assert_close(opened.module(x), model(x), rtol=0, atol=0)
    assert str(nets) not in sys.path, "the current folder is only on sys.path while importing"


def test_factory_with_pt_state_dict_nested_and_prefixed(nets):
    model, x = _reference()
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in
                                          model.state_dict().items()}}
    torch.save(wrapped, nets / "ckpt.pt")
    opened = open_model("usernets:build", trust_code=True, weights=nets / "ckpt.pt")
    with torch.no_grad():
        torch.testing.assert_close(opened.module(x), model(x), rtol=0, atol=0)


def test_factory_without_weights_says_they_are_random(nets):
    opened = open_model("usernets:build", trust_code=True)
    assert any("random" in note for note in opened.notes)


def test_weights_that_do_not_fit_name_the_keys(nets):
    other = nn.Sequential(nn.Conv2d(3, 4, 5))
    save_file(other.state_dict(), str(nets / "other.safetensors"))
    with pytest.raises(ModelError, match=r"do not fit.*missing features\.0\.weight.*unexpected 0"):
        open_model("usernets:build", trust_code=True, weights=nets / "other.safetensors")


@pytest.mark.parametrize(("spec", "message"), [
    ("usernets:nothing", "no callable 'nothing'"),
    ("usernets:not_a_model", "returned a int, not a torch nn.Module"),
    ("nosuchpkg.sub:build", "cannot import 'nosuchpkg.sub'"),
    ("missing-file.pt", "no such model file"),
])
def test_bad_factory_specs_say_what_is_wrong(nets, spec, message):
    with pytest.raises(ModelError, match=message):
        open_model(spec, trust_code=True)


class _Payload:
    """Pickles to ``Path.touch(marker)``: proof of whether unpickling ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"weights": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match=r"unpickling runs code.*trust_code=True") as refused:
        open_model(tmp_path / "evil.pt")
    for_cli(refused, r"unpickling runs code.*--trust-code")
    assert not marker.exists()


def test_whole_pickled_module_opens_only_when_trusted(nets):
    sys.path.insert(0, str(nets))
    try:
        import usernets

        model = usernets.build().eval()
        torch.save(model, nets / "whole.pt")
        with pytest.raises(ModelError, match="trust_code=True") as refused:
            open_model(nets / "whole.pt")
        for_cli(refused, "trust-code")
        opened = open_model(nets / "whole.pt", trust_pickle=True)
    finally:
        sys.path.remove(str(nets))
    x = torch.rand(1, 3, 16, 16)
    assert opened.kind is ModelKind.PICKLE
    with torch.no_grad():
        torch.testing.assert_close(opened.module(x), model(x))


def test_bare_weights_ask_for_an_architecture(tmp_path):
    model, _ = _reference()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    save_file(model.state_dict(), str(tmp_path / "sd.safetensors"))
    for name in ("sd.pt", "sd.safetensors"):
        with pytest.raises(ModelError, match=r"arch=NAME.*package\.module:factory") as refused:
            open_model(tmp_path / name)
        for_cli(refused, rf"--arch NAME.*package\.module:factory.*--weights \S*{name}")


def test_folder_without_checkpoint_lists_what_it_holds(tmp_path):
    (tmp_path / "other.pt").write_bytes(b"")
    with pytest.raises(ModelError, match=r"holds no model\.safetensors.*other\.pt"):
        open_model(tmp_path)


def test_weights_flag_with_a_model_file_is_refused(tmp_path):
    model, _ = _reference()
    torch.jit.script(model).save(str(tmp_path / "m.pt"))
    with pytest.raises(ModelError, match="a weights file goes with") as refused:
        open_model(tmp_path / "m.pt", weights=tmp_path / "m.pt")
    for_cli(refused, "^--weights goes with")


def test_load_state_dict_refuses_what_is_not_weights(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ModelError, match="does not hold a state dict"):
        load_state_dict(tmp_path / "list.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        load_state_dict(tmp_path / "junk.safetensors")


# --------------------------------------------------------------------------- torchvision


def test_torchvision_missing_says_so():
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed here")
    with pytest.raises(ModelError, match=r"torchvision.*not installed.*convlens\[torchvision\]"):
        open_model("torchvision:resnet18")


@pytest.fixture
def fake_torchvision(monkeypatch, tmp_path):
    """A stand-in with torchvision's documented model API (get_model, get_model_weights,
    weights.url / .meta / .transforms()), to test the local-cache rules without torchvision."""

    class Transform:
        crop_size = (16,)
        mean = (0.5, 0.4, 0.3)
        std = (0.2, 0.2, 0.2)

    class Weights:
        url = "https://download.example/small-1234.pth"
        meta: ClassVar[dict] = {"categories": ["cat", "dog", "fox"]}

        def transforms(self):
            return Transform()

        def __str__(self) -> str:
            return "Small_Weights.IMAGENET1K_V1"

    class WeightsEnum:
        DEFAULT = Weights()

    def get_model(name, weights=None):
        if name != "small":
            raise ValueError(f"Unknown model {name}")
        return Small()

    package = types.ModuleType("torchvision")
    package.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    models = types.ModuleType("torchvision.models")
    models.get_model = get_model
    models.get_model_weights = lambda name: WeightsEnum
    package.models = models
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home" / "hub" / "checkpoints" / "small-1234.pth"


def test_torchvision_weights_not_in_cache_are_not_downloaded(fake_torchvision):
    with pytest.raises(ModelError, match=r"not in the local cache.*small-1234\.pth.*never "
                                         r"downloads"):
        open_model("torchvision:small")
    with pytest.raises(ModelError, match="torchvision has no model 'nope'"):
        open_model("torchvision:nope")


def test_torchvision_weights_from_cache_bring_classes_and_normalization(fake_torchvision):
    model, x = _reference()
    fake_torchvision.parent.mkdir(parents=True)
    torch.save(model.state_dict(), fake_torchvision)
    opened = open_model("torchvision:small")
    assert opened.class_names == ["cat", "dog", "fox"]
    assert opened.input_size == (16, 16)
    assert opened.mean == [0.5, 0.4, 0.3] and opened.std == [0.2, 0.2, 0.2]
    with torch.no_grad():
        torch.testing.assert_close(opened.module(x), model(x), rtol=0, atol=0)


# --------------------------------------------------------------------------- input


@given(st.integers(1, 4096), st.integers(1, 4096))
def test_parse_input_size_reads_h_by_w(height, width):
    assert parse_size(f"{height}x{width}") == (height, width)
    assert parse_size(str(height)) == (height, height)
    assert parse_size((height, width)) == (height, width)


@pytest.mark.parametrize("text", ["", "x", "0x4", "3x-1", "big", "1.5x2"])
def test_parse_input_size_rejects_nonsense(text):
    with pytest.raises(ConvlensError, match="input size"):
        parse_size(text)


def test_prepare_input_converts_resizes_and_normalizes():
    rgb = torch.rand(3, 10, 14)
    gray_model = OpenedModel(nn.Identity(), ModelKind.FACTORY, "m",
                             ModelInfo(in_channels=1, mean=[0.5], std=[0.25]))
    prepared = prepare_input(rgb, gray_model)
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    torch.testing.assert_close(prepared.display[0], luma)
    torch.testing.assert_close(prepared.batch[0, 0], (luma - 0.5) / 0.25)

    sized = OpenedModel(nn.Identity(), ModelKind.FACTORY, "m",
                        ModelInfo(in_channels=3, input_size=(5, 7)))
    gray = torch.rand(1, 10, 14)
    prepared = prepare_input(gray, sized)
    assert prepared.batch.shape == (1, 3, 5, 7)
    # oracle: Pillow's antialiased bilinear resize of the same float image
    expected = np.asarray(Image.fromarray(gray[0].numpy(), mode="F").resize(
        (7, 5), Image.Resampling.BILINEAR))
    for channel in range(3):
        np.testing.assert_allclose(prepared.display[channel].numpy(), expected, atol=1e-5)


def test_prepare_input_refuses_channels_it_cannot_convert():
    model = OpenedModel(nn.Identity(), ModelKind.FACTORY, "m", ModelInfo(in_channels=4))
    with pytest.raises(ModelError, match="expects 4-channel images; this image has 3 channels"):
        prepare_input(torch.rand(3, 4, 4), model)


def test_mean_and_std_must_match_the_channels(nets):
    with pytest.raises(ModelError, match="one value per input channel"):
        open_model("usernets:build", trust_code=True, mean=[0.5, 0.5], std=[0.2, 0.2])
    opened = open_model("usernets:build", trust_code=True, mean=[0.5], std=[0.25])
    assert opened.mean == [0.5] * 3 and opened.std == [0.25] * 3


# --------------------------------------------------------------------------- convlens checkpoints


def _checkpoint(tmp_path: Path) -> tuple[nn.Module, ModelInfo, Path]:
    torch.manual_seed(0)
    info = ModelInfo("tinyvgg", 1, (8, 8), [str(d) for d in range(10)], [0.3], [0.4],
                     arch_kwargs={"width": 6})
    model = create_model("tinyvgg", 1, 10, (8, 8), width=6).eval()
    return model, info, save_checkpoint(model, info, tmp_path / "run")


def test_convlens_checkpoint_opens_with_its_metadata(tmp_path):
    model, info, path = _checkpoint(tmp_path)
    for spec in (path, path.parent):
        opened = open_model(spec)
        assert opened.kind is ModelKind.CONVLENS
        assert (opened.in_channels, opened.input_size) == (1, (8, 8))
        assert opened.class_names == info.class_names
        assert opened.mean == [0.3] and opened.std == [0.4]
    photo = torch.rand(3, 30, 20)
    batch = prepare_input(photo, opened).batch
    luma = (0.299 * photo[0] + 0.587 * photo[1] + 0.114 * photo[2])[None, None]
    seen = torch.nn.functional.interpolate(luma, size=(8, 8), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)
    torch.testing.assert_close(batch, (seen - 0.3) / 0.4)
    loaded = load_checkpoint(path)
    assert loaded.kind is ModelKind.CONVLENS and loaded.info == info == opened.info
    with torch.no_grad():
        torch.testing.assert_close(opened.module(batch), model(batch), rtol=0, atol=0)


def test_registry_state_dict_finds_channels_classes_and_input_size(tmp_path):
    torch.manual_seed(0)
    model = create_model("tinyvgg", 3, 4, (28, 28)).eval()
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    opened = open_model(tmp_path / "w.safetensors", arch="tinyvgg")
    assert opened.kind is ModelKind.REGISTRY
    assert (opened.in_channels, opened.input_size) == (3, (28, 28))
    x = torch.rand(2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(opened.module(x), model(x), rtol=0, atol=0)
    same = open_model("tinyvgg", weights=tmp_path / "w.safetensors", input_size="28x28")
    with torch.no_grad():
        torch.testing.assert_close(same.module(x), model(x), rtol=0, atol=0)
    with pytest.raises(ModelError, match="do not fit architecture 'tinyvgg' at input size 8x8"):
        open_model(tmp_path / "w.safetensors", arch="tinyvgg", input_size=8)
    with pytest.raises(ModelError, match="unknown model 'tinyvg'"):
        open_model(tmp_path / "w.safetensors", arch="tinyvg")


def test_registry_name_alone_gives_random_weights_to_look_at():
    opened = open_model("lenet", input_size="28")
    assert opened.kind is ModelKind.REGISTRY and opened.input_size == (28, 28)
    assert any("random weights" in note for note in opened.notes)


def test_open_model_reads_the_input_size_like_every_command():
    assert open_model("lenet", input_size="28X28").input_size == (28, 28)
    assert open_model("lenet", input_size=(28, 28)).input_size == (28, 28)
    with pytest.raises(ConvlensError, match="input size must be N or HxW pixels; got '3x'"):
        open_model("lenet", input_size="3x")


# ------------------------------------------------------------------- trust: nothing runs unasked


@pytest.mark.parametrize("kind", sorted(HOSTILE_BUILDERS))
def test_hostile_files_are_refused_without_running_anything(tmp_path, kind):
    marker = tmp_path / "marker"
    path = build_hostile(kind, tmp_path, marker)
    with pytest.raises(ModelError, match=r"trust_code=True") as refused:
        open_model(path)
    for_cli(refused, r"--trust-code")
    assert "convlens serve --trust-code" in refused.value.worded("page")
    assert "\n" not in str(refused.value)
    assert not marker.exists(), "loading ran the file's code"


def test_trusted_torchscript_does_run_its_code(tmp_path):
    """The opt-in is real: with it, the file's __setstate__ runs (the reason for the refusal)."""
    marker = tmp_path / "marker"
    opened = open_model(build_hostile("torchscript", tmp_path, marker), trust_code=True)
    assert opened.kind is ModelKind.TORCHSCRIPT and marker.read_bytes() == b"AAAA"


def test_audit_passes_a_plain_export_and_names_what_is_pickled(tmp_path):
    model, x = _reference()
    path = tmp_path / "plain.pt2"
    torch.export.save(torch.export.export(model, (x[:1],)), str(path))
    assert audit_export_archive(path.read_bytes()) == []
    evil = build_hostile("pt2-pickled-weight", tmp_path, tmp_path / "marker")
    assert any("is pickled" in reason for reason in audit_export_archive(evil.read_bytes()))


def test_truncated_export_is_one_line_and_logs_nothing(tmp_path, caplog):
    model, x = _reference()
    path = tmp_path / "cut.pt2"
    torch.export.save(torch.export.export(model, (x[:1],)), str(path))
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 30):
        path.write_bytes(data[:cut])
        for trusted in (False, True):
            with pytest.raises(ModelError, match=r"not a readable torch\.export"):
                open_model(path, trust_code=trusted)
    assert not [record for record in caplog.records if record.exc_info]


def test_factories_need_trust_and_must_be_python_code(nets):
    with pytest.raises(ModelError, match=r"names Python code to import.*trust_code=True"
                       ) as refused:
        open_model("usernets:build")
    for_cli(refused, r"names Python code to import.*--trust-code")
    for spec, words in (("os:abort", "not a model factory"), ("sys:exit", "not a model factory"),
                        ("collections:OrderedDict", "not a torch nn.Module class")):
        with pytest.raises(ModelError, match=words):
            open_model(spec, trust_code=True)


def test_pickled_weights_file_is_refused_in_one_line(tmp_path):
    marker = tmp_path / "marker"
    evil = build_hostile("pickle", tmp_path, marker)
    with pytest.raises(ModelError, match="pickled Python objects, not plain weights"):
        open_model("tinyvgg", weights=evil)
    assert not marker.exists()
