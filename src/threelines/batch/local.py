"""Batch screening: every feature of every input, into a folder of results that a re-run resumes.

The output folder holds ``results.jsonl`` (one line per project, in the
``screen --format json`` shape plus ``source``, ``layer``, ``feature`` and
``input_hash``, or with ``error`` for a project or file that could not be
screened), and ``summary.csv`` and ``summary.xlsx`` (one row per project).
A record is keyed by where its project came from (file, layer, feature),
never by its id, so every feature gets exactly one line, one row and one
report. Each project's ``input_hash`` covers that key, its geometry, its
attributes, the manifest, every layer file and the rules: a re-run skips
the projects whose hash is already in ``results.jsonl``, so an interrupted
run resumes and a changed layer re-screens everything; a new record for a
key replaces the old one (errors are retried), and lines that are not whole
records are set aside in ``results.jsonl.damaged``. A lock file keeps a
second run out of the folder while one is running.
Projects are screened in chunks of neighbours (in Hilbert-curve order, so
each chunk reads few features), in worker processes when ``jobs`` > 1, and
results are written as each chunk finishes, so memory does not grow with
the number of projects. A file is judged as a whole first (its CRS), then
its footprints are placed and hashed a chunk at a time, so that the workers
screen the first chunks while this process prepares the others.
The results file is read and written by :mod:`threelines.batch.results`,
each project's input hash made by :mod:`threelines.batch.hashes`, the output
folder made and locked by :mod:`threelines.batch.folder`, and what every
project shares (the layers' and rules' provenance) by :mod:`threelines.batch.shared`.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from threelines.batch.chunking import chunk_sizer, split
from threelines.batch.folder import SUMMARY_CSV, SUMMARY_XLSX, clear, locked, prepare
from threelines.batch.hashes import project_hashes
from threelines.batch.index import INDEX_NAME, RunIndex
from threelines.batch.results import RESULTS, Records, Results, cannot_write
from threelines.batch.shared import SharedSetup, recorded
from threelines.batch.summary import SUMMARY_COLUMNS, SummaryStream, summary_row, write_summaries
from threelines.batch.workers import Reports, Screener, hilbert_distance, json_line
from threelines.cachedir import cache_folder
from threelines.collector import collector_held
from threelines.errors import OutputError, ThreelinesError
from threelines.input.footprint import features_known, read_projects_in_pieces
from threelines.input.projects import Projects
from threelines.input.sources import Problem
from threelines.layers.spec import Manifest
from threelines.limits import BATCH_ERRORS_SHOWN, SHARED_IDS_SHOWN
from threelines.report.provenance import with_input
from threelines.rules import RuleSet
from threelines.rules.failures import RuleFailures

log = logging.getLogger(__name__)

#: Features read from a large vector file at a time: enough for whole chunks of neighbours,
#: few enough that the projects in memory stay small.
PIECE_SIZE = 10_000


@dataclass
class BatchResult:
    """What a batch run did: counts by verdict, errors, and how many were resumed."""

    verdicts: Counter = field(default_factory=Counter)
    errors: int = 0
    resumed: int = 0
    screened: int = 0
    unresolved: int = 0  # projects with a rule that could not be decided
    rule_failures: list[str] = field(default_factory=list)  # one line per rule failing on many projects
    error_messages: list[str] = field(default_factory=list)  # the first errors' (BATCH_ERRORS_SHOWN)

    def describe(self) -> str:
        """One line for stderr."""
        total = sum(self.verdicts.values()) + self.errors
        counts = ", ".join(f"{self.verdicts[v]} {v}" for v in ("pass", "conditional", "reject"))
        resumed = f"; {self.resumed} already screened, not screened again" if self.resumed else ""
        return f"{total} projects: {counts}, {self.errors} error{'s' * (self.errors != 1)}{resumed}"

    def error_lines(self, results: str | Path) -> list[str]:
        """The errors for stderr, even when quiet: one line each for the first few, then how many more.

        Each message names its file (and project) and says what to do; all
        of them are in ``results`` (the run's results.jsonl).
        """
        lines = [f"Error: {message}" for message in self.error_messages]
        more = self.errors - len(self.error_messages)
        if more > 0:
            lines.append(f"Error: {more} more project{'s' * (more != 1)} or input{'s' * (more != 1)} "
                         f"could not be screened; every error is in {results}")  # fmt: skip
        return lines


def run_batch(
    inputs: list[str],
    out: str | Path,
    manifest: Manifest,
    rules: RuleSet,
    *,
    crs: object = None,
    encoding: str | None = None,
    overrides: dict[str, Any] | None = None,
    jobs: int = 1,
    chunk_size: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    cache: bool = True,
    piece_size: int = PIECE_SIZE,
    lang: str | None = None,
    reports: str | Path | None = None,
    reports_format: str = "html",
    engine: str = "local",
    scheduler: str | None = None,
) -> BatchResult:
    """Screen every feature of every input into the folder ``out``.

    Parameters
    ----------
    inputs : list of str
        Footprint files, zips, folders or corner tables (as for ``screen``).
    out : str or Path
        The output folder; an existing batch output is resumed.
    manifest, rules
        The layers and rules, already loaded (and checked).
    crs, encoding, overrides
        As for :func:`threelines.screen`, applied to every input.
    jobs : int
        Worker processes (1: screen in this process).
    chunk_size : int, optional
        Projects screened together (one layer read and one spatial query
        each); None: large chunks while much is left, smaller ones towards
        the end (see :mod:`threelines.batch.chunking`).
    overwrite : bool
        Start afresh in an existing output folder instead of resuming.
    progress : bool
        Show a progress bar on stderr.
    cache : bool
        Keep the layers, read whole, in the prepared-layer cache (see
        :mod:`threelines.layers.cache`) and use it on later runs.
    piece_size : int
        A vector file with more features is read this many at a time, so
        memory does not grow with the size of the input.
    lang : str, optional
        The language of rule titles and messages, where the rules give several, and of the reports.
    reports : str or Path, optional
        A folder for one report per screened project (``FILE-ID-HASH.html``
        ...), rewritten when the project is screened again.
    reports_format : str
        ``html``, ``markdown``, ``json``, ``geojson`` or ``gpkg``.
    engine : str
        ``local`` (worker processes of this machine) or ``dask`` (see
        :mod:`threelines.batch.dask`).
    scheduler : str, optional
        The Dask scheduler's address; None starts a local cluster of ``jobs`` workers.

    Returns
    -------
    BatchResult

    Raises
    ------
    OutputError
        If ``out`` exists and is not a batch output (without ``overwrite``),
        another batch is running in it, or it cannot be written (a full disk).
    ValueError
        If ``chunk_size`` is less than 1.
    """
    chunk_sizer(chunk_size, jobs)  # a chunk size below 1 is refused before anything is written
    inputs = list(dict.fromkeys(inputs))  # an input named twice is read once
    out = prepare(Path(out), overwrite)
    with locked(out):
        if overwrite:
            clear(out)
        try:
            return _run(inputs, out, manifest, rules, crs=crs, encoding=encoding, overrides=overrides, jobs=jobs,
                        chunk_size=chunk_size, progress=progress, cache=cache, piece_size=piece_size, lang=lang,
                        reports=reports, reports_format=reports_format, engine=engine, scheduler=scheduler)  # fmt: skip
        except sqlite3.Error as exc:  # the run index in the folder: a full disk, most likely
            raise OutputError(
                f"{out}: cannot write the batch's index {INDEX_NAME} ({exc}); free some space, then run again"
            ) from None


def _run(inputs, out: Path, manifest, rules, *, crs, encoding, overrides, jobs, chunk_size, progress, cache,
         piece_size, lang, reports, reports_format, engine, scheduler) -> BatchResult:  # fmt: skip
    """:func:`run_batch` in its locked, prepared output folder."""
    options = {"crs": crs, "encoding": encoding, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    cache_dir = cache_folder() if cache else None
    setup = SharedSetup(out, manifest, rules, options, inputs, cache_dir)
    result = BatchResult()
    with RunIndex(out) as index:
        results = Results(out / RESULTS, index)
        if reports is not None:
            reports = Reports(Path(reports), reports_format, lang or "en")
            try:
                reports.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"{reports.folder}: cannot create the reports folder ({exc.strerror})") from None
        if engine == "dask":
            from threelines.batch.dask import DaskScreener, WorkerSetup

            worker_setup = WorkerSetup(
                str(Path(manifest.path).resolve()), str(Path(rules.path).resolve()), cache_dir, lang, reports
            )
            screener = DaskScreener(worker_setup, scheduler, jobs)
        else:
            screener = Screener(manifest, rules, jobs, cache_dir, lang, reports)

        def counted(rows: list[tuple]) -> None:
            """Count a batch of summary rows into the result, keeping the first errors' messages."""
            error, verdict, unresolved = (SUMMARY_COLUMNS.index(c) for c in ("error", "verdict", "unresolved"))
            for row in rows:
                if row[error]:
                    result.errors += 1
                    if len(result.error_messages) < BATCH_ERRORS_SHOWN:
                        result.error_messages.append(row[error])
                elif row[verdict]:
                    result.verdicts[row[verdict]] += 1
                result.unresolved += bool(row[unresolved])

        with SummaryStream(out / SUMMARY_CSV, out / SUMMARY_XLSX, counted) as summaries:
            replaced = results.summarise(summaries)
            with results, _progress(progress) as bar, screener:
                stamps: dict[str, dict] = {}
                sizes = chunk_sizer(chunk_size, screener.slots)  # given how many projects of an input are left

                def stamp(source: str) -> dict | None:
                    """The provenance block of an input's reports (hashing the input once)."""
                    if reports is None:
                        return None
                    if source not in stamps:
                        stamps[source] = with_input(setup.shared(), source)
                    return stamps[source]

                def chunks():
                    """Chunks to screen, input after input and piece after piece, writing unreadable features."""
                    for number, source in enumerate(inputs):
                        # A file reached twice (a folder, then a file in it) is screened once: what an input
                        # screens is staged for the inputs after it (the last one has none).
                        later = number + 1 < len(inputs)
                        known = features_known(source) or 0
                        if not results.lines and known > sizes(known):
                            setup.shared()  # the layers' hashes, for the workers' cache
                            screener.start()  # several chunks coming: workers read the layers while this reads
                        for projects, errors in _pieces(source, manifest, crs, encoding, overrides, piece_size,
                                                        chunk_size or sizes):  # fmt: skip
                            results.write(Records.of(_error_line(source, message) for message in errors))
                            hashes = project_hashes(projects, setup.digest(), (source, recorded(source)))
                            todo = [i for i, new in enumerate(index.new(hashes)) if new]
                            if not projects.ordered and len(todo) > sizes(len(todo)):  # several chunks coming:
                                screener.start()  # workers read the layers meanwhile
                            if not projects.ordered and len(todo) > 1:  # read whole (a zip, say): neighbours together
                                todo = screener.order(projects, todo)
                            # A part placed in order is one chunk (all it holds); what was read whole is cut up.
                            parts = list(split(todo, (lambda left: left) if projects.ordered else sizes))
                            if later:
                                index.stage(hashes)
                            result.resumed += len(projects) - len(todo)
                            bar.total = (bar.total or 0) + len(todo)
                            for positions in parts:
                                yield projects.take(positions), source, [hashes[j] for j in positions], stamp(source)
                        if later:
                            index.commit()

                failures = RuleFailures()
                unresolved = SUMMARY_COLUMNS.index("unresolved")
                for records in screener.map(chunks()):
                    results.write(records)
                    # A failed rule leaves its project unresolved: the other lines need no search.
                    left = [i for i, row in enumerate(records.rows) if row[unresolved]]
                    failures.add_lines(records.lines(left), len(records))
                    bar.update(len(records))
                    result.screened += len(records)
            setup.shared()  # provenance.json, also for a run whose inputs held no project
            results.compact()
            result.rule_failures = failures.report()
            _warn_shared_ids(index.shared_ids())
            try:
                if index.replaced() == replaced:  # records were only added: the tables written meanwhile are whole
                    summaries.finish()
                else:  # written again, in the index's order, from the rows that stand
                    summaries.discard()
                    result.verdicts, result.errors, result.unresolved, result.error_messages = Counter(), 0, 0, []
                    write_summaries(index.rows(), out / SUMMARY_CSV, out / SUMMARY_XLSX, counted)
            except OSError as exc:
                raise cannot_write(out, exc) from None
    return result


def _warn_shared_ids(shared: list[tuple[str, int]]) -> None:
    """One warning per id carried by several projects (the first few), and how many more."""
    for pid, n in shared[:SHARED_IDS_SHOWN]:
        log.warning("project id %r is used by %d projects; each has its own record (see source and feature)", pid, n)
    if len(shared) > SHARED_IDS_SHOWN:
        log.warning("%d more project ids are used by several projects", len(shared) - SHARED_IDS_SHOWN)


def _pieces(source: str, manifest: Manifest, crs, encoding, overrides, piece: int, part: int | Callable[[int], int]):
    """Yield ``(projects, problems)`` for one input, a chunk at a time along a Hilbert curve.

    The input is read ``piece`` features at a time; each piece is judged as
    a whole (its CRS), then its features are placed along the curve through
    their boxes, a part at a time (``part`` projects, or as many as ``part``
    says for the features of the input left: see :func:`chunk_sizer`), so that the
    first chunks are screened while the rest is placed. A read that fails
    ends the input with one error.
    """
    pieces = read_projects_in_pieces(
        source, manifest.working_crs, piece=piece, crs=crs, encoding=encoding, overrides=overrides,
        line_widths=manifest.line_widths, order=_along_curve, part=part,
    )  # fmt: skip
    try:
        while True:
            with collector_held():  # (only while this reads: workers may be forked between pieces)
                projects = next(pieces, None)
            if projects is None:
                return
            yield projects, list(projects.problems)
    except ThreelinesError as exc:
        empty = Projects(source=source, attrs=[], geometry=np.empty(0, dtype=object), area_m2=np.empty(0))
        file, layer = source, None
        if not Path(source).exists() and ":" in source:  # file.gpkg:layer, keyed as its features are
            file, layer = source.rsplit(":", 1)
        yield empty, [Problem(str(exc), file, layer)]


def _along_curve(boxes: np.ndarray) -> np.ndarray:
    """Positions of boxes along a Hilbert curve through their centres (those without coordinates first)."""
    with np.errstate(over="ignore", invalid="ignore"):
        x, y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    located = np.isfinite(x) & np.isfinite(y)
    keys = np.full(len(boxes), -1, dtype=np.int64)
    if located.any():
        keys[located] = hilbert_distance(x[located], y[located])
    return np.argsort(keys, kind="stable")


def _error_line(source: str, message: str) -> tuple[bytes, tuple]:
    """The results line and summary row of a feature or file that could not be read (keyed where it came from)."""
    file = getattr(message, "file", None) or source
    record = {
        "project": {"id": _project_id(message, file)}, "source": file, "layer": getattr(message, "layer", None),
        "feature": getattr(message, "feature", None), "error": str(message),
    }  # fmt: skip
    return json_line(record), summary_row(record)


def _project_id(message: str, source: str) -> str:
    found = re.search(r"project '([^']*)'", message)
    return found.group(1) if found else source


class _NoBar:
    total = 0

    def update(self, n: int) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def _progress(show: bool):
    """A tqdm bar on stderr (projects done, rate, time left), or nothing."""
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=0, unit="project", desc="screening", dynamic_ncols=True, disable=None)


def default_jobs() -> int:
    """Every core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
