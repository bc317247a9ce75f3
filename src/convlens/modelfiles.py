"""Open any image CNN the user has, as an ``nn.Module`` plus what is known about its input.

:func:`open_model` takes one spec and finds out what it is:

* a convlens checkpoint (``model.safetensors`` with ``model.json`` beside it, or its folder),
  opened with :func:`convlens.models.load_checkpoint`;
* a TorchScript file (``torch.jit.save``) or a ``torch.export`` program (``.pt2``);
* ``package.module:factory`` (a function or class that builds the ``nn.Module``, the user's
  own architecture) with ``weights=`` a state dict file, ``.safetensors`` or ``.pt``;
* a bare state dict file with ``arch=`` a registry name (``tinyvgg``), or a registry name alone
  (random weights, to look at the architecture);
* ``torchvision:NAME`` where torchvision is installed, with weights from the local cache only;
* a whole pickled module.

Trust: anything that can run code or write files while it loads opens only with
``trust_code=True`` (the CLI's and ``serve``'s ``--trust-code``): a pickled module, TorchScript
(its ``__setstate__`` methods run on load and can write files), a ``.pt2`` archive with pickled
weights, constants, custom objects or compiled code, and ``package.module:factory`` (importing
runs the module). A ``.pt2`` is read into memory and audited member by member before
``torch.export.load`` sees those same bytes (:func:`audit_export_archive`). Weight files are read
with ``torch.load(weights_only=True)`` or safetensors, which cannot run code. Nothing is ever
downloaded.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import importlib.util
import inspect
import io
import json
import logging
import os
import pickle
import re
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .devices import resolve_device
from .errors import ModelError
from .models import (
    INFO_FILE,
    WEIGHTS_FILE,
    create_model,
    list_models,
    load_checkpoint,
)
from .models.handle import PreparedInput, prepare_input, strip_wrapper_prefixes
from .sizes import parse_size
from .wording import plural

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
NESTED_STATE_KEYS = ("state_dict", "model_state_dict", "model", "weights")

PROBE_SIZES = (32, 28, 64, 8, 16, 48, 96, 128, 224, 256)
"""Input sides tried, in order, to find the size a registry architecture's weights were made
for when no input size is given."""

TRUST_HINT = ("only if you trust where it came from, opt in with --trust-code (Python: "
              "trust_code=True; the page: start `convlens serve --trust-code`)")
"""How to opt in to code that runs on load, ending every refusal; one wording for every surface."""
PICKLE_REFUSAL = (
    "{path} holds a pickled Python object, not plain weights; unpickling runs code stored in "
    "the file, so convlens refuses it by default. Better, save a state dict "
    "(torch.save(model.state_dict(), ...)) or a convlens checkpoint; " + TRUST_HINT
)
_FACTORY = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")


class ModelKind(str, enum.Enum):
    """What a model spec turned out to be."""

    CONVLENS = "convlens checkpoint"
    TORCHSCRIPT = "TorchScript"
    EXPORT = "torch.export program"
    FACTORY = "factory"
    REGISTRY = "registry architecture"
    TORCHVISION = "torchvision"
    PICKLE = "pickled module"


@dataclass
class OpenedModel:
    """A model ready to run, in eval mode, with what is known about the input it wants.

    ``in_channels`` and ``input_size`` (``(H, W)`` pixels) are ``None`` where the file does not
    say; images then keep their own size. ``mean``/``std`` (one value per channel) normalize the
    input when given. ``info`` is the :class:`convlens.models.ModelInfo` of a convlens
    checkpoint. ``layer_types`` maps layer names to class names where the modules themselves do
    not tell (exported programs). ``notes`` are things the user should know (random weights).
    """

    module: nn.Module
    kind: ModelKind
    source: str
    in_channels: int | None = None
    input_size: tuple[int, int] | None = None
    class_names: list[str] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    info: Any = None
    fixed_input: bool = False
    layer_types: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def scripted(self) -> bool:
        """True for TorchScript, whose submodules take no Python hooks."""
        return isinstance(self.module, torch.jit.ScriptModule)

    @property
    def device(self) -> torch.device:
        for tensor in self.module.parameters():
            return tensor.device
        for tensor in self.module.buffers():
            return tensor.device
        return torch.device("cpu")

    def class_name(self, index: int) -> str:
        """The name of output ``index`` (``"class 3"`` where the model has no class names)."""
        if self.class_names is not None and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return f"class {index}"

    def describe(self) -> str:
        """One line: source, kind, input it expects."""
        channels = ("? channels" if self.in_channels is None
                    else plural(self.in_channels, "channel"))
        size = "any size" if self.input_size is None else "x".join(map(str, self.input_size))
        return f"{self.source} ({self.kind.value}; input {channels}, {size})"


def open_model(
    spec: str | Path,
    *,
    weights: str | Path | None = None,
    arch: str | None = None,
    input_size: str | int | tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    trust_code: bool = False,
    device: str | torch.device = "cpu",
    trust_pickle: bool = False,
) -> OpenedModel:
    """Open ``spec`` (a file, folder, ``package.module:factory``, ``torchvision:NAME`` or
    registry name) as an :class:`OpenedModel` in eval mode on ``device``.

    ``weights`` loads a state dict into a factory, registry or torchvision model; ``arch`` names
    the registry architecture of a bare state dict file. ``trust_code`` allows what runs code
    or writes files on load (pickles, TorchScript, ``.pt2`` with pickled parts, factories);
    ``trust_pickle`` is its old name. ``input_size`` (pixels: ``32``,
    ``"224x224"`` or ``(H, W)``, read by :func:`convlens.sizes.parse_size`) overrides what the
    file says; ``mean``/``std`` add normalization for models that do not carry it.
    """
    target = resolve_device(device)
    size = None if input_size is None else parse_size(input_size)
    opened = _open(str(spec), weights, arch, size, trust_code or trust_pickle, target)
    if size is not None:
        opened.input_size = size
    if (mean is None) != (std is None):
        raise ModelError("give --mean and --std together (one value per input channel each)")
    if mean is not None and std is not None:
        opened.mean, opened.std = _norm_values(mean, std, opened.in_channels)
    opened.module.eval()
    return opened


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read plain weights from ``.safetensors`` or a ``torch.save`` file, never running code.

    A dict nesting the weights under ``state_dict``/``model``/... is unwrapped, and the
    ``module.`` / ``_orig_mod.`` prefixes of DDP and ``torch.compile`` are stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such weights file: {path}")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{path} is not a readable safetensors file ({exc})") from None
    else:
        try:
            state = _torch_load_plain(path)
        except _PickleRefused:
            raise ModelError(f"{path} holds pickled Python objects, not plain weights, and "
                             "unpickling runs code; a weights file must be a state dict of "
                             "tensors (torch.save(model.state_dict(), ...) or .safetensors)"
                             ) from None
    return _clean_state(state, path)


_EXPORT_TEXT_MEMBERS = ("archive_format", "archive_version", "version", "byteorder",
                        "serialization_id")
_EXPORT_PROGRAM = re.compile(r"(^|/)(models/[^/]+\.json|serialized_exported_program\.json)$")
_EXPORT_CODE_PARTS = ("aotinductor/", ".so", ".dll", ".dylib", ".cpp")


def audit_export_archive(data: bytes) -> list[str]:
    """What in a torch.export archive (the bytes of a ``.pt2`` file) would run code or build
    arbitrary objects on load; empty when it holds only JSON, raw tensor bytes and plain-tensor
    pickles.

    ``torch.export.load`` unpickles with ``weights_only=False`` any payload its config marks
    ``use_pickle`` (and custom or opaque objects), falls back to a full unpickler when a
    plain-tensor read fails, and loads compiled AOTInductor libraries. So every member is
    sorted: JSON and the format's few text files are data; a payload a config names as raw
    tensor bytes is data; a config entry that is pickled or an object is refused; compiled code is
    refused; any other member must load with ``torch.load(weights_only=True)``, which runs no
    code, or it is refused.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
            if not any(_EXPORT_PROGRAM.search(name) for name in members):
                # e.g. a truncated file, where zipfile finds an inner archive's directory
                raise ModelError("not a readable torch.export archive: it holds no exported "
                                 "program (truncated or not a .pt2)")
            opaque: list[str] = []
            raw: set[str] = set()
            for name in members:
                if name.endswith("_config.json") and "/data/" in f"/{name}":
                    raw |= _audit_payload_config(archive.read(name), name, opaque)
            for name in members:
                inner = name.split("/", 1)[-1]
                if any(part in inner for part in _EXPORT_CODE_PARTS):
                    opaque.append(f"compiled code {inner}")
                elif (name in raw or inner.endswith(".json") or inner.startswith("extra/")
                      or inner.rsplit("/", 1)[-1] in _EXPORT_TEXT_MEMBERS):
                    continue
                elif not _plain_tensors(archive.read(name)):
                    opaque.append(f"{inner} is not plain tensors")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelError(f"not a readable torch.export archive: {_first_line(exc)}") from None
    return opaque


def _audit_payload_config(text: bytes, name: str, opaque: list[str]) -> set[str]:
    """The members a weights/constants config names as raw tensor bytes; what it would unpickle
    goes to ``opaque``."""
    try:
        entries = json.loads(text)["config"]
        items = list(entries.items())
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        opaque.append(f"{name.split('/', 1)[-1]} cannot be read")
        return set()
    folder = name.rsplit("/", 1)[0]
    raw: set[str] = set()
    for fqn, meta in items:
        path_name = meta.get("path_name") if isinstance(meta, dict) else None
        if not isinstance(path_name, str):
            opaque.append(f"{fqn!r} has no payload")
        elif meta.get("use_pickle") or not meta.get("tensor_meta"):
            opaque.append(f"{fqn!r} is pickled")
        else:
            raw.add(f"{folder}/{path_name}")
    return raw


def _plain_tensors(payload: bytes) -> bool:
    """Whether ``payload`` loads with the safe unpickler (tensors and containers only)."""
    try:
        torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception:  # any failure means torch would fall back to the full unpickler
        return False
    return True


@contextlib.contextmanager
def _quiet_torch_loggers() -> Iterator[None]:
    """Keep torch.export from logging tracebacks of a bad archive before convlens' one line."""
    loggers = [logging.getLogger(name) for name in ("torch.export", "torch._export")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _is_python_function(factory: Any) -> bool:
    """A function written in Python (or a partial of one): not a built-in such as ``os.abort``
    that could end the process without an exception."""
    target = getattr(factory, "func", factory)
    return inspect.isfunction(target) or inspect.ismethod(target)


# --------------------------------------------------------------------------- one per kind


def _open(spec: str, weights, arch, size, trust_code: bool, device) -> OpenedModel:
    if spec.startswith("torchvision:"):
        return _open_torchvision(spec.split(":", 1)[1], weights, device)
    path = Path(spec).expanduser()
    if not path.exists() and _FACTORY.match(spec):
        if not trust_code:
            raise ModelError(f"{spec} names Python code to import and call (importing a module "
                             f"runs it), so convlens does not do it unasked; {TRUST_HINT}")
        return _open_factory(spec, weights, device)
    if not path.exists():
        if arch is None and _registry_names(spec):
            return _open_registry(spec, weights, size, device)
        raise ModelError(_missing_message(spec))
    if path.is_dir():
        path = _checkpoint_in(path)
    if weights is not None:
        raise ModelError(f"--weights goes with a package.module:factory, a registry name or "
                         f"torchvision:NAME, not with the model file {path.name}")
    if arch is not None:
        return _open_registry(arch, path, size, device)
    if _has_metadata(path):
        return _open_convlens(path, device)
    archive = _zip_names(path)
    if path.suffix.lower() == ".pt2" or any(n.endswith("/archive_format") for n in archive):
        return _open_export(path, trust_code, device)
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in archive):
        if not trust_code:
            raise ModelError(f"{path} is TorchScript, which is code: loading it runs its "
                             "__setstate__ methods, which can write files, so convlens does not "
                             f"load it unasked; {TRUST_HINT}")
        return _open_torchscript(path, device)
    if path.suffix.lower() == ".safetensors":
        raise ModelError(_bare_weights_message(path, "holds bare weights with no model.json "
                                                     "beside it"))
    return _open_torch_save(path, trust_code, device)


def _open_convlens(path: Path, device: torch.device) -> OpenedModel:
    module, info = load_checkpoint(path, device=str(device))
    return OpenedModel(module, ModelKind.CONVLENS, str(path), info.in_channels,
                       tuple(info.input_size), list(info.class_names), list(info.mean),
                       list(info.std), info=info)


def _open_torchscript(path: Path, device: torch.device) -> OpenedModel:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch's, not the user's concern
            module = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"{path} looks like TorchScript but cannot be loaded: "
                         f"{_first_line(exc)}") from None
    return OpenedModel(module, ModelKind.TORCHSCRIPT, str(path), _first_conv_channels(module))


def _open_export(path: Path, trust_code: bool, device: torch.device) -> OpenedModel:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not trust_code:
        try:
            opaque = audit_export_archive(data)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
        if opaque:
            raise ModelError(f"{path} is a torch.export archive that runs code on load "
                             f"({_few(opaque, 2)}), so convlens does not load it unasked; "
                             f"{TRUST_HINT}")
    with warnings.catch_warnings(), _quiet_torch_loggers():
        warnings.simplefilter("ignore", FutureWarning)  # raised inside torch, not actionable
        try:
            # the very bytes audited above, so the file cannot change in between
            program = torch.export.load(io.BytesIO(data))
            module = torch.export.unflatten(program).to(device)
        except Exception as exc:  # torch.export raises many types for a bad archive
            raise ModelError(f"{path} is not a readable torch.export program: "
                             f"{_first_line(exc)}") from None
    shape = _export_input_shape(program)
    opened = OpenedModel(module, ModelKind.EXPORT, str(path), layer_types=_export_types(program))
    if shape is not None and len(shape) == 4:
        opened.in_channels = shape[1]
        opened.input_size = (shape[2], shape[3])
        opened.fixed_input = True
    else:
        opened.in_channels = _first_conv_channels(module)
    return opened


def _open_factory(spec: str, weights, device: torch.device) -> OpenedModel:
    module_name, attribute = spec.split(":", 1)
    with _importable_from_cwd():
        try:
            package = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ModelError(f"cannot import {module_name!r} for {spec}: {exc}; is it installed "
                             "or in the current folder?") from None
        except Exception as exc:
            raise ModelError(f"importing {module_name!r} failed: {type(exc).__name__}: "
                             f"{_first_line(exc)}") from None
    factory = getattr(package, attribute, None)
    if factory is None or not callable(factory):
        raise ModelError(f"{module_name!r} has no callable {attribute!r}")
    if isinstance(factory, type) and not issubclass(factory, nn.Module):
        raise ModelError(f"{spec} is the class {factory.__name__}, not a torch nn.Module class "
                         "or a function that returns a model")
    if not isinstance(factory, type) and not _is_python_function(factory):
        raise ModelError(f"{spec} is a {type(factory).__name__}, not a model factory: give an "
                         "nn.Module class or a Python function that returns a model")
    try:
        module = factory()
    except (Exception, SystemExit) as exc:  # the user's code may do anything, exit included
        raise ModelError(f"{spec}() failed: {type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(module, nn.Module):
        raise ModelError(f"{spec}() returned a {type(module).__name__}, not a torch nn.Module")
    opened = OpenedModel(module, ModelKind.FACTORY, spec)
    _attach_weights(opened, weights)
    opened.module.to(device)
    opened.in_channels = _first_conv_channels(opened.module)
    return opened


def _open_registry(name: str, weights, size, device: torch.device) -> OpenedModel:
    state = load_state_dict(weights) if weights is not None else None
    in_channels, num_classes = _state_shape_hints(name, state) if state else (3, 10)
    sizes = [size] if size is not None else [(side, side) for side in PROBE_SIZES]
    fitting = []
    last_error = ""
    for candidate in sizes:
        try:
            module = create_model(name, in_channels, num_classes, candidate)
        except ModelError:
            raise
        except Exception as exc:
            last_error = _first_line(exc)
            continue
        if state is None or not _state_problems(module, state):
            fitting.append((candidate, module))
            if state is None or size is not None:
                break
    if not fitting:
        detail = f" ({last_error})" if last_error else ""
        where = (f"at input size {size[0]}x{size[1]}" if size is not None
                 else "at any common input size; pass --input-size HxW")
        raise ModelError(f"the weights in {weights} do not fit architecture {name!r} {where}"
                         f"{detail}")
    chosen_size, module = fitting[0]
    opened = OpenedModel(module, ModelKind.REGISTRY, f"{name} ({weights or 'random weights'})",
                         in_channels, chosen_size)
    if len(fitting) == len(sizes) and size is None and state is not None:
        opened.input_size = None
    if state is None:
        opened.notes.append(f"no --weights given: {name} has random weights "
                            f"({in_channels} input channels, {num_classes} classes)")
    else:
        _load_into(opened.module, state, Path(weights))
    opened.module.to(device)
    return opened


def _open_torchvision(name: str, weights, device: torch.device) -> OpenedModel:
    if importlib.util.find_spec("torchvision") is None:
        raise ModelError("torchvision:NAME needs torchvision, which is not installed; install "
                         "the optional extra (pip install 'convlens[torchvision]') or give the "
                         "model another way (TorchScript, package.module:factory + weights)")
    import torchvision.models as tv_models

    try:
        module = tv_models.get_model(name, weights=None)
    except ValueError:
        raise ModelError(f"torchvision has no model {name!r}; see "
                         "torchvision.models.list_models()") from None
    opened = OpenedModel(module, ModelKind.TORCHVISION, f"torchvision:{name}", 3)
    if weights is not None:
        _attach_weights(opened, weights)
    else:
        _attach_torchvision_weights(opened, name, tv_models)
    opened.module.to(device)
    return opened


def _attach_torchvision_weights(opened: OpenedModel, name: str, tv_models) -> None:
    try:
        default = tv_models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError, KeyError):
        opened.notes.append(f"torchvision has no pretrained weights for {name}: random weights")
        return
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(default.url).name
    if not cached.is_file():
        raise ModelError(f"the pretrained weights of torchvision:{name} are not in the local "
                         f"cache ({cached}); convlens never downloads. Fetch them once "
                         f"yourself (torchvision.models.get_model({name!r}, weights='DEFAULT')) "
                         "or pass a weights file with --weights")
    _load_into(opened.module, load_state_dict(cached), cached)
    opened.source += f" ({default})"
    categories = default.meta.get("categories")
    if categories:
        opened.class_names = list(categories)
    transform = default.transforms()
    crop = getattr(transform, "crop_size", None)
    if crop:
        side = crop[0] if isinstance(crop, (list, tuple)) else crop
        opened.input_size = (int(side), int(side))
    if getattr(transform, "mean", None) is not None and getattr(transform, "std", None):
        opened.mean, opened.std = list(transform.mean), list(transform.std)


def _open_torch_save(path: Path, trust_code: bool, device: torch.device) -> OpenedModel:
    try:
        state = _torch_load_plain(path)
    except _PickleRefused:
        if not trust_code:
            raise ModelError(PICKLE_REFUSAL.format(path=path)) from None
        return _open_pickle(path, device)
    count = sum(1 for value in state.values() if isinstance(value, torch.Tensor)) if isinstance(
        state, dict) else 0
    raise ModelError(_bare_weights_message(path, f"holds bare weights (a state dict of {count} "
                                                 "tensors) and no architecture"))


def _open_pickle(path: Path, device: torch.device) -> OpenedModel:
    try:
        loaded = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise ModelError(f"unpickling {path} failed: {type(exc).__name__}: "
                         f"{_first_line(exc)}") from None
    if not isinstance(loaded, nn.Module):
        raise ModelError(f"{path} holds a {type(loaded).__name__}, not a torch nn.Module")
    return OpenedModel(loaded, ModelKind.PICKLE, str(path), _first_conv_channels(loaded))


# --------------------------------------------------------------------------- helpers


class _PickleRefused(Exception):
    pass


def _torch_load_plain(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _PickleRefused from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path} is not a model or weights file torch can read: "
                         f"{_first_line(exc)}") from None


def _clean_state(state: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, Mapping):
        for key in NESTED_STATE_KEYS:
            nested = state.get(key)
            if isinstance(nested, Mapping) and _all_tensors(nested):
                state = nested
                break
    if not isinstance(state, Mapping) or not state or not _all_tensors(state):
        kind = type(state).__name__
        raise ModelError(f"{path} does not hold a state dict (a mapping of names to tensors); "
                         f"it holds a {kind}")
    return strip_wrapper_prefixes(state)


def _all_tensors(mapping: Mapping) -> bool:
    return all(isinstance(key, str) and isinstance(value, torch.Tensor)
               for key, value in mapping.items())


def _attach_weights(opened: OpenedModel, weights) -> None:
    if weights is None:
        opened.notes.append(f"no --weights given: {opened.source} has the random weights its "
                            "factory made")
        return
    path = Path(weights)
    _load_into(opened.module, load_state_dict(path), path)
    opened.source += f" + {path.name}"


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    problems = _state_problems(module, state)
    if problems:
        raise ModelError(f"the weights in {path.name} do not fit the model: "
                         + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def _state_problems(module: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading into ``module``: missing and unexpected keys, shapes
    that differ (empty when it fits exactly)."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong = [f"{key} {tuple(state[key].shape)} vs {tuple(value.shape)}"
             for key, value in expected.items()
             if key in state and tuple(state[key].shape) != tuple(value.shape)]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    if wrong:
        problems.append(f"shape (file vs model) {_few(wrong)}")
    return problems


def _few(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _state_shape_hints(name: str, state: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(input channels, classes) of registry architecture ``name`` read off a state dict: the
    input channels of its first conv kernel and the outputs of its last weight, the keys taken
    in the architecture's own order (files such as safetensors sort them)."""
    probe = None
    for side in PROBE_SIZES:
        try:
            probe = create_model(name, 3, 2, (side, side))
            break
        except ModelError:
            raise
        except Exception:
            continue
    if probe is None:
        raise ModelError(f"architecture {name!r} cannot be built at any common input size")
    keys = [key for key, value in probe.state_dict().items()
            if key in state and key.endswith("weight") and value.ndim >= 2]
    kernels = [key for key in keys if state[key].ndim == 4]
    if not kernels:
        raise ModelError(f"the weights hold no conv kernel of {name!r}; are they for "
                         "this architecture?")
    return int(state[kernels[0]].shape[1]), int(state[keys[-1]].shape[0])


def _first_conv_channels(module: nn.Module) -> int | None:
    for _, parameter in module.named_parameters():
        if parameter.ndim == 4:
            return int(parameter.shape[1])
    return None


def _export_input_shape(program) -> tuple[int, ...] | None:
    names = list(program.graph_signature.user_inputs)
    if len(names) != 1:
        return None
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == names[0]:
            value = node.meta.get("val")
            shape = getattr(value, "shape", None)
            if shape is None or not all(isinstance(side, int) for side in shape):
                return None
            return tuple(int(side) for side in shape)
    return None


def _export_types(program) -> dict[str, str]:
    types: dict[str, str] = {}
    for node in program.graph.nodes:
        for path, kind in (node.meta.get("nn_module_stack") or {}).values():
            if path and path not in types:
                name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
                types[path] = name.rsplit(".", 1)[-1]
    return types


def _norm_values(mean, std, channels: int | None) -> tuple[list[float], list[float]]:
    mean, std = [float(v) for v in mean], [float(v) for v in std]
    if not all(value == value and abs(value) != float("inf") for value in mean + std):
        raise ModelError(f"--mean and --std take finite numbers; got {mean} and {std}")
    if len(mean) != len(std):
        raise ModelError(f"--mean has {len(mean)} values but --std has {len(std)}")
    if any(value <= 0 for value in std):
        raise ModelError(f"--std values must be > 0; got {std}")
    if channels is not None and len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    if channels is not None and len(mean) != channels:
        raise ModelError(f"--mean/--std need one value per input channel ({channels}); "
                         f"got {len(mean)}")
    return mean, std


def _has_metadata(path: Path) -> bool:
    return path.suffix.lower() == ".safetensors" and (path.parent / INFO_FILE).is_file()


def _checkpoint_in(folder: Path) -> Path:
    candidate = folder / WEIGHTS_FILE
    if candidate.is_file():
        return candidate
    found = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (*WEIGHT_SUFFIXES,
                                                                            ".pt2"))
    hint = f"; it holds {', '.join(found)}: name one of them" if found else ""
    raise ModelError(f"folder {folder} holds no {WEIGHTS_FILE}{hint}")


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def _registry_names(name: str) -> list[str]:
    return [item for item in list_models() if item == name.strip().lower()]


def _missing_message(spec: str) -> str:
    return (f"no such model file: {spec}; give a checkpoint, TorchScript or .pt2 file, "
            f"package.module:factory, a registry architecture ({', '.join(list_models())}) "
            "or torchvision:NAME")


def _bare_weights_message(path: Path, what: str) -> str:
    return (f"{path} {what}; say which architecture they belong to: --arch NAME (a convlens "
            f"registry model) or a package.module:factory spec with --weights {path}")


@contextlib.contextmanager
def _importable_from_cwd() -> Iterator[None]:
    """Let ``package.module:factory`` find the user's modules in the current folder, as
    ``python -m`` would, without leaving the folder on ``sys.path`` afterwards."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def with_input_size(opened: OpenedModel, size: tuple[int, int] | None) -> OpenedModel:
    """A copy of ``opened`` that resizes images to ``size`` (``None``: keep their own size)."""
    return replace(opened, input_size=size)


__all__ = [
    "TRUST_HINT",
    "ModelKind",
    "OpenedModel",
    "PreparedInput",
    "audit_export_archive",
    "load_state_dict",
    "open_model",
    "prepare_input",
    "with_input_size",
]
