"""Time `threelines serve` on loopback: latency, throughput and memory of screening a 1-ha polygon.

Usage::

    .venv/bin/python benchmarks/serve.py [--requests 20000] [--clients 8] [--workers 2] [--max-seconds 600] [--page]

Starts a real server on a free port of 127.0.0.1 (the bundled sample), sends
one 1-ha polygon in a general control unit to ``POST /v1/screen`` from
``--clients`` concurrent keep-alive connections until ``--requests`` answers or
``--max-seconds`` passed, and prints:

- p50 / p99 of the server-side time (its ``Server-Timing`` header: from the
  request's arrival to its answer) and of the client-side round trip;
- screens per second over the run, and the CPU per screen of the server and of
  the load itself (raw HTTP/1.1 on one asyncio loop: it shares the cores);
- the server's resident memory (all its processes) after the warm-up, at the
  end, and the largest seen;
- with ``--page``: seconds from a cold chromium to the page ready (layers
  drawn), and of them the browser's start and the time in the page.

Every answer is checked to be 200 with the verdict the warm-up got. Only
127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import httpx
import orjson
import shapely

from threelines.serve.sharing import connections_held

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


class Load:
    """Screens sent over raw HTTP/1.1 keep-alive connections on one asyncio loop.

    The load runs on the server's own cores, so it is written to cost as
    little as it can: no HTTP library, one pre-built request, one thread.
    """

    def __init__(self, url: str, body: bytes, expected: str, pid: int):
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port, self.expected, self.pid = host, int(port), expected, pid
        head = (
            f"POST /v1/screen HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/geo+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.request = head.encode() + body

    def run(self, count: int, clients: int, max_seconds: float):
        """Send ``count`` screens from ``clients`` connections; server and client times (ms), seconds, memory peak."""
        try:
            import uvloop  # the lighter loop, when the service's own is installed

            return uvloop.run(self._run(count, clients, max_seconds))
        except ImportError:
            return asyncio.run(self._run(count, clients, max_seconds))

    async def _run(self, count: int, clients: int, max_seconds: float):
        self.server_ms: list[float] = []
        self.client_ms: list[float] = []
        self.failures: list[str] = []
        self.shared: list[int] = []  # the clients' connections held by each server process
        self.left = count
        self.stop_at = time.monotonic() + max_seconds
        peak = 0
        start = time.perf_counter()
        tasks = [asyncio.create_task(self._client()) for _ in range(clients)]
        while not all(t.done() for t in tasks):
            peak = max(peak, rss_bytes(self.pid))
            if sum(self.shared) < clients:  # until every client's connection is seen accepted
                self.shared = connections_held(self.pid, self.port)
            await asyncio.wait(tasks, timeout=0.5)
        seconds = time.perf_counter() - start
        for task in tasks:
            task.result()
        if self.failures:
            raise SystemExit(f"a request failed: {self.failures[0]}")
        return self.server_ms, self.client_ms, seconds, peak

    async def _client(self) -> None:
        try:
            await self._send()
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError) as exc:  # the server went away
            self.failures.append(f"connection: {exc!r}")

    async def _send(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            while self.left > 0 and time.monotonic() < self.stop_at and not self.failures:
                self.left -= 1
                start = time.perf_counter()
                writer.write(self.request)
                status = (await reader.readline()).split(b" ", 2)[1]
                headers = {}
                while (line := await reader.readline()) != b"\r\n":
                    key, _, value = line.partition(b":")
                    headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers[b"content-length"]))
                took = (time.perf_counter() - start) * 1000
                if status != b"200" or orjson.loads(body).get("verdict") != self.expected:
                    self.failures.append(f"{status.decode()} {body[:200].decode(errors='replace')}")
                    return
                self.client_ms.append(took)
                self.server_ms.append(float(headers[b"server-timing"].split(b"dur=")[1]))
        finally:
            writer.close()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def page_ready(url: str) -> dict[str, float]:
    """A cold chromium to the page's layers drawn (body[data-ready]): seconds in all, and where they went."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        start = time.perf_counter()
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        launched = time.perf_counter()
        page = browser.new_page()
        page.goto(f"{url}/")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        took = time.perf_counter() - start
        inside = page.evaluate(
            """() => {
                const nav = performance.getEntriesByType("navigation")[0];
                const all = [nav, ...performance.getEntriesByType("resource")];
                return {dom: nav.domContentLoadedEventEnd, ready: Number(document.body.dataset.readyMs),
                        kib: all.reduce((s, r) => s + r.transferSize, 0) / 1024, requests: all.length};
            }"""
        )
        browser.close()
    return {"seconds": took, "launch": launched - start, **inside}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="screens to send (default 20000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--warmup", type=int, default=200, help="screens sent before measuring (default 200)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop sending after this long (default 600)")
    parser.add_argument("--page", action="store_true", help="also time the page from a cold chromium")
    parser.add_argument("--page-runs", type=int, default=3, help="cold-browser page loads timed (default 3)")
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
        load = Load(url, body, expected, process.pid)
        load.run(args.warmup, args.clients, args.max_seconds)
        before = rss_bytes(process.pid)
        cpu_before, client_before = cpu_seconds(process.pid), time.process_time()
        server_ms, client_ms, seconds, peak = load.run(args.requests, args.clients, args.max_seconds)
        after = rss_bytes(process.pid)
        cpu, client_cpu = cpu_seconds(process.pid) - cpu_before, time.process_time() - client_before
        pages = [page_ready(url) for _ in range(args.page_runs)] if args.page else []
    finally:
        process.terminate()
        process.wait(30)

    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"site: {area} ha, verdict {expected}; {args.workers} worker(s), {args.clients} concurrent clients")
    print(f"requests: {len(server_ms)} in {seconds:.1f} s = {len(server_ms) / seconds:.0f} screens/s")
    per = cpu / len(server_ms) * 1000
    print(f"server CPU per screen: {per:.2f} ms (so about {os.cpu_count() * 1000 / per:.0f} screens/s on all cores); "
          f"the load's own CPU: {client_cpu / len(server_ms) * 1000:.2f} ms per screen")  # fmt: skip
    print(f"server-side ms: p50 {percentile(server_ms, 50):.1f}  p99 {percentile(server_ms, 99):.1f}")
    # Workers accept on one socket: the one that wakes first may take most connections, and its core sets the pace.
    print(f"connections per server process: {', '.join(map(str, load.shared)) or 'not seen'}")
    print(f"round-trip ms:  p50 {percentile(client_ms, 50):.1f}  p99 {percentile(client_ms, 99):.1f}")
    mib = 1024**2
    print(f"memory MiB: {before / mib:.0f} after warm-up, {after / mib:.0f} at the end "
          f"({(after - before) / mib:+.1f}), peak {peak / mib:.0f}")  # fmt: skip
    for page in pages:
        print(f"page ready from a cold browser: {page['seconds']:.2f} s (browser start {page['launch']:.2f} s; "
              f"in the page: DOM {page['dom'] / 1000:.2f} s, layers drawn {page['ready'] / 1000:.2f} s; "
              f"{page['requests']} requests, {page['kib']:.0f} KiB)")  # fmt: skip
    if pages:
        print(f"page ready, median of {len(pages)}: {statistics.median(p['seconds'] for p in pages):.2f} s")


if __name__ == "__main__":
    main()
