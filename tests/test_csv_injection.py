"""summary.csv cannot run formulas from ids and names; summary.xlsx keeps them as plain strings."""

from __future__ import annotations

import csv

import geopandas as gpd
import pandas as pd
import pyogrio

HOSTILE = ['=HYPERLINK("http://x","y")', "=cmd|'/c calc'!A1", "+1+1", "@SUM(1+1)", "-2+3", "\tTAB", "\rCR"]


def test_formula_cells_are_neutralised_in_csv_and_strings_in_xlsx(run, tmp_path, sample_projects):
    import openpyxl

    row = sample_projects[sample_projects.id == "P01"]
    frame = gpd.GeoDataFrame(pd.concat([row] * len(HOSTILE), ignore_index=True), crs=sample_projects.crs)
    frame["id"] = HOSTILE
    frame["name"] = list(reversed(HOSTILE))
    path = tmp_path / "hostile.geojson"
    pyogrio.write_dataframe(frame, path)
    out = tmp_path / "out"
    assert run("batch", path, "-o", out).exit_code == 0
    with (out / "summary.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == ["'" + v for v in HOSTILE]
    assert [r["name"] for r in rows] == ["'" + v for v in reversed(HOSTILE)]
    assert [r["verdict"] for r in rows] == ["pass"] * len(HOSTILE)  # plain text is left alone
    assert [r["feature"] for r in rows] == [str(i) for i in range(len(HOSTILE))]  # numbers too
    sheet = openpyxl.load_workbook(out / "summary.xlsx").active
    ids = [sheet.cell(row=r, column=1) for r in range(2, len(HOSTILE) + 2)]
    names = [sheet.cell(row=r, column=2) for r in range(2, len(HOSTILE) + 2)]
    assert [c.data_type for c in ids + names] == ["s"] * (2 * len(HOSTILE))
    # OOXML stores a CR as _x000D_ (Excel shows the CR; openpyxl leaves the escape as it is)
    assert [c.value.replace("_x000D_", "\r") for c in ids] == HOSTILE
    assert [c.value.replace("_x000D_", "\r") for c in names] == list(reversed(HOSTILE))
    assert sheet.cell(row=2, column=5).data_type == "n"  # the feature column stays a number


def test_a_batch_of_rows_is_neutralised_whatever_kind_of_text_it_holds():
    from threelines.batch.summary import csv_rows

    class Text(str):  # text from a library that subclasses str (numpy's str_ does)
        pass

    plain = [("P1", "ok", 1), ("P2", "fine", 2)]
    assert csv_rows(plain) == plain  # nothing formula-like: the rows as they are
    for formula in ("=HYPERLINK(1)", Text("=cmd|x"), Text("-1+2")):
        rows = [("P1", "ok", 1), ("P2", formula, None)]
        assert csv_rows(rows)[1][1] == "'" + formula
        mixed = [("P1", 3, 1), ("P2", formula, None)]  # a column of numbers and text
        assert csv_rows(mixed)[1][1] == "'" + formula
