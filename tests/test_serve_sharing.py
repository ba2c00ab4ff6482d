"""Keep-alive connections are shared between the service's workers, not all taken by the first to wake."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from serve_helpers import Server

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="connections are counted in /proc")


def settled(pid: int, timeout: float = 120.0) -> None:
    """Wait until the server's workers have loaded the layers: their CPU time stops growing."""
    tick = os.sysconf("SC_CLK_TCK")

    def busy() -> float:
        total = 0.0
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return total

    deadline, last = time.monotonic() + timeout, -1.0
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = busy()
        if now - last < 0.05:
            return
        last = now


def test_eight_keep_alive_connections_are_shared_between_two_workers(tmp_path):
    """Connections opened together end up on both workers, with screenings running on them.

    The race in which one worker took all 8 (seen in about half the runs of
    ``benchmarks/serve.py`` before workers stepped back) is not reproduced
    here every time; the benchmark prints the split of each run.
    """
    from threelines.serve.sharing import connections_held

    server = Server(tmp_path, "--workers", "2")
    try:
        settled(server.process.pid)
        body = (SAMPLE / "projects" / "P01.geojson").read_bytes()
        request = (
            f"POST /v1/screen HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/geo+json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for _ in range(3):  # the first worker to wake would take them all, each time
            clients = [socket.socket() for _ in range(8)]
            for client in clients:  # all at once, as concurrent clients do
                client.setblocking(False)
                client.connect_ex(("127.0.0.1", server.port))
            for client in clients:
                client.settimeout(30)
            try:
                for client in clients:  # answered: each connection is held by the worker that accepted it
                    client.sendall(request)
                for client in clients:
                    assert client.recv(65536).startswith(b"HTTP/1.1 200")
                    client.setblocking(False)  # the rest of the answer is not needed
                held = connections_held(server.process.pid, server.port)
            finally:
                for client in clients:
                    client.close()
            assert len(held) == 2, held
            assert sum(held) == 8, held
            assert min(held) >= 2, f"one worker took {max(held)} of the 8 connections"
            time.sleep(0.5)  # the closed connections gone from both workers
    finally:
        server.stop()
