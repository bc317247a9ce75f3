"""Load on `convlens serve`: many pages editing kernels at once; latency, errors, peak memory.

Starts `convlens serve` in its own process on a free loopback port, reads the page's token from
its HTML (as the page does), then runs ``--clients`` concurrent clients (httpx, asyncio) that
send ``--edits`` kernel edits in all to ``POST /api/stages``. Each client behaves as the page
does: one request in flight at a time, each edit changing one cell of one of its three kernels
(the tutorial's, on the bundled cat photo at the default 1024 px working size), with its own
client id and increasing sequence numbers, naming the maps it already shows so that only the
edited kernel's maps come back. Everything stays on 127.0.0.1 and is bounded in
count and time (``--deadline``).

    .venv/bin/python bench/bench_serve_load.py                    # 50 clients, 500 edits
    .venv/bin/python bench/bench_serve_load.py --clients 10 --edits 100

Prints the latency of every edit (p50, p90, p99, max, in ms, from sending the request to the
last byte of the answer), the answers by status (200 drawn, 409 superseded by the same page's
newer edit; anything else is an error), the edits per second, and the server's peak resident
memory (VmHWM) before and after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import httpx

from convlens.kernels import TUTORIAL_KERNELS, get_kernel
from convlens.serve import unpack

TOKEN_HEADER = "X-Convlens-Token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int) -> tuple[subprocess.Popen, str]:
    """`convlens serve` on ``port``; returns the process and the token its page carries."""
    server = subprocess.Popen([sys.executable, "-m", "convlens", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                page = response.read().decode()
            token = re.search(r'name="convlens-token" content="([^"]+)"', page)
            return server, token.group(1) if token else ""  # "": a version before tokens
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {server.stderr.read().decode()}") from None
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start within 60 s")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def edit_body(client: str, seq: int, rng: random.Random, kernels: list,
              have: list | None = None) -> dict:
    """The body the page sends after one cell edit (``have``: the keys of the maps it shows,
    which the server does not send again)."""
    k, row, col = rng.randrange(len(kernels)), rng.randrange(3), rng.randrange(3)
    kernels[k][row][col] = round(rng.uniform(-4, 4), 2)
    return {"image": "sample-chelsea", "mode": "gray", "max_side": 1024, "display": 384,
            "kernels": [{"name": name, "weights": weights}
                        for name, weights in zip(TUTORIAL_KERNELS, kernels)],
            "layer": {}, "client": client, "seq": seq, "have": have or []}


async def run_client(http: httpx.AsyncClient, number: int, edits: int, deadline: float,
                     latencies: list[float], statuses: Counter) -> None:
    rng = random.Random(number)
    kernels = [get_kernel(name).as_2d().tolist() for name in TUTORIAL_KERNELS]
    client = f"bench-{number}"
    have: list = []
    for seq in range(1, edits + 1):
        if time.monotonic() > deadline:
            statuses["not sent (deadline)"] += edits - seq + 1
            return
        body = edit_body(client, seq, rng, kernels, have)
        began = time.perf_counter()
        try:
            response = await http.post("/api/stages", json=body)
            data = await response.aread()
            statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                header = unpack(data)[0]
                have = [item["key"] for item in header["maps"]]
                statuses["kernels recomputed"] += header["timing"]["recomputed"]
                statuses["server ms"] += header["timing"]["server_ms"]
        except httpx.HTTPError as exc:
            statuses[type(exc).__name__] += 1
            continue
        latencies.append((time.perf_counter() - began) * 1000)


async def load(base: str, token: str, clients: int, edits: int, deadline_s: float
               ) -> tuple[list[float], Counter, float]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={TOKEN_HEADER: token}, limits=limits,
                                 timeout=deadline_s) as http:
        warm = await http.post("/api/stages", json=edit_body("warm", 1, random.Random(0), [
            get_kernel(name).as_2d().tolist() for name in TUTORIAL_KERNELS]))
        if warm.status_code != 200:
            raise SystemExit(f"the warm-up edit failed: {warm.status_code} {warm.text}")
        deadline = time.monotonic() + deadline_s
        per_client = [edits // clients + (i < edits % clients) for i in range(clients)]
        began = time.perf_counter()
        await asyncio.gather(*(run_client(http, i, n, deadline, latencies, statuses)
                               for i, n in enumerate(per_client)))
        elapsed = time.perf_counter() - began
    return latencies, statuses, elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--edits", type=int, default=500, help="edits in all")
    parser.add_argument("--deadline", type=float, default=120.0,
                        help="seconds after which no further edit is sent")
    args = parser.parse_args()
    if not (1 <= args.clients <= 200 and 1 <= args.edits <= 5000):
        raise SystemExit("--clients must be 1..200 and --edits 1..5000")
    port = free_port()
    server, token = start_server(port)
    try:
        idle = peak_rss_mib(server.pid)
        latencies, statuses, elapsed = asyncio.run(
            load(f"http://127.0.0.1:{port}", token, args.clients, args.edits, args.deadline))
        peak = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
    recomputed, server_ms = statuses.pop("kernels recomputed", 0), statuses.pop("server ms", 0)
    errors = sum(n for status, n in statuses.items() if status not in ("200", "409"))
    print(f"{args.clients} clients, {sum(statuses.values())} edits in {elapsed:.1f} s "
          f"({sum(statuses.values()) / elapsed:.0f} edits/s)")
    if latencies:
        print(f"latency ms: p50 {statistics.median(latencies):.0f}  "
              f"p90 {percentile(latencies, 90):.0f}  p99 {percentile(latencies, 99):.0f}  "
              f"max {max(latencies):.0f}")
    print("answers: " + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())))
    print(f"errors: {errors}")
    if statuses["200"]:
        print(f"per drawn edit: {recomputed / statuses['200']:.2f} kernels recomputed, "
              f"{server_ms / statuses['200']:.0f} ms of server work (mean)")
    print(f"server peak RSS: {idle:.0f} MiB after start, {peak:.0f} MiB after the load")


if __name__ == "__main__":
    main()
