"""The model registry, the architectures and checkpoints (safetensors + model.json)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

from convlens.errors import ConfigError, ModelError
from convlens.images import match_channels
from convlens.models import (
    ModelInfo,
    ModelKind,
    OpenedModel,
    choose_output,
    create_model,
    eval_mode,
    list_models,
    load_checkpoint,
    open_model,
    predict,
    preferred_side,
    prepare_input,
    register_model,
    save_checkpoint,
    strip_wrapper_prefixes,
    top_predictions,
)
from convlens.models.registry import _REGISTRY
from several_outputs import ONET_LAYERS, ONetLike
from small_nets import sides_that_run


def _info(arch="tinyvgg", channels=1, size=(8, 8), classes=3, **kwargs) -> ModelInfo:
    return ModelInfo(arch, channels, size, [f"c{i}" for i in range(classes)],
                     [0.25] * channels, [0.5] * channels, kwargs)


def test_registry_lists_the_three_architectures():
    assert list_models() == ["lenet", "resnet9", "tinyvgg"]
    assert list_models("*net*") == ["lenet", "resnet9"]
    assert list_models("nothing*") == []


def test_unknown_model_names_the_close_ones():
    with pytest.raises(ModelError, match="did you mean tinyvgg"):
        create_model("tinyvg", 1, 10, (8, 8))


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="cannot take 8x8"):
        create_model("lenet", 1, 10, (8, 8))
    with pytest.raises(ConfigError, match="unexpected keyword argument 'depth'; its settings a"):
        create_model("tinyvgg", 1, 10, (8, 8), depth=3)
    with pytest.raises(ConfigError, match=r"setting 'width' must be a whole number; got 4\.5"):
        create_model("tinyvgg", 1, 10, (8, 8), width=4.5)
    with pytest.raises(ConfigError, match="setting 'batchnorm' must be true or false; got 1"):
        create_model("tinyvgg", 1, 10, (8, 8), batchnorm=1)
    with pytest.raises(ConfigError, match="setting 'dropout' must be a finite number; got nan"):
        create_model("tinyvgg", 1, 10, (8, 8), dropout=float("nan"))
    model = create_model("tinyvgg", 1, 10, (8, 8), width=4.0, dropout=0)
    assert model.features.conv1.out_channels == 4
    with pytest.raises(ConfigError, match="at least 2 classes"):
        create_model("tinyvgg", 1, 1, (8, 8))
    with pytest.raises(ConfigError, match="width"):
        create_model("resnet9", 3, 10, (32, 32), width=0)


def test_register_model_adds_a_factory_and_refuses_a_second_one():
    @register_model("test-linear")
    def linear(in_channels, num_classes, input_size):
        """A linear classifier (test only)."""
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * input_size[0]
                                                     * input_size[1], num_classes))

    try:
        assert "test-linear" in list_models()
        model = create_model("test-linear", 2, 4, 5)
        assert model(torch.zeros(3, 2, 5, 5)).shape == (3, 4)
        with pytest.raises(ConfigError, match="already registered"):
            register_model("test-linear")(lambda *a: None)
    finally:
        _REGISTRY.pop("test-linear")


@settings(max_examples=15, deadline=None)
@given(channels=st.sampled_from([1, 3]), classes=st.integers(2, 12),
       height=st.integers(4, 40), width=st.integers(4, 40), batch=st.integers(1, 3))
def test_tinyvgg_gives_one_logit_per_class_for_any_size(channels, classes, height, width, batch):
    model = create_model("tinyvgg", channels, classes, (height, width))
    assert model(torch.rand(batch, channels, height, width)).shape == (batch, classes)


@pytest.mark.parametrize(("name", "channels", "size"), [
    ("lenet", 1, (28, 28)), ("lenet", 3, (32, 32)), ("resnet9", 3, (32, 32)),
    ("resnet9", 1, (8, 8)), ("tinyvgg", 3, (64, 64))])
def test_architectures_run_on_their_inputs(name, channels, size):
    model = create_model(name, channels, 7, size, **({"width": 8} if name == "resnet9" else {}))
    model.eval()
    assert model(torch.rand(2, channels, *size)).shape == (2, 7)


def test_layers_have_readable_names():
    tiny = create_model("tinyvgg", 3, 10, (64, 64))
    names = [name for name, _ in tiny.named_modules()]
    assert names[:4] == ["", "features", "features.conv1", "features.relu1"]
    assert isinstance(tiny.get_submodule("classifier.fc"), nn.Linear)
    resnet = create_model("resnet9", 3, 10, (32, 32), width=4)
    assert isinstance(resnet.get_submodule("features.layer1.res.body.block1.conv"), nn.Conv2d)
    assert isinstance(resnet.get_submodule("classifier.fc"), nn.Linear)


def test_lenet_has_lenet5s_parameter_count():
    # conv1 1*6*25+6, conv2 6*16*25+16, fc 400*120+120, 120*84+84, 84*10+10 (LeCun et al.)
    model = create_model("lenet", 1, 10, (28, 28))
    assert sum(p.numel() for p in model.parameters()) == 156 + 2416 + 48120 + 10164 + 850


def test_tinyvgg_forward_equals_the_functional_chain():
    torch.manual_seed(0)
    model = create_model("tinyvgg", 3, 4, (12, 12), width=5).eval()
    x = torch.rand(2, 3, 12, 12)
    f = model.features
    y = x
    for block in ((1, 2), (3, 4)):
        for index in block:
            conv = f.get_submodule(f"conv{index}")
            y = F.relu(F.conv2d(y, conv.weight, conv.bias, padding=1))
        y = F.max_pool2d(y, 2)
    fc = model.classifier.fc
    expected = y.flatten(1) @ fc.weight.T + fc.bias
    torch.testing.assert_close(model(x), expected)


def test_resnet9_residual_adds_its_input():
    torch.manual_seed(0)
    model = create_model("resnet9", 3, 10, (16, 16), width=4).eval()
    residual = model.features.layer1.res
    x = torch.rand(2, 8, 8, 8)
    torch.testing.assert_close(residual(x), x + residual.body(x))


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    torch.manual_seed(1)
    model = create_model("resnet9", 3, 5, (16, 16), width=4)
    with torch.no_grad():  # make BatchNorm's running statistics non-trivial
        model(torch.rand(8, 3, 16, 16))
    model.eval()
    info = _info("resnet9", 3, (16, 16), 5, width=4)
    info.metrics = {"val_accuracy": 0.5}
    path = save_checkpoint(model, info, tmp_path / "run" / "model.safetensors")
    assert path.name == "model.safetensors" and (path.parent / "model.json").is_file()
    for where in (path, path.parent, path.parent / "model.json"):
        opened = load_checkpoint(where)
        loaded, loaded_info = opened.module, opened.info
        assert opened.kind is ModelKind.CONVLENS and opened.source == str(path)
        assert not loaded.training
        x = torch.rand(3, 3, 16, 16)
        assert torch.equal(model(x), loaded(x))
        assert loaded_info == info
    with safe_open(str(path), "pt") as handle:  # plain safetensors, no pickle anywhere
        assert handle.metadata() == {"format": "convlens-model"}
        assert "features.prep.conv.weight" in list(handle.keys())
    data = json.loads((path.parent / "model.json").read_text())
    assert data["architecture"] == "resnet9" and data["input_size"] == [16, 16]
    assert data["class_names"] == ["c0", "c1", "c2", "c3", "c4"]


def test_save_strips_ddp_and_compile_prefixes(tmp_path):
    inner = create_model("tinyvgg", 1, 3, (8, 8))

    class Wrapper(nn.Module):  # stands in for DistributedDataParallel (.module)
        def __init__(self):
            super().__init__()
            self.module = inner

    save_checkpoint(Wrapper(), _info(), tmp_path)
    loaded = load_checkpoint(tmp_path).module
    assert set(loaded.state_dict()) == set(inner.state_dict())


def test_files_that_are_not_convlens_checkpoints_get_clear_errors(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match=r"not a convlens checkpoint: no model\.json"):
        load_checkpoint(junk)
    (tmp_path / "model.json").write_text(json.dumps(_info().to_dict()))
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_checkpoint(junk)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelError, match="does not fit tinyvgg"):
        load_checkpoint(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ModelError, match="not a convlens model description"):
        load_checkpoint(tmp_path)
    (tmp_path / "model.json").write_text("{broken")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_checkpoint(tmp_path)
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_model_info_checks_its_statistics():
    with pytest.raises(ModelError, match="one value per channel"):
        ModelInfo("tinyvgg", 3, (8, 8), ["a", "b"], [0.5], [0.5])
    with pytest.raises(ModelError, match="positive"):
        ModelInfo("tinyvgg", 1, (8, 8), ["a", "b"], [0.5], [0.0])
    assert _info(classes=4).num_classes == 4


def test_prepare_input_of_a_checkpoint_resizes_and_normalizes_like_numpy():
    opened = OpenedModel(nn.Identity(), ModelKind.CONVLENS, "m", _info(channels=3, size=(4, 6)))
    image = torch.rand(3, 4, 6)
    expected = (image.numpy() - 0.25) / 0.5
    out = prepare_input(image, opened).batch
    assert out.shape == (1, 3, 4, 6)
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-6)
    assert prepare_input(torch.rand(3, 20, 30), opened).batch.shape == (1, 3, 4, 6)


def test_channel_conversion_is_automatic_where_unambiguous():
    rgb = torch.rand(3, 5, 5)
    gray = match_channels(rgb, 1)
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]  # ITU-R BT.601
    torch.testing.assert_close(gray[0], luma)
    assert torch.equal(match_channels(gray, 3), gray.expand(3, -1, -1))
    rgba = torch.rand(4, 5, 5)
    assert torch.equal(match_channels(rgba, 3), rgba[:3])
    with pytest.raises(ModelError, match="expects 3-channel images; this image has 2"):
        match_channels(torch.rand(2, 5, 5), 3)


# --------------------------------------------------------------------------- malformed model.json

BAD_FIELDS = [
    ("architecture", None, "'architecture' must be a model name; got null"),
    ("architecture", ["tinyvgg"], "'architecture' must be a model name"),
    ("in_channels", "1", "'in_channels' must be a whole number from 1 to 16; got '1'"),
    ("in_channels", 1.5, "'in_channels' must be a whole number"),
    ("in_channels", True, "'in_channels' must be a whole number.*got true"),
    ("in_channels", 10**400, "'in_channels'.*an integer of 401 digits"),
    ("input_size", None, r"'input_size' must be two positive whole numbers \(H, W\).*got null"),
    ("input_size", [8], "'input_size' must be two positive whole numbers"),
    ("input_size", [8, float("inf")], "'input_size'.*Infinity"),
    ("input_size", [8, 10**9], "'input_size' must be two positive whole numbers"),
    ("input_size", [[8], [8]], "'input_size'"),
    ("input_size", {"h": 8}, "'input_size'.*an object of 1 entry$"),
    ("class_names", "ab", "'class_names' must be a list of 2 to"),
    ("class_names", ["only"], "'class_names' must be a list of 2 to"),
    ("class_names", ["a", ["b"], "c"], "'class_names' item 1 must be a name"),
    ("class_names", ["a", None, "c"], "'class_names' item 1 must be a name.*null"),
    ("mean", [float("nan")], "'mean' must be 1 finite number, one per input channel; got"),
    ("mean", [0.1, 0.2], "'mean' must be 1 finite number"),
    ("mean", None, "'mean' must be 1 finite number.*null"),
    ("std", [0], "'std' must be 1 positive number"),
    ("std", [float("inf")], "'std' must be 1 positive number.*Infinity"),
    ("std", ["0.5"], "'std' must be 1 positive number"),
    ("arch_kwargs", [], "'arch_kwargs' must be an object"),
    ("arch_kwargs", {"width": 10**9}, "'arch_kwargs.width' must be a whole number from 1 to"),
    ("arch_kwargs", {"width": "wide"}, "'arch_kwargs.width' must be a whole number"),
    ("arch_kwargs", {"width": None}, "'arch_kwargs.width'.*null"),
    ("arch_kwargs", {"dropout": float("nan")}, "'arch_kwargs.dropout' must be a finite number"),
    ("arch_kwargs", {"padding": 10**20}, "'arch_kwargs.padding' is .*too large"),
    ("arch_kwargs", {"padding": {"a": [1]}}, "'arch_kwargs.padding' must be a number"),
    ("arch_kwargs", {"dropout": "lots"}, "setting 'dropout' must be a finite number; got 'lots'"),
    ("arch_kwargs", {"depth": 3}, "cannot rebuild the model.*depth"),
    ("metrics", [1, 2], "'metrics' must be an object"),
    ("metrics", {"data": ["digits"]}, "'metrics.data' must be a data spec"),
    ("metrics", {"split_seed": "x"}, "'metrics.split_seed' must be a whole number"),
    ("format_version", "1", "'format_version' must be a whole number"),
    ("format_version", 99, "format version 99; this convlens reads up to 1"),
]


@pytest.mark.parametrize(("field", "value", "words"), BAD_FIELDS,
                         ids=[f"{field}={value!r}"[:40] for field, value, _ in BAD_FIELDS])
def test_a_malformed_model_json_field_is_named_in_one_line(tmp_path, field, value, words):
    path = save_checkpoint(create_model("tinyvgg", 1, 3, (8, 8)), _info(), tmp_path)
    info_path = path.parent / "model.json"
    data = json.loads(info_path.read_text())
    data[field] = value
    info_path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=words) as caught:
        load_checkpoint(tmp_path)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


@pytest.mark.parametrize(("text", "words"), [
    ("[" * 100_000, "nested too deeply"),
    ('{"format": "convlens-model", "in_channels": ' + "1" * 5000 + "}", "not usable JSON"),
    ("null", "not a convlens model description"),
    ('["format"]', "not a convlens model description"),
])
def test_model_json_that_is_not_an_object_is_refused(tmp_path, text, words):
    save_checkpoint(create_model("tinyvgg", 1, 3, (8, 8)), _info(), tmp_path)
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(ModelError, match=words):
        load_checkpoint(tmp_path)


def test_whole_floats_and_numeric_class_names_are_accepted(tmp_path):
    model = create_model("tinyvgg", 1, 3, (8, 8))
    save_checkpoint(model, _info(), tmp_path)
    data = json.loads((tmp_path / "model.json").read_text())
    data.update(in_channels=1.0, input_size=[8.0, 8], class_names=[0, 1, "two"], metrics=None,
                arch_kwargs=None)
    (tmp_path / "model.json").write_text(json.dumps(data))
    opened = load_checkpoint(tmp_path)
    loaded, info = opened.module, opened.info
    assert info.in_channels == 1 and info.input_size == (8, 8)
    assert info.class_names == ["0", "1", "two"] and info.arch_kwargs == {}
    x = torch.rand(2, 1, 8, 8)
    model.eval()
    assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize(("field", "value", "words"), [
    ("input_size", None, "model.json: 'input_size' must be two positive whole numbers"),
    ("std", [float("inf")], r"model.json: 'std' must be 1 positive number.*\[Infinity\]"),
    ("arch_kwargs", {"width": 10**9}, "model.json: 'arch_kwargs.width' must be a whole number"),
])
def test_the_page_refuses_a_malformed_model_json_with_the_same_line(tmp_path, field, value,
                                                                    words):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from convlens.serve import create_app
    from convlens.serve.guard import TOKEN_HEADER

    path = save_checkpoint(create_model("tinyvgg", 1, 3, (8, 8)), _info(), tmp_path)
    data = json.loads((tmp_path / "model.json").read_text())
    data[field] = value
    files = {"weights": ("model.safetensors", path.read_bytes()),
             "info": ("model.json", json.dumps(data).encode())}
    app = create_app()
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as client:
        response = client.post("/api/model/upload", files=files)
    assert response.status_code == 400
    error = response.json()["error"]
    assert re.match(words, error) and "\n" not in error  # named as sent, not by a temp path


# --------------------------------------------------------------------------- shared helpers


def _ddp_like(inner: nn.Module) -> nn.Module:
    class Wrapper(nn.Module):  # stands in for DistributedDataParallel (.module)
        def __init__(self):
            super().__init__()
            self.module = inner

    return Wrapper()


@pytest.mark.parametrize("wrap", [
    lambda m: m,
    _ddp_like,
    torch.compile,  # not run: its state dict already says _orig_mod.
    lambda m: _ddp_like(torch.compile(m)),
    lambda m: torch.compile(_ddp_like(m)),
], ids=["plain", "ddp", "compile", "ddp-compile", "compile-ddp"])
def test_wrapper_prefixes_come_off_whatever_the_nesting(wrap):
    inner = create_model("tinyvgg", 1, 3, (8, 8))
    state = wrap(inner).state_dict()
    stripped = strip_wrapper_prefixes(state)
    assert list(stripped) == list(inner.state_dict())  # the plain model's own names, in order
    fresh = create_model("tinyvgg", 1, 3, (8, 8))
    fresh.load_state_dict(stripped, strict=True)
    assert all(torch.equal(stripped[key], value) for key, value in inner.state_dict().items())


def test_a_prefix_only_some_keys_have_is_a_real_name_and_stays():
    state = {"module.weight": 1, "head.weight": 2}
    assert strip_wrapper_prefixes(state) == state
    assert strip_wrapper_prefixes({}) == {}
    assert strip_wrapper_prefixes({"module.": 1}) == {"module.": 1}  # nothing would be left


def test_eval_mode_restores_the_mode_also_after_an_error():
    model = nn.Sequential(nn.BatchNorm2d(2)).train()
    with eval_mode(model) as inside:
        assert inside is model and not model.training
    assert model.training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training


def _opened_checkpoint(tmp_path, channels=3, size=(6, 4)):

    info = ModelInfo("tinyvgg", channels, size, ["a", "b", "c"], [0.2] * channels,
                     [0.5] * channels, {"width": 4})
    save_checkpoint(create_model("tinyvgg", channels, 3, size, width=4), info, tmp_path)
    return open_model(tmp_path), info


def test_prepare_input_resizes_matches_channels_and_normalizes_like_torch(tmp_path):
    opened, _ = _opened_checkpoint(tmp_path, channels=1)
    image = torch.rand(3, 30, 20)
    prepared = prepare_input(image, opened)
    luma = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None, None]
    seen = F.interpolate(luma, size=(6, 4), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)
    torch.testing.assert_close(prepared.display, seen[0])
    torch.testing.assert_close(prepared.batch, (seen - 0.2) / 0.5)
    with pytest.raises(ModelError, match="expected an image"):
        prepare_input(torch.rand(5, 5), opened)


def test_predict_ranks_the_softmax_of_the_model_output(tmp_path):
    opened, info = _opened_checkpoint(tmp_path)
    images = [torch.rand(3, 6, 4), torch.rand(3, 12, 9)]  # any size: each is resized
    ranked = predict(opened, images, top_k=2)
    assert [len(top) for top in ranked] == [2, 2]
    for image, top in zip(images, ranked):
        with torch.no_grad():
            x = F.interpolate(image[None], size=(6, 4), mode="bilinear",
                              antialias=image.shape[-1] > 4, align_corners=False).clamp(0, 1)
            expected = torch.softmax(opened.module((x - 0.2) / 0.5), 1)[0]
        order = expected.argsort(descending=True)
        assert [p.index for p in top] == order[:2].tolist()
        assert [p.label for p in top] == [info.class_names[i] for i in order[:2]]
        assert top[0].probability == pytest.approx(float(expected.max()), rel=1e-5)
    assert len(predict(opened, images[:1], top_k=50)[0]) == 3
    assert predict(opened, []) == []
    with pytest.raises(ConfigError, match="at least 1"):
        predict(opened, images, top_k=0)


def test_predict_runs_images_of_several_sizes_through_a_model_of_any_size():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    opened = OpenedModel(model, ModelKind.FACTORY, "pooled", ModelInfo(in_channels=1))
    images = [torch.rand(1, 9, 9), torch.rand(1, 5, 7)]
    ranked = predict(opened, images, top_k=1)
    with torch.no_grad():
        expected = [int(model(image[None]).argmax()) for image in images]
    assert [top[0].index for top in ranked] == expected
    assert ranked[0][0].label == f"class {expected[0]}"
    maps = OpenedModel(nn.Conv2d(1, 2, 3).eval(), ModelKind.FACTORY, "maps",
                       ModelInfo(in_channels=1))
    with pytest.raises(ModelError, match="not output one row of class scores"):
        predict(maps, images)


# --------------------------------------------------------------------------- several outputs


def _onet(**kwargs) -> OpenedModel:
    torch.manual_seed(0)
    return OpenedModel(ONetLike().eval(), ModelKind.FACTORY, "onet",
                       ModelInfo(in_channels=3, input_size=(48, 48)), **kwargs)


def test_of_several_outputs_the_probabilities_are_read_as_they_are_and_said_so():
    opened = _onet()
    image = torch.rand(3, 48, 48)
    with torch.no_grad():
        box, landmarks, face = opened.module(image[None])
    chosen = choose_output((box, landmarks, face))
    assert chosen.part.index == 2 and chosen.tensor is face
    assert [part.shape for part in chosen.parts] == [(1, 4), (1, 10), (1, 2)]
    note = chosen.note()
    assert "3 outputs" in note and "(1, 4)" in note and "(1, 10)" in note
    assert "used #2 (1, 2)" in note and "probabilities" in note
    top = predict(opened, [image], top_k=5)[0]
    assert len(top) == 2  # two classes (face / no face), not four box offsets
    assert top[0].probability == pytest.approx(float(face.max()), rel=1e-6)  # no second softmax
    assert top_predictions((box, landmarks, face), opened, 2) == top


def test_the_user_picks_an_output_by_place_or_name():
    boxes = _onet(output=0)
    image = torch.rand(3, 48, 48)
    with torch.no_grad():
        box = boxes.module(image[None])[0]
    top = predict(boxes, [image], top_k=4)[0]
    assert [p.index for p in top] == box[0].argsort(descending=True).tolist()
    expected = torch.softmax(box[0], 0).sort(descending=True).values
    np.testing.assert_allclose([p.probability for p in top], expected.numpy(), rtol=1e-5)
    named = {"logits": torch.tensor([[1.0, 3.0]]), "aux": torch.tensor([[5.0, 0.0, 0.0]])}
    assert choose_output(named, "aux").part.name == "aux"
    assert choose_output(named, "0").part.name == "logits"  # a place given as text
    assert choose_output(named).reason == "the first shaped (N, classes)"
    with pytest.raises(ModelError, match=r"no output 'box'; it returns #0 'logits' \(1, 2\)"):
        choose_output(named, "box")


def test_a_bad_output_choice_names_the_setting_of_each_surface():
    with pytest.raises(ModelError, match="output=N counts from 0") as refused:
        open_model("tinyvgg", output=-1)
    assert refused.value.worded("cli").startswith("--output N counts from 0")
    assert open_model("tinyvgg", output="1").output == 1
    single = choose_output(torch.zeros(1, 3))
    assert single.note() is None and single.reason == "the model's only output"
    assert choose_output("text").tensor is None


# --------------------------------------------------------------------------- input-size hint


def test_the_size_hint_is_the_declared_one_or_a_common_one_not_the_smallest():
    model = ONetLike().eval()
    fitting = sides_that_run(model, range(30, 64))
    assert fitting == list(range(42, 50))  # ONet takes 42..49; made for 48
    assert preferred_side(fitting) == (48, "a common input size")
    assert preferred_side(fitting, layers=ONET_LAYERS) == (48, "a common input size")
    assert preferred_side(fitting, declared=(44, 44)) == (44, "the size the model declares")
    assert preferred_side(fitting, declared=(60, 60))[0] == 48  # declared but does not fit
    # a floor-mode pool: only even sides leave no pixel out; no common size among them
    assert preferred_side([9, 10, 11], layers="conv3, pool2") == (
        10, "the smallest size that leaves no pixel uncovered")
    assert preferred_side([9, 11], layers="conv3, pool2") == (9, "the smallest size that fits")
    with pytest.raises(ModelError):
        preferred_side([])


def test_a_huge_or_long_setting_is_refused_in_one_short_line():
    """A 5000-digit width was a ValueError from repr() (Python prints no int past 4300
    digits); now it is a ConfigError that says how long the value is."""
    too_long = "'width' must be a whole number; got an integer of 5001 digits$"
    with pytest.raises(ConfigError, match=too_long):
        create_model("tinyvgg", 1, 10, (8, 8), width=10**5000)
    with pytest.raises(ConfigError, match=r"got 'w{37}'\.\.\. \(300 characters\)$"):
        create_model("tinyvgg", 1, 10, (8, 8), width="w" * 300)
