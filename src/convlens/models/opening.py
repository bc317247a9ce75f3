"""Open any image CNN the user has, as an :class:`~convlens.models.handle.OpenedModel`: the
``nn.Module`` with what is known about its input (:class:`~convlens.models.info.ModelInfo`).

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
``torch.export.load`` sees those same bytes (:func:`convlens.models.audit.audit_export_archive`).
Weight files are read with ``torch.load(weights_only=True)`` or safetensors, which cannot run
code (:mod:`convlens.models.weights`). Nothing is ever downloaded.

Messages name the settings as Python does (``trust_code=True``); each error's ``options`` let
the command line and the page name their own (``--trust-code``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import logging
import os
import re
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..devices import resolve_device
from ..errors import ModelError, Option
from ..sizes import parse_size
from ..wording import plural
from ._text import few, first_line
from .audit import audit_export_archive
from .checkpoint import INFO_FILE, WEIGHTS_FILE, load_checkpoint
from .handle import ModelKind, OpenedModel
from .heads import OutputChoice, check_output_choice
from .info import ModelInfo
from .registry import create_model, list_models
from .weights import PickleRefused, load_into, load_state_dict, state_problems, torch_load_plain

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")

PROBE_SIZES = (32, 28, 64, 8, 16, 48, 96, 128, 224, 256)
"""Input sides tried, in order, to find the size a registry architecture's weights were made
for when no input size is given."""

TRUST_CODE = Option("with trust_code=True", "with --trust-code",
                    "by starting `convlens serve --trust-code`")
"""The opt-in to code that runs on load, as each surface asks for it."""
TRUST_HINT = "only if you trust where it came from, opt in with trust_code=True"
"""How to opt in to code that runs on load, ending every refusal (with :data:`TRUST_CODE`)."""
INPUT_SIZE = Option("input_size=(H, W)", "--input-size HxW")
WEIGHTS = Option("weights=", "--weights ")
ARCH = Option("arch=NAME", "--arch NAME")
MEAN, STD = Option("mean", "--mean"), Option("std", "--std")
PICKLE_REFUSAL = (
    "{path} holds a pickled Python object, not plain weights; unpickling runs code stored in "
    "the file, so convlens refuses it by default. Better, save a state dict "
    "(torch.save(model.state_dict(), ...)) or a convlens checkpoint; " + TRUST_HINT
)
_FACTORY = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")


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
    output: OutputChoice = None,
) -> OpenedModel:
    """Open ``spec`` (a file, folder, ``package.module:factory``, ``torchvision:NAME`` or
    registry name) as an :class:`OpenedModel` in eval mode on ``device``.

    ``weights`` loads a state dict into a factory, registry or torchvision model; ``arch`` names
    the registry architecture of a bare state dict file. ``trust_code`` allows what runs code
    or writes files on load (pickles, TorchScript, ``.pt2`` with pickled parts, factories);
    ``trust_pickle`` is its old name. ``input_size`` (pixels: ``32``,
    ``"224x224"`` or ``(H, W)``, read by :func:`convlens.sizes.parse_size`) overrides what the
    file says; ``mean``/``std`` add normalization for models that do not carry it. ``output``
    names the output that holds the class scores of a model that returns several (its place
    or name; see :func:`convlens.models.heads.choose_output`).
    """
    target = resolve_device(device)
    choice = check_output_choice(output)
    size = None if input_size is None else parse_size(input_size)
    opened = _open(str(spec), weights, arch, size, trust_code or trust_pickle, target)
    if (mean is None) != (std is None):
        raise ModelError("give mean and std together (one value per input channel each)",
                         options=[MEAN, STD])
    normalization = (opened.mean, opened.std)
    if mean is not None and std is not None:
        normalization = _norm_values(mean, std, opened.in_channels)
    if size is not None or mean is not None:
        opened.info = replace(opened.info, input_size=size or opened.input_size,
                              mean=normalization[0], std=normalization[1])
    opened.output = choice
    opened.module.eval()
    return opened


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
                             f"runs it), so convlens does not do it unasked; {TRUST_HINT}",
                             options=[TRUST_CODE])
        return _open_factory(spec, weights, device)
    if not path.exists():
        if arch is None and _registry_names(spec):
            return _open_registry(spec, weights, size, device)
        raise ModelError(_missing_message(spec))
    if path.is_dir():
        path = _checkpoint_in(path)
    if weights is not None:
        raise ModelError(f"a weights file goes with a package.module:factory, a registry name "
                         f"or torchvision:NAME, not with the model file {path.name}",
                         options=[Option("a weights file", "--weights")])
    if arch is not None:
        return _open_registry(arch, path, size, device)
    if _has_metadata(path):
        return load_checkpoint(path, device=device)
    archive = _zip_names(path)
    if path.suffix.lower() == ".pt2" or any(n.endswith("/archive_format") for n in archive):
        return _open_export(path, trust_code, device)
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in archive):
        if not trust_code:
            raise ModelError(f"{path} is TorchScript, which is code: loading it runs its "
                             "__setstate__ methods, which can write files, so convlens does not "
                             f"load it unasked; {TRUST_HINT}", options=[TRUST_CODE])
        return _open_torchscript(path, device)
    if path.suffix.lower() == ".safetensors":
        raise _bare_weights(path, "holds bare weights with no model.json beside it")
    return _open_torch_save(path, trust_code, device)


def _open_torchscript(path: Path, device: torch.device) -> OpenedModel:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch's, not the user's concern
            module = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"{path} looks like TorchScript but cannot be loaded: "
                         f"{first_line(exc)}") from None
    return OpenedModel(module, ModelKind.TORCHSCRIPT, str(path),
                       ModelInfo(in_channels=_first_conv_channels(module)))


def _open_export(path: Path, trust_code: bool, device: torch.device) -> OpenedModel:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not trust_code:
        try:
            opaque = audit_export_archive(data)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}", options=exc.options) from None
        if opaque:
            raise ModelError(f"{path} is a torch.export archive that runs code on load "
                             f"({few(opaque, 2)}), so convlens does not load it unasked; "
                             f"{TRUST_HINT}", options=[TRUST_CODE])
    with warnings.catch_warnings(), _quiet_torch_loggers():
        warnings.simplefilter("ignore", FutureWarning)  # raised inside torch, not actionable
        try:
            # the very bytes audited above, so the file cannot change in between
            program = torch.export.load(io.BytesIO(data))
            module = torch.export.unflatten(program).to(device)
        except Exception as exc:  # torch.export raises many types for a bad archive
            raise ModelError(f"{path} is not a readable torch.export program: "
                             f"{first_line(exc)}") from None
    shape = _export_input_shape(program)
    fixed = shape is not None and len(shape) == 4
    info = (ModelInfo(in_channels=shape[1], input_size=(shape[2], shape[3]))
            if shape is not None and fixed else ModelInfo(in_channels=_first_conv_channels(module)))
    return OpenedModel(module, ModelKind.EXPORT, str(path), info, fixed_input=fixed,
                       layer_types=_export_types(program))


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
                             f"{first_line(exc)}") from None
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
        raise ModelError(f"{spec}() failed: {type(exc).__name__}: {first_line(exc)}") from None
    if not isinstance(module, nn.Module):
        raise ModelError(f"{spec}() returned a {type(module).__name__}, not a torch nn.Module")
    opened = OpenedModel(module, ModelKind.FACTORY, spec,
                         ModelInfo(in_channels=_first_conv_channels(module)))
    _attach_weights(opened, weights)
    opened.module.to(device)
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
            last_error = first_line(exc)
            continue
        if state is None or not state_problems(module, state):
            fitting.append((candidate, module))
            if state is None or size is not None:
                break
    if not fitting:
        detail = f" ({last_error})" if last_error else ""
        where = (f"at input size {size[0]}x{size[1]}" if size is not None
                 else "at any common input size; pass input_size=(H, W)")
        raise ModelError(f"the weights in {weights} do not fit architecture {name!r} {where}"
                         f"{detail}", options=[INPUT_SIZE])
    chosen_size, module = fitting[0]
    if len(fitting) == len(sizes) and size is None and state is not None:
        chosen_size = None  # the weights fit every size tried: the model takes any
    opened = OpenedModel(module, ModelKind.REGISTRY, f"{name} ({weights or 'random weights'})",
                         ModelInfo(name, in_channels, chosen_size))
    if state is None:
        opened.notes.append(f"no weights given: {name} has random weights "
                            f"({plural(in_channels, 'input channel')}, "
                            f"{plural(num_classes, 'class', 'classes')})")
    else:
        load_into(opened.module, state, Path(weights))
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
    opened = OpenedModel(module, ModelKind.TORCHVISION, f"torchvision:{name}",
                         ModelInfo(in_channels=3))
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
                         "or pass a weights file with weights=PATH",
                         options=[Option("weights=PATH", "--weights PATH")])
    load_into(opened.module, load_state_dict(cached), cached)
    opened.source += f" ({default})"
    categories = default.meta.get("categories")
    transform = default.transforms()
    crop = getattr(transform, "crop_size", None)
    side = (crop[0] if isinstance(crop, (list, tuple)) else crop) if crop else None
    normalized = (getattr(transform, "mean", None) is not None
                  and getattr(transform, "std", None))
    opened.info = replace(
        opened.info, architecture=name,
        class_names=list(categories) if categories else None,
        input_size=(int(side), int(side)) if side else None,
        mean=list(transform.mean) if normalized else None,
        std=list(transform.std) if normalized else None)


def _open_torch_save(path: Path, trust_code: bool, device: torch.device) -> OpenedModel:
    try:
        state = torch_load_plain(path)
    except PickleRefused:
        if not trust_code:
            raise ModelError(PICKLE_REFUSAL.format(path=path), options=[TRUST_CODE]) from None
        return _open_pickle(path, device)
    count = sum(1 for value in state.values() if isinstance(value, torch.Tensor)) if isinstance(
        state, dict) else 0
    raise _bare_weights(path, f"holds bare weights (a state dict of {count} tensors) and no "
                              "architecture")


def _open_pickle(path: Path, device: torch.device) -> OpenedModel:
    try:
        loaded = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise ModelError(f"unpickling {path} failed: {type(exc).__name__}: "
                         f"{first_line(exc)}") from None
    if not isinstance(loaded, nn.Module):
        raise ModelError(f"{path} holds a {type(loaded).__name__}, not a torch nn.Module")
    return OpenedModel(loaded, ModelKind.PICKLE, str(path),
                       ModelInfo(in_channels=_first_conv_channels(loaded)))


# --------------------------------------------------------------------------- helpers


def _attach_weights(opened: OpenedModel, weights) -> None:
    if weights is None:
        opened.notes.append(f"no weights given: {opened.source} has the random weights its "
                            "factory made")
        return
    path = Path(weights)
    load_into(opened.module, load_state_dict(path), path)
    opened.source += f" + {path.name}"


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
    """The user's normalization, checked: finite, as many of each, ``std`` > 0, one value per
    channel (one value is used for every channel)."""
    mean, std = [float(v) for v in mean], [float(v) for v in std]
    both = [MEAN, STD]
    if not all(value == value and abs(value) != float("inf") for value in mean + std):
        raise ModelError(f"mean and std take finite numbers; got {mean} and {std}", options=both)
    if len(mean) != len(std):
        raise ModelError(f"mean has {len(mean)} values but std has {len(std)}", options=both)
    if any(value <= 0 for value in std):
        raise ModelError(f"std values must be > 0; got {std}", options=[STD])
    if channels is not None and len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    if channels is not None and len(mean) != channels:
        raise ModelError(f"mean/std need one value per input channel ({channels}); "
                         f"got {len(mean)}", options=both)
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


def _bare_weights(path: Path, what: str) -> ModelError:
    return ModelError(f"{path} {what}; say which architecture they belong to: arch=NAME (a "
                      "convlens registry model) or a package.module:factory spec with "
                      f"weights={path}", options=[ARCH, WEIGHTS])


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


__all__ = ["TRUST_CODE", "TRUST_HINT", "open_model"]
