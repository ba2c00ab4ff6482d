"""Batch screening: every feature of every input, into a folder of results that a re-run resumes.

The output folder holds ``results.jsonl`` (one line per project, in the
``screen --format json`` shape plus ``source`` and ``input_hash``, or with
``error`` for a project that could not be screened), and ``summary.csv`` and
``summary.xlsx`` (one row per project). Each project's ``input_hash`` covers
its geometry, its attributes, the manifest, every layer file and the rules:
a re-run skips the projects whose hash is already in ``results.jsonl``, so
an interrupted run resumes and a changed layer re-screens everything.
Projects are screened in chunks of neighbours (in Hilbert-curve order, so
each chunk reads few features), in worker processes when ``jobs`` > 1, and
results are written as each chunk finishes, so memory does not grow with
the number of projects.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from threelines.batch_workers import Reports, Screener, json_line
from threelines.errors import OutputError, ThreelinesError
from threelines.footprint import Projects, read_projects_in_pieces
from threelines.layer_cache import cache_folder
from threelines.manifest import Manifest
from threelines.provenance import setup_digest, setup_provenance, with_input
from threelines.rules import RuleSet
from threelines.rules.failures import RuleFailures
from threelines.run_index import RunIndex
from threelines.summary import summary_row, write_summaries

#: Files a batch writes into its output folder.
RESULTS, SUMMARY_CSV, SUMMARY_XLSX, PROVENANCE = "results.jsonl", "summary.csv", "summary.xlsx", "provenance.json"

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

    def describe(self) -> str:
        """One line for stderr."""
        total = sum(self.verdicts.values()) + self.errors
        counts = ", ".join(f"{self.verdicts[v]} {v}" for v in ("pass", "conditional", "reject"))
        resumed = f"; {self.resumed} already screened, not screened again" if self.resumed else ""
        return f"{total} projects: {counts}, {self.errors} error{'s' * (self.errors != 1)}{resumed}"


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
    chunk_size: int = 500,
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
    chunk_size : int
        Projects screened together (one layer read and one spatial query each).
    overwrite : bool
        Start afresh in an existing output folder instead of resuming.
    progress : bool
        Show a progress bar on stderr.
    cache : bool
        Keep the layers, read whole, in the prepared-layer cache (see
        :mod:`threelines.layer_cache`) and use it on later runs.
    piece_size : int
        A vector file with more features is read this many at a time, so
        memory does not grow with the size of the input.
    lang : str, optional
        The language of rule titles and messages, where the rules give several, and of the reports.
    reports : str or Path, optional
        A folder for one report per screened project (``INPUT-ID.html`` ...),
        rewritten when the project is screened again.
    reports_format : str
        ``html``, ``markdown``, ``json``, ``geojson`` or ``gpkg``.
    engine : str
        ``local`` (worker processes of this machine) or ``dask`` (see
        :mod:`threelines.dask_engine`).
    scheduler : str, optional
        The Dask scheduler's address; None starts a local cluster of ``jobs`` workers.

    Returns
    -------
    BatchResult

    Raises
    ------
    OutputError
        If ``out`` exists and is not a batch output (without ``overwrite``).
    """
    out = _prepare(Path(out), overwrite)
    options = {"crs": crs, "encoding": encoding, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    shared = setup_provenance(manifest, rules, options)  # every layer and rule file hashed once for the run
    digest = setup_digest(shared)
    index = RunIndex()
    _earlier(out / RESULTS, index)
    result = BatchResult()
    _write_provenance(out, shared, inputs)
    if reports is not None:
        reports = Reports(Path(reports), reports_format, lang or "en")
        reports.folder.mkdir(parents=True, exist_ok=True)
    cache_dir = cache_folder() if cache else None
    if engine == "dask":
        from threelines.dask_engine import DaskScreener, WorkerSetup

        setup = WorkerSetup(
            str(Path(manifest.path).resolve()), str(Path(rules.path).resolve()), cache_dir, lang, reports
        )
        screener = DaskScreener(setup, scheduler, jobs)
    else:
        screener = Screener(manifest, rules, jobs, cache_dir, lang, reports)
    with index, (out / RESULTS).open("a", encoding="utf-8") as sink, _progress(progress) as bar, screener:
        if sink.tell() and not _ends_with_newline(out / RESULTS):
            sink.write("\n")  # an interrupted run's last line was cut: start on a line of our own

        def write(lines: list[tuple[str, tuple]]) -> None:
            sink.writelines(line for line, _ in lines)
            index.put_rows(row for _, row in lines)

        stamps: dict[str, dict] = {}

        def stamp(source: str) -> dict | None:
            """The provenance block of an input's reports (hashing the input once)."""
            if reports is None:
                return None
            if source not in stamps:
                stamps[source] = with_input(shared, source)
            return stamps[source]

        def chunks():
            """Chunks to screen, input after input and piece after piece, writing unreadable features."""
            for source in inputs:
                for projects, errors in _pieces(source, manifest, crs, encoding, overrides, piece_size):
                    write([_error_line(source, message) for message in errors])
                    hashes = project_hashes(projects, digest)
                    todo = screener.order(projects, [i for i, new in enumerate(index.new(hashes)) if new])
                    index.stage(hashes)  # this input's projects count as done for the inputs after it
                    result.resumed += len(projects) - len(todo)
                    bar.total = (bar.total or 0) + len(todo)
                    for i in range(0, len(todo), chunk_size):
                        positions = todo[i : i + chunk_size]
                        yield projects.take(positions), source, [hashes[j] for j in positions], stamp(source)
                index.commit()

        failures = RuleFailures()
        for lines in screener.map(chunks()):
            write(lines)
            failures.add_lines(line for line, _ in lines)
            bar.update(len(lines))
            result.screened += len(lines)
        sink.flush()
        result.rule_failures = failures.report()

        def counted(rows):
            for row in rows:
                if row[8]:
                    result.errors += 1
                elif row[3]:
                    result.verdicts[row[3]] += 1
                result.unresolved += bool(row[6])
                yield row

        write_summaries(counted(index.rows()), out / SUMMARY_CSV, out / SUMMARY_XLSX)
    return result


def project_hashes(projects: Projects, digest: str) -> list[str]:
    """Each project's input hash: its attributes and geometry (as WKB), under the run's ``digest``."""
    wkbs = shapely.to_wkb(projects.geometry) if len(projects) else []
    out = []
    for attrs, wkb in zip(projects.attrs, wkbs, strict=True):
        h = hashlib.sha256(digest.encode())
        h.update(json.dumps(attrs, sort_keys=True, default=str).encode())
        h.update(wkb)
        out.append(h.hexdigest()[:32])
    return out


def _prepare(out: Path, overwrite: bool) -> Path:
    """Create the output folder, or accept an earlier batch's, or refuse a foreign one."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; a batch writes a folder of results")
    if out.exists() and overwrite:
        for name in (RESULTS, SUMMARY_CSV, SUMMARY_XLSX, PROVENANCE):
            (out / name).unlink(missing_ok=True)
    elif out.exists() and any(out.iterdir()) and not (out / RESULTS).exists():
        raise OutputError(f"{out}: exists and is not a batch output; give another -o, or --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the folder ({exc.strerror})") from None
    return out


def _earlier(results: Path, index: RunIndex) -> None:
    """Put what earlier runs wrote into the index: the projects screened (errors are tried again), summary rows."""
    if not results.exists():
        return
    with results.open(encoding="utf-8") as fh:
        hashes, rows = [], []
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short when a run was interrupted
            if "error" not in record and "input_hash" in record:
                hashes.append(record["input_hash"])
            rows.append(summary_row(record))
            if len(rows) >= 10_000:  # in batches: memory stays flat however long the file
                index.mark_done(hashes)
                index.put_rows(rows)
                hashes, rows = [], []
        index.mark_done(hashes)
        index.put_rows(rows)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _pieces(source: str, manifest: Manifest, crs, encoding, overrides, piece: int):
    """Yield ``(projects, problems)`` for consecutive pieces of one input; a read that fails ends it with one error."""
    pieces = read_projects_in_pieces(
        source, manifest.working_crs, piece=piece, crs=crs, encoding=encoding, overrides=overrides,
        line_widths=manifest.line_widths,
    )  # fmt: skip
    try:
        for projects in pieces:
            yield projects, list(projects.problems)
    except ThreelinesError as exc:
        yield Projects(source=source, attrs=[], geometry=np.empty(0, dtype=object), area_m2=np.empty(0)), [str(exc)]


def _write_provenance(out: Path, shared: dict, inputs: list[str]) -> None:
    """``provenance.json``: what this run's verdicts were computed from (the inputs with their sha256)."""
    from threelines.report import write_output

    block = {**shared, "inputs": [with_input(shared, s)["input"] for s in inputs]}
    write_output(json.dumps(block, ensure_ascii=False, indent=1) + "\n", out / PROVENANCE, overwrite=True)


def _error_line(source: str, message: str) -> tuple[str, tuple]:
    """The results line and summary row of a feature or input that could not be read."""
    record = {"project": {"id": _project_id(message, source)}, "source": source, "error": message}
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
