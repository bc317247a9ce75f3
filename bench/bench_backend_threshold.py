"""Where the fused CPU kernel starts to pay in a fresh process: the measured basis of
``convlens.layers.FUSED_MIN_MACS``.

For each image size, two fresh processes each time one ``compute_stages`` call with the tutorial's
three 3x3 kernels (2x2 max pool): one with ``backend="torch"``, one with ``backend="fused"``,
which includes what a one-off run pays for the fused path (importing numba and loading the
cached kernel; a cold compile after install is warmed away first). Printed: the median over the
rounds per size and backend, and the multiply-adds where the fused path starts to win.

    .venv/bin/python bench/bench_backend_threshold.py              # about a minute
    .venv/bin/python bench/bench_backend_threshold.py --rounds 5
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys

SIDES = ((600, 400), (1200, 800), (2000, 1333), (2800, 1867), (3400, 2267), (4000, 2668))
"""Image sizes (width, height) measured: 0.2 to 96 M multiply-adds per kernel tap set."""
TAPS = 3 * 9  # three 3x3 kernels on a gray image

_PROBE = """
import sys, time
import numpy as np
from convlens.config import LayerConfig
from convlens.images import load_image
from convlens.kernels import parse_kernels
from convlens.layers import compute_stages
width, height, backend = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
image = load_image(rng.integers(0, 256, (height, width), dtype=np.uint8))
kernels = parse_kernels(["sobel-h", "laplacian", "sobel-v"])
started = time.perf_counter()
compute_stages(image, kernels, LayerConfig(pool=2), "cpu", backend)
print(time.perf_counter() - started)
"""


def once(width: int, height: int, backend: str) -> float:
    """Seconds of one ``compute_stages`` call in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _PROBE, str(width), str(height), backend],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def macs(width: int, height: int) -> int:
    return (width - 2) * (height - 2) * TAPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    once(64, 64, "fused")  # a compile after install is not what a one-off run pays
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# torch vs fused in a fresh process ({os.cpu_count()} CPUs, load average "
          f"{load:.2f}, median of {args.rounds})\n")
    print("| image | M multiply-adds | torch ms | fused ms (numba load included) | faster |")
    print("| --- | --- | --- | --- | --- |")
    rows = []
    for width, height in SIDES:
        times = {backend: [] for backend in ("torch", "fused")}
        for round_ in range(args.rounds):
            for backend in (("torch", "fused") if round_ % 2 == 0 else ("fused", "torch")):
                times[backend].append(once(width, height, backend))
        torch_s, fused_s = (statistics.median(times[b]) for b in ("torch", "fused"))
        rows.append((macs(width, height), torch_s, fused_s))
        print(f"| {width}x{height} | {macs(width, height) / 1e6:.0f} | {torch_s * 1000:.0f} | "
              f"{fused_s * 1000:.0f} | {'fused' if fused_s < torch_s else 'torch'} |",
              flush=True)
    crossing = None
    for (m0, t0, f0), (m1, t1, f1) in itertools.pairwise(rows):
        if (f0 - t0) > 0 >= (f1 - t1):  # the gap changes sign between these two sizes
            crossing = m0 + (m1 - m0) * (f0 - t0) / ((f0 - t0) - (f1 - t1))
            break
    if crossing is None:
        winner = "fused" if rows[0][2] < rows[0][1] else "torch"
        print(f"\nno crossing in the sizes measured: {winner} wins throughout")
    else:
        print(f"\nfused starts to win at about {crossing / 1e6:.0f} M multiply-adds")


if __name__ == "__main__":
    main()
