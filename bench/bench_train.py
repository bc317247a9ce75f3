"""Time CNN training: digits to 98% on this CPU, and ResNet-9 throughput on CIFAR-sized data.

Part 1, digits: the default ``convlens train`` (tinyvgg, 30 epochs, the digits preset) for
``--seeds`` seeds. For each: the seconds until the first epoch at >= 98% val accuracy (training
and validation time, as the run table counts it; start-up and figures excluded), the whole run's
wall time, the kept model's val accuracy (the split that chose it) and test accuracy (the
split nothing was chosen on: the number to quote), the last epoch's val accuracy, and the test
accuracy of scikit-learn's SVC with C and gamma chosen on the same val split. The test split is
the seeded, stratified 20% of each class; the val split 20% of the rest. Last, how many runs
kept the promise of ``convlens train`` with no arguments: 98% test accuracy within a minute,
counting both the epochs and the whole run (the test suite checks the accuracy, not the
clock).

Part 2, ResNet-9 images/s: a synthetic data set of CIFAR-10's size (50,000 uint8 3x32x32 images,
10 classes) trained through the same input pipeline as ``convlens train`` (augmentation,
normalization, SGD step). The median images/s over ``--steps`` timed steps after warm-up steps,
on the CPU (fp32) and, where CUDA exists, on the GPU as fp32, ``--amp`` and ``--amp`` +
channels_last, with ratios to fp32. A whole CIFAR-sized epoch on the GPU is timed too.

    python bench/bench_train.py                  # a few minutes on a 2-core CPU
    python bench/bench_train.py --seeds 1 --steps 3 --cpu-batch 32   # a smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from convlens.data import Augment, ImageSet
from convlens.models import create_model
from convlens.results.training import train
from convlens.train import TrainConfig
from convlens.train.runner import Runner

TARGET = 0.98
PROMISE_S = 60.0  # the default digits run reaches TARGET within a minute
CIFAR_SIZE = 50_000


def digits_runs(seeds: int) -> list[dict]:
    rows = []
    for seed in range(seeds):
        reached: list[float] = []
        spent = [0.0]

        def watch(record: dict, reached=reached, spent=spent) -> None:
            spent[0] += record["seconds"]
            if not reached and record["val_accuracy"] >= TARGET:
                reached.append(spent[0])
                reached.append(record["epoch"])

        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            result = train(TrainConfig(seed=seed, out=Path(folder) / "run"), on_epoch_end=watch)
            wall = time.perf_counter() - started
        metrics = result.metrics
        rows.append({
            "seed": seed,
            "to_target_s": reached[0] if reached else float("nan"),
            "to_target_epoch": reached[1] if reached else None,
            "train_s": metrics["seconds"],
            "wall_s": wall,
            "kept": metrics["val_accuracy"],
            "test": metrics["test_accuracy"],
            "last": metrics["final_val_accuracy"],
            "svc": metrics["baseline"]["test_accuracy"],
            "images_per_second": metrics["images_per_second"],
        })
    return rows


def synthetic_cifar(count: int, seed: int = 0) -> ImageSet:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return ImageSet(images, labels)


def resnet9_rate(data: ImageSet, device: torch.device, batch: int, steps: int, warmup: int,
                 amp: bool, channels_last: bool) -> float:
    """Median images/s of ``steps`` timed SGD steps (after ``warmup``) through the training
    pipeline of ``convlens train``."""
    torch.manual_seed(0)
    model = create_model("resnet9", 3, 10, (32, 32), width=64)
    runner = Runner(model, device, [0.5] * 3, [0.25] * 3, amp=amp, channels_last=channels_last,
                    augment=Augment(crop_pad=4, flip=True, pad_mode="reflect"),
                    label_smoothing=0.2)
    placed = data.to(device) if device.type == "cuda" else data
    optimizer = torch.optim.SGD(runner.model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    runner.model.train()
    rates = []
    for step in range(warmup + steps):
        index = torch.randint(0, len(data), (batch,), generator=generator)
        _sync(device)
        started = time.perf_counter()
        runner.train_step(placed, index, optimizer, generator)
        _sync(device)
        if step >= warmup:
            rates.append(batch / (time.perf_counter() - started))
    return statistics.median(rates)


def gpu_epoch(data: ImageSet) -> dict:
    """One whole CIFAR-sized epoch with ``convlens train`` on the GPU (amp, channels_last),
    from synthetic batches written in CIFAR's python format."""
    import pickle

    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "cifar-10-batches-py"
        root.mkdir()
        flat = data.images.reshape(len(data), -1).numpy()
        labels = data.labels.tolist()
        per = len(data) // 5
        for index in range(5):
            part = slice(index * per, (index + 1) * per)
            with open(root / f"data_batch_{index + 1}", "wb") as stream:
                pickle.dump({"data": flat[part], "labels": labels[part]}, stream)
        with open(root / "test_batch", "wb") as stream:
            pickle.dump({"data": np.ascontiguousarray(flat[:10_000]),
                         "labels": labels[:10_000]}, stream)
        result = train(TrainConfig(data=f"cifar10:{root}", epochs=2, amp=True, out=Path(folder)
                                   / "run", filters_gif=False, baseline=False))
    return result.metrics


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="digits runs (seeds 0..N-1)")
    parser.add_argument("--steps", type=int, default=5, help="timed ResNet-9 steps per setting")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--cpu-batch", type=int, default=64, help="ResNet-9 batch on the CPU")
    parser.add_argument("--gpu-batch", type=int, default=512, help="ResNet-9 batch on the GPU")
    parser.add_argument("--skip-digits", action="store_true")
    args = parser.parse_args(argv)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    if not args.skip_digits:
        print(f"\n1. digits, default `convlens train` (tinyvgg, 30 epochs): time to "
              f"{TARGET:.0%} val accuracy")
        print(f"{'seed':>4}  {'to 98% (s)':>10}  {'epoch':>5}  {'30 epochs (s)':>13}  "
              f"{'wall (s)':>8}  {'kept val':>8}  {'test':>7}  {'last val':>8}  "
              f"{'SVC test':>8}  {'img/s':>7}")
        rows = digits_runs(args.seeds)
        for row in rows:
            print(f"{row['seed']:>4}  {row['to_target_s']:>10.2f}  {row['to_target_epoch']!s:>5}"
                  f"  {row['train_s']:>13.2f}  {row['wall_s']:>8.2f}  {row['kept']:>8.2%}  "
                  f"{row['test']:>7.2%}  {row['last']:>8.2%}  {row['svc']:>8.2%}  "
                  f"{row['images_per_second']:>7,.0f}")
        kept = [row["seed"] for row in rows if row["test"] >= TARGET
                and max(row["train_s"], row["wall_s"]) < PROMISE_S]
        print(f"   {TARGET:.0%} within {PROMISE_S:.0f} s (epochs and whole run): {len(kept)} of "
              f"{len(rows)} runs (seeds {', '.join(map(str, kept)) or 'none'})")

    data = synthetic_cifar(CIFAR_SIZE)
    print(f"\n2. resnet9 (width 64) on synthetic CIFAR-sized data ({CIFAR_SIZE:,} x 3x32x32): "
          "training images/s, median of timed steps")
    print(f"{'device':>8}  {'setting':>22}  {'batch':>5}  {'images/s':>9}  {'vs fp32':>7}")
    cpu = torch.device("cpu")
    rate = resnet9_rate(data, cpu, args.cpu_batch, args.steps, args.warmup, False, False)
    print(f"{'cpu':>8}  {'fp32':>22}  {args.cpu_batch:>5}  {rate:>9,.1f}  {1.0:>7.2f}")
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        base = None
        for name, amp, channels_last in (("fp32", False, False), ("amp", True, False),
                                         ("amp + channels_last", True, True)):
            rate = resnet9_rate(data, gpu, args.gpu_batch, max(args.steps, 20), 5, amp,
                                channels_last)
            base = base or rate
            print(f"{'cuda':>8}  {name:>22}  {args.gpu_batch:>5}  {rate:>9,.0f}  "
                  f"{rate / base:>7.2f}")
        metrics = gpu_epoch(data)
        epoch = metrics["history"][-1]
        print(f"\n   whole epochs with `convlens train --amp` on {torch.cuda.get_device_name()}: "
              f"{epoch['train_seconds']:.2f} s per epoch of 50,000 images "
              f"({metrics['images_per_second']:,.0f} images/s over 2 epochs, first included)")
    else:
        print("   (no CUDA GPU here: the GPU rows, with --amp and channels_last, are skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
