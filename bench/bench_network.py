"""Latency of the page's network view in a real browser: a click on a cell until its arithmetic
is drawn in the explanation panel.

Starts `convlens serve` (which opens the bundled digits CNN) in its own process, pinned to two
CPU cores where the system allows (`os.sched_setaffinity`), opens the page in headless
Chromium (Debian's `/usr/bin/chromium`, driven by Playwright), waits for the network view, and
clicks cells of three layers in turn (a conv, a max pool, the dense output), one pixel each
time. The page's own timings are read: from the click to the frame after the numbers are drawn
(`total_ms`), of which the request (`request_ms`: the server's explanation, with the steps from
the nearest conv, and the transfer) and the drawing (`draw_ms`). The first click, which pays the
forward pass the view shares with the columns, is left out.

    .venv/bin/python bench/bench_network.py                 # 60 clicks
    .venv/bin/python bench/bench_network.py --clicks 200
    .venv/bin/python bench/bench_network.py --model resnet18      # goal 300 ms
    .venv/bin/python bench/bench_network.py --model efficientnet  # goal 300 ms

``--model resnet18`` serves resnet18 (torchvision's layout, tests/architectures.py, weights of
our own making, ImageNet's normalization) at 224x224 px instead: the page collapses it into
its blocks; ``layer3`` is opened (its layers' columns load as they scroll into view) and the
clicks go to ``conv1``, ``layer2`` (explained as its last ReLU), ``layer3.0.conv2`` and
``fc``. ``--model efficientnet`` does the same with the EfficientNet-like net (MBConv blocks
with squeeze-and-excitation gates): ``blocks`` opened into its stages, then ``blocks.3`` into
its layers; the clicks go to ``stem``, ``blocks.3.depthwise.0``, ``blocks.5`` and
``classifier``.

The server's start (and its wait until it answers) is bench_serve.py's.

Prints median, 90th percentile and max per phase and whether the median meets the goal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench_serve import CHROMIUM, CHROMIUM_ARGS, free_port, wait_serving

TARGETS_MS = {"bundled": 100.0, "resnet18": 300.0, "efficientnet": 300.0}
PHASES = ("total_ms", "request_ms", "draw_ms")
LAYERS = {"bundled": ("features.conv2", "features.pool1", "classifier.fc"),
          "resnet18": ("conv1", "layer2", "layer3.0.conv2", "fc"),
          "efficientnet": ("stem", "blocks.3.depthwise.0", "blocks.5", "classifier")}
OPENED = {"bundled": (), "resnet18": ("layer3",), "efficientnet": ("blocks", "blocks.3")}
"""The collapsed blocks the benchmark opens, in turn, before it clicks."""
ARCHITECTURES = Path(__file__).resolve().parents[1] / "tests"
"""Where the written-out architectures live (tests/architectures.py)."""

_MODEL_SERVER = """
import sys, tempfile
sys.path.insert(0, sys.argv[3])
import uvicorn
from architectures import EfficientNetLike, ResNet18, own_weights
from convlens.models import ModelInfo, ModelKind, OpenedModel
from convlens.serve import create_app

name, classes = sys.argv[2], 1000
build = {"resnet18": lambda: ResNet18(classes=classes),
         "efficientnet": lambda: EfficientNetLike(classes=classes)}[name]
with tempfile.TemporaryDirectory() as folder:
    model = own_weights(build, folder)
info = ModelInfo(name, 3, (224, 224), [str(k) for k in range(classes)],
                 [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
opened = OpenedModel(model, ModelKind.FACTORY, name + " (our weights)", info)
uvicorn.run(create_app(opened), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def two_cores() -> set[int] | None:
    """Two of the CPU cores this process may use, or None where affinity cannot be set."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return set(cores[:2])


def start_server(port: int, cores: set[int] | None, model: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    command = [sys.executable, "-m", "convlens", "serve", "--port", str(port)]
    if model != "bundled":
        command = [sys.executable, "-c", _MODEL_SERVER, str(port), model, str(ARCHITECTURES)]
    server = subprocess.Popen(
        command, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
    return wait_serving(server, port)


def run(clicks: int, model: str) -> dict:
    from playwright.sync_api import sync_playwright

    port = free_port()
    cores = two_cores()
    server = start_server(port, cores, model)
    layers = LAYERS[model]
    load_before = os.getloadavg()
    timings = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("Number(document.body.dataset.networkColumns || 0) >= 3",
                                   timeout=60000)
            for count, block in enumerate(OPENED[model], start=1):
                page.locator(f'.net-col[data-layer="{block}"] [data-testid=open-block]').click()
                opened = ",".join(OPENED[model][:count])
                page.wait_for_function(f"document.body.dataset.networkOpen === '{opened}'",
                                       timeout=30000)
            for index in range(clicks + 1):
                layer = layers[index % len(layers)]
                column = page.locator(f'.net-col[data-layer="{layer}"]')
                column.scroll_into_view_if_needed()
                canvas = column.locator(".net-cell canvas").nth(index % 4)
                canvas.wait_for(timeout=30000)
                canvas.scroll_into_view_if_needed()
                box = canvas.bounding_box()
                assert box is not None
                fy, fx = ((index * 7) % 10 + 0.5) / 10, ((index * 3) % 10 + 0.5) / 10
                before = page.evaluate("(window.convlens.networkTimings || []).length")
                page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
                page.wait_for_function(
                    f"(window.convlens.networkTimings || []).length > {before}", timeout=30000)
                if index:
                    timings.append(page.evaluate("window.convlens.networkTimings.at(-1)"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    load_after = os.getloadavg()
    return {"timings": timings, "load": (load_before[0], load_after[0]), "cores": cores}


def table(timings: list[dict]) -> float:
    """Print median, p90 and max per phase; return the median click-to-drawn time."""
    print(f"{'phase':<12}{'median':>10}{'p90':>10}{'max':>10}   (ms, {len(timings)} clicks)")
    for phase in PHASES:
        values = sorted(t[phase] for t in timings)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        print(f"{phase:<12}{statistics.median(values):>10.1f}{p90:>10.1f}{values[-1]:>10.1f}")
    return statistics.median(t["total_ms"] for t in timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument("--model", choices=sorted(TARGETS_MS), default="bundled")
    args = parser.parse_args()
    result = run(args.clicks, args.model)
    target = TARGETS_MS[args.model]
    name = "bundled digits CNN" if args.model == "bundled" else f"{args.model} at 224 px"
    print(f"{name}, a click on a cell until its arithmetic is drawn")
    median = table(result["timings"])
    cores = result["cores"]
    print(f"server on cores {sorted(cores) if cores else 'all'}; load average "
          f"{result['load'][0]:.2f} -> {result['load'][1]:.2f} (other work on the machine "
          "slows every phase)")
    met = median < target
    print(f"median {median:.1f} ms: {'meets' if met else 'misses'} the {target:.0f} ms goal")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
