#!/usr/bin/env python
"""Rebuild the digits CNN that ships with convlens, bit for bit.

`convlens serve` opens on this network when it is given no --model, and
:func:`convlens.images.bundled_model_path` finds it. It is what `convlens train` makes of
scikit-learn's 8x8 digits with the digits preset (tinyvgg, width 32, batch norm, 30 epochs,
seed 0, split seed 0), trained here through the library's :func:`convlens.train.fit`, on the
CPU, on one thread, with torch's deterministic algorithms: the same torch version writes the
same weights.

The data is split three ways (see :mod:`convlens.train.loop`): the val split picks the epoch to
keep, and the test split (20% of each class, never used to choose anything) is measured once at
the end; that ``test_accuracy`` is the number reported, in ``metrics.json`` and in
``model.json``'s ``metrics``.

Writes into OUT (default: ``src/convlens/samples/digits-cnn``) only what ships:
``model.safetensors`` (the weights), ``model.json`` (what they are) and ``metrics.json`` (the
run's measurements, with the temporary run folder's path left out). The run's
``train-state.*`` resume files stay behind in the temporary folder.

    .venv/bin/python scripts/build_bundled_model.py            # rewrite the shipped model
    .venv/bin/python scripts/build_bundled_model.py --out /tmp/digits-cnn
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from convlens.images import bundled_model_path
from convlens.models import INFO_FILE, WEIGHTS_FILE
from convlens.train import TrainConfig, fit
from convlens.train.files import METRICS_FILE

SHIPPED = (WEIGHTS_FILE, INFO_FILE, METRICS_FILE)
"""The files the package carries; everything else the run writes stays behind."""


def bundled_config(out: Path) -> TrainConfig:
    """The run's settings: the digits preset with every seed and the thread count spelled out,
    so a change of the preset shows here as a change of this script's output."""
    return TrainConfig(data="digits", model="tinyvgg", arch_kwargs={"width": 32,
                                                                     "batchnorm": True},
                       epochs=30, batch_size=64, lr=0.05, seed=0, split_seed=0,
                       val_fraction=0.2, device="cpu", threads=1, baseline=True,
                       filters_gif=False, out=out, force=True)


def build(out: Path) -> dict:
    """Train the bundled model and write :data:`SHIPPED` into ``out`` (made if missing);
    returns the run's ``metrics.json`` content as written."""
    out = Path(out)
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory(prefix="convlens-bundled-") as work:
        run = Path(work) / "run"
        result = fit(bundled_config(run))
        metrics = dict(result.metrics)
        metrics["config"] = dict(metrics["config"], out=None)  # a temporary folder: not shipped
        # bit for bit holds for one torch version (its CPU kernels decide the last bits)
        metrics.update(built_by="scripts/build_bundled_model.py", torch_version=torch.__version__)
        (run / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        out.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED:
            shutil.copyfile(run / name, out / name)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=bundled_model_path().parent,
                        help="folder to write model.safetensors, model.json and metrics.json "
                        "into (default: the package's samples/digits-cnn)")
    args = parser.parse_args(argv)
    metrics = build(args.out)
    baseline = metrics.get("baseline") or {}
    sizes = ", ".join(f"{name} {(args.out / name).stat().st_size / 1024:.0f} KiB"
                      for name in SHIPPED)
    print(f"wrote {args.out}: {sizes}")
    print(f"test accuracy {metrics['test_accuracy']:.2%} on {metrics['split_sizes']['test']} "
          f"held-out images (val {metrics['val_accuracy']:.2%}, epoch "
          f"{metrics['best_epoch']} of {metrics['epochs']}; SVC baseline "
          f"{baseline.get('test_accuracy', float('nan')):.2%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
