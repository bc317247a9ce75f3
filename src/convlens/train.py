"""Train, evaluate and predict with a CNN image classifier; one run reads top to bottom.

:func:`train` takes a :class:`TrainConfig` and writes a run folder: ``model.safetensors`` +
``model.json`` (the kept, best-on-val model), ``metrics.json``, ``curves.png``,
``confusion.png``, ``filters-evolution.gif`` and ``train-state.*`` (for ``--resume``). Under
``torchrun`` it trains with DistributedDataParallel (NCCL on GPUs, Gloo on CPUs): each process
takes its share of every batch, metrics are summed across processes and only rank 0 writes.

Randomness comes from ``seed`` alone: the weights' start, and per epoch one generator for the
shuffle and the augmentation draws. On a CPU a run repeats exactly (same torch version and
thread count), and a resumed run continues bit for bit.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .data import (
    DOWNLOADS,
    Augment,
    DataKind,
    DataSplits,
    ImageSet,
    absolute_spec,
    augment_batch,
    channel_stats,
    download_dataset,
    load_data,
    parse_data_spec,
)
from .devices import resolve_device
from .errors import ConfigError, ConvlensError, DataError
from .explain import parse_size
from .limits import MAX_LAYER_NUMBER, check_at_most
from .models import (
    ModelInfo,
    check_settings,
    create_model,
    get_model_entry,
    preprocess,
    save_checkpoint,
    unwrap_model,
)
from .models.checkpoint import WEIGHTS_FILE
from .outputs import (
    FIGURE_DPI,
    check_out_dir,
    create_folder,
    printable,
    remove_made,
    save_figure,
    write_file,
    write_text,
)

METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
FILTERS_GIF = "filters-evolution.gif"
STATE_WEIGHTS = "train-state.safetensors"
STATE_FILE = "train-state.json"
DEFAULT_RUNS_ROOT = Path("runs")
BASELINE_MAX_IMAGES = 20_000
"""The SVC baseline is offered up to this many training images (it scales quadratically)."""
PROGRESS_EVERY_S = 0.2
"""The batch progress bar shows the latest batch's loss and accuracy this often, in seconds."""


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
@dataclass(frozen=True)
class Preset:
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


@dataclass
class TrainConfig:
    """Everything that decides a training run. Fields left ``None`` take the data's preset
    (:data:`PRESETS`); ``model`` and ``arch_kwargs`` likewise.

    ``size`` ``(H, W)`` / ``N`` / ``"HxW"`` resizes images; ``mode`` ``auto|gray|rgb``;
    ``augment`` off disables crop and flip; ``crop_pad`` (px) and ``flip`` override the data's
    default augmentation. ``patience`` stops after that many epochs without a better val
    accuracy. ``baseline`` fits scikit-learn's SVC on the same split (default: on for digits).
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
            raise ConfigError("--resume needs --out: the folder of the run to continue")

    def to_json(self) -> dict:
        data = asdict(self)
        data["out"] = str(self.out) if self.out is not None else None
        if isinstance(self.size, tuple):
            data["size"] = list(self.size)
        return data

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if values.get("out") is not None:
            values["out"] = Path(values["out"])
        if isinstance(values.get("size"), list):
            values["size"] = tuple(values["size"])
        return cls(**values)


def _check_state(state: object) -> None:
    """The fields of ``train-state.json`` that ``--resume`` reads, of the kinds it writes; a
    ``ValueError`` naming the first that is not."""
    kinds = {"config": dict, "epoch": int, "seconds": (int, float), "history": list,
             "best": dict, "optimizer": dict}
    if not isinstance(state, dict):
        raise ValueError("it is not a JSON object")
    for name, kind in kinds.items():
        value = state.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or (
                name in ("epoch", "seconds") and not 0 <= value < 2**53):
            raise ValueError(f"{name!r} is {str(value)[:40]!r}")
    optimizer = state["optimizer"]
    if not isinstance(optimizer.get("state"), dict) or not isinstance(
            optimizer.get("param_groups"), list):
        raise ValueError("'optimizer' lacks its state or param_groups")


@dataclass
class EvalResult:
    """Accuracy and per-class precision/recall of a model on a labelled image set.

    ``confusion`` ``(K, K)`` counts images, rows = true class, columns = predicted class.
    Precision and recall of a class with nothing predicted / no images are 0.
    """

    class_names: list[str]
    confusion: np.ndarray
    loss: float

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.total) if self.total else 0.0

    @property
    def support(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def precision(self) -> np.ndarray:
        predicted = self.confusion.sum(axis=0)
        return np.divide(np.diag(self.confusion), predicted, out=np.zeros(len(predicted)),
                         where=predicted > 0)

    @property
    def recall(self) -> np.ndarray:
        support = self.support
        return np.divide(np.diag(self.confusion), support, out=np.zeros(len(support)),
                         where=support > 0)

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "images": self.total,
            "per_class": {
                name: {"precision": float(p), "recall": float(r), "support": int(s)}
                for name, p, r, s in zip(self.class_names, self.precision, self.recall,
                                         self.support)
            },
            "confusion": self.confusion.astype(int).tolist(),
        }


@dataclass
class TrainResult:
    """What :func:`train` produced (on rank 0; other ranks get the same metrics)."""

    out_dir: Path
    info: ModelInfo
    metrics: dict
    history: list[dict]
    files: list[Path] = field(default_factory=list)

    def _repr_html_(self) -> str:
        from .display import train_result_html

        return train_result_html(self)


EpochCallback = Callable[[dict], None]


# ---------------------------------------------------------------------------------------------
# Predict and evaluate
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def predict(
    model: nn.Module, info: ModelInfo, images: Sequence[torch.Tensor], top_k: int = 5
) -> list[list[tuple[str, float]]]:
    """Top-``k`` ``(class name, probability)`` pairs, most likely first, for each image
    ``(C, H, W)`` in [0, 1] (any size and gray/RGB: see :func:`convlens.models.preprocess`)."""
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1; got {top_k}")
    if not images:
        return []
    device = _model_device(model)
    batch = torch.cat([preprocess(image.detach().to("cpu").float(), info) for image in images])
    with _eval_mode(model):
        probs = torch.softmax(model(batch.to(device)).float(), dim=1).cpu()
    k = min(top_k, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    return [
        [(info.class_names[i], float(p)) for p, i in zip(row_p.tolist(), row_i.tolist())]
        for row_p, row_i in zip(values, indices)
    ]


def evaluate(
    model: nn.Module,
    info: ModelInfo,
    data: ImageSet,
    batch_size: int = 256,
    amp: bool = False,
) -> EvalResult:
    """Run ``model`` over ``data`` (images already at ``info``'s channels and size, labels in
    ``info.class_names``' order) and count the confusion matrix."""
    if data.channels != info.in_channels or data.size != tuple(info.input_size):
        raise DataError(f"images are {data.channels}x{data.size[0]}x{data.size[1]}; the model "
                        f"takes {info.in_channels}x{info.input_size[0]}x{info.input_size[1]}")
    device = _model_device(model)
    runner = _Runner(model, device, info.mean, info.std, amp=amp,
                     channels_last=_is_channels_last(model))
    with _eval_mode(model):
        confusion, loss_sum = runner.confusion(data, info.num_classes, batch_size)
    return EvalResult(list(info.class_names), confusion.numpy(), loss_sum / max(1, len(data)))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def train(
    config: TrainConfig | None = None,
    console: Console | None = None,
    progress: bool | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> TrainResult:
    """Train a classifier as ``config`` says and write the run folder; see the module doc.

    ``console`` receives the per-epoch table and notes (rank 0 only; ``None``: silent);
    ``progress`` shows rich progress bars (default: when ``console`` is a terminal).
    ``on_epoch_end(record)`` is called after every epoch with that epoch's metrics.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) this joins the process group and trains with DDP.
    """
    config = config or TrainConfig()
    config.validate()
    with _distributed(config.device) as dist_ctx:
        trainer = _Trainer(config, dist_ctx, console, progress, on_epoch_end)
        with trainer.threads():
            return trainer.run()


@dataclass
class _Dist:
    """Where this process stands in a (possibly one-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum ``values`` over all processes (a no-op alone)."""
        if not self.active:
            return values
        reduced = values.to(self.device, _sum_dtype(self.device))
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced.to(values.device, values.dtype)

    def agree(self, make: Callable[[], object]) -> object:
        """Rank 0 computes ``make()`` and every rank gets its value, or its error."""
        if not self.active:
            return make()
        box: list[object] = [None, None]
        if self.main:
            try:
                box[0] = make()
            except ConvlensError as exc:
                box[1] = str(exc)
        dist.broadcast_object_list(box, src=0,
                                   device=self.device if self.device.type == "cuda" else None)
        if box[1] is not None:
            raise ConfigError(str(box[1]))
        return box[0]

    def barrier(self) -> None:
        if self.active:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()


@contextlib.contextmanager
def _distributed(device_name: str) -> Iterator[_Dist]:
    """Join the ``torchrun`` process group if there is one (NCCL on CUDA, else Gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield _Dist(device=resolve_device(device_name))
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    elif device.type == "mps":
        raise ConfigError("multi-process training on MPS is not supported; use --device cpu")
    backend = "nccl" if device.type == "cuda" else "gloo"
    started = not dist.is_initialized()
    if started:
        dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    try:
        yield _Dist(dist.get_rank(), dist.get_world_size(), local_rank, device)
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()


class _Trainer:
    """One training run. ``run`` reads top to bottom: data, model, loop, files."""

    def __init__(self, config: TrainConfig, dist_ctx: _Dist, console: Console | None,
                 progress: bool | None, on_epoch_end: EpochCallback | None) -> None:
        self.dist = dist_ctx
        self.device = dist_ctx.device
        self.console = console if dist_ctx.main else None
        self.show_progress = bool(self.console is not None and (
            progress if progress is not None else self.console.is_terminal))
        self.on_epoch_end = on_epoch_end
        self.started = time.perf_counter()
        self.state: dict = {}
        self.out_dir: Path | None = None
        self.made: list[Path] = []  # folders this run created, taken back if it fails early
        self.epochs_done = 0
        self.config = self._load_resume(config) if config.resume else config
        if self.config.out is not None and not self.config.resume:
            check_out_dir(self.config.out, self.config.force)  # before any slow loading
        elif self.config.out is None and dist_ctx.main:
            check_out_dir(DEFAULT_RUNS_ROOT, force=True)  # a new run folder can go there

    # -- setup -----------------------------------------------------------------------------
    def _load_resume(self, given: TrainConfig) -> TrainConfig:
        folder = Path(given.out)  # type: ignore[arg-type]
        state_path = folder / STATE_FILE
        if not state_path.is_file():
            raise ConfigError(f"nothing to resume in {folder}: no {STATE_FILE} (was it made by "
                              "convlens train?)")
        try:
            self.state = json.loads(state_path.read_text(encoding="utf-8"))
            _check_state(self.state)
            saved = TrainConfig.from_json(self.state["config"])
            saved.validate()
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError,
                ConfigError) as exc:  # json's errors are ValueErrors (UnicodeDecodeError too)
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ConfigError(f"{state_path} is damaged ({detail}); start a new run") from None
        # Settings of the machine, not of the run, may change on resume.
        return replace(saved, out=folder, resume=True, force=True, device=given.device,
                       amp=given.amp, compile=given.compile, workers=given.workers,
                       threads=given.threads if given.threads is not None else saved.threads,
                       download=False)

    @contextlib.contextmanager
    def threads(self) -> Iterator[None]:
        """Set the CPU thread count for this run (CPU devices only) and restore it after."""
        before = torch.get_num_threads()
        wanted = self.config.threads
        if wanted is None:
            kind, _ = parse_data_spec(self.config.data)
            wanted = PRESETS[kind].threads
        if wanted is None and self.dist.active and self.device.type == "cpu":
            wanted = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE",
                                                                        self.dist.world)))
        if wanted is not None and self.device.type == "cpu":
            torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def note(self, text: str, style: str = "") -> None:
        if self.console is not None:
            self.console.print(text, style=style or None, markup=False, highlight=False,
                               soft_wrap=True)

    def run(self) -> TrainResult:
        try:
            return self._run()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and self.out_dir is not None and (
                    self.epochs_done):
                self.note(f"interrupted after epoch {self.epochs_done}; continue with: convlens "
                          f"train --out {printable(self.out_dir)} --resume", style="yellow")
            if not self.epochs_done:  # nothing to resume: leave no empty run folder behind
                remove_made(self.made)
            raise

    def _run(self) -> TrainResult:
        splits = self._data()
        config = self.config = self.config.resolved(splits.kind)
        config.validate()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick kernels
        torch.manual_seed(config.seed)
        mean, std = channel_stats(splits.train)
        info = ModelInfo(config.model, splits.in_channels, splits.input_size,  # type: ignore
                         splits.class_names, mean, std, dict(config.arch_kwargs or {}),
                         {"data": absolute_spec(config.data), "split_seed": config.split_seed})
        model = create_model(config.model, splits.in_channels, splits.num_classes,  # type: ignore
                             splits.input_size, **info.arch_kwargs)
        first_conv = _first_conv(model)
        out_dir = self.out_dir = self._out_dir(splits)  # once the model is known to fit
        augment = self._augment(splits)
        self.note(splits.describe())
        self._warn_skipped(splits)
        baseline = self._baseline(splits) if config.baseline else None
        train_set, val_set = self._place(splits)
        runner = _Runner(model, self.device, mean, std, amp=config.amp,
                         channels_last=self._channels_last(), augment=augment,
                         label_smoothing=config.label_smoothing or 0.0)
        model = runner.model
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9,  # type: ignore
                                    nesterov=True, weight_decay=config.weight_decay)
        history: list[dict] = []
        filters = [] if first_conv is None else [_filters(model, first_conv)]
        best = {"accuracy": -1.0, "epoch": 0}
        start_epoch, spent = 1, 0.0
        if config.resume:
            start_epoch, spent, history, best, filters = self._restore(
                model, optimizer, filters)
        net = self._wrap(model)
        runner.net = net
        steps_per_epoch = self._steps_per_epoch(len(train_set))
        total_steps = config.epochs * steps_per_epoch  # type: ignore[operator]
        self._describe(info, model, augment, steps_per_epoch)
        table = _EpochTable(self.console)
        table.header()
        progress = self._progress()
        with progress:
            epoch_task = progress.add_task("epochs", total=config.epochs,
                                           completed=start_epoch - 1, loss="", acc="", ips="")
            batch_task = progress.add_task("batches", total=steps_per_epoch, loss="", acc="",
                                           ips="")
            for epoch in range(start_epoch, config.epochs + 1):  # type: ignore[operator]
                record = self._epoch(epoch, runner, optimizer, train_set, val_set, total_steps,
                                     steps_per_epoch, progress, batch_task, splits.num_classes)
                history.append(record)
                improved = record["val_accuracy"] > best["accuracy"]
                if improved:
                    best = {"accuracy": record["val_accuracy"], "epoch": epoch}
                    if self.dist.main:
                        save_checkpoint(model, self._info(info, best, history), out_dir /
                                        WEIGHTS_FILE)
                if first_conv is not None:
                    filters.append(_filters(model, first_conv))
                spent += record["seconds"]
                stop = bool(config.patience and epoch - best["epoch"] >= config.patience)
                if self.dist.main:
                    self._save_state(out_dir, model, optimizer, epoch, spent, history, best,
                                     filters, stopped=stop)
                self.epochs_done = epoch
                table.row(record, improved)
                progress.update(epoch_task, advance=1, loss=f"val loss {record['val_loss']:.3f}",
                                acc=f"val acc {100 * record['val_accuracy']:.2f}%",
                                ips=f"{record['images_per_second']:,.0f}")
                if self.on_epoch_end is not None:
                    self.on_epoch_end(dict(record))
                if stop:
                    self.note(f"stopping: no better val accuracy for {config.patience} epochs")
                    break
        return self._finish(out_dir, model, runner, info, best, history, filters, spent,
                            baseline, val_set, splits, first_conv)

    def _data(self) -> DataSplits:
        config = self.config
        if config.download:
            kind, path = parse_data_spec(config.data)
            if kind in DOWNLOADS:  # rank 0 fetches; the others wait for it, or for its error
                self.dist.agree(lambda: str(download_dataset(kind, path, progress=self.note)))
        return load_data(config.data, size=config.size, mode=config.mode,
                         val_fraction=config.val_fraction, split_seed=config.split_seed,
                         strict=config.strict, workers=config.workers)

    def _out_dir(self, splits: DataSplits) -> Path:
        config = self.config

        def make() -> str:
            if config.out is not None:
                if not config.resume:
                    check_out_dir(config.out, config.force)
                self.made = create_folder(config.out)
                return str(config.out)
            folder = _new_run_dir(DEFAULT_RUNS_ROOT, f"{splits.kind.value}-{config.model}")
            self.made = create_folder(folder)
            return str(folder)

        return Path(self.dist.agree(make))  # type: ignore[arg-type]

    def _augment(self, splits: DataSplits) -> Augment:
        config = self.config
        if not config.augment:
            return Augment()
        base = splits.augment
        if config.crop_pad is not None:  # a crop padded past the image shows mostly padding
            check_at_most(config.crop_pad, min(splits.train.size), "crop padding (px)",
                          f"the {'x'.join(map(str, splits.train.size))} images allow at most "
                          "their shorter side")
        return Augment(crop_pad=base.crop_pad if config.crop_pad is None else config.crop_pad,
                       flip=base.flip if config.flip is None else config.flip,
                       pad_mode=base.pad_mode)

    def _warn_skipped(self, splits: DataSplits) -> None:
        if splits.skipped:
            path, reason = splits.skipped[0]
            self.note(f"warning: skipped {len(splits.skipped)} unreadable image file(s), e.g. "
                      f"{path}: {reason} (--strict makes this an error)", style="yellow")

    def _baseline(self, splits: DataSplits) -> dict | None:
        if not self.dist.main:
            return None
        if len(splits.train) > BASELINE_MAX_IMAGES:
            self.note(f"no SVC baseline: {len(splits.train)} training images is more than "
                      f"{BASELINE_MAX_IMAGES} (it would take long)")
            return None
        from sklearn.svm import SVC

        started = time.perf_counter()
        features = splits.train.floats().flatten(1).numpy()
        svc = SVC().fit(features, splits.train.labels.numpy())
        accuracy = float(svc.score(splits.val.floats().flatten(1).numpy(),
                                   splits.val.labels.numpy()))
        return {"model": "SVC (scikit-learn, RBF kernel, defaults)", "val_accuracy": accuracy,
                "seconds": time.perf_counter() - started}

    def _place(self, splits: DataSplits) -> tuple[ImageSet, ImageSet]:
        """Put the data where batches are cut from: on the GPU if it fits in a quarter of its
        free memory (no copies per step), else in pinned host memory for fast transfers."""
        train_set, val_set = splits.train, splits.val
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            size = sum(t.images.numel() * t.images.element_size() for t in (train_set, val_set))
            if size < free // 4:
                return train_set.to(self.device), val_set.to(self.device)
            return (ImageSet(train_set.images.pin_memory(), train_set.labels),
                    ImageSet(val_set.images.pin_memory(), val_set.labels))
        if self.device.type == "mps":
            return train_set.to(self.device), val_set.to(self.device)
        return train_set, val_set

    def _channels_last(self) -> bool:
        if self.config.channels_last is None:
            return self.device.type == "cuda"
        return bool(self.config.channels_last)

    def _wrap(self, model: nn.Module) -> nn.Module:
        """DDP around the model under torchrun, then ``torch.compile`` (PyTorch's order)."""
        net = model
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)
        if self.config.compile:
            try:
                net = torch.compile(net)
            except Exception as exc:  # torch.compile raises many types
                raise ConfigError(f"torch.compile failed ({exc}); run without --compile") from None
        return net

    def _steps_per_epoch(self, count: int) -> int:
        per_rank = math.ceil(count / self.dist.world)
        batch = self.config.batch_size  # type: ignore[assignment]
        steps = per_rank // batch + (1 if per_rank % batch >= 2 else 0)
        if steps == 0:
            raise DataError(f"{count} training images is too few for one batch")
        return steps

    def _describe(self, info: ModelInfo, model: nn.Module, augment: Augment, steps: int) -> None:
        config = self.config
        params = sum(p.numel() for p in model.parameters())
        kwargs = ", ".join(f"{k}={v}" for k, v in info.arch_kwargs.items())
        place = f"{self.device}" + (f" x {self.dist.world} processes (DDP)" if self.dist.active
                                    else "")
        notes = []
        if config.amp and self.device.type != "cuda":
            notes.append(f"--amp ignored on {self.device.type} (autocast pays off on CUDA GPUs)")
        self.note(f"model {config.model}({kwargs}): {params:,} parameters, input "
                  f"{info.in_channels}x{info.input_size[0]}x{info.input_size[1]}; device {place}"
                  f"; threads {torch.get_num_threads()}")
        self.note(f"{config.epochs} epochs x {steps} steps, batch {config.batch_size}"
                  f"{' per process' if self.dist.active else ''}, SGD nesterov lr {config.lr} "
                  f"wd {config.weight_decay}, label smoothing {config.label_smoothing}, "
                  f"augment: {augment.describe()}, seed {config.seed}")
        for text in notes:
            self.note(text, style="yellow")

    def _progress(self) -> Progress | contextlib.AbstractContextManager:
        if not self.show_progress:
            return _NoProgress()
        return Progress(TextColumn("{task.description:>7}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[loss]}"), TextColumn("{task.fields[acc]}"),
                        TextColumn("{task.fields[ips]} img/s"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=self.console, transient=True)

    # -- one epoch -------------------------------------------------------------------------
    def _epoch(self, epoch: int, runner: _Runner, optimizer: torch.optim.Optimizer,
               train_set: ImageSet, val_set: ImageSet, total_steps: int, steps: int,
               progress, batch_task, num_classes: int) -> dict:
        config = self.config
        # One generator per epoch (and process): shuffles and augmentation repeat exactly,
        # and a resumed run draws what the uninterrupted one would have.
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch * 7919
                                                  + self.dist.rank)
        torch.manual_seed(config.seed * 1_000_003 + epoch)
        order = self._order(len(train_set), epoch, generator)
        batch = config.batch_size  # type: ignore[assignment]
        runner.net.train()
        # summed on the device: reading a number makes the host wait for the GPU, so the
        # progress bar reads the batch's loss only every PROGRESS_EVERY_S
        totals = torch.zeros(2, dtype=_sum_dtype(self.device), device=self.device)
        images_seen, shown_at = 0, -math.inf
        started = time.perf_counter()
        progress.reset(batch_task, total=steps, description=f"epoch {epoch}")
        for step in range(steps):
            index = order[step * batch:(step + 1) * batch]
            global_step = (epoch - 1) * steps + step
            lr = _triangle(global_step, total_steps, config.warmup, config.lr)  # type: ignore
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum, correct = runner.train_step(train_set, index, optimizer, generator)
            totals += torch.stack([loss_sum, correct]).to(totals.dtype)
            images_seen += len(index)
            if self.show_progress:
                now = time.perf_counter()
                fields = {"ips": f"{images_seen * self.dist.world / max(now - started, 1e-9):,.0f}"}
                if now - shown_at >= PROGRESS_EVERY_S or step == steps - 1:
                    shown_at = now
                    fields.update(loss=f"loss {float(loss_sum) / len(index):.3f}",
                                  acc=f"acc {100 * float(correct) / len(index):.1f}%")
                progress.update(batch_task, advance=1, **fields)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        train_seconds = time.perf_counter() - started
        sums = self.dist.all_sum(torch.cat([totals.cpu().double(),
                                            torch.tensor([images_seen], dtype=torch.float64)]))
        runner.net.eval()
        with torch.no_grad():
            share = torch.arange(self.dist.rank, len(val_set), self.dist.world)
            confusion, val_loss = runner.confusion(val_set.subset(share.to(
                val_set.labels.device)), num_classes, max(256, batch))
        reduced = self.dist.all_sum(torch.cat([confusion.double().flatten(),
                                               torch.tensor([val_loss], dtype=torch.float64)]))
        confusion = reduced[:-1].view(num_classes, num_classes)
        images = float(sums[2])
        return {
            "epoch": epoch,
            "train_loss": float(sums[0] / images),
            "train_accuracy": float(sums[1] / images),
            "val_loss": float(reduced[-1] / max(1, len(val_set))),
            "val_accuracy": float(torch.trace(confusion) / max(1, len(val_set))),
            "lr": _triangle(epoch * steps - 1, total_steps, config.warmup, config.lr),  # type: ignore
            "seconds": time.perf_counter() - started,
            "train_seconds": train_seconds,
            "images": int(images),
            "images_per_second": images / max(train_seconds, 1e-9),
        }

    def _order(self, count: int, epoch: int, generator: torch.Generator) -> torch.Tensor:
        """This process's sample order for ``epoch``."""
        if self.dist.active:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(range(count), num_replicas=self.dist.world,
                                         rank=self.dist.rank, shuffle=True, seed=self.config.seed)
            sampler.set_epoch(epoch)
            return torch.tensor(list(iter(sampler)), dtype=torch.long)
        return torch.randperm(count, generator=generator)

    # -- resume ----------------------------------------------------------------------------
    def _save_state(self, out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int, spent: float, history: list[dict], best: dict,
                    filters: list[np.ndarray], stopped: bool) -> None:
        """Everything needed to continue after ``epoch``: tensors in safetensors (weights,
        optimizer buffers, filter snapshots), the rest in JSON. Written atomically."""
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
        for index, snapshot in enumerate(filters):
            tensors[f"filters.{index}"] = torch.from_numpy(np.ascontiguousarray(snapshot))
        payload = {
            "format": "convlens-train-state",
            "convlens_version": __version__,
            "config": self.config.to_json(),
            "epoch": epoch,
            "seconds": spent,
            "history": history,
            "best": best,
            "stopped_early": stopped,
            "world_size": self.dist.world,
            "optimizer": {"param_groups": optim["param_groups"], "state": plain_state},
        }
        write_file(out_dir / STATE_WEIGHTS, lambda p: save_file(tensors, str(p)))
        write_text(out_dir / STATE_FILE, json.dumps(payload, indent=1))

    def _restore(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 filters: list[np.ndarray]):
        folder = Path(self.config.out)  # type: ignore[arg-type]
        state = self.state
        done = int(state["epoch"])
        if done >= int(self.config.epochs) or state.get("stopped_early"):  # type: ignore
            raise ConfigError(f"nothing to resume: the run in {folder} already finished "
                              f"({done} of {self.config.epochs} epochs)")
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
                optim_state.setdefault(int(index), {})[name] = value.to(self.device)
        for index, values in state["optimizer"]["state"].items():
            optim_state.setdefault(int(index), {}).update(values)
        optimizer.load_state_dict({"state": optim_state,
                                   "param_groups": state["optimizer"]["param_groups"]})
        count = sum(1 for key in tensors if key.startswith("filters."))
        if filters:
            filters = [tensors[f"filters.{i}"].numpy() for i in range(count)]
        if state.get("world_size", 1) != self.dist.world:
            self.note(f"note: resuming with {self.dist.world} processes; the run started with "
                      f"{state.get('world_size', 1)}, so batches are cut differently from here")
        self.note(f"resuming {folder} after epoch {done} of {self.config.epochs}, with its saved "
                  "settings")
        return (done + 1, float(state["seconds"]), list(state["history"]), dict(state["best"]),
                filters)

    # -- the end ---------------------------------------------------------------------------
    def _info(self, info: ModelInfo, best: dict, history: list[dict]) -> ModelInfo:
        metrics = dict(info.metrics, val_accuracy=best["accuracy"], best_epoch=best["epoch"],
                       epochs=len(history))
        return replace(info, metrics=metrics)

    def _finish(self, out_dir: Path, model: nn.Module, runner: _Runner, info: ModelInfo,
                best: dict, history: list[dict], filters: list[np.ndarray], spent: float,
                baseline: dict | None, val_set: ImageSet, splits: DataSplits,
                first_conv: str | None) -> TrainResult:
        self.dist.barrier()
        kept = load_file(str(out_dir / WEIGHTS_FILE), device=str(self.device))
        model.load_state_dict(kept)
        runner.net = model
        with _eval_mode(model), torch.no_grad():
            confusion, loss_sum = runner.confusion(val_set, splits.num_classes, 512)
        result = EvalResult(splits.class_names, confusion.numpy(), loss_sum / len(val_set))
        train_seconds = sum(row["train_seconds"] for row in history)
        train_images = sum(row["images"] for row in history)
        metrics = {
            "val_accuracy": result.accuracy,
            "best_epoch": best["epoch"],
            "epochs": len(history),
            "epochs_planned": self.config.epochs,
            "final_val_accuracy": history[-1]["val_accuracy"],
            "val_loss": result.loss,
            "seconds": spent,
            "wall_seconds": time.perf_counter() - self.started,
            "images_per_second": train_images / max(train_seconds, 1e-9),
            "train_seconds": train_seconds,
            "data": self.config.data,
            "data_description": splits.describe(),
            "val_from": splits.val_from,
            "model": self.config.model,
            "arch_kwargs": info.arch_kwargs,
            "device": str(self.device),
            "world_size": self.dist.world,
            "threads": torch.get_num_threads(),
            "seed": self.config.seed,
            "baseline": baseline,
            "per_class": result.to_dict()["per_class"],
            "confusion": result.to_dict()["confusion"],
            "history": history,
            "config": self.config.to_json(),
            "convlens_version": __version__,
        }
        info = self._info(info, best, history)
        info.metrics.update(val_loss=result.loss, seconds=spent,
                            images_per_second=metrics["images_per_second"])
        files: list[Path] = []
        if self.dist.main:
            files.append(save_checkpoint(model, info, out_dir / WEIGHTS_FILE))
            files.append(out_dir / "model.json")
            write_text(out_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
            files.append(out_dir / METRICS_FILE)
            files += self._figures(out_dir, history, best, baseline, result, filters, first_conv)
            self._summary(out_dir, metrics, baseline, files)
        self.dist.barrier()
        return TrainResult(out_dir, info, metrics, history, files)

    def _figures(self, out_dir: Path, history: list[dict], best: dict, baseline: dict | None,
                 result: EvalResult, filters: list[np.ndarray], first_conv: str | None
                 ) -> list[Path]:
        from .plot.training import plot_confusion, plot_curves, save_filters_gif

        name = printable(f"{self.config.model} on {self.config.data}")
        reference = ("SVC baseline", baseline["val_accuracy"]) if baseline else None
        written = []
        figure = plot_curves(history, best["epoch"], reference, title=f"{name}: loss and "
                             "accuracy per epoch")
        written.append(save_figure(figure, out_dir / CURVES_FILE, dpi=FIGURE_DPI))
        figure = plot_confusion(result.confusion, [printable(n) for n in result.class_names],
                                title=f"{name}, val set, kept model (epoch {best['epoch']})")
        written.append(save_figure(figure, out_dir / CONFUSION_FILE, dpi=FIGURE_DPI))
        if self.config.filters_gif and filters and first_conv is not None:
            written.append(write_file(out_dir / FILTERS_GIF, lambda path: save_filters_gif(
                filters, path, layer=first_conv)))
        return written

    def _summary(self, out_dir: Path, metrics: dict, baseline: dict | None,
                 files: list[Path]) -> None:
        line = (f"kept model: epoch {metrics['best_epoch']}, val accuracy "
                f"{100 * metrics['val_accuracy']:.2f}% (last epoch "
                f"{100 * metrics['final_val_accuracy']:.2f}%)")
        if baseline is not None:
            delta = metrics["val_accuracy"] - baseline["val_accuracy"]
            line += (f"; SVC baseline on the same split {100 * baseline['val_accuracy']:.2f}% "
                     f"({'+' if delta >= 0 else ''}{100 * delta:.2f} points)")
        self.note(line, style="bold")
        self.note(f"{metrics['seconds']:.1f} s of epochs ({metrics['wall_seconds']:.1f} s in "
                  f"all), {metrics['images_per_second']:,.0f} images/s training; wrote "
                  f"{', '.join(p.name for p in files)} to {out_dir}/")


class _Runner:
    """The model on its device with its input pipeline: uint8/float batches -> augmented,
    normalized, channels-last floats -> (autocast) forward; one training step; evaluation."""

    def __init__(self, model: nn.Module, device: torch.device, mean: Sequence[float],
                 std: Sequence[float], amp: bool = False, channels_last: bool = False,
                 augment: Augment | None = None, label_smoothing: float = 0.0) -> None:
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device, memory_format=self.memory_format)
        self.net: nn.Module = self.model
        self.mean = torch.tensor(list(mean), device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(list(std), device=device).view(1, -1, 1, 1)
        self.augment = augment or Augment()
        self.label_smoothing = label_smoothing
        self.autocast_dtype = None
        if amp and device.type == "cuda":
            self.autocast_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported()
                                   else torch.float16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)

    def inputs(self, data: ImageSet, index: torch.Tensor, generator=None, train=False):
        index = index.to(data.labels.device)
        images = data.images[index].to(self.device, non_blocking=True)
        labels = data.labels[index].to(self.device, non_blocking=True)
        images = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        if train:
            images = augment_batch(images, self.augment, generator)
        images = ((images - self.mean) / self.std).contiguous(memory_format=self.memory_format)
        return images, labels

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self, data: ImageSet, index: torch.Tensor, optimizer: torch.optim.Optimizer,
                   generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the batch ``index``; returns its summed loss and its count of
        correct predictions, as 0-d tensors on the device (reading them waits for it)."""
        images, labels = self.inputs(data, index, generator, train=True)
        with self.autocast():
            logits = self.net(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        with torch.no_grad():
            plain = F.cross_entropy(logits.float(), labels, reduction="sum")
            correct = (logits.argmax(1) == labels).sum()
        return plain, correct

    @torch.no_grad()
    def confusion(self, data: ImageSet, num_classes: int, batch_size: int
                  ) -> tuple[torch.Tensor, float]:
        """Counts ``(K, K)`` (rows true, columns predicted) and the summed loss over ``data``."""
        counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=self.device)
        loss = torch.zeros((), dtype=_sum_dtype(self.device), device=self.device)
        for start in range(0, len(data), batch_size):
            index = torch.arange(start, min(start + batch_size, len(data)))
            images, labels = self.inputs(data, index)
            with self.autocast():
                logits = self.net(images).float()
            loss += F.cross_entropy(logits, labels, reduction="sum").to(loss.dtype)
            counts += torch.bincount(labels * num_classes + logits.argmax(1),
                                     minlength=num_classes * num_classes)
        return counts.view(num_classes, num_classes).cpu(), float(loss)


class _EpochTable:
    """The fixed-width table, one row per epoch (airbench style); ``*`` marks a new best."""

    COLUMNS = (("epoch", 5, "{:d}"), ("train loss", 10, "{:.4f}"), ("train acc", 9, "{:.2%}"),
               ("val loss", 8, "{:.4f}"), ("val acc", 8, "{:.2%}"), ("lr", 8, "{:.5f}"),
               ("img/s", 8, "{:,.0f}"), ("seconds", 7, "{:.2f}"))
    KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
            "images_per_second", "seconds")

    def __init__(self, console: Console | None) -> None:
        self.console = console

    def _print(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def header(self) -> None:
        cells = "  ".join(f"{name:>{width}}" for name, width, _ in self.COLUMNS)
        self._print(cells)
        self._print("-" * len(cells) + "--")

    def row(self, record: dict, best: bool) -> None:
        cells = "  ".join(f"{fmt.format(record[key]):>{width}}"
                          for (_, width, fmt), key in zip(self.COLUMNS, self.KEYS))
        self._print(cells + ("  *" if best else ""))


class _NoProgress(contextlib.nullcontext):
    """Stands in for rich's Progress when no bars are shown."""

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None:
        pass

    def reset(self, *args, **kwargs) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
def _triangle(step: int, total: int, warmup: float, peak: float) -> float:
    """Learning rate at ``step`` of ``total``: linear 0 -> ``peak`` over the first ``warmup``
    share of steps, then linear to 0 at the end."""
    rise = max(1, round(total * warmup))
    position = step + 1
    if position <= rise:
        return peak * position / rise
    return peak * max(0.0, (total - position + 1) / max(1, total - rise + 1))


def _first_conv(model: nn.Module) -> str | None:
    """Name of the first ``nn.Conv2d`` (the layer whose filters are saved each epoch)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    return None


def _filters(model: nn.Module, name: str) -> np.ndarray:
    """A copy of layer ``name``'s weights ``(K, C, kh, kw)`` as float32 NumPy."""
    return model.get_submodule(name).weight.detach().to("cpu", torch.float32).numpy().copy()


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _sum_dtype(device: torch.device) -> torch.dtype:
    """float64 for running sums, except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _is_channels_last(model: nn.Module) -> bool:
    for tensor in model.parameters():
        if tensor.ndim == 4:
            return tensor.is_contiguous(memory_format=torch.channels_last) and not (
                tensor.is_contiguous())
    return False


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _new_run_dir(root: Path, stem: str) -> Path:
    """``root/stem``, or ``root/stem-2``, ``-3``, ... whichever is free (never reused); checked
    (:func:`check_out_dir`), not yet made."""
    candidate = root / stem
    number = 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        number += 1
        candidate = root / f"{stem}-{number}"
    check_out_dir(candidate)
    return candidate


__all__ = [
    "PRESETS",
    "EvalResult",
    "Preset",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "predict",
    "train",
]
