"""Latency of `convlens serve` in a real browser: a kernel edit until the new stages are drawn.

Starts `convlens serve` in its own process, opens the page in headless Chromium (Debian's
`/usr/bin/chromium`, driven by Playwright) at a laptop-sized viewport, uploads a 1024x1024
photo, sets 8 kernels, then edits one kernel cell at a time (as a user typing) and reads the
page's own timings: from the input event to the frame after the maps are drawn, which covers
the debounce, the request, the server's computation, the transfer and the drawing.

    .venv/bin/python bench/bench_serve.py                 # 1024x1024, 8 kernels, 40 edits
    .venv/bin/python bench/bench_serve.py --size 2048 --kernels 4 --edits 20

Prints one row per phase (median, 90th percentile, max in ms), the CPU load while it ran, and
whether the median meets the 150 ms target.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

from convlens.images import sample_path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TARGET_MS = 150.0
PHASES = ("total_ms", "debounce_ms", "request_ms", "server_ms", "compute_ms", "draw_ms",
          "paint_ms")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "convlens", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return wait_serving(server, port)


def make_image(size: int, folder: Path) -> Path:
    """A real photo (the coffee sample) stretched to ``size`` x ``size`` pixels."""
    path = folder / f"coffee-{size}.png"
    with Image.open(sample_path("coffee")) as photo:
        photo.convert("RGB").resize((size, size), Image.Resampling.LANCZOS).save(path)
    return path


def wait_render(page, count: int, timeout: float = 30000) -> None:
    page.wait_for_function(f"window.convlens.renders >= {count}", timeout=timeout)


def run(size: int, kernels: int, edits: int, viewport: tuple[int, int]) -> dict:
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = start_server(port)
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
            image = make_image(size, Path(folder))
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.goto(f"http://127.0.0.1:{port}/")
            wait_render(page, 1)
            page.set_input_files("#file", str(image))
            page.wait_for_function(
                f"(window.convlens.timings.at(-1) || {{}}).height === {size}", timeout=60000)
            while page.locator(".krow").count() < kernels:
                page.click("#add-kernel")
            while page.locator(".krow").count() > kernels:
                page.locator(".krow .remove").last.click()
            page.wait_for_function(
                f"(window.convlens.timings.at(-1) || {{}}).kernels === {kernels}", timeout=30000)
            # settle: let a few edits warm the caches and the JIT before timing
            timings = []
            for index in range(edits + 3):
                count = page.evaluate("window.convlens.renders")
                k = index % kernels
                cell = page.locator(f".krow:nth-child({k + 1}) .grid input").nth(4 % 9)
                cell.fill(str(index + 2))
                wait_render(page, count + 1)
                timing = page.evaluate("window.convlens.timings.at(-1)")
                if index >= 3:
                    timings.append(timing)
            # a new layer setting changes every kernel's maps: all of them are recomputed
            settings = []
            steps = [("#pool_type", "avg")]
            steps += [("#activation", a) for a in ("abs", "tanh", "sigmoid", "leaky-relu")]
            steps += [("#pool_type", "max")]
            steps += [("#activation", a) for a in ("sigmoid", "tanh", "abs")]
            for selector, value in steps:
                count = page.evaluate("window.convlens.renders")
                page.select_option(selector, value)
                wait_render(page, count + 1)
                settings.append(page.evaluate("window.convlens.timings.at(-1)"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    load_after = os.getloadavg()
    return {"timings": timings, "settings": settings, "load": (load_before[0], load_after[0])}


def table(title: str, timings: list[dict]) -> float:
    """Print median, p90 and max per phase; return the median edit-to-drawn time."""
    print(title)
    print(f"{'phase':<12}{'median':>9}{'p90':>9}{'max':>9}   (ms)")
    for phase in PHASES:
        values = sorted(t[phase] for t in timings)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        print(f"{phase:<12}{statistics.median(values):>9.1f}{p90:>9.1f}{values[-1]:>9.1f}")
    megabytes = statistics.median(t["bytes"] for t in timings) / 2**20
    recomputed = statistics.median(t["recomputed"] for t in timings)
    print(f"per edit: {megabytes:.2f} MiB sent, {recomputed:.0f} kernel(s) recomputed\n")
    return statistics.median(t["total_ms"] for t in timings)


def summarize(result: dict, size: int, kernels: int) -> bool:
    print(f"convlens serve, {size}x{size} image, {kernels} kernels, {os.cpu_count()} CPU cores, "
          f"load average {result['load'][0]:.1f} -> {result['load'][1]:.1f} (1-minute, whole "
          "machine)\n")
    median = table(f"{len(result['timings'])} kernel-cell edits", result["timings"])
    table(f"{len(result['settings'])} activation or pool-type changes (every kernel recomputed)",
          result["settings"])
    verdict = "meets" if median < TARGET_MS else "MISSES"
    print(f"median edit-to-drawn {median:.0f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    return median < TARGET_MS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--kernels", type=int, default=8, help="number of kernels (<= 16)")
    parser.add_argument("--edits", type=int, default=40, help="timed kernel edits")
    parser.add_argument("--viewport", default="1366x800", help="browser window, WxH")
    args = parser.parse_args()
    width, height = (int(v) for v in args.viewport.split("x"))
    result = run(args.size, args.kernels, args.edits, (width, height))
    return 0 if summarize(result, args.size, args.kernels) else 1


def wait_serving(server: subprocess.Popen, port: int) -> subprocess.Popen:
    """``server`` (started with ``stderr=PIPE``) once it answers ``/api/meta`` on ``port``
    (60 s at most; its error when it exits first). Shared with bench_network.py."""
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


if __name__ == "__main__":
    raise SystemExit(main())
