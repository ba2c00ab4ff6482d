"""Every input a consultant receives screens the same footprint to the same verdict and areas."""

from __future__ import annotations

import io
import json
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from threelines import screen

# P02: the wetland resort that overlaps a forest red line. Its reference figures:
AREA_M2 = 157475.0
OVERLAP_M2 = 64693.0


@pytest.fixture(scope="module")
def p02(sample_projects):
    return sample_projects[sample_projects.id == "P02"][["id", "name", "industry", "geometry"]].reset_index(drop=True)


def check(result, n=1):
    assert result.problems == []
    assert len(result.verdicts) == n
    for verdict in result.verdicts:
        assert verdict.verdict == "reject"
        assert verdict.project["area_m2"] == pytest.approx(AREA_M2, rel=1e-3)
        assert verdict.triggers[0].rule == "redline-overlap"
        assert verdict.triggers[0].overlap_m2 == pytest.approx(OVERLAP_M2, rel=1e-3)


def corners(p02, crs):
    """P02's corner points in a CRS, as (x, y) rows without the closing point."""
    return np.asarray(p02.to_crs(crs).geometry.iloc[0].exterior.coords)[:-1]


def test_zipped_shapefile(tmp_path, p02):
    pyogrio.write_dataframe(p02, tmp_path / "site.shp")
    with zipfile.ZipFile(tmp_path / "site.zip", "w") as archive:
        for ending in ("shp", "shx", "dbf", "prj", "cpg"):
            archive.write(tmp_path / f"site.{ending}", f"site/site.{ending}")
    check(screen(tmp_path / "site.zip"))


def test_zip_of_several_files_is_several_projects(tmp_path, p02):
    pyogrio.write_dataframe(p02, tmp_path / "a.geojson")
    pyogrio.write_dataframe(p02.assign(id="B"), tmp_path / "b.gpkg")
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.write(tmp_path / "a.geojson", "a.geojson")
        archive.write(tmp_path / "b.gpkg", "b.gpkg")
        archive.writestr("readme.txt", "not a footprint")
    result = screen(tmp_path / "two.zip")
    check(result, n=2)
    assert [v.project["id"] for v in result.verdicts] == ["P02", "B"]


def test_folder_with_a_bad_file_goes_on(tmp_path, p02):
    folder = tmp_path / "inbox"
    folder.mkdir()
    pyogrio.write_dataframe(p02, folder / "good.geojson")
    (folder / "broken.geojson").write_text("{not json", encoding="utf-8")
    result = screen(folder)
    assert len(result.verdicts) == 1
    assert result.problems[0].startswith(f"{folder / 'broken.geojson'}: cannot read it as a vector file")


def test_geojson_on_stdin(run, p02, monkeypatch):
    text = p02.to_json()
    from click.testing import CliRunner

    from threelines.cli.main import cli

    result = CliRunner().invoke(cli, ["screen", "-", "--format", "json"], input=text)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["triggers"][0]["overlap_m2"] == pytest.approx(OVERLAP_M2, rel=1e-3)


@pytest.mark.parametrize("suffix", ["kml", "kmz"])
def test_kml_and_kmz(tmp_path, p02, suffix):
    pyogrio.write_dataframe(p02.rename(columns={"name": "Name"}).to_crs(4326), tmp_path / "site.kml", driver="KML")
    path = tmp_path / f"site.{suffix}"
    if suffix == "kmz":
        with zipfile.ZipFile(path, "w") as archive:
            archive.write(tmp_path / "site.kml", "doc.kml")
    result = screen(path, overrides={"industry": "N7869"})
    check(result)
    assert result.verdicts[0].project["name"] == "湿地生态旅游度假村项目"


def test_dxf_closed_polyline_is_a_polygon(tmp_path, p02, caplog):
    ring = shapely.LineString(p02.to_crs(4527).geometry.iloc[0].exterior.coords)
    road = shapely.LineString([(39430000, 3180000), (39431000, 3180000)])
    with pytest.warns(UserWarning, match="'crs' was not provided"):  # a drawing has no CRS
        pyogrio.write_dataframe(gpd.GeoDataFrame(geometry=[ring, road]), tmp_path / "site.dxf", driver="DXF")
    with caplog.at_level("WARNING"):
        result = screen(tmp_path / "site.dxf", overrides={"width": 20})
    assert "zone prefix 39" in caplog.text  # a drawing has no CRS: the eastings say which zone
    first, second = result.verdicts
    assert first.project["kind"] == "area"
    assert first.triggers[0].overlap_m2 == pytest.approx(OVERLAP_M2, rel=1e-3)
    assert second.project["kind"] == "linear"
    assert second.project["area_m2"] == pytest.approx(1000 * 20, rel=2e-3)


@pytest.mark.parametrize("fmt", ["fgb", "parquet"])
def test_flatgeobuf_and_geoparquet(tmp_path, p02, fmt):
    path = tmp_path / f"site.{fmt}"
    if fmt == "parquet":
        p02.to_crs(4527).to_parquet(path)
    else:
        pyogrio.write_dataframe(p02.to_crs(4527), path, driver="FlatGeobuf")
    check(screen(path))


def test_wkt_on_the_command_line(run, p02):
    wkt = p02.to_crs(4548).geometry.iloc[0].wkt
    result = run("screen", "--wkt", wkt, "--crs", "4548", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["triggers"][0]["overlap_m2"] == pytest.approx(OVERLAP_M2, rel=1e-3)
    assert run("screen", "--wkt", "POLYGON ((1 2").exit_code == 2
    both = run("screen", "x.shp", "--wkt", wkt)
    assert both.exit_code == 2
    assert "give a FOOTPRINT file or --wkt, not both and not neither" in both.stderr


def test_point_with_a_radius(run):
    result = run("screen", "--wkt", "POINT (116.0 28.4)", "--crs", "4490", "--radius", "100", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["project"]["kind"] == "point"
    assert doc["project"]["area_m2"] == pytest.approx(np.pi * 100**2, rel=2e-3)


# --- corner-coordinate tables ---


def test_survey_table_with_zone_prefix(tmp_path, p02):
    xy = corners(p02, 4527)
    table = pd.DataFrame({"点号": range(1, len(xy) + 1), "X": xy[:, 1], "Y": xy[:, 0]})  # X = northing
    table.to_csv(tmp_path / "corners.csv", index=False)
    check(screen(tmp_path / "corners.csv", overrides={"industry": "N7869"}))


def test_survey_table_without_zone_needs_crs(run, tmp_path, p02):
    xy = corners(p02, 4548)
    pd.DataFrame({"X坐标": xy[:, 1], "Y坐标": xy[:, 0]}).to_csv(tmp_path / "c.csv", index=False)
    refused = run("screen", tmp_path / "c.csv")
    assert refused.exit_code == 2
    assert "carry no zone number; say which 3-degree Gauss-Kruger zone with --crs 4534-4554" in refused.stderr
    check(screen(tmp_path / "c.csv", crs=4548, overrides={"industry": "N7869"}))


def test_lonlat_table_in_degrees_minutes_seconds_closed_and_gbk(tmp_path, p02):
    lonlat = corners(p02, 4490)
    lonlat = np.vstack([lonlat, lonlat[:1]])  # closed

    def dms(value):
        d = int(value)
        m = int((value - d) * 60)
        s = (value - d - m / 60) * 3600
        return f"{d}°{m}′{s:.4f}″"

    table = pd.DataFrame({"经度": [dms(v) for v in lonlat[:, 0]], "纬度": [dms(v) for v in lonlat[:, 1]]})
    (tmp_path / "dms.csv").write_bytes(table.to_csv(index=False).encode("gb18030"))
    check(screen(tmp_path / "dms.csv", overrides={"industry": "N7869"}))


def test_xlsx_table_with_parcels_and_a_hole(tmp_path, p02):
    xy = corners(p02, 4527)
    hole = np.array(shapely.box(39_410_000, 3_170_000, 39_410_100, 3_170_100).exterior.coords)[:-1]
    outer = np.array(shapely.box(39_409_000, 3_169_000, 39_411_000, 3_171_000).exterior.coords)[:-1]
    rows = [("A", 1, x, y) for x, y in xy]
    rows += [("B", 1, x, y) for x, y in outer] + [("B", 2, x, y) for x, y in hole]
    table = pd.DataFrame(rows, columns=["地块", "圈号", "Y", "X"])
    table["X"], table["Y"] = table.pop("X"), table.pop("Y")
    table.to_excel(tmp_path / "parcels.xlsx", index=False)
    result = screen(tmp_path / "parcels.xlsx", overrides={"industry": "N7869"})
    a, b = result.verdicts
    assert a.project["id"] == "A"
    assert a.triggers[0].overlap_m2 == pytest.approx(OVERLAP_M2, rel=1e-3)
    assert b.project["area_m2"] == pytest.approx(2000 * 2000 - 100 * 100, rel=2e-3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("X,Y\n3150000,39400000\n3150100,abc\n3150200,39400200\n", "c.csv:3: Y 'abc' is not a number"),
        ("A,B\n1,2\n", "c.csv: no coordinate columns; give X and Y"),
        ("X,Y\n", "c.csv: the table has no rows"),
    ],
)
def test_bad_tables(run, tmp_path, text, message):
    (tmp_path / "c.csv").write_text(text, encoding="utf-8")
    result = run("screen", tmp_path / "c.csv")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {tmp_path}/{message}")
    assert len(result.stderr.splitlines()) == 1


# --- bad files ---


@pytest.mark.parametrize(("ending", "role"), [("shx", "index"), ("dbf", "attribute table")])
def test_missing_shapefile_sidecars(run, tmp_path, p02, ending, role):
    pyogrio.write_dataframe(p02, tmp_path / "site.shp")
    (tmp_path / f"site.{ending}").unlink()
    result = run("screen", tmp_path / "site.shp")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {tmp_path / 'site.shp'}: the shapefile's {role} site.{ending} is missing; "
        "copy every file of the shapefile (.shp, .shx, .dbf, .prj, .cpg) together\n"
    )


def test_missing_prj_is_a_missing_crs(run, tmp_path, p02):
    pyogrio.write_dataframe(p02.to_crs(4490), tmp_path / "site.shp")
    (tmp_path / "site.prj").unlink()
    result = run("screen", tmp_path / "site.shp")
    assert result.exit_code == 2
    assert "has no CRS (a shapefile needs its .prj); say which it is with --crs" in result.stderr


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("site.shp", b"\x00\x00\x27\x0a" + b"\x00" * 50),
        ("site.gpkg", b"SQLite format 3\x00" + b"\x01" * 80),
        ("site.kml", b"<kml><broken"),
    ],
    ids=["truncated shapefile", "garbage geopackage", "broken kml"],
)
def test_truncated_and_garbage_files(run, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    if name.endswith(".shp"):
        (tmp_path / "site.shx").write_bytes(b"\x00" * 10)
        (tmp_path / "site.dbf").write_bytes(b"\x00" * 10)
    result = run("screen", path)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    reason = "site.shp (the shapefile's geometry) is truncated" if name.endswith(".shp") else "cannot read it"
    assert result.stderr.startswith(f"Error: {path}: {reason}")


def test_content_decides_not_the_extension(run, tmp_path, p02):
    (tmp_path / "site.shp").write_text(p02.to_json(), encoding="utf-8")  # GeoJSON saved as .shp
    (tmp_path / "site.shx").write_bytes(b"")
    (tmp_path / "site.dbf").write_bytes(b"")
    result = run("screen", tmp_path / "site.shp", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["triggers"][0]["overlap_m2"] == pytest.approx(OVERLAP_M2, rel=1e-3)


def test_empty_stdin(tmp_path):
    from click.testing import CliRunner

    from threelines.cli.main import cli

    result = CliRunner().invoke(cli, ["screen", "-"], input="")
    assert result.exit_code == 2
    assert result.stderr == "Error: <stdin>: nothing was given; pipe a GeoJSON document in, or name a file\n"


def test_multipoint_gcj_paste(run):
    # A site copied from a web map (GCJ-02) as WKT
    result = run("screen", "--wkt", "POINT (116.2 28.7)", "--crs", "gcj02", "--radius", "50", "--format", "json")
    assert result.exit_code == 0
    assert io.StringIO(result.stdout).read().startswith("{")


# --- real-world awkwardness (zips, drawings, tables as people make them) ---


def test_zipped_gbk_shapefile_without_cpg(tmp_path, p02):
    frame = p02.rename(columns={"industry": "行业代码"})
    pyogrio.write_dataframe(frame, tmp_path / "site.shp", encoding="GBK")
    (tmp_path / "site.cpg").unlink()
    with zipfile.ZipFile(tmp_path / "gbk.zip", "w") as archive:
        for ending in ("shp", "shx", "dbf", "prj"):
            archive.write(tmp_path / f"site.{ending}", f"SITE/site.{ending}")
        archive.writestr("__MACOSX/SITE/._site.shp", b"\x00\x05\x16\x07")
        archive.writestr("说明.txt", "附件为项目红线")
    result = screen(tmp_path / "gbk.zip")
    check(result)
    assert result.verdicts[0].project["name"] == "湿地生态旅游度假村项目"


def test_zipped_shapefile_missing_its_dbf(run, tmp_path, p02):
    pyogrio.write_dataframe(p02, tmp_path / "site.shp")
    with zipfile.ZipFile(tmp_path / "site.zip", "w") as archive:
        for ending in ("shp", "shx", "prj"):
            archive.write(tmp_path / f"site.{ending}", f"site.{ending}")
    result = run("screen", tmp_path / "site.zip")
    assert result.exit_code == 2
    assert f"{tmp_path / 'site.zip'}!site.shp: the shapefile's attribute table site.dbf is missing" in result.stderr


def test_tables_and_geoparquet_inside_a_zip(tmp_path, p02):
    xy = corners(p02, 4527)
    pd.DataFrame({"X": xy[:, 1], "Y": xy[:, 0]}).to_csv(tmp_path / "corners.csv", index=False)
    p02.to_crs(4490).to_parquet(tmp_path / "site.parquet")
    with zipfile.ZipFile(tmp_path / "mixed.zip", "w") as archive:
        archive.write(tmp_path / "corners.csv", "a/corners.csv")
        archive.write(tmp_path / "site.parquet", "b/site.parquet")
    check(screen(tmp_path / "mixed.zip", overrides={"industry": "N7869"}), n=2)


R12_DXF = """0\nSECTION\n2\nENTITIES\n{entities}0\nENDSEC\n0\nEOF\n"""


def dxf_polyline(xy, closed=True):
    vertices = "".join(f"0\nVERTEX\n8\n0\n10\n{x:.3f}\n20\n{y:.3f}\n" for x, y in xy)
    return f"0\nPOLYLINE\n8\n0\n66\n1\n70\n{1 if closed else 0}\n{vertices}0\nSEQEND\n8\n0\n"


def test_dxf_labels_are_not_projects(tmp_path, p02):
    xy = corners(p02, 4527)
    labels = "".join(
        f"0\nTEXT\n8\nLABELS\n10\n{x:.3f}\n20\n{y:.3f}\n40\n2.5\n1\nJ{i}\n" for i, (x, y) in enumerate(xy, 1)
    )
    (tmp_path / "site.dxf").write_text(R12_DXF.format(entities=dxf_polyline(xy) + labels), encoding="ascii")
    check(screen(tmp_path / "site.dxf", overrides={"industry": "N7869"}))


def test_kml_with_folders_on_stdin(p02):
    from click.testing import CliRunner

    from threelines.cli.main import cli

    ring = " ".join(f"{x},{y}" for x, y in np.asarray(p02.to_crs(4326).geometry.iloc[0].exterior.coords))
    placemark = "<Placemark><name>{}</name><Polygon><outerBoundaryIs><LinearRing><coordinates>" + ring
    placemark += "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
    kml = (
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<Folder><name>A</name>{placemark.format('一期')}</Folder><Folder><name>B</name>{placemark.format('二期')}</Folder>"
        "</Document></kml>"
    )
    result = CliRunner().invoke(cli, ["screen", "-", "--industry", "N7869", "--format", "json"], input=kml)
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["project"]["name"] for d in docs] == ["一期", "二期"]
    assert all(d["verdict"] == "reject" for d in docs)


def test_empty_kml(run, tmp_path):
    (tmp_path / "empty.kml").write_text('<kml xmlns="http://www.opengis.net/kml/2.2"><Document></Document></kml>')
    result = run("screen", tmp_path / "empty.kml")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1


def test_encoding_option_does_not_break_utf8_formats(tmp_path, p02):
    pyogrio.write_dataframe(p02, tmp_path / "site.geojson")
    check(screen(tmp_path / "site.geojson", encoding="GBK"))


def test_table_as_people_make_them(tmp_path, p02):
    """A title row, semicolons, parcel cells left blank below the first, thousands separators."""
    xy = corners(p02, 4527)
    lines = ["南昌县某项目拐点坐标表;;;", "地块;点号;X(m);Y（米）"]
    for i, (x, y) in enumerate(xy):
        lines.append(f"{'A' if i == 0 else ''};{i + 1};{y:,.3f};{x:.3f}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = screen(tmp_path / "t.csv", overrides={"industry": "N7869"})
    check(result)
    assert result.verdicts[0].project["id"] == "A"


def test_hemisphere_letters_and_bad_dms(run, tmp_path, p02):
    lonlat = corners(p02, 4490)
    rows = [f"{lon:.7f}E,{lat:.7f}N" for lon, lat in lonlat]
    (tmp_path / "ok.csv").write_text("经度,纬度\n" + "\n".join(rows) + "\n", encoding="utf-8")
    check(screen(tmp_path / "ok.csv", overrides={"industry": "N7869"}))
    (tmp_path / "bad.csv").write_text("经度,纬度\n116°75′,28.5\n116.1,28.5\n116.1,28.6\n", encoding="utf-8")
    result = run("screen", tmp_path / "bad.csv")
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"Error: {tmp_path / 'bad.csv'}:2: 经度 '116°75′' is not a number (nor degrees-minutes-seconds)\n"
    )


def test_ring_one_is_the_outline_whatever_the_row_order(tmp_path):
    outer = np.array(shapely.box(39_409_000, 3_169_000, 39_411_000, 3_171_000).exterior.coords)[:-1]
    hole = np.array(shapely.box(39_410_000, 3_170_000, 39_410_100, 3_170_100).exterior.coords)[:-1]
    rows = [(2, y, x) for x, y in hole] + [(1, y, x) for x, y in outer]
    pd.DataFrame(rows, columns=["圈号", "X", "Y"]).to_csv(tmp_path / "h.csv", index=False)
    (verdict,) = screen(tmp_path / "h.csv").verdicts
    assert verdict.project["area_m2"] == pytest.approx(2000 * 2000 - 100 * 100, rel=2e-3)


def test_one_bad_parcel_is_reported_and_the_others_screened(run, tmp_path, p02):
    xy = corners(p02, 4527)
    rows = [("A", y, x) for x, y in xy] + [("B", 3_170_000.0, 39_410_000.0), ("B", 3_170_010.0, 39_410_000.0)]
    pd.DataFrame(rows, columns=["地块", "X", "Y"]).to_csv(tmp_path / "p.csv", index=False)
    result = run("screen", tmp_path / "p.csv", "--industry", "N7869", "--format", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["project"]["id"] == "A"
    assert result.stderr.splitlines()[-1] == (
        f"Error: {tmp_path / 'p.csv'}:{len(xy) + 2}: parcel 'B' ring '1' has 2 point(s); a polygon needs at least 3"
    )


def test_eastings_in_two_zones(run, tmp_path):
    rows = "X,Y\n3150000,38600000\n3150100,39400000\n3150200,39400100\n"
    (tmp_path / "z.csv").write_text(rows, encoding="utf-8")
    result = run("screen", tmp_path / "z.csv")
    assert result.exit_code == 2
    assert "the eastings carry zone prefixes 38 and 39; one footprint must be in one zone" in result.stderr
