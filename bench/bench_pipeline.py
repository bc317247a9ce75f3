"""Time conv -> activation -> pool, every stage kept, side by side with its peers.

Each workload runs through every peer in one process; each peer's stages are first checked
against the eager PyTorch reference, then timed: the median of ``--repeats`` runs after a warm-up
run (fewer, at least 3, for a peer slower than a few seconds per workload).
The table gives milliseconds, the ratio to the fastest peer, and the ratio to the
memory-bandwidth floor: the bytes of the input read once plus every stage (conv, activated,
pooled) written once, over the copy bandwidth measured at the start. Every stage is memory-bound,
so the floor is what any implementation could hope for.

Peers (all compute the same valid cross-correlation, ReLU and 2x2 max pool, stride 2):

* ``opencv``: ``cv2.filter2D`` per kernel (and per channel, summed, for RGB kernels), then
  ``np.maximum`` and a pool built from four strided views, into buffers reused between runs;
* ``scipy``: ``scipy.ndimage.correlate`` per kernel (and channel), same NumPy activation and pool;
* ``torch eager``: convlens' reference, :class:`~convlens.reference.FixedConvLayer` (``nn.Conv2d``,
  ``nn.ReLU``, ``nn.MaxPool2d``), fresh outputs each run as PyTorch has no ``out=`` for them;
* ``convlens reused``: :func:`convlens.fused.run_layer` writing into the buffers of the previous
  run (steady state of a loop over images);
* ``convlens fresh``: :func:`convlens.layers.run_layer` as ``compute_stages`` calls it, fresh
  outputs each run (first touch of new pages included);
* ``convlens numpy``: the NumPy backend, :func:`convlens.fused.plain.run_layer` (shifted copies
  of the input added a block of rows at a time), fresh outputs each run: what ``auto`` picks
  for small work in a fresh process, as it loads nothing.

Workloads: W1 one 4096x4096 gray image with the tutorial's three 3x3 kernels; W2a the same image
with 16 3x3 kernels and W2b with 8 7x7; W3 a batch of 256 gray 512x512 images with the tutorial's
kernels; W4 one 2048x2048 RGB image with 16 3x3x3 kernels. ``--quick`` shrinks every size for a
smoke test. At the end, the one-off cost of ``convlens run`` in a fresh process (cold and warm
numba cache) is measured unless ``--no-cold``.

    python bench/bench_pipeline.py                # the full table, a few minutes
    python bench/bench_pipeline.py --quick --repeats 3 --no-cold
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.ndimage as ndi
import torch

from convlens import fused
from convlens.config import LayerConfig
from convlens.fused import plain
from convlens.kernels import TUTORIAL_KERNELS, kernel_bank, parse_kernels
from convlens.layers import run_layer
from convlens.reference import FixedConvLayer
from convlens.sizes import check_fits

CONFIG = LayerConfig()  # valid padding, stride 1, ReLU, 2x2 max pool with stride 2
CHECK_ROWS = 97  # stages are compared with the reference on every 97th row (cheap, still broad)
SECONDS_PER_CELL = 8.0  # slow peers get fewer runs (at least 3) so the whole bench takes minutes
SLOW_RUN = 1.5  # seconds: a peer this slow is timed 3 times, its first run included

Stages3 = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Workload:
    """One timed case: a batch ``(N, C, H, W)`` and its weights ``(K, C, kh, kw)``."""

    name: str
    description: str
    batch: torch.Tensor
    weights: torch.Tensor

    def stage_bytes(self) -> int:
        """Input read once plus conv, activated and pooled written once, in bytes."""
        n, _, height, width = self.batch.shape
        sizes = check_fits(CONFIG, height, width, tuple(self.weights.shape[2:]))
        conv = np.prod(sizes[0].outputs) * 4 * n * self.weights.shape[0]
        pooled = np.prod(sizes[1].outputs) * 4 * n * self.weights.shape[0]
        return int(self.batch.nbytes + 2 * conv + pooled)


def make_workloads(quick: bool, names: list[str]) -> list[Workload]:
    """The workloads of the issue, or the same shapes shrunk with ``quick``."""
    rng = torch.Generator().manual_seed(0)
    side, batch, batch_side, rgb_side = (256, 8, 64, 128) if quick else (4096, 256, 512, 2048)
    tutorial = kernel_bank(parse_kernels(TUTORIAL_KERNELS), 1)

    def image(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=rng)

    def kernels(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=rng)

    gray = image(1, 1, side, side)
    built = {
        "W1": lambda: Workload("W1", f"{side}x{side} gray, K=3 3x3 (tutorial)", gray, tutorial),
        "W2a": lambda: Workload("W2a", f"{side}x{side} gray, K=16 3x3", gray, kernels(16, 1, 3, 3)),
        "W2b": lambda: Workload("W2b", f"{side}x{side} gray, K=8 7x7", gray, kernels(8, 1, 7, 7)),
        "W3": lambda: Workload("W3", f"{batch} x {batch_side}x{batch_side} gray, K=3 3x3",
                               image(batch, 1, batch_side, batch_side), tutorial),
        "W4": lambda: Workload("W4", f"{rgb_side}x{rgb_side} RGB, K=16 3x3x3",
                               image(1, 3, rgb_side, rgb_side), kernels(16, 3, 3, 3)),
    }
    return [built[name]() for name in names]


# --- peers: each returns a run() closure over its own (reused) buffers --------------------------


def numpy_relu_pool(conv: np.ndarray, act: np.ndarray, pooled: np.ndarray) -> None:
    """ReLU with ``np.maximum`` and a 2x2/2 max pool from four strided views, in place."""
    np.maximum(conv, 0, out=act)
    rows, cols = 2 * pooled.shape[-2], 2 * pooled.shape[-1]
    a = act[..., :rows, :cols]
    np.maximum(a[..., 0::2, 0::2], a[..., 0::2, 1::2], out=pooled)
    np.maximum(pooled, a[..., 1::2, 0::2], out=pooled)
    np.maximum(pooled, a[..., 1::2, 1::2], out=pooled)


def per_kernel_peer(correlate: Callable[[np.ndarray, np.ndarray, np.ndarray], None]):
    """A peer that filters each image with each 2D kernel slice into a same-size buffer (summing
    over channels), keeps the valid part as the conv stage, then NumPy's ReLU and pool."""

    def prepare(work: Workload) -> Callable[[], Stages3]:
        x = work.batch.numpy()
        w = work.weights.numpy()
        n, c, height, width = x.shape
        k, _, kh, kw = w.shape
        sizes = check_fits(CONFIG, height, width, (kh, kw))
        (conv_h, conv_w), pooled_hw = sizes[0].outputs, sizes[1].outputs
        full = np.empty((n, k, height, width), np.float32)
        part = np.empty((height, width), np.float32) if c > 1 else None
        conv = full[..., kh // 2:kh // 2 + conv_h, kw // 2:kw // 2 + conv_w]
        act = np.empty((n, k, conv_h, conv_w), np.float32)
        pooled = np.empty((n, k, *pooled_hw), np.float32)

        def run() -> Stages3:
            for i in range(n):
                for j in range(k):
                    correlate(x[i, 0], w[j, 0], full[i, j])
                    for channel in range(1, c):
                        correlate(x[i, channel], w[j, channel], part)
                        np.add(full[i, j], part, out=full[i, j])
            numpy_relu_pool(conv, act, pooled)
            return conv, act, pooled

        return run

    return prepare


def _opencv(src: np.ndarray, kernel: np.ndarray, dst: np.ndarray) -> None:
    cv2.filter2D(src, cv2.CV_32F, kernel, dst=dst, borderType=cv2.BORDER_CONSTANT)


def _scipy(src: np.ndarray, kernel: np.ndarray, dst: np.ndarray) -> None:
    ndi.correlate(src, kernel, output=dst, mode="constant")


def torch_eager(work: Workload) -> Callable[[], Stages3]:
    layer = FixedConvLayer(work.weights, CONFIG)

    def run() -> Stages3:
        with torch.inference_mode():
            return tuple(t.numpy() for t in layer(work.batch))  # type: ignore[return-value]

    return run


def convlens_reused(work: Workload) -> Callable[[], Stages3]:
    out = fused.run_layer(work.batch, work.weights, CONFIG)

    def run() -> Stages3:
        stages = fused.run_layer(work.batch, work.weights, CONFIG, out=out)
        return tuple(t.numpy() for t in stages)  # type: ignore[return-value]

    return run


def convlens_fresh(work: Workload) -> Callable[[], Stages3]:
    def run() -> Stages3:
        stages = run_layer(work.batch, work.weights, CONFIG, "cpu", backend="auto")
        return tuple(t.numpy() for t in stages)  # type: ignore[return-value]

    return run


def convlens_numpy(work: Workload) -> Callable[[], Stages3]:
    batch, weights = work.batch.numpy(), work.weights.numpy()

    def run() -> Stages3:
        return tuple(plain.run_layer(batch, weights, CONFIG))  # type: ignore[return-value]

    return run


PEERS: dict[str, Callable[[Workload], Callable[[], Stages3]]] = {
    "opencv": per_kernel_peer(_opencv),
    "scipy": per_kernel_peer(_scipy),
    "torch eager": torch_eager,
    "convlens fresh": convlens_fresh,
    "convlens reused": convlens_reused,
    "convlens numpy": convlens_numpy,
}


# --- measuring ---------------------------------------------------------------------------------


def copy_bandwidth(megabytes: int = 512, repeats: int = 7) -> float:
    """Best of single-threaded NumPy and multi-threaded torch copies, in bytes/s (read+write)."""
    src = np.ones(megabytes * 2**20 // 4, np.float32)
    dst = np.zeros_like(src)
    best = 0.0
    for copy in (lambda: np.copyto(dst, src),
                 lambda: torch.from_numpy(dst).copy_(torch.from_numpy(src))):
        seconds = median_seconds(copy, repeats)
        best = max(best, 2 * src.nbytes / seconds)
    return best


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def max_difference(stages: Stages3, reference: list[np.ndarray]) -> float:
    """Largest absolute difference with the reference, on every CHECK_ROWS-th row."""
    return max(float(np.abs(stage[..., ::CHECK_ROWS, :] - ref).max())
               for stage, ref in zip(stages, reference))


@dataclass
class Row:
    workload: str
    peer: str
    seconds: float
    runs: int
    error: float


def time_workload(work: Workload, peers: list[str], repeats: int) -> list[Row]:
    """Check then time each peer on ``work``, freeing one peer's buffers before the next."""
    with torch.inference_mode():
        ref = FixedConvLayer(work.weights, CONFIG)(work.batch)
    reference = [t[..., ::CHECK_ROWS, :].numpy().copy() for t in ref]
    scale = max(float(ref.conv.abs().max()), 1.0)
    del ref
    rows = []
    for peer in peers:
        gc.collect()
        run = PEERS[peer](work)
        start = time.perf_counter()
        stages = run()  # warm-up run (first touch of the buffers), also the check
        first = time.perf_counter() - start
        error = max_difference(stages, reference) / scale
        del stages
        if first > SLOW_RUN:  # first touch is a small share of such a run: keep it as a sample
            times = [first] + [median_seconds(run, 1) for _ in range(2)]
        else:
            runs = int(max(3, min(repeats, SECONDS_PER_CELL // first)))
            times = [median_seconds(run, 1) for _ in range(runs)]
        rows.append(Row(work.name, peer, float(np.median(times)), len(times), error))
        del run
        print(f"  {work.name} {peer:16s} {rows[-1].seconds * 1e3:10.1f} ms", file=sys.stderr)
    return rows


def print_table(workloads: list[Workload], rows: list[Row], bandwidth: float) -> None:
    print(f"\ncopy bandwidth {bandwidth / 1e9:.1f} GB/s; threads: torch and convlens "
          f"{torch.get_num_threads()}, opencv {cv2.getNumThreads()}; load average "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} (at the end)")
    header = (f"| {'workload':9s} | {'peer':16s} | {'ms':>9s} | {'x fastest':>9s} | "
              f"{'x floor':>8s} | {'runs':>4s} | {'rel. err':>8s} |")
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for work in workloads:
        mine = [row for row in rows if row.workload == work.name]
        fastest = min(row.seconds for row in mine)
        floor = work.stage_bytes() / bandwidth
        print(f"| {work.name:9s} | {'(floor)':16s} | {floor * 1e3:9.1f} | {'':9s} | "
              f"{1.0:8.2f} | {'':4s} | {'':8s} |")
        for row in mine:
            print(f"| {'':9s} | {row.peer:16s} | {row.seconds * 1e3:9.1f} | "
                  f"{row.seconds / fastest:9.2f} | {row.seconds / floor:8.2f} | {row.runs:4d} | "
                  f"{row.error:8.1e} |")
    print("\nworkloads: " + "; ".join(f"{w.name} {w.description} ({w.stage_bytes() / 1e6:.0f} MB"
                                      " moved at least)" for w in workloads))
    by_key = {(row.workload, row.peer): row.seconds for row in rows}
    for work in workloads:
        ours, opencv = by_key.get((work.name, "convlens reused")), by_key.get((work.name, "opencv"))
        if ours and opencv:
            print(f"{work.name}: convlens (reused buffers) {against_opencv(ours, opencv)}, "
                  f"{ours * bandwidth / work.stage_bytes():.2f}x the floor")


def against_opencv(ours: float, opencv: float) -> str:
    """How convlens' time ``ours`` compares with OpenCV's ``opencv`` (seconds), worded so the
    ratio's direction is explicit: ``is faster than OpenCV: 1.25x as fast (8 ms against
    10 ms)``. The ratio is OpenCV's time over ours; below 1 (as printed) convlens ``is slower
    than OpenCV``, at 1.00 it ``is as fast as OpenCV``."""
    ratio = opencv / ours
    shown = f"{ratio:.2f}"
    verdict = ("is as fast as OpenCV" if shown == "1.00" else
               f"is {'faster' if ratio > 1 else 'slower'} than OpenCV")
    return f"{verdict}: {shown}x as fast ({ours * 1e3:.3g} ms against {opencv * 1e3:.3g} ms)"


def one_off_costs() -> None:
    """Wall time of fresh processes: ``convlens run`` on the sample with a cold numba cache (as
    after installing), then warm, and the compute step alone with each backend."""
    snippet = (
        "import time; t = time.perf_counter();"
        "from convlens import compute_stages, load_image_array, parse_kernels, sample_path;"
        "image = load_image_array(sample_path());"
        "k = parse_kernels(['sobel-h', 'laplacian', 'sobel-v']);"
        "t1 = time.perf_counter(); compute_stages(image, k, backend='{backend}');"
        "print(f'{{t1 - t:.2f}} {{time.perf_counter() - t1:.2f}}')"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba-cache"))
        print("\none-off cost in a fresh process (seconds of wall time):")
        for label, backend in (("fused, cold numba cache", "fused"),
                               ("fused, warm numba cache", "fused"),
                               ("numpy", "numpy"),
                               ("torch reference", "torch")):
            result = subprocess.run([sys.executable, "-c", snippet.format(backend=backend)],
                                    env=env, capture_output=True, text=True, check=True)
            imports, compute = result.stdout.split()
            print(f"  compute_stages on the sample, {label:24s}: imports {imports} s, "
                  f"first call {compute} s")
        for label in ("cold numba cache", "warm numba cache"):
            if label.startswith("cold"):
                env["NUMBA_CACHE_DIR"] = os.path.join(tmp, "numba-cache-2")
            out = os.path.join(tmp, f"out-{label[:4]}")
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "convlens", "run", "--out", out],
                           env=env, capture_output=True, check=True)
            print(f"  convlens run (whole process, figures included), {label}: "
                  f"{time.perf_counter() - start:.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per cell (median)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--workloads", default="W1,W2a,W2b,W3,W4",
                        help="comma list of W1, W2a, W2b, W3, W4")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma list of peers")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for torch (so for convlens too) and OpenCV")
    parser.add_argument("--no-cold", action="store_true",
                        help="skip timing `convlens run` in fresh processes")
    args = parser.parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",")]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {list(PEERS)}")
    names = [w.strip() for w in args.workloads.split(",")]
    if not set(names) <= {"W1", "W2a", "W2b", "W3", "W4"}:
        parser.error(f"unknown workloads in {args.workloads!r}")
    torch.set_num_threads(args.threads)  # convlens' fused path uses as many
    cv2.setNumThreads(args.threads)

    bandwidth = copy_bandwidth(64 if args.quick else 512)
    workloads = make_workloads(args.quick, names)
    rows: list[Row] = []
    for work in workloads:
        rows += time_workload(work, peers, args.repeats)
    print_table(workloads, rows, bandwidth)
    if not args.no_cold:
        one_off_costs()


if __name__ == "__main__":
    main()
