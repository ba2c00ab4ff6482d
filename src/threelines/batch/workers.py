"""How a batch's chunks are screened: in this process, or in local worker processes.

Each worker process keeps the manifest, rules and every layer (read whole,
through the prepared-layer cache, by the loader it is forked from: see
:mod:`threelines.batch.pool`) in :data:`_WORKER`, and turns a chunk into
results lines and summary rows, writing a report per project when asked.
:mod:`threelines.batch.dask` runs the same :func:`screen_chunk` on a Dask
cluster's workers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import deque
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely

from threelines.batch.pool import ForkedPool
from threelines.batch.results import Records
from threelines.batch.summary import summary_row, tally_of
from threelines.collector import collector_held
from threelines.engine.chunk_records import batch_results
from threelines.engine.json_values import JSON_OPTIONS
from threelines.errors import ThreelinesError
from threelines.input.projects import Projects
from threelines.layers.spec import Manifest
from threelines.limits import MAX_REPORT_NAME_BYTES
from threelines.rules import RuleSet

#: Chunks handed to each worker ahead of the one being written.
IN_FLIGHT_PER_JOB = 3


def spatial_order(projects: Projects, positions: list[int]) -> list[int]:
    """Positions along a Hilbert curve, so that each chunk covers a small area and reads few features."""
    if len(positions) < 2:
        return positions
    centres = shapely.centroid(projects.geometry[positions])
    keys = hilbert_distance(shapely.get_x(centres), shapely.get_y(centres))
    return [positions[i] for i in np.argsort(keys, kind="stable")]


def hilbert_distance(x: np.ndarray, y: np.ndarray, level: int = 16) -> np.ndarray:
    """Each point's distance along a Hilbert curve over the points' extent (as geopandas' ``hilbert_distance``).

    The extent is divided into a grid of ``2**level - 1`` steps a side; the
    curve is followed from the grid's top level down, one quadrant per level.

    Parameters
    ----------
    x, y : numpy.ndarray
        The points' coordinates.
    level : int
        The curve's order (at most 16: the distances fit 32 bits).

    Returns
    -------
    numpy.ndarray of int64
    """
    side = (1 << level) - 1

    def grid(values: np.ndarray) -> np.ndarray:
        low, high = np.nanmin(values), np.nanmax(values)
        if high == low:
            return np.zeros(len(values), dtype=np.int64)
        steps = np.clip((values - low) * (side / (high - low)), 0, side)
        return steps.astype(np.uint32).astype(np.int64)

    x, y = grid(x), grid(y)
    distance = np.zeros(len(x), dtype=np.int64)
    half = 1 << (level - 1)
    while half:
        right, top = (x & half) > 0, (y & half) > 0
        distance += half * half * ((3 * right) ^ top)
        # Within the quadrant: the lower quadrants' curves run turned (and the lower right one mirrored too).
        x, y = x & (half - 1), y & (half - 1)
        mirrored = right & ~top
        x = np.where(mirrored, half - 1 - x, x)
        y = np.where(mirrored, half - 1 - y, y)
        x, y = np.where(top, x, y), np.where(top, y, x)
        half >>= 1
    return distance


_WORKER: dict[str, Any] = {}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reports:
    """Where and how to write one report per project."""

    folder: Path
    fmt: str
    lang: str

    def path(self, key: tuple, project_id: str) -> Path:
        """``FILE-ID-HASH.ext``: readable, bounded in length, and one file per key.

        ``key`` is the project's ``(file, layer, feature)``; the short hash of
        it keeps apart ids that read alike once made safe (``A/1``, ``A_1``),
        equal ids, and ids cut short.
        """
        file, layer, feature = key
        stem = Path(str(file).split("!")[-1]).stem
        safe = re.sub(r"[^\w.-]+", "_", f"{stem}-{project_id}").strip("._") or "project"
        safe = safe.encode()[:MAX_REPORT_NAME_BYTES].decode(errors="ignore")  # a byte limit: names are bytes on disk
        tag = hashlib.sha256(json.dumps([file, layer, feature], ensure_ascii=False).encode()).hexdigest()[:8]
        return self.folder / f"{safe}-{tag}{REPORT_SUFFIXES[self.fmt]}"


#: The file suffix of each report format.
REPORT_SUFFIXES = {"html": ".html", "markdown": ".md", "json": ".json", "geojson": ".geojson", "gpkg": ".gpkg"}


def init_worker(
    manifest: Manifest, rules: RuleSet, cache_dir: Path | None, lang: str | None = None, reports: Reports | None = None
) -> None:
    """Set up this process to screen chunks; every layer is read whole on its first chunk and kept."""
    _WORKER.update(manifest=manifest, rules=rules, layers={}, cache_dir=cache_dir, lang=lang, reports=reports)


def screen_chunk(task: tuple[Projects, str, list[str], dict | None]) -> Records:
    """Screen one chunk (in a worker or in this process) into its records: results lines and summary rows.

    ``task`` is the chunk's projects, their input, their input hashes and the
    provenance block their reports carry. The JSON is made here, in the
    worker, so that the parent only writes it. A chunk whose screening fails
    unexpectedly is screened again in halves, down to single projects, so
    that only the projects that fail get an error record and the run goes on.
    """
    projects, _, hashes, stamp = task
    # The collector is held while the chunk is screened and written down: the verdicts and records are many
    # small objects, all freed (without it) before it runs again, so that it never walks them.
    with collector_held(settle=True):  # a batch's processes run nothing but the batch
        return Records.of(_lines(projects, _screen_isolated(projects), hashes, stamp))


def _lines(projects: Projects, outcomes: list, hashes: list[str], stamp: dict | None) -> list[tuple[bytes, tuple]]:
    """Each project's results line and summary row, from its verdict (or the message saying why it has none)."""
    keys = projects.keys or [(projects.source, None, i) for i in range(len(projects))]
    made = iter(_records([outcome for outcome in outcomes if not isinstance(outcome, str)]))
    out = []
    for project, outcome, key, hashed, geometry in zip(
        projects.attrs, outcomes, keys, hashes, projects.geometry, strict=True
    ):
        record, tally = (outcome, None) if isinstance(outcome, str) else next(made)
        try:
            if isinstance(record, Exception):
                raise record
            out.append(_line(project, outcome, record, key, hashed, geometry, projects.crs, stamp, tally))
        except Exception as exc:  # a verdict that cannot be written down is that project's error
            out.append(_line(project, outcome, failure_message(projects.source, project["id"], exc), key, hashed))
    return out


def _records(verdicts: list) -> list[tuple]:
    """The JSON form of each verdict, made for all at once (their triggers already JSON text), and its tally.

    The tally is the verdict's summary figures (see :func:`batch_results`). If
    that fails, the records are made one by one (as :meth:`Verdict.to_dict`,
    without a tally), so that only those that fail are lost: each as its
    exception.
    """
    lang = _WORKER["lang"]
    try:
        records, tallies = batch_results(verdicts, lang)
        return list(zip(records, tallies, strict=True))
    except Exception:  # a rule text that cannot be rendered, say: find whose
        out = []
        for verdict in verdicts:
            try:
                out.append((verdict.to_dict(lang), None))
            except Exception as exc:
                out.append((exc, None))
        return out


def _line(
    project, outcome, record, key, hashed, geometry=None, crs=None, stamp=None, tally=None
) -> tuple[bytes, tuple]:
    """A project's results line and summary row, from its verdict and record (writing its report) or its error.

    ``tally`` is the verdict's summary figures, when its record came with them.
    """
    if isinstance(record, str):
        record = {"project": {"id": project["id"], "name": project["name"]}, "error": record}
    else:
        if tally is None:
            tally = tally_of(outcome.fired_rows(), len(outcome.unresolved))
        if _WORKER["reports"] is not None:
            record.update(_write_report(outcome, geometry, crs, key, stamp))
    record["source"], record["layer"], record["feature"] = key
    record["input_hash"] = hashed
    return json_line(record), summary_row(record, tally)


def _screen_isolated(projects: Projects) -> list:
    """Each project's verdict or error message; an exception costs only the projects that raise it."""
    from threelines.engine.screen import screen_checked

    try:
        return screen_checked(projects, _WORKER["manifest"], _WORKER["rules"], _WORKER["layers"], _WORKER["cache_dir"])
    except Exception as exc:  # one project's unforeseen failure must not stop the batch
        if len(projects) == 1:
            (project,) = projects.attrs
            log.debug("project %r could not be screened", project["id"], exc_info=True)
            return [failure_message(projects.source, project["id"], exc)]
    half = len(projects) // 2
    return _screen_isolated(projects.take(range(half))) + _screen_isolated(projects.take(range(half, len(projects))))


def failure_message(source: str, project_id: str, exc: BaseException) -> str:
    """One line saying why a project could not be screened: the exception's type and text."""
    if isinstance(exc, ThreelinesError):
        return " ".join(str(exc).split())
    return f"{source}: project {project_id!r}: could not be screened ({_described(exc)})"


def _described(exc: BaseException) -> str:
    """An exception as one line: its type and its text."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'no message'}"


def _write_report(verdict, geometry, crs, key: tuple, stamp: dict | None) -> dict[str, str]:
    """Write one project's report; the record notes where (or why not: that project's, never the run's)."""
    from threelines.engine.screen import Screening
    from threelines.report.formats import write_report

    reports: Reports = _WORKER["reports"]
    path = reports.path(key, verdict.project["id"])
    try:
        write_report(
            Screening(verdicts=[verdict], footprints=[geometry], crs=crs), _WORKER["manifest"], reports.fmt,
            lang=reports.lang, provenance=stamp, output=path, overwrite=True,
        )  # fmt: skip
    except ThreelinesError as exc:
        return {"report_error": str(exc)}
    except Exception as exc:  # a full disk, a bad name: this report's failure alone
        return {"report_error": f"{path}: cannot write the report ({_described(exc)})"}
    return {"report": str(path)}


def preload(warm: bool = True) -> None:
    """Read every vector layer the rules use now, while the parent is still reading and ordering the projects.

    A layer that cannot be read is left for the first chunk, whose projects then get the error. The
    engine's modules are imported here too (a tenth of a second), not on the first chunk, and with
    ``warm`` what every chunk shares is made ahead (see :mod:`threelines.engine.warm`): a worker waits
    for its first chunk anyway; this process, screening its chunks itself, does not.
    """
    import threelines.engine.screen  # noqa: F401  (the engine, imported now rather than on the first chunk)
    from threelines.layers.cache import read_layer_cached

    manifest: Manifest = _WORKER["manifest"]
    rules: RuleSet = _WORKER["rules"]
    unit = [manifest.unit_layer.name] if manifest.unit_layer else []
    for name in dict.fromkeys([*rules.layers(), *unit]):
        spec = manifest.layers[name]
        if spec.role == "raster" or name in _WORKER["layers"]:
            continue
        try:
            _WORKER["layers"][name] = read_layer_cached(spec, manifest.working_crs, _WORKER["cache_dir"])
        except Exception:  # the first chunk reads it again and reports it per project
            log.debug("layer %r could not be read ahead", name, exc_info=True)
            break
    if not warm:
        return
    from threelines.engine.warm import warm_up

    try:
        warm_up(manifest, rules, _WORKER["layers"], _WORKER["cache_dir"])
    except Exception:  # never a reason to stop: the chunks make it all again, and report what fails
        log.debug("the warm-up stopped", exc_info=True)


class Screener:
    """Screens chunks in order, in worker processes or, for a single chunk or one job, in this one.

    The workers are forked from a process that has read the layers for all
    of them (see :mod:`threelines.batch.pool`). At most a few chunks per
    worker are in flight, so that neither the chunks waiting to be screened
    nor the results waiting to be written grow with the size of the input.
    """

    order = staticmethod(spatial_order)

    def __init__(self, manifest: Manifest, rules: RuleSet, jobs: int, cache_dir: Path | None, lang, reports):
        self.args, self.jobs, self.pool = (manifest, rules, cache_dir, lang, reports), jobs, None

    def __enter__(self) -> Screener:
        return self

    @property
    def slots(self) -> int:
        """How many chunks are screened at once."""
        return max(1, self.jobs)

    def __exit__(self, exc_type, *exc) -> None:
        if self.pool is not None:
            self.pool.close(wait=exc_type is None)  # after an error, the chunks in flight are not waited for

    def start(self) -> None:
        """Start the worker processes now (the layers are read meanwhile), when more than one chunk is coming."""
        if self.jobs > 1 and self.pool is None:
            self.pool = ForkedPool(self.jobs, partial(_prepared, self.args), screen_chunk)
            self.pool.start()  # (the pool is the screener's before it starts: __exit__ closes it, whatever happens)

    def map(self, tasks):
        """Yield each task's records, in the order of the tasks."""
        tasks = iter(tasks)
        first = next(tasks, None)
        if first is None:
            return
        # With the workers started already (several chunks coming), the first goes to them at once.
        second = next(tasks, None) if self.pool is None else None
        if self.pool is None and (self.jobs <= 1 or second is None):  # one chunk: not worth starting processes for
            init_worker(*self.args)
            preload(warm=False)
            for task in (first, *([second] if second is not None else []), *tasks):
                yield screen_chunk(task)
            return
        self.start()
        pending: deque = deque()
        for task in chain((first,) if second is None else (first, second), tasks):
            pending.append(self.pool.submit(task))
            if len(pending) >= IN_FLIGHT_PER_JOB * self.jobs:
                yield self.pool.result(pending.popleft())
        self.pool.no_more()
        while pending:
            yield self.pool.result(pending.popleft())


def _prepared(args: tuple) -> None:
    """Set up a process to screen chunks and read the layers (run by the loader, which the workers are forked from)."""
    # The layers' many objects form no cycles: no collection walks them while they are made, and they end in the
    # oldest generation, so that no young collection in a worker walks them (and copies their pages) either.
    with collector_held(settle=True):
        init_worker(*args)
        preload()


def json_line(record: dict[str, Any]) -> bytes:
    """One line of results.jsonl, as it is written (keys sorted, UTF-8)."""
    return orjson.dumps(record, option=_LINE)


_LINE = JSON_OPTIONS | orjson.OPT_APPEND_NEWLINE
