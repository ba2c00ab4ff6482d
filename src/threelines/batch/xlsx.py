"""A one-sheet XLSX workbook written row by row, straight into its zip file.

An XLSX file is a zip of XML parts (ECMA-376, Office Open XML). A summary
needs one sheet of strings and numbers under a bold header, so the parts are
written here directly: the fixed ones as constants, the sheet as rows of
inline strings (``t="inlineStr"``, no shared-string table to keep in memory)
compressed as they come (:mod:`threelines.batch.zipparts`). Text is XML-escaped, and the control characters
XML cannot hold are written as ``_xHHHH_``, as Excel itself writes them.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from threelines.batch.zipparts import StreamedMember, deflated, write_zip

log = logging.getLogger(__name__)

#: The rows a sheet can hold (Excel's limit, header included); the rest are left out, with a warning.
EXCEL_MAX_ROWS = 1_048_576

#: Rows gathered before they are compressed (a batch's chunk, so that few are left for the end).
_FLUSH_ROWS = 500

#: The zlib level of every part (3: the sheet's XML shrinks 13-fold, at twice the speed of the default).
_LEVEL = 3

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_PARTS = {
    "[Content_Types].xml": (
        f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        f'{_HEAD}<Relationships xmlns="{_PACKAGE_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC_RELS}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_RELS}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'{_HEAD}<Relationships xmlns="{_PACKAGE_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_DOC_RELS}/styles" Target="styles.xml"/>'
        "</Relationships>"
    ),
    # Style 0 is the default; style 1 is the header's: bold, a thin border all round, centred.
    "xl/styles.xml": (
        f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
        '<border><left style="thin"><color auto="1"/></left><right style="thin"><color auto="1"/></right>'
        '<top style="thin"><color auto="1"/></top><bottom style="thin"><color auto="1"/></bottom><diagonal/></border>'
        "</borders>"
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="1" xfId="0" applyFont="1" applyBorder="1" '
        'applyAlignment="1"><alignment horizontal="center"/></xf></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    ),
}

#: XML's three special characters, and the control characters XML 1.0 cannot hold (all but tab and
#: newline; a CR would be read back as a newline), as Excel escapes them.
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;"} | {chr(c): f"_x{c:04X}_" for c in range(0x20) if chr(c) not in "\t\n"}
)


def column_letters(index: int) -> str:
    """The letters of a 0-based column: 0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class SheetWriter:
    """Write a workbook of one sheet, ``Sheet1``: a bold header row, then :meth:`write` row after row.

    Use as a context manager; the file is complete when it exits.

    Parameters
    ----------
    path : Path
        The ``.xlsx`` file to write (replaced if it exists).
    header : sequence of str
        The column names.
    """

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._path = Path(path)
        self._letters = [column_letters(i) for i in range(len(header))]
        # The sheet starts with its dimension (the last row), which readers use to size the rows they return:
        # the rows are compressed as they come (StreamedMember), and the sheet's start is added at the end.
        self._sheet = StreamedMember(_LEVEL)
        try:
            self._file = self._path.open("wb")  # (closed in __exit__)
        except BaseException:
            self._sheet.__exit__()
            raise
        self._buffer: list[str] = []
        self._rows = self._dropped = 0
        self._row(header, ' s="1"')

    def __enter__(self) -> SheetWriter:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self._flush()
                last = f"{self._letters[-1] if self._letters else 'A'}{self._rows}"
                head = f'{_HEAD}<worksheet xmlns="{_MAIN}"><dimension ref="A1:{last}"/><sheetData>'.encode()
                sheet = self._sheet.member("xl/worksheets/sheet1.xml", head, b"</sheetData></worksheet>")
                parts = [deflated(name, text.encode(), _LEVEL) for name, text in _PARTS.items()]
                write_zip(self._file, [sheet, *parts])
                if self._dropped:
                    log.warning("%s: the last %d rows are left out, past Excel's limit of %d rows",
                                self._path, self._dropped, EXCEL_MAX_ROWS)  # fmt: skip
        finally:
            try:
                self._sheet.__exit__()
            finally:
                self._file.close()

    def write(self, row: Sequence[Any]) -> None:
        """Add a row: strings stay strings (never formulas), numbers numbers; None and "" leave the cell empty."""
        self.write_rows([row])

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add rows, as :meth:`write` adds one, a column at a time (most columns hold one type of value)."""
        room = EXCEL_MAX_ROWS - self._rows
        if len(rows) > room:
            self._dropped += len(rows) - room
            rows = rows[:room]
        if not rows:
            return
        width = len(self._letters)
        if any(len(row) != width for row in rows):  # cells past the header are left out, missing ones are empty
            rows = [(*row[:width], *[None] * (width - len(row))) for row in rows]
        numbers = range(self._rows + 1, self._rows + 1 + len(rows))
        columns = [
            _column(letter, values, numbers)
            for letter, values in zip(self._letters, zip(*rows, strict=True), strict=True)
        ]
        cells = zip(*columns, strict=True) if columns else [()] * len(rows)
        self._buffer.extend(f'<row r="{r}">{"".join(row)}</row>' for r, row in zip(numbers, cells, strict=True))
        self._rows += len(rows)
        if len(self._buffer) >= _FLUSH_ROWS:
            self._flush()

    def _row(self, row: Sequence[Any], style: str) -> None:
        self._rows += 1
        r = self._rows
        cells = "".join(_cell(f"{letter}{r}", value, style) for letter, value in zip(self._letters, row, strict=False))
        self._buffer.append(f'<row r="{r}">{cells}</row>')

    def _flush(self) -> None:
        self._sheet.write("".join(self._buffer).encode("utf-8", errors="replace"))
        self._buffer.clear()


#: The characters :data:`_ESCAPES` changes: a text without them is written as it is.
_SPECIAL = re.compile("[" + re.escape("".join(map(chr, _ESCAPES))) + "]")


def _cell(ref: str, value: Any, style: str = "") -> str:
    """One cell's XML: a number as a number, anything else as text; empty for None and ""."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float) and math.isfinite(value):
        return f'<c r="{ref}"{style}><v>{int(value) if isinstance(value, bool) else value!r}</v></c>'
    text = str(value).translate(_ESCAPES)
    return f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _column(letter: str, values: tuple, numbers: range) -> list[str]:
    """The cells of one column of rows (numbered ``numbers``), as :func:`_cell` writes them one by one."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:  # text: escaped only where it needs to be
        if _SPECIAL.search("".join(filter(None, values))):
            values = tuple(v.translate(_ESCAPES) if v else v for v in values)
        return [
            f'<c r="{letter}{r}" t="inlineStr"><is><t xml:space="preserve">{v}</t></is></c>' if v else ""
            for r, v in zip(numbers, values, strict=True)
        ]
    if kinds <= {int, type(None)}:  # whole numbers (not booleans)
        return [
            f'<c r="{letter}{r}"><v>{v}</v></c>' if v is not None else "" for r, v in zip(numbers, values, strict=True)
        ]
    return [_cell(f"{letter}{r}", v) for r, v in zip(numbers, values, strict=True)]
