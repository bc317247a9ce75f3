"""The CLI's promise on bad input, as one table: every row is a hostile or careless command line.

Each row gives the arguments, the files it needs (made in a fresh folder by ``setup``), the exit
code, and words the one-line error must hold. For every row the test also checks that no
traceback was printed, that the error is one line, and, for a refused command (exit 2), that
nothing was left behind: the folder holds exactly what ``setup`` made. Add a row whenever a bad
input is fixed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass(frozen=True)
class Bad:
    """One bad command line: ``args`` (``{sample}`` is the bundled cat photo), the exit ``code``
    and a regular expression ``words`` the error must match; ``setup`` makes input files in the
    working folder first."""

    id: str
    args: tuple[str, ...]
    code: int
    words: str
    setup: Callable[[Path], None] | None = None


def build_plain_pt2(path: Path) -> Path:
    """A small, honest torch.export program (no pickled parts)."""
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)).eval()
    torch.export.save(torch.export.export(model, (torch.rand(1, 1, 8, 8),)), str(path))
    return path


def _files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


# --------------------------------------------------------------------------- model files and trust
def _hostile(kind: str) -> Callable[[Path], None]:
    """Setup writing the hostile model file of ``kind``; loading it unguarded would create
    ``marker``, a new file the table's checker would see."""
    from hostile_models import build_hostile

    return lambda folder: build_hostile(kind, folder, folder / "marker") and None


_HOSTILE_FILES = {"pickle": "evil.pt", "torchscript": "evil-script.pt",
                  "pt2-pickled-weight": "evil-weight.pt2", "pt2-pickled-inputs": "evil-inputs.pt2"}
_MODEL_ENTRIES = {"layers": ("layers", "{model}", "--input-size", "8"),
                  "inspect": ("inspect", "{model}", "{sample}", "--input-size", "8"),
                  "saliency": ("saliency", "{model}", "{sample}", "--input-size", "8"),
                  "serve": ("serve", "--model", "{model}", "--port", "0")}
TRUST_CASES: list[Bad] = [
    *(Bad(f"{entry}-refuses-{kind}",
          tuple(arg.replace("{model}", name) for arg in args), 2,
          r"(runs code|unpickling|is code).*--trust-code", _hostile(kind))
      for kind, name in _HOSTILE_FILES.items() for entry, args in _MODEL_ENTRIES.items()),
    Bad("pickle-as-weights", ("layers", "tinyvgg", "--weights", "evil.pt"), 2,
        r"evil\.pt holds pickled Python objects, not plain weights", _hostile("pickle")),
    Bad("factory-needs-trust", ("layers", "os:getcwd"), 2,
        r"os:getcwd names Python code to import and call.*--trust-code"),
    Bad("factory-sys-exit", ("layers", "sys:exit", "--trust-code"), 2,
        r"sys:exit is a builtin_function_or_method, not a model factory"),
    Bad("factory-os-abort", ("layers", "os:abort", "--trust-code"), 2,
        r"os:abort is a builtin_function_or_method, not a model factory"),
    Bad("factory-not-a-module-class", ("layers", "pathlib:Path", "--trust-code"), 2,
        r"pathlib:Path is the class Path, not a torch nn.Module class"),
    Bad("factory-raises-system-exit", ("layers", "quits:build", "--trust-code"), 2,
        r"quits:build\(\) failed: SystemExit",
        lambda folder: (folder / "quits.py").write_text(
            "import sys\n\ndef build():\n    sys.exit(3)\n") and None),
    Bad("factory-returns-a-list", ("layers", "lists:build", "--trust-code"), 2,
        r"lists:build\(\) returned a list, not a torch nn.Module",
        lambda folder: (folder / "lists.py").write_text("def build():\n    return []\n")
        and None),
    Bad("truncated-pt2", ("layers", "cut.pt2"), 2, r"cut\.pt2: not a readable torch\.export",
        lambda folder: (folder / "cut.pt2").write_bytes(
            (build_plain_pt2(folder / "whole.pt2")).read_bytes()[:700])),
]

# --------------------------------------------------------------------------- kernels, numbers, text
def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    """Setup: write one file ``name`` holding ``content`` in the working folder."""
    def setup(folder: Path) -> None:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return setup


def _npy(header: str) -> bytes:
    """A .npy file with this header dictionary and no data (format version 2)."""
    text = (header + "\n").encode("latin1")
    return b"\x93NUMPY\x02\x00" + len(text).to_bytes(4, "little") + text


def _bad_model_json(field: str | None, value: object) -> Callable[[Path], None]:
    """Setup: a real checkpoint in ``run/``, saved by the library, then one field of its
    model.json replaced by ``value`` (written with Python's json, so NaN and Infinity too);
    with no ``field``, the whole file replaced by the text ``value``."""
    def setup(folder: Path) -> None:
        import json

        from convlens.models import ModelInfo, create_model, save_checkpoint

        info = ModelInfo("tinyvgg", 1, (8, 8), ["a", "b", "c"], [0.5], [0.25], {"width": 4},
                         {"data": "digits", "split_seed": 0})
        save_checkpoint(create_model("tinyvgg", 1, 3, (8, 8), width=4), info, folder / "run")
        info_path = folder / "run" / "model.json"
        data = json.loads(info_path.read_text())
        if field is None:
            info_path.write_text(str(value))
            return
        data[field] = value
        info_path.write_text(json.dumps(data))
    return setup


_GRID_31 = "; ".join(" ".join(str((r * c) % 7 - 3) for c in range(31)) for r in range(31))
_RAGGED_31 = _GRID_31[: _GRID_31.rindex(" ")]  # 31 rows, the last one a number short
PARSING_CASES: list[Bad] = [
    Bad("kernel-nan", ("run", "--kernel", "1 nan 0; 0 1 0; 0 0 1"), 2,
        r"row 1, column 2: NaN is not a finite number"),
    Bad("kernel-inf", ("run", "--kernel", "1 0; 0 -inf"), 2,
        r"row 2, column 2: -inf is not a finite number"),
    Bad("kernel-over-float32", ("run", "--kernel", "1e39 0; 0 1"), 2,
        r"row 1, column 1: 1e39 is too large for a float32 weight"),
    Bad("kernel-1e308", ("run", "--kernel", "1 1e308"), 2, r"row 1, column 2: 1e308 is too large"),
    Bad("kernel-divide-by-zero", ("run", "--kernel", "1 1; 1/0 1"), 2,
        r"row 2, column 1: 1/0 divides by zero"),
    Bad("kernel-integer-beyond-float", ("run", "--kernel", "1" + "0" * 400), 2,
        r"row 1, column 1: 10+\.\.\. is too large"),
    Bad("kernel-json-nan", ("run", "--kernel", "[[1, NaN], [0, 1]]"), 2,
        r"row 1, column 2: NaN is not a finite number"),
    Bad("kernel-json-integer-beyond-float", ("run", "--kernel", f"[[1, {10**400}]]"), 2,
        r"row 1, column 2: an integer of 401 digits is too large"),
    Bad("kernel-second-of-two-named", ("run", "--kernel", "sobel-h", "--kernel", "1 2; 3 nan"), 2,
        r"kernel 2 \('1 2; 3 nan'\), row 2, column 2: NaN"),
    Bad("kernel-long-inline-ragged", ("run", "--kernel", _RAGGED_31), 2,
        r"is ragged: rows have 31, .*, 30 numbers"),
    Bad("kernel-long-inline-too-wide", ("run", "--kernel", "1 " * 200), 2,
        r"is 1x200; the largest supported side is 31"),
    Bad("kernel-dev-zero", ("run", "--kernel", "/dev/zero"), 2, r"/dev/zero is not a regular file"),
    Bad("kernel-folder", ("run", "--kernel", "."), 2, r"kernel file \. is not a regular file"),
    Bad("kernel-deep-json-file", ("run", "--kernel", "deep.json"), 2,
        r"kernel file 'deep\.json' is JSON nested too deeply", _write("deep.json", "[" * 100_000)),
    Bad("kernel-npy-huge-header", ("run", "--kernel", "k.npy"), 2,
        r"'k\.npy' is not a readable \.npy file: Header info length",
        _write("k.npy", _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }"
                             + " " * 100_000) + bytes(72))),
    Bad("kernel-npy-huge-shape", ("run", "--kernel", "k.npy"), 2,
        r"'k\.npy' holds an array of shape \(100000, 100000\)",
        _write("k.npy", _npy("{'descr': '<f8', 'fortran_order': False, "
                             "'shape': (100000, 100000), }"))),
    Bad("kernel-txt-nan-on-line-3", ("run", "--kernel", "k.txt"), 2,
        r"kernel file 'k\.txt', line 3, column 2: NaN is not a finite number",
        _write("k.txt", "# my edge kernel\n1 2\n3 nan\n")),
    Bad("kernel-txt-too-big", ("run", "--kernel", "big.txt"), 2, r"'big\.txt' is over 1024 KiB",
        _write("big.txt", "1 " * 600_000)),
    Bad("patch-nan", ("explain", "--patch", "1 2; 3 nan", "--kernel", "1 0; 0 1"), 2,
        r"--patch, row 2, column 2: NaN is not a finite number"),
    Bad("patch-long-inline", ("explain", "--patch", "1 " * 300, "--kernel", "1 0; 0 1"), 2,
        r"--patch is 1x300; the largest supported side is 31"),
    Bad("values-inf", ("animate", "--values", "1 2; 3 inf"), 2,
        r"--values, row 2, column 2: inf is not a finite number"),
    Bad("values-long-inline", ("animate", "--values", "; ".join(["1 2"] * 200)), 2,
        r"--values is 200x2; the largest supported side is 31"),
    Bad("at-5000-digits", ("explain", "--kernel", "sobel-h", "--at", "1" * 5000 + ",1"), 2,
        r"--at must be ROW,COL \(two whole numbers\); got '1111"),
    Bad("model-arg-nan", ("train", "--model-arg", "width=nan"), 2,
        r"--model-arg width: nan is not a finite number"),
    Bad("model-arg-text-for-a-number", ("train", "--model-arg", "width=wide"), 2,
        r"model 'tinyvgg': setting 'width' must be a whole number; got 'wide'"),
    Bad("model-arg-5000-digits", ("train", "--model-arg", "width=" + "9" * 5000), 2,
        r"--model-arg width: 9+\.\.\. \(5000 characters\) is not a finite number"),
    Bad("model-json-input-size-null", ("layers", "run"), 2,
        r"model\.json: 'input_size' must be two positive whole numbers \(H, W\).*got null",
        _bad_model_json("input_size", None)),
    Bad("model-json-in-channels-text", ("layers", "run"), 2,
        r"model\.json: 'in_channels' must be a whole number from 1 to 16; got '1'",
        _bad_model_json("in_channels", "1")),
    Bad("model-json-std-infinite", ("predict", "run", "{sample}"), 2,
        r"model\.json: 'std' must be 1 positive number, one per input channel; got \[Infinity\]",
        _bad_model_json("std", [float("inf")])),
    Bad("model-json-mean-nan", ("inspect", "run", "{sample}"), 2,
        r"model\.json: 'mean' must be 1 finite number.*got \[NaN\]",
        _bad_model_json("mean", [float("nan")])),
    Bad("model-json-huge-width", ("layers", "run"), 2,
        r"model\.json: 'arch_kwargs\.width' must be a whole number from 1 to \d+; got 1000000000",
        _bad_model_json("arch_kwargs", {"width": 10**9})),
    Bad("model-json-nested-class-names", ("layers", "run"), 2,
        r"model\.json: 'class_names' item 1 must be a name.*got a list",
        _bad_model_json("class_names", ["a", [["b"]], "c"])),
    Bad("model-json-architecture-object", ("saliency", "run", "{sample}"), 2,
        r"model\.json: 'architecture' must be a model name; got an object",
        _bad_model_json("architecture", {"name": "tinyvgg"})),
    Bad("model-json-split-seed-junk", ("evaluate", "run"), 2,
        r"model\.json: 'metrics\.split_seed' must be a whole number",
        _bad_model_json("metrics", {"data": "digits", "split_seed": [1]})),
    Bad("model-json-nested-deep", ("layers", "run"), 2, r"model\.json is JSON nested too deeply",
        _bad_model_json(None, "[" * 100_000)),
    Bad("resume-damaged-state", ("train", "--out", "run", "--resume"), 2,
        r"run/train-state\.json is damaged \('epoch' is 'x'\); start a new run",
        lambda folder: ((folder / "run").mkdir(), _write(
            "run/train-state.json", '{"config": {"epochs": 3}, "epoch": "x"}')(folder))[-1]),
    Bad("mean-nan", ("saliency", "run", "{sample}", "--mean", "nan", "--std", "0.25"), 2,
        r"--mean and --std take finite numbers; got \[nan\]", _bad_model_json("metrics", {})),
    Bad("std-infinite", ("inspect", "run", "{sample}", "--mean", "0.5", "--std", "1e400"), 2,
        r"--mean and --std take finite numbers; got \[0\.5\] and \[inf\]",
        _bad_model_json("metrics", {})),
]

# --------------------------------------------------------------------------- budgets and bounds
def _wide_png(height: int, width: int) -> Callable[[Path], None]:
    """A gray PNG ``wide.png`` of an extreme aspect ratio."""
    def write(folder: Path) -> None:
        from PIL import Image

        pixels = np.random.default_rng(3).integers(0, 256, (height, width), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "wide.png")
    return write


_HUGE = str(2**70)
_TRAIN_FAST = ("--epochs", "1", "--no-gif", "--no-baseline", "--no-progress")
BOUNDS_CASES: list[Bad] = [
    Bad("run-padding-100000", ("run", "--padding", "100000"), 2,
        r"^error: padding is 100000; the limit is 1024$"),
    Bad("run-padding-2-70", ("run", "--padding", _HUGE), 2, rf"padding is {_HUGE}; the limit"),
    Bad("run-padding-5000-digits", ("run", "--padding", "7" * 5000), 2,
        r"padding is 777777777777\.\.\. \(5000 digits\); the limit is 1024"),
    Bad("run-stride-2-70", ("run", "--stride", _HUGE), 2, rf"stride is {_HUGE}; the limit is 1024"),
    Bad("run-pool-stride-2-70", ("run", "--pool-stride", _HUGE), 2, rf"pool stride is {_HUGE}"),
    Bad("run-pool-2-70", ("run", "--pool", _HUGE), 2, rf"pool size is {_HUGE}; the limit"),
    Bad("run-dilation-2-70", ("run", "--dilation", _HUGE), 2, rf"dilation is {_HUGE}; the limit"),
    Bad("run-500-kernels", ("run", "--kernels", ",".join(["sobel-h"] * 500)), 2,
        r"the number of kernels is 500; the limit is 32; run them in groups"),
    Bad("run-1x20000-image", ("run", "wide.png", "--padding", "same"), 2,
        r"pool window 2x2 is larger than the 1x20000 conv map", _wide_png(1, 20000)),
    Bad("run-3x20000-image-no-output", ("run", "wide.png"), 2,
        r"pool window 2x2 is larger than the 1x19998 conv map", _wide_png(3, 20000)),
    Bad("run-over-the-budget", ("--budget", "64M", "run"), 2,
        r"a run of a 1x300x451 image with 3 3x3 kernels \(298x449 maps\) needs about \d+ MiB "
        r"of memory, over the 64 MiB budget; make it smaller or raise the budget \(convlens "
        r"--budget \d+M run \.\.\., or CONVLENS_BUDGET=\d+M\)"),
    Bad("budget-not-a-size", ("--budget", "lots", "run"), 2,
        r"a memory budget must be a size such as 16G, 512M or 'none'; got 'lots'"),
    Bad("size-5000-digit-layer", ("size", "--input", "224", "--layers", "conv" + "9" * 5000), 2,
        r"layer 1 \(conv9+\): the conv window is 9+\.\.\. \(5000 digits\); the limit is 1024"),
    Bad("size-5000-digit-input", ("size", "--input", "9" * 5000, "--layers", "conv3"), 2,
        r"input size is 9+\.\.\. \(5000 digits\); the limit is 65536"),
    Bad("size-stride-2-70", ("size", "--input", "224", "--layers", f"conv3 s{_HUGE}"), 2,
        rf"layer 1 \(conv3 s{_HUGE}\): stride is {_HUGE}; the limit is 1024"),
    Bad("size-padding-5000", ("size", "--input", "224", "--layers", "conv3 p5000"), 2,
        r"layer 1 \(conv3 p5000\): padding is 5000; the limit is 1024"),
    Bad("train-size-20000", ("train", "--size", "20000", *_TRAIN_FAST), 2,
        r"a set of \d+ images of 1x20000x20000 needs about [\d.]+ TiB of memory, over the 4 GiB "
        r"budget"),
    Bad("train-size-5000-digits", ("train", "--size", "9" * 5000, *_TRAIN_FAST), 2,
        r"size is 9+\.\.\. \(5000 digits\); the limit is 65536"),
    Bad("train-crop-pad-100000", ("train", "--crop-pad", "100000", *_TRAIN_FAST), 2,
        r"crop padding \(px\) is 100000; the limit is 1024"),
    Bad("train-crop-pad-past-the-image", ("train", "--crop-pad", "9", *_TRAIN_FAST), 2,
        r"crop padding \(px\) is 9; the limit is 8; the 8x8 images allow at most"),
    Bad("train-width-1e9", ("train", "--model-arg", "width=1e9", *_TRAIN_FAST), 2,
        r"width is 1000000000; the limit is 1024"),
    Bad("train-model-over-the-budget", ("train", "--model", "resnet9", "--model-arg",
                                         "width=1000", *_TRAIN_FAST), 2,
        r"model 'resnet9' \(1\.\d+ G parameters\) needs about \d+\.\d GiB of memory, over the "
        r"4 GiB budget.*convlens --budget \d+G train"),
    Bad("saliency-steps-1e8", ("saliency", "model.safetensors", "{sample}", "--steps",
                               "100000000"), 2,
        r"the number of integrated-gradients steps is 100000000; the limit is 1000",
        lambda folder: _digits_model(folder)),
]

# ---------------------------------------------------------------- paths, images, batches, data
QUICK_TRAIN = ("train", "--epochs", "1", "--no-gif", "--no-baseline", "--no-progress")


def _setup(*steps: Callable[[Path], object]) -> Callable[[Path], None]:
    """One setup running ``steps`` in order."""
    return lambda folder: [step(folder) for step in steps] and None


def _text(name: str, text: str = "a user's notes\n") -> Callable[[Path], object]:
    return lambda folder: (folder / name).write_text(text)


def _folder(name: str) -> Callable[[Path], object]:
    return lambda folder: (folder / name).mkdir(parents=True)


def _read_only(name: str) -> Callable[[Path], object]:
    """A folder no one may write in (mode 0o555): refused even when the tests run as root."""
    return lambda folder: (folder / name).mkdir(mode=0o555)


def _png(name: str, seed: int = 0) -> Callable[[Path], object]:
    from PIL import Image

    def write(folder: Path) -> None:
        path = Path(folder, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(seed).integers(0, 256, (12, 16), dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="PNG")
    return write


ODD_NAME = os.fsdecode(b"caf\xe9.png")
"""A file name whose bytes are Latin-1, not UTF-8: Python sees it with a lone surrogate."""


def _digits_model(folder: Path) -> None:
    """An untrained tinyvgg checkpoint for 8x8 gray digits, classes 0-9, as `train` writes."""
    from convlens.models import ModelInfo, create_model, save_checkpoint

    info = ModelInfo("tinyvgg", 1, (8, 8), [str(i) for i in range(10)], [0.3], [0.3], {},
                     {"data": "digits", "split_seed": 0})
    save_checkpoint(create_model("tinyvgg", 1, 10, (8, 8)), info, folder / "model.safetensors")


def _float_tiff(name: str, value: float) -> Callable[[Path], object]:
    from PIL import Image

    def write(folder: Path) -> None:
        image = Image.new("F", (6, 5))
        image.putdata([value] * 30)
        image.save(folder / name)
    return write


def _cifar(test_batch: bytes | None = None, train_batch: bytes | None = None
           ) -> Callable[[Path], object]:
    """A CIFAR-10 folder ``cifar/`` with one 4-image train and test batch; either can be
    replaced by the given bytes."""
    import pickle

    def write(folder: Path) -> None:
        root = folder / "cifar"
        root.mkdir()
        rng = np.random.default_rng(0)
        for name, given in (("data_batch_1", train_batch), ("test_batch", test_batch)):
            batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                     b"labels": [0, 1, 2, 3]}
            (root / name).write_bytes(given if given is not None
                                      else pickle.dumps(batch, protocol=2))
    return write


def _cifar_pickle(labels: object) -> bytes:
    import pickle

    return pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": labels}, protocol=2)


def _idx(name: str, array, gz: bool = False) -> Callable[[Path], object]:
    """An IDX file (LeCun's layout: 0, 0, type 0x08, ndim, big-endian sizes, bytes)."""
    import gzip
    import struct

    def write(folder: Path) -> None:
        data = np.asarray(array, dtype=np.uint8)
        payload = bytes([0, 0, 0x08, data.ndim]) + struct.pack(f">{data.ndim}I", *data.shape)
        payload += data.tobytes()
        path = folder / "mnist" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress(payload)[:-12] if gz else payload)
    return write


_UNDER_A_FILE = r"notes\.txt is a file, not a folder"
FILES_CASES: list[Bad] = [
    # output paths: a path under a file, a pseudo file system, a file where a folder goes
    Bad("run-out-under-a-file", ("run", "{sample}", "--out", "notes.txt/result"), 2,
        _UNDER_A_FILE, _text("notes.txt")),
    Bad("run-out-on-proc", ("run", "{sample}", "--out", "/proc/convlens-result"), 2,
        r"cannot write /proc/convlens-result"),
    Bad("run-out-on-sys", ("run", "{sample}", "--out", "/sys/convlens-result"), 2,
        r"cannot write /sys/convlens-result"),
    Bad("run-out-in-a-read-only-folder", ("run", "{sample}", "--out", "locked/result"), 2,
        r"cannot write locked/result: locked is read-only", _read_only("locked")),
    Bad("train-out-in-a-read-only-folder", (*QUICK_TRAIN, "--out", "locked/run"), 2,
        r"cannot write locked/run: locked is read-only", _read_only("locked")),
    Bad("run-out-is-a-file", ("run", "{sample}", "--out", "notes.txt"), 2,
        r"notes\.txt exists and is not a folder", _text("notes.txt")),
    Bad("run-batch-out-under-a-file", ("run", "{sample}", "photo.png", "--out",
                                       "notes.txt/batch"), 2, _UNDER_A_FILE,
        _setup(_text("notes.txt"), _png("photo.png"))),
    Bad("explain-figure-under-a-file", ("explain", "--figure", "notes.txt/why.png"), 2,
        _UNDER_A_FILE, _text("notes.txt")),
    Bad("explain-figure-on-proc", ("explain", "--figure", "/proc/why.png"), 2,
        r"cannot write /proc/why\.png"),
    Bad("explain-figure-is-a-folder", ("explain", "--figure", "why.png"), 2,
        r"why\.png is a folder, not a file name", _folder("why.png")),
    Bad("animate-out-under-a-file", ("animate", "--out", "notes.txt/slide.gif"), 2,
        _UNDER_A_FILE, _text("notes.txt")),
    Bad("animate-out-on-sys", ("animate", "--out", "/sys/slide.gif"), 2,
        r"cannot write /sys/slide\.gif"),
    Bad("animate-out-exists", ("animate", "--out", "slide.gif"), 2,
        r"slide\.gif exists; pass --force", _text("slide.gif")),
    Bad("train-out-under-a-file", (*QUICK_TRAIN, "--out", "notes.txt/run"), 2, _UNDER_A_FILE,
        _text("notes.txt")),
    Bad("train-out-on-proc", (*QUICK_TRAIN, "--out", "/proc/run"), 2, r"cannot write /proc/run"),
    Bad("train-runs-is-a-file", QUICK_TRAIN, 2, r"runs exists and is not a folder",
        _text("runs")),
    Bad("train-model-does-not-fit-leaves-no-run-folder", (*QUICK_TRAIN, "--model", "lenet"), 2,
        r"cannot take 8x8 images"),
    Bad("evaluate-out-under-a-file", ("evaluate", "model.safetensors", "--out",
                                      "notes.txt/eval"), 2, _UNDER_A_FILE,
        _setup(_digits_model, _text("notes.txt"))),
    Bad("evaluate-out-on-proc", ("evaluate", "model.safetensors", "--out", "/proc/eval"), 2,
        r"cannot write /proc/eval", _digits_model),
    Bad("inspect-out-under-a-file", ("inspect", "model.safetensors", "{sample}", "--out",
                                     "notes.txt/inside"), 2, _UNDER_A_FILE,
        _setup(_digits_model, _text("notes.txt"))),
    Bad("inspect-error-midway-leaves-no-folder", ("inspect", "model.safetensors", "{sample}",
                                                  "--data", "nowhere", "--out", "inside"), 2,
        r"--data must be a folder of images", _digits_model),
    Bad("saliency-out-under-a-file", ("saliency", "model.safetensors", "{sample}", "--out",
                                      "notes.txt/why"), 2, _UNDER_A_FILE,
        _setup(_digits_model, _text("notes.txt"))),
    # images
    Bad("float-tiff-beyond-1", ("run", "hot.tif"), 2,
        r"hot\.tif: float image values run from 7 to 7.*real values.*\[0, 1\]",
        _float_tiff("hot.tif", 7.0)),
    Bad("image-is-a-device", ("run", "/dev/zero"), 2, r"/dev/zero is not a regular file"),
    Bad("batch-skips-unreadable-and-reads-odd-names",
        ("run", "photos", "--out", "results", "--no-report"), 1,
        r"skipped photos/broken\.png: .*not an image.*error: 1 of 3 images failed",
        _setup(_png(f"photos/{ODD_NAME}"), _png("photos/fine.png", 1),
               _text("photos/broken.png", "not a picture"))),
    Bad("batch-skips-a-folder-named-like-an-image", ("run", "photos", "--out", "results"), 1,
        r"photos/inner\.png is a folder.*1 of 2 images failed",
        _setup(_png("photos/fine.png"), _folder("photos/inner.png"))),
    Bad("predict-skips-a-bad-image", ("predict", "model.safetensors", "fine.png", "broken.png"),
        1, r"skipped broken\.png.*error: 1 of 2 images failed",
        _setup(_digits_model, _png("fine.png"), _text("broken.png", "not a picture"))),
    Bad("predict-one-bad-image", ("predict", "model.safetensors", "broken.png"), 2,
        r"broken\.png is not an image", _setup(_digits_model, _text("broken.png", "no"))),
    # data sets
    Bad("evaluate-corrupt-cifar-test-batch", ("evaluate", "model.safetensors", "--data",
                                              "cifar10:cifar"), 2,
        r"test_batch is not a CIFAR python batch",
        _setup(_digits_model, _cifar(test_batch=_cifar_pickle([0, 1])[:-30]))),
    Bad("train-corrupt-cifar-batch", (*QUICK_TRAIN, "--data", "cifar10:cifar"), 2,
        r"data_batch_1 is not a CIFAR python batch", _cifar(train_batch=b"\x80\x02}q\x00(X")),
    Bad("train-cifar-labels-are-words", (*QUICK_TRAIN, "--data", "cifar10:cifar"), 2,
        r"'labels' should be a list of whole-number class indices",
        _cifar(train_batch=_cifar_pickle(["cat", "dog"]))),
    Bad("train-cifar-labels-nested", (*QUICK_TRAIN, "--data", "cifar10:cifar"), 2,
        r"'labels' should be a list of whole-number class indices",
        _cifar(train_batch=_cifar_pickle([[1], [2]]))),
    Bad("train-idx-labels-given-as-images", (*QUICK_TRAIN, "--data", "mnist:mnist"), 2,
        r"train-images-idx3-ubyte should hold uint8 images.*is it a labels file",
        _setup(_idx("train-images-idx3-ubyte", [1, 2, 3]),
               _idx("train-labels-idx1-ubyte", [1, 2, 3]))),
    Bad("train-idx-damaged-gzip", (*QUICK_TRAIN, "--data", "mnist:mnist"), 2,
        r"train-images-idx3-ubyte\.gz is a damaged gzip file",
        _setup(_idx("train-images-idx3-ubyte.gz", [[[1]]], gz=True),
               _idx("train-labels-idx1-ubyte", [1]))),
    Bad("train-idx-no-images", (*QUICK_TRAIN, "--data", "mnist:mnist"), 2,
        r"train-images-idx3-ubyte holds no images",
        _setup(_idx("train-images-idx3-ubyte", np.zeros((0, 28, 28))),
               _idx("train-labels-idx1-ubyte", []))),
    Bad("download-into-a-path-under-a-file", (*QUICK_TRAIN, "--data", "mnist:notes.txt/mnist",
                                              "--download"), 2, _UNDER_A_FILE,
        _text("notes.txt")),
    Bad("evaluate-idx-label-count", ("evaluate", "model.safetensors", "--data", "mnist:mnist"),
        2, r"t10k-labels-idx1-ubyte holds 2 labels for 3 images",
        _setup(_digits_model, _idx("t10k-images-idx3-ubyte", [[[1]], [[2]], [[3]]]),
               _idx("t10k-labels-idx1-ubyte", [1, 2]))),
]

CASES = [*TRUST_CASES, *PARSING_CASES, *BOUNDS_CASES, *FILES_CASES]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_one_clean_line(case: Bad, cli, tmp_path: Path, chelsea: Path) -> None:
    if case.setup is not None:
        case.setup(tmp_path)
    before = _files(tmp_path)
    result = cli(*(arg.replace("{sample}", str(chelsea)) for arg in case.args))
    printed = result.out + result.err
    assert "Traceback" not in printed
    assert result.code == case.code, printed
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert errors, printed
    assert all(len(line.splitlines()) == 1 for line in errors)
    assert re.search(case.words, result.err, re.IGNORECASE | re.DOTALL), result.err
    if case.code == 2:
        assert _files(tmp_path) == before, "a refused command left files behind"


def test_table_is_not_empty() -> None:
    assert len(CASES) >= 1
