"""The batch summary tables: one row per project, as CSV and as XLSX, written row by row.

Both tables are streamed, so writing them costs no memory per project: the
CSV through the ``csv`` module, the workbook by :mod:`threelines.batch.xlsx`,
which writes the one sheet's XML straight into the zip (a general workbook
library spent more time on a 10,000-row summary than the screening's parent
process on everything else).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from threelines.batch.xlsx import SheetWriter

#: Summary columns, in order. ``source``, ``layer`` and ``feature`` (0-based) say where the project came from.
SUMMARY_COLUMNS = (
    "id", "name", "source", "layer", "feature", "verdict", "reject", "conditional", "unresolved", "rules", "error",
)  # fmt: skip

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP's CSV-injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def summary_row(record: dict[str, Any]) -> tuple:
    """One project's summary row (in :data:`SUMMARY_COLUMNS` order) from its results record."""
    triggers = record.get("triggers", [])
    outcomes = [t["outcome"] for t in triggers]
    return (
        record["project"].get("id"),
        record["project"].get("name"),
        record.get("source"),
        record.get("layer"),
        record.get("feature"),
        record.get("verdict", ""),
        outcomes.count("reject"),
        outcomes.count("conditional"),
        len(record.get("unresolved", [])),
        ", ".join(dict.fromkeys([t["rule"] for t in triggers])),
        record.get("error", ""),
    )


def write_summaries(rows: Iterable[tuple], csv_path: Path, xlsx_path: Path) -> None:
    """Write the rows to a CSV file (UTF-8 with a BOM, so Excel reads the Chinese) and a workbook.

    Parameters
    ----------
    rows : iterable of tuple
        Rows in :data:`SUMMARY_COLUMNS` order; None is an empty cell.
    csv_path, xlsx_path : Path
        Where to write them.
    """
    with SheetWriter(xlsx_path, SUMMARY_COLUMNS) as sheet, csv_path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")  # RFC 4180; a CR inside a cell is quoted too
        writer.writerow(SUMMARY_COLUMNS)
        for row in rows:
            writer.writerow([csv_cell(value) for value in row])
            sheet.write(row)


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet cannot run: text starting like a formula gets a leading ``'``.

    Ids and names come from the inputs; ``=HYPERLINK(...)`` or ``=cmd|...``
    written raw would be run by whoever opens ``summary.csv`` in a spreadsheet.
    """
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
