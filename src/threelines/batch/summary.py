"""The batch summary tables: one row per project, as CSV and as XLSX, written row by row.

Both tables are streamed: the CSV through the ``csv`` module, the workbook
through XlsxWriter in constant-memory mode (each row goes to disk as it is
written), so writing them costs little time and no memory per project.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Summary columns, in order. ``source``, ``layer`` and ``feature`` (0-based) say where the project came from.
SUMMARY_COLUMNS = (
    "id", "name", "source", "layer", "feature", "verdict", "reject", "conditional", "unresolved", "rules", "error",
)  # fmt: skip

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP's CSV-injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def summary_row(record: dict[str, Any]) -> tuple:
    """One project's summary row (in :data:`SUMMARY_COLUMNS` order) from its results record."""
    triggers = record.get("triggers", [])
    outcomes = Counter(t["outcome"] for t in triggers)
    return (
        record["project"].get("id"),
        record["project"].get("name"),
        record.get("source"),
        record.get("layer"),
        record.get("feature"),
        record.get("verdict", ""),
        outcomes["reject"],
        outcomes["conditional"],
        len(record.get("unresolved", [])),
        ", ".join(dict.fromkeys(t["rule"] for t in triggers)),
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
    import xlsxwriter

    # constant_memory: rows are flushed to disk as written, so a large batch needs no more memory.
    book = xlsxwriter.Workbook(str(xlsx_path), {"constant_memory": True})
    try:
        sheet = book.add_worksheet("Sheet1")
        sheet.write_row(0, 0, SUMMARY_COLUMNS, book.add_format({"bold": True, "border": 1, "align": "center"}))
        with csv_path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\r\n")  # RFC 4180; a CR inside a cell is quoted too
            writer.writerow(SUMMARY_COLUMNS)
            for r, row in enumerate(rows, start=1):
                writer.writerow([csv_cell(value) for value in row])
                for c, value in enumerate(row):
                    if value is None or value == "":
                        continue
                    if isinstance(value, str):  # a string stays a string: never a formula or a link
                        sheet.write_string(r, c, value)
                    else:
                        sheet.write_number(r, c, value)
    finally:
        book.close()


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet cannot run: text starting like a formula gets a leading ``'``.

    Ids and names come from the inputs; ``=HYPERLINK(...)`` or ``=cmd|...``
    written raw would be run by whoever opens ``summary.csv`` in a spreadsheet.
    """
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
