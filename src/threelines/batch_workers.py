"""How a batch's chunks are screened: in this process, or in local worker processes.

Each worker process keeps the manifest, rules and every layer (read whole
on its first chunk, through the prepared-layer cache) in :data:`_WORKER`,
and turns a chunk into results lines and summary rows, writing a report per
project when asked. :mod:`threelines.dask_engine` runs the same
:func:`screen_chunk` on a Dask cluster's workers.
"""

from __future__ import annotations

import re
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely

from threelines.errors import ThreelinesError
from threelines.footprint import Projects
from threelines.manifest import Manifest
from threelines.rules import RuleSet
from threelines.summary import summary_row

#: Chunks handed to each worker ahead of the one being written.
IN_FLIGHT_PER_JOB = 3


def spatial_order(projects: Projects, positions: list[int]) -> list[int]:
    """Positions along a Hilbert curve, so that each chunk covers a small area and reads few features."""
    if len(positions) < 2:
        return positions
    from geopandas import GeoSeries

    keys = GeoSeries(shapely.centroid(projects.geometry[positions])).hilbert_distance()
    return [positions[i] for i in np.argsort(keys.to_numpy(), kind="stable")]


_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class Reports:
    """Where and how to write one report per project."""

    folder: Path
    fmt: str
    lang: str

    def path(self, source: str, project_id: str) -> Path:
        """``INPUT-ID.ext``: the input's name keeps equal ids of different inputs apart."""
        safe = re.sub(r"[^\w.-]+", "_", f"{Path(source.split(':')[0]).stem}-{project_id}")
        return self.folder / f"{safe}{REPORT_SUFFIXES[self.fmt]}"


#: The file suffix of each report format.
REPORT_SUFFIXES = {"html": ".html", "markdown": ".md", "json": ".json", "geojson": ".geojson", "gpkg": ".gpkg"}


def init_worker(
    manifest: Manifest, rules: RuleSet, cache_dir: Path | None, lang: str | None = None, reports: Reports | None = None
) -> None:
    """Set up this process to screen chunks; every layer is read whole on its first chunk and kept."""
    _WORKER.update(manifest=manifest, rules=rules, layers={}, cache_dir=cache_dir, lang=lang, reports=reports)


def screen_chunk(task: tuple[Projects, str, list[str], dict | None]) -> list[tuple[str, tuple]]:
    """Screen one chunk (in a worker or in this process) into results lines and summary rows.

    ``task`` is the chunk's projects, their input, their input hashes and the
    provenance block their reports carry. The JSON is made here, in the
    worker, so that the parent only writes it.
    """
    from threelines.engine import screen_checked

    projects, source, keys, stamp = task
    manifest, rules = _WORKER["manifest"], _WORKER["rules"]
    outcomes = screen_checked(projects, manifest, rules, _WORKER["layers"], _WORKER["cache_dir"])
    out = []
    for project, outcome, key, geometry in zip(projects.attrs, outcomes, keys, projects.geometry, strict=True):
        if isinstance(outcome, str):
            record = {"project": {"id": project["id"], "name": project["name"]}, "error": outcome}
        else:
            record = outcome.to_dict(_WORKER["lang"])
            if _WORKER["reports"] is not None:
                record.update(_write_report(outcome, geometry, projects.crs, source, stamp))
        record.update(source=source, input_hash=key)
        out.append((json_line(record), summary_row(record)))
    return out


def _write_report(verdict, geometry, crs, source: str, stamp: dict | None) -> dict[str, str]:
    """Write one project's report; the record notes where (or why not)."""
    from threelines.engine import Screening
    from threelines.report.formats import write_report

    reports: Reports = _WORKER["reports"]
    path = reports.path(source, verdict.project["id"])
    try:
        write_report(
            Screening(verdicts=[verdict], footprints=[geometry], crs=crs), _WORKER["manifest"], reports.fmt,
            lang=reports.lang, provenance=stamp, output=path, overwrite=True,
        )  # fmt: skip
    except ThreelinesError as exc:
        return {"report_error": str(exc)}
    return {"report": str(path)}


class Screener:
    """Screens chunks in order, in worker processes (started on the second chunk) or in this one.

    At most a few chunks per worker are in flight, so that neither the
    chunks waiting to be screened nor the results waiting to be written
    grow with the size of the input.
    """

    order = staticmethod(spatial_order)

    def __init__(self, manifest: Manifest, rules: RuleSet, jobs: int, cache_dir: Path | None, lang, reports):
        self.args, self.jobs, self.pool = (manifest, rules, cache_dir, lang, reports), jobs, None

    def __enter__(self) -> Screener:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def map(self, tasks):
        """Yield each task's lines, in the order of the tasks."""
        tasks = iter(tasks)
        first = next(tasks, None)
        if first is None:
            return
        second = next(tasks, None)
        if self.jobs <= 1 or second is None:  # one chunk: not worth starting processes for
            init_worker(*self.args)
            for task in (first, *([second] if second is not None else []), *tasks):
                yield screen_chunk(task)
            return
        self.pool = ProcessPoolExecutor(max_workers=self.jobs, initializer=init_worker, initargs=self.args)
        pending: deque = deque()
        for task in chain((first, second), tasks):
            pending.append(self.pool.submit(screen_chunk, task))
            if len(pending) >= IN_FLIGHT_PER_JOB * self.jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def json_line(record: dict[str, Any]) -> str:
    """One line of results.jsonl (keys sorted, Chinese kept as UTF-8)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode() + "\n"
