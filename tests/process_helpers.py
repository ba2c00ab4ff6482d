"""Processes read from /proc, for the tests that kill a batch and look for what it left running."""

from __future__ import annotations

from pathlib import Path


def _parents() -> dict[int, list[int]]:
    """Each process id's children, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    return parents


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``."""
    return _parents().get(pid, [])


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid`` and by its children."""
    parents = _parents()
    found, todo = [], [pid]
    while todo:
        found += (kids := parents.get(todo.pop(), []))
        todo += kids
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
