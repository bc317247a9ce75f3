"""One training run, top to bottom: settings -> data -> model -> epochs -> kept model -> test.

:func:`fit` takes a :class:`~convlens.train.config.TrainConfig` and fills a run folder with
``model.safetensors`` + ``model.json`` (the kept, best-on-val model), ``metrics.json`` and
``train-state.*`` (for ``resume``); its figures are drawn from the returned
:class:`~convlens.train.files.TrainResult` by :mod:`convlens.results.training`. Under
``torchrun`` it trains with DistributedDataParallel (:mod:`.distributed`): each process takes
its share of every batch, metrics are summed across processes and only rank 0 writes.

Three splits keep the reported number honest: the data's held-out part (its own test or val
files, or ``val_fraction`` of each class) is the **test** split, measured once at the end with
the kept model; the same share of each class of the rest is the **val** split, which picks the
epoch to keep; the remainder trains. ``metrics.json`` reports ``test_accuracy`` beside
``val_accuracy``.

Randomness comes from ``seed`` alone: the weights' start, and per epoch one generator for the
shuffle and the augmentation draws. On a CPU a run repeats exactly (same torch version and
thread count), and a resumed run continues bit for bit.

The loop prints nothing: it reports through :class:`~convlens.train.events.TrainEvents` and
``on_epoch_end``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file

from ..data import (
    DOWNLOADS,
    Augment,
    DataSplits,
    ImageSet,
    absolute_spec,
    channel_stats,
    download_dataset,
    load_data,
    parse_data_spec,
    stratified_split,
)
from ..data.specs import STRICT
from ..errors import DataError, Option, Worded
from ..limits import check_at_most
from ..models import ModelInfo, create_model, save_checkpoint
from ..models.checkpoint import WEIGHTS_FILE
from ..models.handle import eval_mode
from ..outputs import check_out_dir, create_folder, printable, remove_made
from ..sizes import parse_size
from ..version import __version__
from ..wording import plural
from .baseline import svc_baseline
from .config import AMP, MOMENTUM, PRESETS, Hyper, TrainConfig
from .distributed import Dist, distributed
from .events import BatchUpdate, EpochCallback, Tone, TrainEvents
from .files import DEFAULT_RUNS_ROOT, TrainResult, kept_info, new_run_dir, write_metrics
from .metrics import EvalResult
from .runner import Runner, sum_dtype, triangle
from .state import LoopState, read_saved, restore, save_state

PROGRESS_EVERY_S = 0.2
"""A batch's loss and accuracy are read for the progress display at most this often, in s."""
VAL_BATCH = 256
"""Images per validation step (at least; the training batch when that is larger)."""


def fit(
    config: TrainConfig | None = None,
    events: TrainEvents | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> TrainResult:
    """Train a classifier as ``config`` says and write the run folder; see the module doc.

    ``events`` hears the run's notes, batches and epochs (the main process only);
    ``on_epoch_end(record)`` is called after every epoch, on every process, with that
    epoch's record: ``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
    ``val_accuracy`` (fractions), ``lr`` (at the epoch's last step), ``seconds`` (training
    and validation), ``train_seconds``, ``images`` and ``images_per_second`` (all processes).
    Under ``torchrun`` (``WORLD_SIZE`` > 1) this joins the process group and trains with DDP.
    """
    config = config or TrainConfig()
    config.validate()
    with distributed(config.device) as dist:
        shown = events if events is not None and dist.main else TrainEvents()
        saved: dict | None = None
        if config.resume:
            config, saved = read_saved(Path(config.out), config)  # type: ignore[arg-type]
        elif config.out is not None:
            check_out_dir(config.out, config.force)  # before any slow loading
        elif dist.main:
            check_out_dir(DEFAULT_RUNS_ROOT, force=True)  # a new run folder can go there
        folder = _RunFolder()
        with _threads(config, dist):
            try:
                return _fit(config, saved, dist, shown, on_epoch_end, folder)
            except BaseException as exc:
                folder.failed(exc, shown)
                raise


def _fit(config: TrainConfig, saved: dict | None, dist: Dist, events: TrainEvents,
         on_epoch_end: EpochCallback | None, folder: _RunFolder) -> TrainResult:
    started = time.perf_counter()
    # -- data and settings ---------------------------------------------------------------------
    loaded = _load_data(config, dist, events)
    config = config.resolved(loaded.kind)
    config.validate()
    hp = config.hyper()
    held = _HeldOut.split(loaded, config.val_fraction, config.split_seed)
    splits, test_set = held.splits, held.test
    if dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick kernels
    # -- the model and its folder -----------------------------------------------------------
    torch.manual_seed(config.seed)
    mean, std = channel_stats(loaded.train)  # train and val: every image but the test split
    info = ModelInfo(architecture=hp.model, in_channels=splits.in_channels,
                     input_size=splits.input_size, class_names=splits.class_names, mean=mean,
                     std=std, arch_kwargs=dict(config.arch_kwargs or {}),
                     metrics={"data": absolute_spec(config.data),
                              "split_seed": config.split_seed})
    model = create_model(hp.model, splits.in_channels, splits.num_classes, splits.input_size,
                         **info.arch_kwargs)
    first_conv = _first_conv(model)
    out_dir = folder.make(config, splits, dist)  # once the model is known to fit the data
    augment = _augment(config, splits)
    events.note(held.describe())
    if splits.skipped:
        path, reason = splits.skipped[0]
        events.note(Worded(f"warning: skipped {len(splits.skipped)} unreadable image file(s), "
                           f"e.g. {path}: {reason} (strict=True makes this an error)",
                           [STRICT]), Tone.WARNING)
    baseline = (svc_baseline(splits.train, splits.val, test_set, events)
                if config.baseline and dist.main else None)
    train_set, val_set, test_set = _place((splits.train, splits.val, test_set), dist.device)
    runner = Runner(model, dist.device, mean, std, amp=config.amp,
                    channels_last=_channels_last(config, dist.device), augment=augment,
                    label_smoothing=hp.label_smoothing)
    model = runner.model
    optimizer = torch.optim.SGD(model.parameters(), lr=hp.lr, momentum=MOMENTUM, nesterov=True,
                                weight_decay=hp.weight_decay)
    # -- where the loop starts -----------------------------------------------------------------
    state = LoopState(filters=[] if first_conv is None else [_filters(model, first_conv)])
    if saved is not None:
        state = restore(out_dir, saved, hp.epochs, model, optimizer, dist.device,
                        keep_filters=first_conv is not None)
        if saved.get("world_size", 1) != dist.world:
            events.note(f"note: resuming with {dist.world} processes; the run started with "
                        f"{saved.get('world_size', 1)}, so batches are cut differently from "
                        "here")
        events.note(f"resuming {out_dir} after epoch {state.epoch} of {hp.epochs}, with "
                    "its saved settings")
    runner.net = dist.wrap(model, config.compile)
    loop = _Loop(hp, config.seed, _steps_per_epoch(len(train_set), dist.world, hp.batch_size),
                 splits.num_classes, runner, optimizer, train_set, val_set, dist, events)
    _describe(config, splits, model, augment, loop.steps, dist, events)
    # -- the epochs ------------------------------------------------------------------------
    events.begin(hp.epochs, state.epoch, loop.steps)
    try:
        for epoch in range(state.epoch + 1, hp.epochs + 1):
            record = loop.epoch(epoch)
            improved = state.record(record)
            if improved and dist.main:  # the kept model
                save_checkpoint(model, kept_info(info, state), out_dir / WEIGHTS_FILE)
            if first_conv is not None:
                state.filters.append(_filters(model, first_conv))
            state.stopped = bool(config.patience and epoch - state.best["epoch"]
                                 >= config.patience)
            if dist.main:
                save_state(out_dir, config, state, model, optimizer, dist.world)
            folder.epochs_done = epoch
            events.epoch(dict(record), improved)
            if on_epoch_end is not None:
                on_epoch_end(dict(record))
            if state.stopped:
                events.note(f"stopping: no better val accuracy for {config.patience} epochs")
                break
    finally:
        events.end()
    # -- the kept model, measured once on the test split, and written -------------------------
    dist.barrier()
    model.load_state_dict(load_file(str(out_dir / WEIGHTS_FILE), device=str(dist.device)))
    runner.net = model
    val, test = (_measure(runner, data, splits.class_names) for data in (val_set, test_set))
    metrics = _metrics(config, dist, held, state, (val, test), baseline, started)
    info = kept_info(info, state)
    info.metrics.update(val_loss=val.loss, test_accuracy=test.accuracy, test_loss=test.loss,
                        seconds=state.seconds, images_per_second=metrics["images_per_second"])
    files: list[Path] = []
    if dist.main:
        files += [save_checkpoint(model, info, out_dir / WEIGHTS_FILE), out_dir / "model.json",
                  write_metrics(out_dir, metrics)]
    dist.barrier()
    return TrainResult(out_dir, info, metrics, state.history, files, config, test,
                       state.filters, first_conv, dist.main)


@dataclass
class _Loop:
    """What every epoch uses: the numbers and seed, ``steps`` per epoch, the model's runner
    and optimizer, the data and the process's place in the run."""

    hp: Hyper
    seed: int
    steps: int
    num_classes: int
    runner: Runner
    optimizer: torch.optim.Optimizer
    train_set: ImageSet
    val_set: ImageSet
    dist: Dist
    events: TrainEvents

    @property
    def total_steps(self) -> int:
        return self.hp.epochs * self.steps

    def lr(self, step: int) -> float:
        """The learning rate of the run's ``step`` (0-based, over all epochs)."""
        return triangle(step, self.total_steps, self.hp.warmup, self.hp.lr)

    def epoch(self, epoch: int) -> dict:
        """Train one pass over this process's share of the training set, then measure the
        val set; returns the epoch's record (see :func:`fit`)."""
        dist, seed = self.dist, self.seed
        # One generator per epoch (and process): shuffles and augmentation repeat exactly,
        # and a resumed run draws what the uninterrupted one would have.
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 7919 + dist.rank)
        torch.manual_seed(seed * 1_000_003 + epoch)
        order = dist.shard(len(self.train_set), epoch, seed, generator)
        batch = self.hp.batch_size
        self.runner.net.train()
        # summed on the device: reading a number makes the host wait for the GPU
        totals = torch.zeros(2, dtype=sum_dtype(dist.device), device=dist.device)
        images_seen, read_at = 0, -math.inf
        started = time.perf_counter()
        for step in range(self.steps):
            index = order[step * batch:(step + 1) * batch]
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr((epoch - 1) * self.steps + step)
            loss_sum, correct = self.runner.train_step(self.train_set, index, self.optimizer,
                                                       generator)
            totals += torch.stack([loss_sum, correct]).to(totals.dtype)
            images_seen += len(index)
            if self.events.batches:
                now = time.perf_counter()
                update = BatchUpdate(epoch, step + 1, self.steps,
                                     images_seen * dist.world / max(now - started, 1e-9))
                if now - read_at >= PROGRESS_EVERY_S or step == self.steps - 1:
                    read_at = now
                    update = BatchUpdate(epoch, step + 1, self.steps, update.images_per_second,
                                         float(loss_sum) / len(index),
                                         float(correct) / len(index))
                self.events.batch(update)
        if dist.device.type == "cuda":
            torch.cuda.synchronize(dist.device)
        train_seconds = time.perf_counter() - started
        sums = dist.all_sum(torch.cat([totals.cpu().double(),
                                       torch.tensor([images_seen], dtype=torch.float64)]))
        val_loss, val_accuracy = self._validate(max(VAL_BATCH, batch))
        images = float(sums[2])
        return {
            "epoch": epoch,
            "train_loss": float(sums[0] / images),
            "train_accuracy": float(sums[1] / images),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "lr": self.lr(epoch * self.steps - 1),
            "seconds": time.perf_counter() - started,
            "train_seconds": train_seconds,
            "images": int(images),
            "images_per_second": images / max(train_seconds, 1e-9),
        }

    def _validate(self, batch: int) -> tuple[float, float]:
        """Mean loss and accuracy on the val set, each process measuring every
        ``world``-th image and the counts summed."""
        dist, count, classes = self.dist, len(self.val_set), self.num_classes
        self.runner.net.eval()
        share = torch.arange(dist.rank, count, dist.world).to(self.val_set.labels.device)
        confusion, loss = self.runner.confusion(self.val_set.subset(share), classes, batch)
        reduced = dist.all_sum(torch.cat([confusion.double().flatten(),
                                          torch.tensor([loss], dtype=torch.float64)]))
        correct = torch.trace(reduced[:-1].view(classes, classes))
        return float(reduced[-1] / max(1, count)), float(correct / max(1, count))


@dataclass
class _RunFolder:
    """The run folder's bookkeeping: the folders this run made (taken back when it fails
    before finishing an epoch) and the epochs finished."""

    out_dir: Path | None = None
    made: list[Path] = field(default_factory=list)
    epochs_done: int = 0

    def make(self, config: TrainConfig, splits: DataSplits, dist: Dist) -> Path:
        """Create the run folder (rank 0; every process gets its name): ``config.out``, or a
        new ``runs/<data>-<model>[-N]``."""

        def make() -> str:
            if config.out is not None:
                if not config.resume:
                    check_out_dir(config.out, config.force)
                self.made = create_folder(config.out)
                return str(config.out)
            chosen = new_run_dir(DEFAULT_RUNS_ROOT, f"{splits.kind.value}-{config.model}")
            self.made = create_folder(chosen)
            return str(chosen)

        self.out_dir = Path(dist.agree(make))  # type: ignore[arg-type]
        return self.out_dir

    def failed(self, exc: BaseException, events: TrainEvents) -> None:
        """Say how to continue an interrupted run; leave no empty folder behind."""
        if isinstance(exc, KeyboardInterrupt) and self.out_dir is not None and self.epochs_done:
            shown = printable(self.out_dir)
            again = Option(f"TrainConfig(out={shown!r}, resume=True)",
                           f"convlens train --out {shown} --resume")
            events.note(Worded(f"interrupted after epoch {self.epochs_done}; continue with: "
                               f"{again.python}", [again]), Tone.WARNING)
        if not self.epochs_done:  # nothing to resume
            remove_made(self.made)


# ---------------------------------------------------------------------------------------------
# Set-up steps
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _threads(config: TrainConfig, dist: Dist) -> Iterator[None]:
    """The CPU thread count for this run (CPU devices only), restored after."""
    before = torch.get_num_threads()
    wanted = config.threads
    if wanted is None:
        kind, _ = parse_data_spec(config.data)
        wanted = PRESETS[kind].threads
    if wanted is None and dist.active and dist.device.type == "cpu":
        wanted = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE",
                                                                    dist.world)))
    if wanted is not None and dist.device.type == "cpu":
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _load_data(config: TrainConfig, dist: Dist, events: TrainEvents) -> DataSplits:
    """The train/val splits; with ``download``, rank 0 fetches first and the others wait for
    it (or for its error)."""
    if config.download:
        kind, path = parse_data_spec(config.data)
        if kind in DOWNLOADS and path is not None:
            dist.agree(lambda: str(download_dataset(kind, path, progress=events.note)))
    size = parse_size(config.size, "size") if config.size is not None else None
    return load_data(config.data, size=size, mode=config.mode,
                     val_fraction=config.val_fraction, split_seed=config.split_seed,
                     strict=config.strict, workers=config.workers)


def _augment(config: TrainConfig, splits: DataSplits) -> Augment:
    """The data's augmentation with the run's overrides (none without ``augment``)."""
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


@dataclass
class _HeldOut:
    """The three splits: ``splits`` holds train and val, ``test`` the loaded data's held-out
    part (its own test/val files, or a seeded share of each class), ``test_from`` says which."""

    splits: DataSplits
    test: ImageSet
    test_from: str

    @classmethod
    def split(cls, loaded: DataSplits, fraction: float, seed: int) -> _HeldOut:
        """The loaded data's held-out part becomes the test set; ``fraction`` of each class
        of the rest (seeded, stratified) becomes val, the remainder trains."""
        train, val = stratified_split(loaded.train.labels, fraction, seed,
                                      names=loaded.class_names)
        splits = replace(loaded, train=loaded.train.subset(train), val=loaded.train.subset(val),
                         val_from=f"{round(100 * fraction)}% of the rest, stratified, split seed "
                         f"{seed}")
        return cls(splits, loaded.val, loaded.val_from)

    def describe(self) -> str:
        splits = self.splits
        height, width = splits.input_size
        return (f"{splits.source}: {len(splits.train)} train / {len(splits.val)} val / "
                f"{len(self.test)} test images (test: {self.test_from}; val: "
                f"{splits.val_from}), {splits.in_channels}x{height}x{width}, "
                f"{splits.num_classes} classes")

    def facts(self) -> dict:
        """What ``metrics.json`` says about the data."""
        return {"data_description": self.describe(), "test_from": self.test_from,
                "val_from": self.splits.val_from,
                "split_sizes": {"train": len(self.splits.train), "val": len(self.splits.val),
                                "test": len(self.test)}}


def _place(sets: tuple[ImageSet, ...], device: torch.device) -> tuple[ImageSet, ...]:
    """Put the data where batches are cut from: on the GPU if it fits in a quarter of its
    free memory (no copies per step), else in pinned host memory for fast transfers."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        size = sum(t.images.numel() * t.images.element_size() for t in sets)
        if size < free // 4:
            return tuple(t.to(device) for t in sets)
        return tuple(ImageSet(t.images.pin_memory(), t.labels) for t in sets)
    if device.type == "mps":
        return tuple(t.to(device) for t in sets)
    return sets


def _measure(runner: Runner, data: ImageSet, class_names: list[str]) -> EvalResult:
    """The model of ``runner`` (in eval mode) on all of ``data``."""
    with eval_mode(runner.model), torch.no_grad():
        confusion, loss_sum = runner.confusion(data, len(class_names), 512)
    return EvalResult(list(class_names), confusion.numpy(), loss_sum / max(1, len(data)))


def _channels_last(config: TrainConfig, device: torch.device) -> bool:
    """NHWC as asked, by default on CUDA (where tensor cores want it)."""
    if config.channels_last is None:
        return device.type == "cuda"
    return bool(config.channels_last)


def _steps_per_epoch(count: int, world: int, batch: int) -> int:
    """Steps that cover one process's share of ``count`` images; a last batch of a single
    image is dropped (batch norm cannot train on one)."""
    per_rank = math.ceil(count / world)
    steps = per_rank // batch + (1 if per_rank % batch >= 2 else 0)
    if steps == 0:
        raise DataError(f"{count} training images is too few for one batch")
    return steps


def _describe(config: TrainConfig, splits: DataSplits, model: nn.Module, augment: Augment,
              steps: int, dist: Dist, events: TrainEvents) -> None:
    """The model, the device and the run's numbers, before the table."""
    params = sum(p.numel() for p in model.parameters())
    kwargs = ", ".join(f"{k}={v}" for k, v in (config.arch_kwargs or {}).items())
    place = f"{dist.device}" + (f" x {plural(dist.world, 'process', 'processes')} (DDP)"
                                if dist.active else "")
    height, width = splits.input_size
    events.note(f"model {config.model}({kwargs}): {params:,} parameters, input "
                f"{splits.in_channels}x{height}x{width}; device {place}"
                f"; threads {torch.get_num_threads()}")
    events.note(f"{config.epochs} epochs x {steps} steps, batch {config.batch_size}"
                f"{' per process' if dist.active else ''}, SGD nesterov lr {config.lr} "
                f"wd {config.weight_decay}, label smoothing {config.label_smoothing}, "
                f"augment: {augment.describe()}, seed {config.seed}")
    if config.amp and dist.device.type != "cuda":
        events.note(Worded(f"{AMP.python} ignored on {dist.device.type} (autocast pays off on "
                           "CUDA GPUs)", [AMP]), Tone.WARNING)


def _metrics(config: TrainConfig, dist: Dist, held: _HeldOut, state: LoopState,
             kept: tuple[EvalResult, EvalResult], baseline: dict | None,
             started: float) -> dict:
    """The content of ``metrics.json``: ``kept`` is the kept model on (val, test); the
    per-class numbers and the confusion matrix are the test split's."""
    history = state.history
    train_seconds = sum(row["train_seconds"] for row in history)
    train_images = sum(row["images"] for row in history)
    val, test = kept
    summary = test.to_dict()
    return {
        "test_accuracy": test.accuracy,
        "val_accuracy": val.accuracy,
        "best_epoch": state.best["epoch"],
        "epochs": len(history),
        "epochs_planned": config.epochs,
        "final_val_accuracy": history[-1]["val_accuracy"],
        "test_loss": test.loss,
        "val_loss": val.loss,
        "seconds": state.seconds,
        "wall_seconds": time.perf_counter() - started,
        "images_per_second": train_images / max(train_seconds, 1e-9),
        "train_seconds": train_seconds,
        "data": config.data,
        **held.facts(),
        "model": config.model,
        "arch_kwargs": dict(config.arch_kwargs or {}),
        "device": str(dist.device),
        "world_size": dist.world,
        "threads": torch.get_num_threads(),
        "seed": config.seed,
        "baseline": baseline,
        "per_class": summary["per_class"],
        "confusion": summary["confusion"],
        "history": history,
        "config": config.to_json(),
        "convlens_version": __version__,
    }


def _first_conv(model: nn.Module) -> str | None:
    """Name of the first ``nn.Conv2d`` (the layer whose filters are saved each epoch)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    return None


def _filters(model: nn.Module, name: str) -> np.ndarray:
    """A copy of layer ``name``'s weights ``(K, C, kh, kw)`` as float32 NumPy."""
    weight = model.get_submodule(name).weight
    assert isinstance(weight, torch.Tensor)
    return weight.detach().to("cpu", torch.float32).numpy().copy()


__all__ = ["PROGRESS_EVERY_S", "fit"]
