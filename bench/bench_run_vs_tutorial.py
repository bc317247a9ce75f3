"""``convlens run PHOTO`` against the tutorial's own program, each as a whole fresh process.

The tutorial's program is ``bench/tutorial_program.py`` (load, gray, ``nn.Conv2d``, ReLU,
``MaxPool2d`` and three matplotlib figures saved). ``convlens run`` writes its default outputs
(five figures, ``report.html``, ``stages.npz``, ``run.json``). The two alternate, in ABBA order
over the rounds so a drifting machine load falls on both alike, after one untimed run of each
(which also fills the disk cache and, once after install, numba's compile cache). Printed:

* per input, each program's median seconds and the median of the per-round ratios
  convlens / tutorial, against its bound (0.7 for the bundled sample, 0.5 for a 12 MP JPEG);
* peak resident memory (``ru_maxrss`` of that process alone) of both at 12 MP and 48 MP,
  beside the bytes of the stages ``convlens run`` keeps (the floor it may add a constant to).

The photos are the bundled sample upscaled (Lanczos) and saved as JPEGs in a temporary folder.

    .venv/bin/python bench/bench_run_vs_tutorial.py               # 3 rounds, a few minutes
    .venv/bin/python bench/bench_run_vs_tutorial.py --rounds 5 --no-rss
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUTORIAL = HERE / "tutorial_program.py"
BOUNDS = {"sample": 0.7, "12 MP": 0.5}
"""The most ``convlens run`` may take, as a share of the tutorial program's time."""
SIZES = {"12 MP": (4000, 2668), "48 MP": (8000, 6000)}
KERNELS = 3  # the tutorial's three 3x3 kernels, convlens run's default


def make_photos(folder: Path, names: list[str]) -> dict[str, Path]:
    """The inputs: the bundled sample itself, and JPEGs of it upscaled to each size named."""
    from PIL import Image

    from convlens.images import sample_path

    photos = {"sample": sample_path()}
    with Image.open(sample_path()) as image:
        rgb = image.convert("RGB")
        for name in names:
            if name in SIZES:
                path = folder / f"photo-{name.replace(' ', '')}.jpg"
                rgb.resize(SIZES[name], Image.LANCZOS).save(path, quality=90)
                photos[name] = path
    return photos


def timed(command: list[str], cwd: Path) -> tuple[float, int]:
    """Run ``command``: its wall seconds and its own peak resident memory in bytes."""
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "100"}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{error}")
    return seconds, usage.ru_maxrss * 1024  # Linux gives KiB


def programs(photo: Path, out: Path) -> dict[str, list[str]]:
    return {
        "tutorial": [sys.executable, str(TUTORIAL), str(photo), str(out / "tutorial")],
        "convlens": [sys.executable, "-m", "convlens", "--budget", "none", "run", str(photo),
                     "--out", str(out / "convlens"), "--force"],
    }


def compare(photo: Path, rounds: int, work: Path) -> dict[str, list[float]]:
    """Alternate the two programs on ``photo``: each one's seconds per round."""
    commands = programs(photo, work)
    for command in commands.values():  # untimed: disk cache, numba's cache
        timed(command, work)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(rounds):
        order = list(commands) if round_ % 2 == 0 else list(reversed(commands))
        for name in order:
            times[name].append(timed(commands[name], work)[0])
    return times


def stage_bytes(photo: Path) -> int:
    """Bytes of the stages ``convlens run`` keeps for ``photo`` with its defaults: input,
    conv, activated (all H' x W' per kernel) and pooled, float32."""
    from PIL import Image

    with Image.open(photo) as image:
        width, height = image.size
    conv = (height - 2) * (width - 2)
    pooled = ((height - 2) // 2) * ((width - 2) // 2)
    return 4 * (height * width + KERNELS * (2 * conv + pooled))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (at least 3)")
    parser.add_argument("--no-rss", action="store_true", help="skip the 12 MP / 48 MP memory")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# convlens run vs the tutorial's program ({os.cpu_count()} CPUs, load average "
          f"{load:.2f} at the start, {args.rounds} rounds, ABBA order)\n")
    with tempfile.TemporaryDirectory(prefix="convlens-bench-") as folder:
        work = Path(folder)
        photos = make_photos(work, ["12 MP"] + ([] if args.no_rss else ["48 MP"]))
        print("| input | tutorial s (median) | convlens s (median) | ratio (median) | bound "
              "| |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, bound in BOUNDS.items():
            times = compare(photos[name], args.rounds, work)
            ratios = [c / t for c, t in zip(times["convlens"], times["tutorial"])]
            ratio = statistics.median(ratios)
            print(f"| {name} | {statistics.median(times['tutorial']):.2f} | "
                  f"{statistics.median(times['convlens']):.2f} | {ratio:.2f}x "
                  f"({', '.join(f'{r:.2f}' for r in ratios)}) | {bound}x | "
                  f"{'met' if ratio <= bound else 'NOT met'} |", flush=True)
        if args.no_rss:
            return
        print("\n| input | convlens peak RSS | stages kept | tutorial peak RSS |")
        print("| --- | --- | --- | --- |")
        for name in ("12 MP", "48 MP"):
            commands = programs(photos[name], work)
            peaks = {label: timed(command, work)[1] for label, command in commands.items()}
            print(f"| {name} | {peaks['convlens'] / 2**20:.0f} MiB | "
                  f"{stage_bytes(photos[name]) / 2**20:.0f} MiB | "
                  f"{peaks['tutorial'] / 2**20:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
