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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from threelines.errors import OutputError, ThreelinesError
from threelines.footprint import Projects, read_projects
from threelines.layer_cache import cache_folder
from threelines.manifest import Manifest
from threelines.rules import RuleSet
from threelines.summary import summary_row, write_summaries

#: Files a batch writes into its output folder.
RESULTS, SUMMARY_CSV, SUMMARY_XLSX = "results.jsonl", "summary.csv", "summary.xlsx"


@dataclass
class BatchResult:
    """What a batch run did: counts by verdict, errors, and how many were resumed."""

    verdicts: Counter = field(default_factory=Counter)
    errors: int = 0
    resumed: int = 0
    screened: int = 0

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

    Returns
    -------
    BatchResult

    Raises
    ------
    OutputError
        If ``out`` exists and is not a batch output (without ``overwrite``).
    """
    out = _prepare(Path(out), overwrite)
    digest = inputs_digest(manifest, rules)
    done = _done_hashes(out / RESULTS)
    result = BatchResult()
    with (out / RESULTS).open("a", encoding="utf-8") as sink, _progress(progress) as bar:
        for source in inputs:
            projects, errors = _read(source, manifest, crs, encoding, overrides)
            for message in errors:
                _write(sink, {"project": {"id": _project_id(message, source)}, "source": source, "error": message})
            hashes = [project_hash(projects, i, digest) for i in range(len(projects))]
            todo = _spatial_order(projects, [i for i, h in enumerate(hashes) if h not in done])
            result.resumed += len(projects) - len(todo)
            bar.total = (bar.total or 0) + len(todo)
            chunks = [projects.take(todo[i : i + chunk_size]) for i in range(0, len(todo), chunk_size)]
            keys = [[hashes[i] for i in todo[j : j + chunk_size]] for j in range(0, len(todo), chunk_size)]
            screened = _screen_chunks(chunks, manifest, rules, jobs, cache_folder() if cache else None)
            for chunk_keys, outcomes in zip(keys, screened, strict=True):
                for key, outcome in zip(chunk_keys, outcomes, strict=True):
                    _write(sink, {**outcome, "source": source, "input_hash": key})
                    done.add(key)
                bar.update(len(chunk_keys))
                result.screened += len(chunk_keys)
            sink.flush()
    _write_summaries(out, result)
    return result


def inputs_digest(manifest: Manifest, rules: RuleSet) -> str:
    """A hash of everything a verdict depends on besides the project: manifest, layers, rules, list."""
    files = [manifest.path, rules.path]
    for spec in manifest.layers.values():
        files += [
            spec.path,
            *(spec.path.with_suffix(s) for s in (".dbf", ".shx", ".prj") if spec.path.suffix == ".shp"),
        ]
    if rules.clauses:
        files += sorted({Path(c.where.rsplit(":", 1)[0]) for c in rules.clauses})
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.name).encode())
        if path.exists():
            with path.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def project_hash(projects: Projects, i: int, digest: str) -> str:
    """A project's input hash: its attributes and geometry, under the inputs' digest."""
    h = hashlib.sha256(digest.encode())
    h.update(json.dumps(projects.attrs[i], sort_keys=True, default=str).encode())
    h.update(shapely.to_wkb(projects.geometry[i]))
    return h.hexdigest()[:32]


def _prepare(out: Path, overwrite: bool) -> Path:
    """Create the output folder, or accept an earlier batch's, or refuse a foreign one."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; a batch writes a folder of results")
    if out.exists() and overwrite:
        for name in (RESULTS, SUMMARY_CSV, SUMMARY_XLSX):
            (out / name).unlink(missing_ok=True)
    elif out.exists() and any(out.iterdir()) and not (out / RESULTS).exists():
        raise OutputError(f"{out}: exists and is not a batch output; give another -o, or --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the folder ({exc.strerror})") from None
    return out


def _done_hashes(results: Path) -> set[str]:
    """Hashes of the projects an earlier run screened (errors are tried again)."""
    if not results.exists():
        return set()
    done = set()
    with results.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short when a run was interrupted
            if "error" not in record and "input_hash" in record:
                done.add(record["input_hash"])
    return done


def _read(source: str, manifest: Manifest, crs, encoding, overrides) -> tuple[Projects, list[str]]:
    """Read one input; a file that cannot be read becomes one error and no projects."""
    try:
        projects = read_projects(
            source, manifest.working_crs, crs=crs, encoding=encoding, overrides=overrides,
            line_widths=manifest.line_widths,
        )  # fmt: skip
    except ThreelinesError as exc:
        return Projects(source=source, attrs=[], geometry=np.empty(0, dtype=object), area_m2=np.empty(0)), [str(exc)]
    return projects, list(projects.problems)


def _spatial_order(projects: Projects, positions: list[int]) -> list[int]:
    """Positions along a Hilbert curve, so that each chunk covers a small area and reads few features."""
    if len(positions) < 2:
        return positions
    from geopandas import GeoSeries

    keys = GeoSeries(shapely.centroid(projects.geometry[positions])).hilbert_distance()
    return [positions[i] for i in np.argsort(keys.to_numpy(), kind="stable")]


_WORKER: dict[str, Any] = {}


def _init_worker(manifest: Manifest, rules: RuleSet, cache_dir: Path | None) -> None:
    # Each process reads every layer whole once (on its first chunk) and keeps it for the others.
    _WORKER.update(manifest=manifest, rules=rules, layers={}, cache_dir=cache_dir)


def _screen_chunk(projects: Projects) -> list[dict[str, Any]]:
    """Screen one chunk (in a worker or in this process) into JSON-ready records."""
    from threelines.engine import screen_checked

    out = []
    outcomes = screen_checked(projects, _WORKER["manifest"], _WORKER["rules"], _WORKER["layers"], _WORKER["cache_dir"])
    for project, outcome in zip(projects.attrs, outcomes, strict=True):
        if isinstance(outcome, str):
            out.append({"project": {"id": project["id"], "name": project["name"]}, "error": outcome})
        else:
            out.append(outcome.to_dict())
    return out


def _screen_chunks(chunks: list[Projects], manifest: Manifest, rules: RuleSet, jobs: int, cache_dir: Path | None):
    """Chunk results in order, from worker processes or from this one."""
    if jobs <= 1 or len(chunks) <= 1:
        _init_worker(manifest, rules, cache_dir)
        yield from map(_screen_chunk, chunks)
        return
    initargs = (manifest, rules, cache_dir)
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=initargs) as pool:
        yield from pool.map(_screen_chunk, chunks)


def _write(sink, record: dict[str, Any]) -> None:
    sink.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")


def _project_id(message: str, source: str) -> str:
    found = re.search(r"project '([^']*)'", message)
    return found.group(1) if found else source


def _write_summaries(out: Path, result: BatchResult) -> None:
    """Rebuild the summary tables from every line of results.jsonl (this run's and earlier ones)."""
    rows = {}
    with (out / RESULTS).open(encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            row = summary_row(record)
            rows[(row[2], row[0])] = row  # a later line (a retry, a re-screen) replaces an earlier one
    write_summaries(rows.values(), out / SUMMARY_CSV, out / SUMMARY_XLSX)
    result.verdicts = Counter(row[3] for row in rows.values() if row[3])
    result.errors = sum(1 for row in rows.values() if row[8])


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
