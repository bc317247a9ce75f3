"""Latency of the page's network view in a real browser: a click on a cell until its arithmetic
is drawn in the explanation panel.

Starts `convlens serve` (which opens the bundled digits CNN) in its own process, pinned to two
CPU cores where the system allows (`os.sched_setaffinity`), opens the page in headless
Chromium (Debian's `/usr/bin/chromium`, driven by Playwright), waits for the network view, and
clicks cells of three layers in turn (a conv, a max pool, the dense output), one pixel each
time. The page's own timings are read: from the click to the frame after the numbers are drawn
(`total_ms`), of which the request (`request_ms`: the server's explanation and the transfer)
and the drawing (`draw_ms`). The first click, which pays the forward pass the view shares with
the columns, is left out.

    .venv/bin/python bench/bench_network.py                 # 60 clicks
    .venv/bin/python bench/bench_network.py --clicks 200
    .venv/bin/python bench/bench_network.py --model resnet18   # goal 300 ms

``--model resnet18`` serves resnet18 (torchvision's layout, written out here, random weights,
ImageNet's normalization) at 224x224 px instead: the page collapses it into its blocks, and
the clicks go to ``conv1``, ``layer2`` (explained as its last ReLU) and ``fc``.

Prints median, 90th percentile and max per phase and whether the median meets the 100 ms goal.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TARGETS_MS = {"bundled": 100.0, "resnet18": 300.0}
PHASES = ("total_ms", "request_ms", "draw_ms")
LAYERS = {"bundled": ("features.conv2", "features.pool1", "classifier.fc"),
          "resnet18": ("conv1", "layer2", "fc")}

_RESNET_SERVER = """
import sys
import torch, torch.nn as nn, uvicorn
from convlens.models import ModelInfo, ModelKind, OpenedModel
from convlens.serve import create_app

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + identity)

class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for index, (cin, cout, stride) in enumerate(widths, start=1):
            setattr(self, f"layer{index}", nn.Sequential(Block(cin, cout, stride),
                                                          Block(cout, cout, 1)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)
    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

torch.manual_seed(0)
info = ModelInfo("resnet18", 3, (224, 224), [str(k) for k in range(1000)],
                 [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
opened = OpenedModel(ResNet18().eval(), ModelKind.FACTORY, "resnet18 (random weights)", info)
uvicorn.run(create_app(opened), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_cores() -> set[int] | None:
    """Two of the CPU cores this process may use, or None where affinity cannot be set."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return set(cores[:2])


def start_server(port: int, cores: set[int] | None, model: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    command = [sys.executable, "-m", "convlens", "serve", "--port", str(port)]
    if model == "resnet18":
        command = [sys.executable, "-c", _RESNET_SERVER, str(port)]
    server = subprocess.Popen(
        command, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=2):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {server.stderr.read().decode()}") from None
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start within 60 s")


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
    name = "bundled digits CNN" if args.model == "bundled" else "resnet18 at 224 px"
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
