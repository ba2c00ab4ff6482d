"""Screening the projects of requests that arrive together in one pass of the engine."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Longest a pass of the engine waits for GeoJSON requests still being read, to screen them with it
#: (reading one takes a few milliseconds; a pass costs about as much for four projects as for one).
COALESCE_WAIT_S = 0.02


class Coalescer:
    """Screen the projects of requests that arrive together in one pass of the engine.

    One pass over several projects costs little more than over one (the
    engine works over arrays), so while one request's projects are screened
    the requests that arrive queue up, and the next of them screens them all
    at once. Each project's answer does not depend on the others screened
    with it (as in a batch's chunks); only projects read with the same
    label (which messages name) go together.

    Requests still being read (:meth:`arriving`) are waited for, up to
    ``wait_s``: reading them takes the CPU the waiting request does not use,
    and one pass for them all costs far less than one pass each.

    Parameters
    ----------
    run : callable
        Screens a :class:`~threelines.input.projects.Projects`; returns one verdict or message per project.
    lock : threading.Lock
        Held while the engine runs.
    wait_s : float
        Longest wait for requests being read before a pass starts.
    """

    def __init__(self, run, lock: threading.Lock, wait_s: float = 0.0):
        self._run, self._lock, self._wait_s = run, lock, wait_s
        self._mutex = threading.Condition()
        self._pending: list[_Pending] = []
        self._reading = 0  # requests in arriving() that have not reached screen() yet
        self._here = threading.local()  # each request is read and screened in one thread

    @contextmanager
    def arriving(self):
        """Count this thread's request as being read until it reaches :meth:`screen` (or fails before)."""
        with self._mutex:
            self._reading += 1
            self._here.reading = True
        try:
            yield
        finally:
            with self._mutex:
                self._read()

    def _read(self) -> None:
        """Count this thread's request as read (the mutex held)."""
        if getattr(self._here, "reading", False):
            self._here.reading = False
            self._reading -= 1
            self._mutex.notify_all()

    def screen(self, projects) -> list:
        """The engine's answers for these projects (screened with any others that wait)."""
        item = _Pending(projects)
        with self._mutex:
            self._pending.append(item)
            self._read()
        with self._lock:
            if not item.done:  # not yet answered by the request that held the engine before
                with self._mutex:
                    self._mutex.wait_for(lambda: self._reading == 0, timeout=self._wait_s)
                    batch, self._pending = self._pending, []
                self._screen_batch(batch)
        if item.error is not None:
            raise item.error
        return item.results

    def _screen_batch(self, batch: list[_Pending]) -> None:
        from threelines.input.projects import Projects

        groups: dict[str, list[_Pending]] = {}
        for item in batch:
            groups.setdefault(item.projects.source, []).append(item)
        for source, items in groups.items():
            try:
                together = Projects(
                    source=source,
                    attrs=[a for i in items for a in i.projects.attrs],
                    geometry=np.concatenate([i.projects.geometry for i in items]),
                    area_m2=np.concatenate([i.projects.area_m2 for i in items]),
                    plane_area_m2=np.concatenate([_plane_areas(i.projects) for i in items]),
                )
                results = self._run(together) if len(together) else []
                start = 0
                for item in items:
                    item.results = results[start : start + len(item.projects)]
                    start += len(item.projects)
            except Exception:  # one request must not fail the others: each alone, to find which
                for item in items:
                    self._screen_alone(item)
            finally:
                for item in items:
                    item.done = True

    def _screen_alone(self, item: _Pending) -> None:
        try:
            item.results = self._run(item.projects) if len(item.projects) else []
        except Exception as exc:  # handed to the waiting request, raised there
            item.error = exc


def _plane_areas(projects) -> np.ndarray:
    """The projects' areas in the plane of their projected CRS (NaN: came in longitude/latitude)."""
    if projects.plane_area_m2 is None:
        return np.full(len(projects), np.nan)
    return np.asarray(projects.plane_area_m2, dtype=float)


@dataclass
class _Pending:
    projects: Any
    results: list = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False
