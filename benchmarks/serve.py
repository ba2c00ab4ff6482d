"""Time `threelines serve` on loopback: latency, throughput and memory of screening a 1-ha polygon.

Usage::

    .venv/bin/python benchmarks/serve.py [--requests 20000] [--clients 8] [--workers 2] [--max-seconds 600] [--page]

Starts a real server on a free port of 127.0.0.1 (the bundled sample), sends
one 1-ha polygon in a general control unit to ``POST /v1/screen`` from
``--clients`` concurrent clients until ``--requests`` answers or
``--max-seconds`` passed, and prints:

- p50 / p99 of the server-side time (its ``Server-Timing`` header: from the
  request's arrival to its answer) and of the client-side round trip;
- screens per second over the run;
- the server's resident memory (all its processes) after the warm-up, at the
  end, and the largest seen;
- with ``--page``: seconds from a cold chromium to the page ready (layers drawn).

Every answer is checked to be 200 with the verdict the warm-up got. Only
127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import httpx
import shapely

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def one_hectare() -> bytes:
    """A 100 m x 100 m square at the centre of P01's site (a logistics park: a general unit), as GeoJSON."""
    site = gpd.read_file(SAMPLE / "projects" / "P01.geojson").to_crs(4527)
    centre = site.geometry.iloc[0].centroid
    square = shapely.box(centre.x - 50, centre.y - 50, centre.x + 50, centre.y + 50)
    lonlat = gpd.GeoSeries([square], crs=4527).to_crs(4326).iloc[0]
    feature = {"type": "Feature", "properties": {"id": "bench", "industry": "G5920"},
               "geometry": json.loads(shapely.to_geojson(lonlat))}  # fmt: skip
    return json.dumps(feature).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn's workers), bytes."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its children (uvicorn's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            pass
    return total


def start_server(workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "threelines", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "THREELINES_TOKEN": ""})  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start within 180 s")


def hammer(url: str, body: bytes, expected: str, count: int, clients: int, max_seconds: float, pid: int):
    """Send ``count`` screens from ``clients`` threads; return server and client times (ms) and the memory peak."""
    server_ms: list[float] = []
    client_ms: list[float] = []
    lock = threading.Lock()
    left = [count]
    peak = [0]
    stop_at = time.monotonic() + max_seconds
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30, headers={"Content-Type": "application/geo+json"}) as http:
            while time.monotonic() < stop_at:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                start = time.perf_counter()
                response = http.post("/v1/screen", content=body)
                took = (time.perf_counter() - start) * 1000
                if response.status_code != 200 or response.json()["verdict"] != expected:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    return
                timing = response.headers["server-timing"].split("dur=")[1]
                with lock:
                    client_ms.append(took)
                    server_ms.append(float(timing))

    def watch() -> None:
        while any(t.is_alive() for t in threads):
            peak[0] = max(peak[0], rss_bytes(pid))
            time.sleep(0.5)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in threads:
        thread.join()
    watcher.join()
    if failures:
        raise SystemExit(f"a request failed: {failures[0]}")
    return server_ms, client_ms, time.perf_counter() - start, peak[0]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def page_ready_seconds(url: str) -> float:
    """From launching a cold chromium to the page's layers drawn (body[data-ready])."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        start = time.perf_counter()
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url}/")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        took = time.perf_counter() - start
        browser.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="screens to send (default 20000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--warmup", type=int, default=200, help="screens sent before measuring (default 200)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop sending after this long (default 600)")
    parser.add_argument("--page", action="store_true", help="also time the page from a cold chromium")
    args = parser.parse_args()

    body = one_hectare()
    process, url = start_server(args.workers)
    try:
        first = httpx.post(
            f"{url}/v1/screen", content=body, headers={"Content-Type": "application/geo+json"}, timeout=60
        )
        first.raise_for_status()
        expected = first.json()["verdict"]
        area = first.json()["project"]["area_ha"]
        hammer(url, body, expected, args.warmup, args.clients, args.max_seconds, process.pid)
        before = rss_bytes(process.pid)
        cpu_before = cpu_seconds(process.pid)
        server_ms, client_ms, seconds, peak = hammer(
            url, body, expected, args.requests, args.clients, args.max_seconds, process.pid
        )
        after = rss_bytes(process.pid)
        cpu = cpu_seconds(process.pid) - cpu_before
        page = page_ready_seconds(url) if args.page else None
    finally:
        process.terminate()
        process.wait(30)

    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"site: {area} ha, verdict {expected}; {args.workers} worker(s), {args.clients} concurrent clients")
    print(f"requests: {len(server_ms)} in {seconds:.1f} s = {len(server_ms) / seconds:.0f} screens/s")
    per = cpu / len(server_ms) * 1000
    print(f"server CPU per screen: {per:.1f} ms (so about {os.cpu_count() * 1000 / per:.0f} screens/s on all cores)")
    print(f"server-side ms: p50 {percentile(server_ms, 50):.1f}  p99 {percentile(server_ms, 99):.1f}")
    print(f"round-trip ms:  p50 {percentile(client_ms, 50):.1f}  p99 {percentile(client_ms, 99):.1f}")
    mib = 1024**2
    print(f"memory MiB: {before / mib:.0f} after warm-up, {after / mib:.0f} at the end "
          f"({(after - before) / mib:+.1f}), peak {peak / mib:.0f}")  # fmt: skip
    if page is not None:
        print(f"page ready from a cold browser: {page:.2f} s")


if __name__ == "__main__":
    main()
