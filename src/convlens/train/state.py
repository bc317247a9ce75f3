"""Resume state: where a run stands after each epoch, saved so ``resume`` continues it bit for
bit. Tensors (weights, optimizer buffers, the first layer's filter snapshots) go to
``train-state.safetensors``, the rest (settings, epoch, history, best epoch) to
``train-state.json``; both are written atomically after every epoch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import ConfigError
from ..models import unwrap_model
from ..outputs import write_file, write_text
from ..version import __version__
from ..wording import clipped
from .config import TrainConfig

STATE_WEIGHTS = "train-state.safetensors"
STATE_FILE = "train-state.json"
STATE_FORMAT = "convlens-train-state"
SPLITS = "train/val/test"
"""How the run split its data; a state without it comes from a convlens whose val split was
also the one it reported, and cannot continue as a run with a test split held out."""


@dataclass
class LoopState:
    """Where the loop stands: ``epoch`` epochs finished in ``seconds`` (of epochs), one
    ``history`` record per epoch, the ``best`` so far (``{"accuracy", "epoch"}``; epoch 0 =
    none yet), the first layer's ``filters`` (one ``(K, C, kh, kw)`` snapshot per epoch, the
    random start first) and whether patience ``stopped`` the run."""

    epoch: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"accuracy": -1.0, "epoch": 0})
    filters: list[np.ndarray] = field(default_factory=list)
    stopped: bool = False

    def record(self, record: dict) -> bool:
        """Take one finished epoch's ``record``; returns whether its val accuracy is the best
        so far (the kept model changes)."""
        self.history.append(record)
        self.epoch = record["epoch"]
        self.seconds += record["seconds"]
        if record["val_accuracy"] > self.best["accuracy"]:
            self.best = {"accuracy": record["val_accuracy"], "epoch": record["epoch"]}
            return True
        return False


def read_saved(folder: Path, given: TrainConfig) -> tuple[TrainConfig, dict]:
    """The settings and saved state of the run in ``folder``, for ``given`` (a resume): the
    run's own settings, except those of the machine (device, amp, compile, workers, threads),
    which may change. :class:`ConfigError` when there is nothing to resume or it is damaged.
    """
    state_path = folder / STATE_FILE
    if not state_path.is_file():
        raise ConfigError(f"nothing to resume in {folder}: no {STATE_FILE} (was it made by "
                          "a training run?)")
    try:
        payload = json.loads(state_path.read_text(encoding="utf-8"))
        _check_payload(payload)
        saved = TrainConfig.from_json(payload["config"])
        saved.validate()
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError,
            ConfigError) as exc:  # json's errors are ValueErrors (UnicodeDecodeError too)
        detail = clipped(" ".join(str(exc).split()), 200) or type(exc).__name__
        raise ConfigError(f"{state_path} is damaged ({detail}); start a new run") from None
    if payload.get("splits") != SPLITS:
        raise ConfigError(f"the run in {folder} was started by an older convlens, whose val split "
                          "was also the one it reported; it cannot continue with a test split "
                          "held out: start a new run")
    config = replace(saved, out=folder, resume=True, force=True, device=given.device,
                     amp=given.amp, compile=given.compile, workers=given.workers,
                     threads=given.threads if given.threads is not None else saved.threads,
                     download=False)
    return config, payload


def save_state(folder: Path, config: TrainConfig, state: LoopState, model: nn.Module,
               optimizer: torch.optim.Optimizer, world_size: int) -> None:
    """Write everything needed to continue after ``state.epoch`` into ``folder``."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone()
               for k, v in unwrap_model(model).state_dict().items()}
    optim = optimizer.state_dict()
    plain_state: dict[str, dict] = {}
    for index, values in optim["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                plain_state.setdefault(str(index), {})[name] = value
    for index, snapshot in enumerate(state.filters):
        tensors[f"filters.{index}"] = torch.from_numpy(np.ascontiguousarray(snapshot))
    payload = {
        "format": STATE_FORMAT,
        "convlens_version": __version__,
        "splits": SPLITS,
        "config": config.to_json(),
        "epoch": state.epoch,
        "seconds": state.seconds,
        "history": state.history,
        "best": state.best,
        "stopped_early": state.stopped,
        "world_size": world_size,
        "optimizer": {"param_groups": optim["param_groups"], "state": plain_state},
    }
    write_file(folder / STATE_WEIGHTS, lambda p: save_file(tensors, str(p)))
    write_text(folder / STATE_FILE, json.dumps(payload, indent=1))


def restore(folder: Path, payload: dict, epochs: int, model: nn.Module,
            optimizer: torch.optim.Optimizer, device: torch.device, keep_filters: bool
            ) -> LoopState:
    """Load the saved weights and optimizer state of the run in ``folder`` (``payload`` as
    :func:`read_saved` gave it) into ``model`` and ``optimizer``; returns where the loop
    stands. :class:`ConfigError` when the run already finished its ``epochs`` or stopped."""
    done = int(payload["epoch"])
    if done >= epochs or payload.get("stopped_early"):
        raise ConfigError(f"nothing to resume: the run in {folder} already finished "
                          f"({done} of {epochs} epochs)")
    try:
        tensors = load_file(str(folder / STATE_WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"cannot read {folder / STATE_WEIGHTS}: {exc}") from None
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ConfigError(f"{folder} holds weights of another model: {exc}") from None
    optim_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value.to(device)
    for index, values in payload["optimizer"]["state"].items():
        optim_state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": optim_state,
                               "param_groups": payload["optimizer"]["param_groups"]})
    count = sum(1 for key in tensors if key.startswith("filters."))
    filters = [tensors[f"filters.{i}"].numpy() for i in range(count)] if keep_filters else []
    return LoopState(epoch=done, seconds=float(payload["seconds"]),
                     history=list(payload["history"]), best=dict(payload["best"]),
                     filters=filters)


def _check_payload(payload: object) -> None:
    """The fields of ``train-state.json`` that a resume reads, of the kinds it writes; a
    ``ValueError`` naming the first that is not."""
    kinds: dict[str, type | tuple[type, ...]] = {
        "config": dict, "epoch": int, "seconds": (int, float), "history": list, "best": dict,
        "optimizer": dict}
    if not isinstance(payload, dict):
        raise ValueError("it is not a JSON object")
    for name, kind in kinds.items():
        value = payload.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or (
                isinstance(value, (int, float)) and not 0 <= value < 2**53):
            raise ValueError(f"{name!r} is {clipped(str(value), 40, quote=True)}")
    optimizer = payload["optimizer"]
    if not isinstance(optimizer.get("state"), dict) or not isinstance(
            optimizer.get("param_groups"), list):
        raise ValueError("'optimizer' lacks its state or param_groups")


__all__ = ["STATE_FILE", "STATE_WEIGHTS", "LoopState", "read_saved", "restore", "save_state"]
