"""``convlens train``, ``convlens evaluate`` and ``convlens predict``: a CNN classifier."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError
from ..wording import clipped, percent
from . import _options as opt
from ._app import TRAINING_COMMANDS, app, console, error_console

if TYPE_CHECKING:
    from ..results.prediction import Predictions

MODEL_NAMES = ("lenet", "resnet9", "tinyvgg")
"""The registry's architectures, spelled out so `--help` needs no torch (a test keeps them
equal to :func:`convlens.models.list_models`)."""
DATA = "Data"
MODEL = "Model"
TRAINING = "Training"
SPEED = "Speed and devices"
OUTPUT = "Output"

DataSpec = Annotated[str, typer.Option(
    "--data", "-d", help="`digits` (bundled), a folder with one sub-folder per class (and "
    "optionally train/ and val/), `mnist:PATH`, `fashion-mnist:PATH`, `cifar10:PATH` or "
    "`cifar100:PATH`.", rich_help_panel=DATA)]
Strict = Annotated[bool, typer.Option("--strict", help="Stop at the first unreadable image "
                                      "file instead of skipping it.", rich_help_panel=DATA)]
SplitSeed = Annotated[int, typer.Option("--split-seed", help="Seed of the stratified splits "
                      "(the test split of data without a held-out part of its own, and the "
                      "val split).", rich_help_panel=DATA)]
BatchSize = Annotated[int | None, typer.Option("--batch-size", "-b", help="Images per step "
                      "(per process under torchrun).", rich_help_panel=TRAINING)]


@app.command("train", rich_help_panel=TRAINING_COMMANDS)
def train_command(
    data: DataSpec = "digits",
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help=f"Architecture: {', '.join(MODEL_NAMES)} (default: the data's "
        "preset: tinyvgg for digits and folders, lenet for MNIST, resnet9 for CIFAR).",
        rich_help_panel=MODEL)] = None,
    model_arg: Annotated[list[str] | None, typer.Option(
        "--model-arg", help="Architecture setting KEY=VALUE, e.g. `width=64` or "
        "`batchnorm=true`. Repeatable.", rich_help_panel=MODEL)] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", "-e", help="Passes over the "
                      "training set (default: the preset, 30 for digits).",
                      rich_help_panel=TRAINING)] = None,
    batch_size: BatchSize = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate of the "
                  "warm-up/decay schedule (SGD, Nesterov momentum 0.9).",
                  rich_help_panel=TRAINING)] = None,
    weight_decay: Annotated[float | None, typer.Option(
        "--weight-decay", help="L2 weight decay.", rich_help_panel=TRAINING)] = None,
    label_smoothing: Annotated[float | None, typer.Option(
        "--label-smoothing", help="Share of each target spread over all classes.",
        rich_help_panel=TRAINING)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the weights' start, shuffling and "
                    "augmentation: the same seed repeats a CPU run exactly.",
                    rich_help_panel=TRAINING)] = 0,
    patience: Annotated[int | None, typer.Option(
        "--patience", help="Stop after this many epochs without a better val accuracy.",
        rich_help_panel=TRAINING)] = None,
    augment: Annotated[bool, typer.Option(
        "--augment/--no-augment", help="Random crops (and flips where they fit the data) on "
        "the training batches.", rich_help_panel=TRAINING)] = True,
    crop_pad: Annotated[int | None, typer.Option(
        "--crop-pad", help="Pixels of padding for the random crop (default: the data's).",
        rich_help_panel=TRAINING)] = None,
    flip: Annotated[bool | None, typer.Option(
        "--flip/--no-flip", help="Random horizontal flips (default: on for photos and "
        "CIFAR, off for digits).", rich_help_panel=TRAINING, show_default=False)] = None,
    baseline: Annotated[bool | None, typer.Option(
        "--baseline/--no-baseline", help="Also fit scikit-learn's SVC on the same split and "
        "print its accuracy (default: on for digits).", rich_help_panel=TRAINING,
        show_default=False)] = None,
    size: Annotated[str | None, typer.Option(
        "--size", help="Resize images to N or HxW pixels (default: their own size; folders: "
        "64x64 unless all images share a smaller size).", rich_help_panel=DATA)] = None,
    mode: Annotated[str, typer.Option("--mode", help="`auto`, `gray` or `rgb` input channels.",
                                      rich_help_panel=DATA)] = "auto",
    val_fraction: Annotated[float, typer.Option(
        "--val-fraction", help="Share of each class held out as the test split where the data "
        "has no held-out part of its own (val/ or test files); the same share of the rest is "
        "the val split, which picks the epoch to keep.", rich_help_panel=DATA)] = 0.2,
    split_seed: SplitSeed = 0,
    strict: Strict = False,
    download: Annotated[bool, typer.Option(
        "--download", help="Fetch MNIST, Fashion-MNIST or CIFAR from its official address "
        "into PATH if missing.", rich_help_panel=DATA)] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Threads decoding image folders (default: one per CPU, up to 8).",
        rich_help_panel=DATA)] = None,
    device: Annotated[str, typer.Option("--device", help="`auto` (CUDA if present, then MPS, "
                      "then CPU), `cpu`, `cuda` or `mps`.", rich_help_panel=SPEED)] = "auto",
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (bf16, or fp16 with loss "
                   "scaling) on CUDA GPUs; ignored elsewhere.", rich_help_panel=SPEED)] = False,
    channels_last: Annotated[bool | None, typer.Option(
        "--channels-last/--no-channels-last", help="NHWC memory layout (default: on for "
        "CUDA).", rich_help_panel=SPEED, show_default=False)] = None,
    compile_model: Annotated[bool, typer.Option(
        "--compile", help="torch.compile the model (slow start, faster steps on GPUs).",
        rich_help_panel=SPEED)] = False,
    threads: Annotated[int | None, typer.Option(
        "--threads", help="CPU threads (default: 1 for digits, else torch's choice).",
        rich_help_panel=SPEED)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run folder (default: a new `runs/DATA-MODEL`).",
        rich_help_panel=OUTPUT)] = None,
    force: Annotated[bool, typer.Option("--force", help="Reuse a non-empty run folder, "
                     "overwriting its files.", rich_help_panel=OUTPUT)] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --out from its last finished epoch, with its "
        "saved settings.", rich_help_panel=OUTPUT)] = False,
    gif: Annotated[bool, typer.Option("--gif/--no-gif", help="Write filters-evolution.gif.",
                                      rich_help_panel=OUTPUT)] = True,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress", help="Progress bars (default: in a terminal).",
        rich_help_panel=OUTPUT, show_default=False)] = None,
) -> None:
    """Train a CNN image classifier and write a run folder.

    Three splits keep the reported number honest: the val split picks the epoch to keep, and
    the test split, never used to choose anything, is measured once at the end: that is the
    accuracy reported (`test_accuracy` in `metrics.json`, beside `val_accuracy`).

    Writes `model.safetensors` + `model.json` (the epoch with the best val accuracy; what
    `evaluate`, `predict`, `inspect` and `serve` open), `metrics.json`, `curves.png`,
    `confusion.png` (the kept model on the test split), `filters-evolution.gif` (the first
    layer's filters epoch by epoch, beside their change since the random start) and
    `train-state.*` (for `--resume`). Prints one row per epoch; on digits also the test accuracy
    of scikit-learn's SVC on the same splits (C and gamma chosen on val), for honest context.

    Examples:

    * `convlens train` (8x8 digits, about 10 s on a laptop CPU, ~99.5% test accuracy)
    * `convlens train --data path/to/folder --model tinyvgg --epochs 20 --out runs/pets`
    * `convlens train --data mnist:data/mnist --download --model lenet`
    * `convlens train --data cifar10:data/cifar-10-batches-py --model resnet9 --amp`
    * `torchrun --nproc-per-node 4 -m convlens train --data cifar10:data/cifar10`
    * `convlens train --out runs/pets --resume` (after an interruption)
    """
    from ..results.training import train
    from ..train import TrainConfig

    config = TrainConfig(
        data=data, model=model, arch_kwargs=parse_model_args(model_arg) if model_arg else None,
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        label_smoothing=label_smoothing, size=size, mode=mode, val_fraction=val_fraction,
        split_seed=split_seed, augment=augment, crop_pad=crop_pad, flip=flip, seed=seed,
        device=device, amp=amp, channels_last=channels_last, compile=compile_model,
        threads=threads, workers=workers, strict=strict, download=download, patience=patience,
        baseline=baseline, filters_gif=gif, out=out, force=force, resume=resume)
    train(config, console=console, progress=progress, surface="cli")


@app.command("evaluate", rich_help_panel=TRAINING_COMMANDS)
def evaluate_command(
    model_path: Annotated[Path, typer.Argument(
        help="A convlens checkpoint: `model.safetensors` or its run folder.",
        show_default=False)],
    data: Annotated[str | None, typer.Option(
        "--data", "-d", help="Images to evaluate on: a class-folder tree (used whole, or its "
        "val/ part), `digits`, `mnist:PATH`, `cifar10:PATH`, ... (default: the data the model "
        "was trained on, its test split).", rich_help_panel=DATA, show_default=False)] = None,
    split_seed: SplitSeed = 0,
    strict: Strict = False,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Images per step.")] = 256,
    device: opt.Device = "auto",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for confusion.png and evaluation.json (default: a new "
        "`eval-DATA` folder beside the model).")] = None,
    force: opt.Force = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Evaluate a trained classifier: accuracy, per-class precision and recall, confusion matrix.

    Images are fitted to the model (resized, gray <-> RGB) and normalized with its training
    statistics. Writes `confusion.png` (normalized per true class) and `evaluation.json`.

    Examples:

    * `convlens evaluate runs/digits-tinyvgg` (its own test split)
    * `convlens evaluate runs/pets/model.safetensors --data path/to/test-folder`
    * `convlens evaluate runs/mnist/model.safetensors --data mnist:data/mnist --json`
    """
    from ..outputs import printable
    from ..results.evaluation import evaluate_checkpoint

    evaluation = evaluate_checkpoint(model_path, data, split_seed=split_seed, strict=strict,
                                     batch_size=batch_size, device=device, out=out, force=force)
    if evaluation.skipped:
        path, reason = evaluation.skipped[0]
        error_console.print(printable(f"warning: skipped {len(evaluation.skipped)} unreadable "
                                      f"image file(s), e.g. {path}: {reason}"), markup=False)
    files = evaluation.write(force=force)
    if as_json:
        console.print_json(json.dumps(evaluation.to_dict()))
        return
    result = evaluation.result
    console.print(f"[bold]{escape(evaluation.architecture)} on {escape(evaluation.label)}: "
                  f"accuracy {100 * result.accuracy:.2f}% of {result.total} images[/bold]",
                  highlight=False)
    table = Table(show_edge=False)
    for column in ("class", "precision", "recall", "images"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, precision, recall, support in zip(result.class_names, result.precision,
                                                result.recall, result.support):
        if support == 0 and precision == 0:
            continue
        table.add_row(escape(printable(name)), f"{100 * precision:.1f}%", f"{100 * recall:.1f}%",
                      str(int(support)))
    console.print(table)
    console.print(f"loss {result.loss:.4f}; wrote {' and '.join(p.name for p in files)} to "
                  f"{escape(printable(files[0].parent))}/", markup=True, highlight=False)


@app.command("predict", rich_help_panel=TRAINING_COMMANDS)
def predict_command(
    model_path: Annotated[Path, typer.Argument(
        help="A convlens checkpoint: `model.safetensors` or its run folder.",
        show_default=False)],
    images: Annotated[list[Path], typer.Argument(
        help="Image files or folders of images.", show_default=False)],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many classes to show per "
                     "image, most likely first.")] = 5,
    device: opt.Device = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the predictions as JSON.")]
    = False,
) -> None:
    """Classify images with a trained model: the top-k classes and their probabilities.

    Any size and colour mode works: images are resized to the model's input and converted
    gray <-> RGB as needed. Digits models expect light strokes on black, like their data.

    Examples:

    * `convlens predict runs/pets/model.safetensors cat1.jpg cat2.jpg --top-k 3`
    * `convlens predict runs/digits-tinyvgg photos/ --json`

    Of several images, one that cannot be read is reported and skipped; the others are
    classified and the exit code is 1.
    """
    from ..outputs import printable
    from ..results.prediction import predict_files

    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1; got {top_k}")
    predictions = predict_files(model_path, images, top_k=top_k, device=device)
    for failure in predictions.failures:
        error_console.print(printable(f"skipped {failure.path}: {failure.message('cli')}"),
                            markup=False)
    if as_json:
        console.print_json(json.dumps(predictions.to_dict()))
    else:
        _print_predictions(predictions)
    if predictions.failures:
        error_console.print(f"error: {len(predictions.failures)} of {predictions.total} images "
                            "failed", markup=False)
        raise typer.Exit(1)


def _print_predictions(predictions: Predictions) -> None:
    from ..outputs import printable

    for image in predictions.images:
        console.print(f"[bold]{escape(printable(image.path))}[/bold]", highlight=False,
                      soft_wrap=True)
        table = Table(show_edge=False)
        table.add_column("rank", justify="right")
        table.add_column("class")
        table.add_column("probability", justify="right")
        for rank, prediction in enumerate(image.top, start=1):
            table.add_row(str(rank), escape(printable(prediction.label)),
                          percent(prediction.probability, 2))
        console.print(table)


def parse_model_args(items: list[str]) -> dict:
    """``["width=64", "batchnorm=true"]`` -> ``{"width": 64, "batchnorm": True}``."""
    values: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key):
            raise ConfigError(f"--model-arg takes KEY=VALUE, e.g. width=64; got {clipped(item)!r}")
        values[key] = _value(key, text.strip())
    return values


def _value(key: str, text: str) -> bool | int | float | str:
    """One setting's text as true/false, a whole number, a finite number or else text."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    try:
        return int(text)
    except ValueError:  # not a whole number, or one of more than 4300 digits
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        raise ConfigError(f"--model-arg {key}: {clipped(text)} is not a finite number (or too "
                          "large)")
    return number


