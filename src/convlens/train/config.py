"""What decides a training run: the hyperparameters per kind of data (:data:`PRESETS`) and the
settings of one run (:class:`TrainConfig`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..data import DataKind
from ..errors import ConfigError, Option
from ..limits import MAX_LAYER_NUMBER, check_at_most
from ..models import check_settings, get_model_entry
from ..sizes import parse_size

AMP = Option("amp=True", "--amp")
RESUME = Option("resume=True", "--resume")
"""How each surface names the settings a training run's notes and errors mention."""

# ---------------------------------------------------------------------------------------------
# Hyperparameters: every number that shapes training, in one place, per kind of data.
#
# optimizer   SGD, Nesterov momentum 0.9, weight decay on every parameter.
# schedule    learning rate rises linearly from 0 to `lr` over the first `warmup` share of the
#             steps, then falls linearly to 0 at the last step (airbench's triangle).
# loss        cross-entropy with label smoothing (soft targets: fewer over-confident models).
# threads     CPU threads; the 8x8 digits batches are so small that thread hand-offs cost more
#             than they save, and on a busy machine OpenMP's spin-waits make 2 threads ~10x
#             slower than 1. None keeps torch's default.
# Digits numbers: 30 epochs reach 99.4-100% val accuracy for seeds 0-5 (SVC: 98.3%), ~5 s on
# one core of a 2-core CPU. CIFAR numbers follow the ResNet-9 DAWNBench recipe, scaled down.
# ---------------------------------------------------------------------------------------------
MOMENTUM = 0.9
"""SGD's (Nesterov) momentum, for every preset."""


@dataclass(frozen=True)
class Preset:
    """The hyperparameters a kind of data trains with unless the run says otherwise."""

    model: str
    arch_kwargs: dict
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup: float = 0.25
    threads: int | None = None


PRESETS: dict[DataKind, Preset] = {
    DataKind.DIGITS: Preset("tinyvgg", {"width": 32, "batchnorm": True}, epochs=30,
                            batch_size=64, lr=0.05, threads=1),
    DataKind.MNIST: Preset("lenet", {}, epochs=8, batch_size=128, lr=0.05),
    DataKind.FASHION_MNIST: Preset("lenet", {}, epochs=15, batch_size=128, lr=0.05),
    DataKind.CIFAR10: Preset("resnet9", {"width": 64}, epochs=20, batch_size=512, lr=0.2,
                             label_smoothing=0.2),
    DataKind.CIFAR100: Preset("resnet9", {"width": 64}, epochs=30, batch_size=512, lr=0.2,
                              label_smoothing=0.1),
    DataKind.FOLDER: Preset("tinyvgg", {"width": 32, "batchnorm": True}, epochs=20,
                            batch_size=32, lr=0.02),
}


@dataclass(frozen=True)
class Hyper:
    """The numbers a resolved run trains with, none missing (:meth:`TrainConfig.hyper`)."""

    model: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    label_smoothing: float
    warmup: float


@dataclass
class TrainConfig:
    """Everything that decides a training run. Fields left ``None`` take the data's preset
    (:data:`PRESETS`); ``model`` and ``arch_kwargs`` likewise.

    ``size`` ``(H, W)`` / ``N`` / ``"HxW"`` resizes images; ``mode`` ``auto|gray|rgb``;
    ``augment`` off disables crop and flip; ``crop_pad`` (px) and ``flip`` override the data's
    default augmentation. ``val_fraction`` of each class is held out as the test split where
    the data has no held-out part of its own, and the same share of the rest is the val split
    (``split_seed`` seeds both). ``patience`` stops after that many epochs without a better val
    accuracy. ``baseline`` fits scikit-learn's SVC on the same splits (default: on for digits).
    ``out`` is the run folder (default: a new ``runs/<data>-<model>``); ``force`` reuses a
    non-empty one; ``resume`` continues the run in ``out`` from its last finished epoch.
    """

    data: str = "digits"
    model: str | None = None
    arch_kwargs: dict | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    warmup: float | None = None
    size: int | tuple[int, int] | str | None = None
    mode: str = "auto"
    val_fraction: float = 0.2
    split_seed: int = 0
    augment: bool = True
    crop_pad: int | None = None
    flip: bool | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    channels_last: bool | None = None
    compile: bool = False
    threads: int | None = None
    workers: int | None = None
    strict: bool = False
    download: bool = False
    patience: int | None = None
    baseline: bool | None = None
    filters_gif: bool = True
    out: Path | None = None
    force: bool = False
    resume: bool = False

    def resolved(self, kind: DataKind) -> TrainConfig:
        """A copy with every ``None`` hyperparameter taken from the preset for ``kind``."""
        preset = PRESETS[kind]
        values = {}
        for name in ("epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "warmup",
                     "threads"):
            if getattr(self, name) is None:
                values[name] = getattr(preset, name)
        model = (self.model or preset.model).strip().lower()
        values["model"] = model
        if self.arch_kwargs is None:
            # the preset's settings belong to the preset's model; another model starts plain
            values["arch_kwargs"] = dict(preset.arch_kwargs) if model == preset.model else {}
        if self.baseline is None:
            values["baseline"] = kind is DataKind.DIGITS
        return replace(self, **values)

    def hyper(self) -> Hyper:
        """The run's numbers, once :meth:`resolved` has filled them in."""
        values = {name: getattr(self, name) for name in ("model", "epochs", "batch_size", "lr",
                                                           "weight_decay", "label_smoothing",
                                                           "warmup")}
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise ConfigError(f"settings not resolved yet: {', '.join(missing)}")
        return Hyper(**values)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot work."""
        checks = [
            (self.epochs is None or self.epochs >= 1, f"epochs must be at least 1; got "
             f"{self.epochs}"),
            (self.batch_size is None or self.batch_size >= 1, "batch size must be at least 1; "
             f"got {self.batch_size}"),
            (self.lr is None or (math.isfinite(self.lr) and self.lr > 0), "learning rate must be "
             f"a positive number; got {self.lr}"),
            (self.weight_decay is None or self.weight_decay >= 0, "weight decay must be >= 0; "
             f"got {self.weight_decay}"),
            (self.label_smoothing is None or 0 <= self.label_smoothing < 1, "label smoothing "
             f"must lie in [0, 1); got {self.label_smoothing}"),
            (self.warmup is None or 0 <= self.warmup < 1, f"warmup must lie in [0, 1); got "
             f"{self.warmup}"),
            (self.crop_pad is None or self.crop_pad >= 0, f"crop padding must be >= 0; got "
             f"{self.crop_pad}"),
            (self.patience is None or self.patience >= 1, f"patience must be at least 1 epoch; "
             f"got {self.patience}"),
            (self.threads is None or self.threads >= 1, f"threads must be at least 1; got "
             f"{self.threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.crop_pad is not None:
            check_at_most(self.crop_pad, MAX_LAYER_NUMBER, "crop padding (px)")
        if self.size is not None:
            parse_size(self.size, "size")  # at most MAX_IMAGE_SIDE; the budget checks the set
        if self.model is not None:
            entry = get_model_entry(self.model)
            if self.arch_kwargs:
                check_settings(entry, self.arch_kwargs)
        if self.resume and self.out is None:
            raise ConfigError("resume=True needs out: the folder of the run to continue",
                              options=[RESUME, Option("out", "--out")])

    def to_json(self) -> dict:
        """The settings as JSON-ready values (``out`` as text, ``size`` as a list)."""
        data = asdict(self)
        data["out"] = str(self.out) if self.out is not None else None
        if isinstance(self.size, tuple):
            data["size"] = list(self.size)
        return data

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """The inverse of :meth:`to_json`; unknown keys (from other versions) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if values.get("out") is not None:
            values["out"] = Path(values["out"])
        if isinstance(values.get("size"), list):
            values["size"] = tuple(values["size"])
        return cls(**values)


__all__ = ["MOMENTUM", "PRESETS", "Hyper", "Preset", "TrainConfig"]
