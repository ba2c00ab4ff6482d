"""``results.jsonl``, the batch's record of every project: read defensively, appended to, compacted.

:func:`~threelines.batch.local.run_batch` opens it (:class:`Results`) before
screening: earlier runs' records go into the run index, so that a re-run skips
what was screened, and lines that are not whole records are set aside in
``results.jsonl.damaged``. Each chunk's lines are appended as the chunk
finishes (its summary rows handed on to the summary tables), and records
replaced meanwhile are dropped from the file at the end.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import orjson

from threelines.batch.index import RunIndex
from threelines.batch.summary import SummaryStream, summary_row
from threelines.collector import collector_held
from threelines.errors import OutputError
from threelines.rawio import write_all

log = logging.getLogger(__name__)

#: The results file in a batch's output folder; its lines that were not whole records, set aside.
RESULTS, DAMAGED = "results.jsonl", "results.jsonl.damaged"


@dataclass(frozen=True, eq=False)
class Records:
    """Records ready to append to ``results.jsonl``: their lines as one text, and each one's summary row.

    A worker hands a chunk's records back in this form: one text is pickled
    and sent as one copy, where a list of lines would be pickled, sent and
    made again line by line (3 kB each). With pickle's protocol 5 the text
    is offered as an out-of-band buffer (:class:`pickle.PickleBuffer`): a
    worker of :mod:`threelines.batch.pool` sends it as it is, without a copy
    into the pickle, and the batch process reads it into memory of its own,
    where ``text`` is then a read-only view of it.
    """

    text: bytes | memoryview
    ends: list[int]  # where each record's line ends in ``text``
    rows: list[tuple]

    @classmethod
    def of(cls, records: Iterable[tuple[bytes, tuple]]) -> Records:
        """The records of ``(line, summary row)`` pairs."""
        lines, rows = [], []
        for line, row in records:
            lines.append(line)
            rows.append(row)
        return cls(b"".join(lines), list(accumulate(map(len, lines))), rows)

    def __reduce_ex__(self, protocol: int):
        text = pickle.PickleBuffer(self.text) if protocol >= 5 else bytes(self.text)
        return type(self), (text, self.ends, self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def lines(self, positions: Iterable[int]) -> list[bytes]:
        """The lines of the records at ``positions``."""
        text = memoryview(self.text)
        return [bytes(text[self.ends[i - 1] if i else 0 : self.ends[i]]) for i in positions]


class Results:
    """``results.jsonl``: read defensively at the start, appended to as chunks finish, compacted at the end.

    A line that is not a whole results record (cut short by a kill or a full
    disk, not UTF-8, not JSON, or JSON of another shape) is moved to
    ``results.jsonl.damaged``, with a warning, and its project is screened
    again. Each record goes into the run index with its line, so that a
    record replaced later (a retried error, a re-screen) is dropped from the
    file at the end.
    """

    def __init__(self, path: Path, index: RunIndex) -> None:
        self.path, self.index = path, index
        self.lines = _earlier(path, index)
        self._fd: int | None = None
        self.summaries: SummaryStream | None = None

    def __enter__(self) -> Results:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            if self.lines and not _ends_with_newline(self.path):
                write_all(self._fd, b"\n")  # a whole last record without its newline
        except OSError as exc:
            raise cannot_write(self.path.parent, exc) from None
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def summarise(self, summaries: SummaryStream) -> int:
        """Hand the summary rows to ``summaries``: the earlier records' now, each record's as it is written.

        Returns how many records were replaced so far (see :meth:`RunIndex.replaced`).
        """
        self.summaries = summaries
        batch: list[tuple] = []
        for row in self.index.rows():
            batch.append(row)
            if len(batch) >= 10_000:  # in batches: memory stays flat however long the file
                summaries.write(batch)
                batch = []
        summaries.write(batch)
        return self.index.replaced()

    def write(self, records: Records) -> None:
        """Append records, index them, and hand their summary rows on."""
        if not records:
            return
        with collector_held():
            try:
                write_all(self._fd, records.text)
                if self.summaries is not None:
                    self.summaries.write(records.rows)
            except OSError as exc:
                raise cannot_write(self.path.parent, exc) from None
            self.index.put(records.rows, self.lines)
        self.lines += len(records)

    def compact(self) -> None:
        """Drop the lines whose records were replaced, rewriting the file atomically."""
        stale = self.index.stale()
        if stale:
            _rewrite(self.path, lambda number, raw: number not in stale)


def cannot_write(folder: Path, exc: OSError) -> OutputError:
    """The error for an output folder that cannot be written (a full disk, most likely); a re-run resumes."""
    return OutputError(
        f"{folder}: cannot write the batch output ({exc.strerror or exc}); free some space or fix the folder, "
        "then run again: the batch resumes where it stopped"
    )


def _earlier(results: Path, index: RunIndex) -> int:
    """Put what earlier runs wrote into the index; set damaged lines aside. Returns the number of records kept.

    The projects screened count as done (errors are tried again); every
    record gets its summary row and line.
    """
    if not results.exists():
        return 0
    kept = damaged = 0
    hashes, rows = [], []
    with results.open("rb") as fh:
        for raw in fh:
            read = _record(raw)
            if read is None:
                damaged += 1
                continue
            record, row = read
            if "error" not in record:
                hashes.append(record["input_hash"])
            rows.append(row)
            if len(rows) >= 10_000:  # in batches: memory stays flat however long the file
                index.mark_done(hashes)
                index.put(rows, kept, earlier=True)
                kept += len(rows)
                hashes, rows = [], []
    index.mark_done(hashes)
    index.put(rows, kept, earlier=True)
    kept += len(rows)
    if damaged:
        _set_aside(results, damaged)
    return kept


def _record(raw: bytes) -> tuple[dict, tuple] | None:
    """A results line's record and summary row, or None for a line that is not a whole record."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:  # cut short, not UTF-8, not JSON
        return None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("project"), dict)
        and isinstance(record.get("source"), str)
        and isinstance(record.get("layer"), str | None)
        and (record.get("feature") is None or type(record.get("feature")) is int)
        and (
            isinstance(record.get("error"), str)
            or (isinstance(record.get("input_hash"), str) and isinstance(record.get("verdict"), str))
        )
    ):
        return None
    try:
        return record, summary_row(record)
    except (KeyError, TypeError, AttributeError, ValueError):  # triggers of another shape
        return None


def _set_aside(results: Path, damaged: int) -> None:
    """Move the lines that are not whole records to ``results.jsonl.damaged``, and say so."""
    aside = results.with_name(DAMAGED)
    try:
        with aside.open("ab") as bad:

            def keep(number: int, raw: bytes) -> bool:
                if _record(raw) is not None:
                    return True
                bad.write(raw if raw.endswith(b"\n") else raw + b"\n")
                return False

            _rewrite(results, keep)
    except OSError as exc:
        raise cannot_write(results.parent, exc) from None
    log.warning(
        "%s: %d line%s cut short or not a results record; moved to %s, and %s screened again",
        results, damaged, "s" * (damaged != 1), aside.name, "their projects are" if damaged != 1 else "its project is",
    )  # fmt: skip


def _rewrite(path: Path, keep) -> None:
    """Rewrite a file with the lines ``keep(number, raw)`` accepts, atomically (a temporary file, then a rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with path.open("rb") as src, temporary.open("wb") as dst:
            for number, raw in enumerate(src):
                if keep(number, raw):
                    dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise cannot_write(path.parent, exc) from None


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
