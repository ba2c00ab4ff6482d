"""Whole reads and writes on file descriptors and unbuffered files, which may move fewer bytes than asked."""

from __future__ import annotations

import os


def write_all(fd: int, data) -> None:
    """Write every byte of ``data`` (any buffer) to ``fd`` (``os.write`` may write fewer), or raise OSError."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def read_into(stream, buffer) -> bool:
    """Fill ``buffer`` (any writable buffer) from ``stream`` (``readinto``); False if the stream ended first."""
    view, done = memoryview(buffer).cast("B"), 0
    while done < len(view):
        got = stream.readinto(view[done:])
        if not got:
            return False
        done += got
    return True
