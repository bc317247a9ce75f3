"""Where each CPU backend starts to pay in a fresh process: the measured basis of
``convlens.layers.FUSED_MIN_MACS``.

For each image size, fresh processes each time one ``compute_stages`` call with the tutorial's
three 3x3 kernels (2x2 max pool) on a NumPy image, once per backend: ``numpy`` (nothing to
load), ``fused`` (what a one-off run pays for the numba kernel: importing numba and loading the
cached kernel; a cold compile after install is warmed away first) and ``torch`` (importing torch
included, as a one-off ``convlens run`` would pay it). Printed: the median over the rounds per
size and backend, and the multiply-adds (input pixels x kernel weights, the measure
``FUSED_MIN_MACS`` counts) where the fused path starts to beat the NumPy one.

Measured on the 2-core machine, 2026-12-03, 3 rounds, with other work running (load average
5.3 at the start, so every number is inflated alike):

| image | M multiply-adds | numpy ms | fused ms | torch ms | fastest |
| --- | --- | --- | --- | --- | --- |
| 600x400 | 6 | 49 | 1574 | 3035 | numpy |
| 2000x1333 | 72 | 157 | 2224 | 4876 | numpy |
| 4000x2668 | 288 | 1058 | 2965 | 7177 | numpy |
| 5657x3772 | 576 | 2093 | 3812 | 10505 | numpy |
| 8000x6000 | 1296 | 3290 | 2321 | 14555 | fused |

fused starts to beat numpy at about 1036 M multiply-adds: ``FUSED_MIN_MACS`` is 1 G. A 12 MP
photo with the tutorial's three kernels (288 M) stays on NumPy, a 48 MP one goes fused; once the
kernel is loaded in a process it is used for everything. torch, importing itself, is never the
fastest on the CPU.

    .venv/bin/python bench/bench_backend_threshold.py              # a few minutes
    .venv/bin/python bench/bench_backend_threshold.py --rounds 5
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys

SIDES = ((600, 400), (2000, 1333), (4000, 2668), (5657, 3772), (8000, 6000))
"""Image sizes (width, height) measured: 0.24 to 48 M pixels."""
WEIGHTS = 3 * 9  # three 3x3 kernels on a gray image
BACKENDS = ("numpy", "fused", "torch")

_PROBE = """
import sys, time
import numpy as np
from convlens.config import LayerConfig
from convlens.images import load_image_array
from convlens.kernels import parse_kernels
from convlens.layers import compute_stages
width, height, backend = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
image = load_image_array(rng.integers(0, 256, (height, width), dtype=np.uint8))
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
    """What ``FUSED_MIN_MACS`` counts: input pixels times kernel weights."""
    return width * height * WEIGHTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    once(64, 64, "fused")  # a compile after install is not what a one-off run pays
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# CPU backends in a fresh process ({os.cpu_count()} CPUs, load average "
          f"{load:.2f}, median of {args.rounds})\n")
    print("| image | M multiply-adds | numpy ms | fused ms | torch ms | fastest |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for width, height in SIDES:
        times: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
        for round_ in range(args.rounds):
            order = BACKENDS if round_ % 2 == 0 else tuple(reversed(BACKENDS))
            for backend in order:
                times[backend].append(once(width, height, backend))
        medians = {backend: statistics.median(times[backend]) for backend in BACKENDS}
        rows.append((macs(width, height), medians["numpy"], medians["fused"]))
        cells = " | ".join(f"{medians[backend] * 1000:.0f}" for backend in BACKENDS)
        print(f"| {width}x{height} | {macs(width, height) / 1e6:.0f} | {cells} | "
              f"{min(medians, key=medians.__getitem__)} |", flush=True)
    crossing = None
    for (m0, n0, f0), (m1, n1, f1) in itertools.pairwise(rows):
        if (f0 - n0) > 0 >= (f1 - n1):  # the gap changes sign between these two sizes
            crossing = m0 + (m1 - m0) * (f0 - n0) / ((f0 - n0) - (f1 - n1))
            break
    if crossing is None:
        winner = "fused" if rows[-1][2] < rows[-1][1] else "numpy"
        print(f"\nno crossing between numpy and fused in the sizes measured: {winner} wins at "
              "the largest")
    else:
        print(f"\nfused starts to beat numpy at about {crossing / 1e6:.0f} M multiply-adds")


if __name__ == "__main__":
    main()
