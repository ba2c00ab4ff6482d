"""The one-sheet workbook writer of the batch summary: what spreadsheet readers get back from it."""

from __future__ import annotations

import logging
import zipfile

import openpyxl
import pandas as pd

from threelines.batch import xlsx
from threelines.batch.xlsx import SheetWriter, column_letters


def test_column_letters():
    assert [column_letters(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA",
    ]  # fmt: skip


def test_cells_come_back_as_written(tmp_path):
    path = tmp_path / "s.xlsx"
    rows = [
        ("=1+1", "名称 <b>&amp;</b>", 7, 2.5, True, None, "", " padded ", "tab\there", "cr\rlf\nnul\x00end"),
        ("@SUM(A1)", None, 0, -1e-7, False, "x", None, None, None, None),
    ]
    with SheetWriter(path, [f"c{i}" for i in range(10)]) as sheet:
        for row in rows:
            sheet.write(row)
    book = openpyxl.load_workbook(path)
    ws = book.active
    assert ws.title == "Sheet1"
    assert (ws.max_row, ws.max_column) == (3, 10)
    assert [c.value for c in ws[1]] == [f"c{i}" for i in range(10)]
    assert all(c.font.b and c.border.left.style == "thin" and c.alignment.horizontal == "center" for c in ws[1])
    first = [ws.cell(row=2, column=c) for c in range(1, 11)]
    assert [c.value for c in first[:5]] == ["=1+1", "名称 <b>&amp;</b>", 7, 2.5, 1]
    assert [c.data_type for c in first[:5]] == ["s", "s", "n", "n", "n"]  # a formula-like text stays text
    assert (first[5].value, first[6].value) == (None, None)  # None and "" leave the cell empty
    assert first[7].value == " padded "
    assert first[8].value == "tab\there"
    # Control characters other than tab and newline are written as Excel writes them.
    assert first[9].value == "cr_x000D_lf\nnul_x0000_end"
    assert (ws.cell(row=3, column=1).value, ws.cell(row=3, column=4).value) == ("@SUM(A1)", -1e-7)
    frame = pd.read_excel(path, keep_default_na=False)
    assert frame.shape == (2, 10)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert b'<dimension ref="A1:J3"/>' in zf.read("xl/worksheets/sheet1.xml")


def test_rows_past_excels_limit_are_left_out_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(xlsx, "EXCEL_MAX_ROWS", 3)
    path = tmp_path / "s.xlsx"
    with caplog.at_level(logging.WARNING, logger="threelines.batch.xlsx"), SheetWriter(path, ["n"]) as sheet:
        for n in range(5):
            sheet.write((n,))
    assert [c.value for c in openpyxl.load_workbook(path).active["A"]] == ["n", 0, 1]
    assert "the last 3 rows are left out, past Excel's limit of 3 rows" in caplog.text


def test_an_empty_sheet_has_its_header_only(tmp_path):
    path = tmp_path / "s.xlsx"
    with SheetWriter(path, ["a", "b"]):
        pass
    assert [[c.value for c in row] for row in openpyxl.load_workbook(path).active.iter_rows()] == [["a", "b"]]
