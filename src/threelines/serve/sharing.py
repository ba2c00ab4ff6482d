"""Client connections shared between the service's worker processes as they arrive.

uvicorn's workers accept on one listening socket, and the event loop of the
one that wakes first accepts every connection waiting, so 8 keep-alive
clients may all land on one worker while the others idle: its core then sets
the pace of the whole service. A worker that already holds a connection
steps back for a moment on each new one, so that the next waiting
connection goes to a worker with fewer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The step back, per connection the worker already holds: long enough for another worker's accept to run.
STEP_BACK_S = 0.001


class SharingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, made while the worker's loop accepts a connection, stepping back when busy."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        held = len(self.connections)  # this worker's open connections (the new one is added when it is made)
        if held:
            time.sleep(min(held, 4) * STEP_BACK_S)


def connections_held(pid: int, port: int) -> list[int]:
    """Open client connections each process of the server (it and uvicorn's workers) holds, most first.

    Read from ``/proc``: the established TCP sockets whose local port is the
    server's, matched to the processes' file descriptors by inode.
    """
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:  # 01: ESTABLISHED
            inodes.add(fields[9])
    counts = []
    try:
        pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    except OSError:
        pids = [pid]
    for p in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{p}/fd").iterdir()]
        except OSError:
            continue
        held = sum(link.startswith("socket:[") and link[8:-1] in inodes for link in links)
        helper = b"resource_tracker" in Path(f"/proc/{p}/cmdline").read_bytes()  # multiprocessing's, not a worker
        if held or (p != pid and not helper):
            counts.append(held)
    return sorted(counts, reverse=True)
