"""The batch summary tables: one row per project, as CSV and as XLSX, written row by row.

Both tables are streamed, so writing them costs no memory per project: the
CSV through the ``csv`` module, the workbook by :mod:`threelines.batch.xlsx`,
which writes the one sheet's XML straight into the zip (a general workbook
library spent more time on a 10,000-row summary than the screening's parent
process on everything else).
"""

from __future__ import annotations

import csv
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threelines.batch.xlsx import SheetWriter

if TYPE_CHECKING:
    from threelines.engine.verdict import FiredRow, Trigger

#: Summary columns, in order. ``source``, ``layer`` and ``feature`` (0-based) say where the project came from.
SUMMARY_COLUMNS = (
    "id", "name", "source", "layer", "feature", "verdict", "reject", "conditional", "unresolved", "rules", "error",
)  # fmt: skip

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP's CSV-injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def summary_row(record: dict[str, Any], tally: tuple[int, int, int, str] | None = None) -> tuple:
    """One project's summary row (in :data:`SUMMARY_COLUMNS` order) from its results record.

    ``tally`` is the verdict's ``(reject, conditional, unresolved, rules)``
    figures (see :func:`tally_of`), required for a record whose lists are
    JSON text already (see :func:`~threelines.engine.chunk_records.batch_results`),
    which this cannot read.
    """
    project = record["project"]
    if tally is None:
        tally = tally_of(record.get("triggers", []), len(record.get("unresolved", [])))
    rejects, conditionals, unresolved, rules = tally
    return (
        project.get("id"),
        project.get("name"),
        record.get("source"),
        record.get("layer"),
        record.get("feature"),
        record.get("verdict", ""),
        rejects,
        conditionals,
        unresolved,
        rules,
        record.get("error", ""),
    )


def tally_of(
    triggers: Sequence[Trigger] | Sequence[FiredRow] | Sequence[dict[str, Any]], unresolved: int
) -> tuple[int, int, int, str]:
    """The summary's figures of some triggers (or their records) and a count of unresolved rules.

    Those are the reject and conditional triggers, the unresolved rules, and
    the rules that fired, each named once, in order, joined by commas.
    """
    if triggers and isinstance(triggers[0], dict):
        rules, outcomes = [t["rule"] for t in triggers], [t["outcome"] for t in triggers]
    else:
        rules, outcomes = [t.rule for t in triggers], [t.outcome for t in triggers]
    return outcomes.count("reject"), outcomes.count("conditional"), unresolved, ", ".join(dict.fromkeys(rules))


def write_summaries(
    rows: Iterable[tuple], csv_path: Path, xlsx_path: Path, seen: Callable[[list[tuple]], None] | None = None
) -> None:
    """Write the rows to a CSV file (UTF-8 with a BOM, so Excel reads the Chinese) and a workbook.

    Parameters
    ----------
    rows : iterable of tuple
        Rows in :data:`SUMMARY_COLUMNS` order; None is an empty cell.
    csv_path, xlsx_path : Path
        Where to write them.
    seen : callable, optional
        Called with each batch of rows before it is written (a counter, say).
    """
    rows = iter(rows)
    write_batches(iter(lambda: list(islice(rows, _BATCH_ROWS)), []), csv_path, xlsx_path, seen)


def write_batches(
    batches: Iterable[list[tuple]], csv_path: Path, xlsx_path: Path, seen: Callable[[list[tuple]], None] | None = None
) -> None:
    """As :func:`write_summaries`, the rows given a batch at a time (each table written a column at a time)."""
    with SheetWriter(xlsx_path, SUMMARY_COLUMNS) as sheet, csv_path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("\ufeff")  # the BOM (as utf-8-sig writes it, whose encoder runs in Python for every row)
        writer = csv.writer(fh, lineterminator="\r\n")  # RFC 4180; a CR inside a cell is quoted too
        writer.writerow(SUMMARY_COLUMNS)
        for batch in filter(None, batches):
            if seen is not None:
                seen(batch)
            writer.writerows(csv_rows(batch))
            sheet.write_rows(batch)


#: Rows written together.
_BATCH_ROWS = 2_000


def partial(path: Path) -> Path:
    """Where a :class:`SummaryStream` writes the table ``path`` until the run ends."""
    return path.with_name(f".{path.name}.tmp")


class SummaryStream:
    """The summary tables written while the batch runs, in a thread, from the rows as they come.

    Rows go to temporary files beside ``csv_path`` and ``xlsx_path``, which
    :meth:`finish` renames into place; :meth:`discard` drops them (when rows
    were replaced along the way, and the tables must be written again from
    the run index). Nothing is left to write at the end of a run, and the
    thread works while the parent process waits for its workers.

    Parameters
    ----------
    csv_path, xlsx_path : Path
        The tables' final places.
    seen : callable, optional
        Called with each batch of rows before it is written (a counter, say).
    """

    def __init__(self, csv_path: Path, xlsx_path: Path, seen: Callable[[list[tuple]], None] | None = None) -> None:
        self.paths = [(partial(Path(path)), Path(path)) for path in (csv_path, xlsx_path)]
        self._queue: queue.SimpleQueue[list[tuple] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        (csv_temporary, _), (xlsx_temporary, _) = self.paths
        self._thread = threading.Thread(
            target=self._write,
            # Each batch as it comes (a chunk's rows): none is left to write when the run ends.
            args=(iter(self._queue.get, None), csv_temporary, xlsx_temporary, seen),
            name="threelines-summary",
            daemon=True,  # never keeps a failing run from ending
        )
        self._thread.start()

    def __enter__(self) -> SummaryStream:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and self._thread.is_alive():
            self.discard()

    def write(self, rows: list[tuple]) -> None:
        """Queue rows to be written (raising the error that stopped the writing, if one did)."""
        if self._error is not None:
            raise self._error
        self._queue.put(rows)

    def finish(self) -> None:
        """Write the last rows, and put the tables in their places."""
        self._end()
        for temporary, path in self.paths:
            os.replace(temporary, path)

    def discard(self) -> None:
        """Stop, and remove what was written."""
        try:
            self._end()
        finally:
            for temporary, _ in self.paths:
                temporary.unlink(missing_ok=True)

    def _end(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _write(self, batches: Iterator[list[tuple]], csv_temporary: Path, xlsx_temporary: Path, seen) -> None:
        try:
            write_batches(batches, csv_temporary, xlsx_temporary, seen)
        except BaseException as exc:  # handed to the parent's next write, or to its end
            self._error = exc


def csv_rows(rows: list[tuple]) -> list[tuple] | list[list]:
    """Rows as :func:`csv_cell` makes each cell; most batches of rows hold no text that starts like a formula."""
    if len({len(row) for row in rows}) == 1 and not any(map(_formula_like, zip(*rows, strict=True))):
        return rows
    return [[csv_cell(value) for value in row] for row in rows]


#: A line break followed by each of :data:`FORMULA_STARTS`.
_FORMULA_AFTER_BREAK = tuple(f"\n{start}" for start in FORMULA_STARTS)


def _formula_like(column: tuple) -> bool:
    """Whether a column may hold text that starts like a formula (checked on the column's texts joined)."""
    kinds = {*map(type, column)}
    if not any(issubclass(kind, str) for kind in kinds):
        return False
    if kinds <= {str, type(None)}:
        # Every text follows a line break here; a break inside a text may make a false alarm, never a miss.
        joined = "\n" + "\n".join(filter(None, column))
        return any(start in joined for start in _FORMULA_AFTER_BREAK)
    return any(isinstance(value, str) and value.startswith(FORMULA_STARTS) for value in column)


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet cannot run: text starting like a formula gets a leading ``'``.

    Ids and names come from the inputs; ``=HYPERLINK(...)`` or ``=cmd|...``
    written raw would be run by whoever opens ``summary.csv`` in a spreadsheet.
    """
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
