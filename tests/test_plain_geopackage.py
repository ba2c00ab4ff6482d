"""A plain GeoPackage footprint read without GDAL gives the very projects and messages GDAL's reading gives."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from test_plain_geojson import PLAIN, assert_same, outcome
from test_startup import GDAL_READERS, READ_FOOTPRINT
from threelines.errors import FootprintError
from threelines.input import sources, vector_files
from threelines.input.footprint import read_projects_in_pieces
from threelines.input.geopackage import count_features, read_plain_geopackage

SQUARE = shapely.Polygon([(116.0, 28.0), (116.01, 28.0), (116.01, 28.01), (116.0, 28.01)])


def squares(count: int) -> list:
    return [shapely.affinity.translate(SQUARE, 0.02 * i) for i in range(count)]


def gpkg_of(tmp_path, frame, name="site.gpkg", **options):
    path = tmp_path / name
    pyogrio.write_dataframe(frame, path, driver="GPKG", **options)
    return path


def read_both(path, working_crs, monkeypatch, caplog, text=None, **options):
    """The projects (or the refusal) as read here, and as GDAL's reading gives them; the same log lines."""
    text = str(path) if text is None else text
    caplog.clear()
    plain = outcome(text, working_crs, **options)
    said = caplog.text
    caplog.clear()
    with monkeypatch.context() as patch:
        patch.setattr(sources, "_plain_geopackage", lambda text: None)
        gdal = outcome(text, working_crs, **options)
    assert said == caplog.text
    return plain, gdal


@pytest.mark.parametrize("name", list(PLAIN))
def test_geopackages_read_as_gdal_reads_them(tmp_path, manifest, monkeypatch, caplog, name):
    source = tmp_path / "site.geojson"
    source.write_text(json.dumps(PLAIN[name], ensure_ascii=False), encoding="utf-8")
    frame = pyogrio.read_dataframe(source)
    if not frame.geometry.notna().any() or (frame.geometry.geom_type == "GeometryCollection").any():
        pytest.skip("GDAL writes no such GeoPackage")
    path = gpkg_of(tmp_path, frame)
    # Booleans, dates and JSON in other columns: GDAL reads the file (and the two readings are GDAL's).
    assert (read_plain_geopackage(str(path)) is None) == (name == "attributes of every kind")
    assert_same(*read_both(path, manifest.working_crs, monkeypatch, caplog))


def test_columns_of_every_plain_type(tmp_path, manifest, monkeypatch, caplog):
    frame = gpd.GeoDataFrame(
        {
            "ID": ["a", None, " ", "丁"],  # any case
            "industry": ["C2511", "2511", None, "Z9"],
            "width": pd.array([10, None, 3, 4], dtype="Int64"),  # a gap: reals, as GDAL reads them
            "radius": [1, 2, 3, 4],
            "emit_so2": [1.5, np.nan, -1.0, np.inf],
            "kind": ["area", "AREA", "bad", None],
            "other": [True, False, True, False],  # a column of no attribute: not read
        },
        geometry=squares(4),
        crs="EPSG:4490",
    )
    path = gpkg_of(tmp_path, frame.drop(columns="other"))
    assert read_plain_geopackage(str(path)) is not None
    plain, gdal = read_both(path, manifest.working_crs, monkeypatch, caplog)
    assert plain.problems  # the bad code, kind and numbers, each in its project's message
    assert_same(plain, gdal)


def test_a_layer_named_and_a_projected_crs(tmp_path, manifest, monkeypatch, caplog):
    frame = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=squares(2), crs="EPSG:4490").to_crs("EPSG:4526")
    path = gpkg_of(tmp_path, frame, layer="sites")
    gpkg_of(tmp_path, frame.iloc[:1], layer="other", append=True)
    assert read_plain_geopackage(str(path)) is None  # two layers: GDAL names them in its refusal
    assert read_plain_geopackage(str(path), "sites") is not None
    assert_same(*read_both(path, manifest.working_crs, monkeypatch, caplog, text=f"{path}:sites"))
    assert_same(*read_both(path, manifest.working_crs, monkeypatch, caplog))


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE site ADD COLUMN day DATE",  # a type GDAL reads its own way
        "UPDATE site SET id = X'00' WHERE fid = 1",  # bytes in a text column
        "UPDATE gpkg_geometry_columns SET srs_id = 0",  # no CRS
        "UPDATE gpkg_spatial_ref_sys SET definition = 'LOCAL_CS[\"x\"]' WHERE srs_id = 4490",  # not what EPSG says
        "UPDATE site SET geom = substr(geom, 1, 3) || X'11' || substr(geom, 5)",  # the empty flag
        "CREATE TABLE notes (x TEXT)",  # a table GDAL lists as a layer
        "DELETE FROM site",  # no features: GDAL's refusal
        "UPDATE site SET id = 'a' || char(0) || 'b' WHERE fid = 1",  # text GDAL cuts at the NUL
        "CREATE TABLE gpkg_data_columns (table_name TEXT, column_name TEXT, mime_type TEXT);"
        "INSERT INTO gpkg_data_columns VALUES ('site', 'id', 'application/json')",  # JSON GDAL parses
    ],
)
def test_anything_else_is_left_to_gdal(tmp_path, manifest, monkeypatch, caplog, change):
    frame = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=squares(2), crs="EPSG:4490")
    path = gpkg_of(tmp_path, frame, SPATIAL_INDEX="NO")  # its triggers call functions only GDAL defines
    with sqlite3.connect(path) as db:
        db.executescript(change)
    assert read_plain_geopackage(str(path)) is None


@pytest.mark.parametrize("count", [1, 5, None], ids=["too few", "too many", "none kept"])
def test_the_count_gdal_keeps_is_believed_as_gdal_believes_it(tmp_path, manifest, monkeypatch, count):
    frame = gpd.GeoDataFrame({"id": list("abc")}, geometry=squares(3), crs="EPSG:4490")
    path = gpkg_of(tmp_path, frame, SPATIAL_INDEX="NO")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE gpkg_ogr_contents SET feature_count = ?", (count,))
    assert count_features(str(path)) == (count or 3)

    def pieces():
        try:
            return [(p.attrs, p.keys, p.problems) for p in read_projects_in_pieces(path, manifest.working_crs, piece=2)]
        except FootprintError as exc:
            return str(exc)

    plain = pieces()
    with monkeypatch.context() as patch:
        patch.setattr(vector_files, "_plain_geopackage_file", lambda *args: None)
        assert plain == pieces()


def test_not_a_geopackage_is_left_to_gdal(tmp_path):
    path = tmp_path / "site.gpkg"
    path.write_bytes(b"not a database")
    assert read_plain_geopackage(str(path)) is None
    with sqlite3.connect(tmp_path / "plain.gpkg") as db:
        db.execute("CREATE TABLE t (x)")
    assert read_plain_geopackage(str(tmp_path / "plain.gpkg")) is None


def test_3d_footprints_and_pieces(tmp_path, manifest, monkeypatch, caplog):
    geoms = shapely.force_3d(np.array(squares(5)), 12.0)
    path = gpkg_of(tmp_path, gpd.GeoDataFrame({"id": list("abcde")}, geometry=geoms, crs="EPSG:4490"))
    assert read_plain_geopackage(str(path)) is not None
    assert count_features(str(path)) == 5
    assert_same(*read_both(path, manifest.working_crs, monkeypatch, caplog))
    whole = list(read_projects_in_pieces(path, manifest.working_crs, piece=10))
    pieces = list(read_projects_in_pieces(path, manifest.working_crs, piece=2))
    assert len(whole) == 1
    assert len(pieces) == 3
    assert [a for p in pieces for a in p.attrs] == whole[0].attrs
    assert [k for p in pieces for k in p.keys] == whole[0].keys
    assert (
        shapely.to_wkb(np.concatenate([p.geometry for p in pieces])).tolist()
        == shapely.to_wkb(whole[0].geometry).tolist()
    )


def gdal_pieces(path, working_crs, monkeypatch, piece):
    with monkeypatch.context() as patch:
        patch.setattr(vector_files, "_plain_geopackage_file", lambda *args: None)
        return list(read_projects_in_pieces(path, working_crs, piece=piece))


@pytest.mark.parametrize("odd", [None, 3], ids=["plain", "one piece left to GDAL"])
def test_pieces_read_as_gdal_reads_them(tmp_path, manifest, monkeypatch, caplog, odd):
    frame = gpd.GeoDataFrame(
        {"id": [f"P{i}" for i in range(7)], "emit_so2": [1.0, None, -2.0, 3.0, 4.0, 5.0, 1e12]},
        geometry=[*squares(6), shapely.affinity.translate(SQUARE, 3.0)],  # one further off: the file's extent counts
        crs="EPSG:4490",
    )
    path = gpkg_of(tmp_path, frame, SPATIAL_INDEX="NO")
    if odd is not None:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE site SET id = X'00' WHERE fid = ?", (odd + 1,))
    assert (read_plain_geopackage(str(path), skip=2, limit=2) is None) == (odd is not None)
    assert read_plain_geopackage(str(path), skip=4, limit=2) is not None
    assert vector_files.open_vector_file(path).plain  # its extent declared: no GDAL to open it
    caplog.clear()
    plain = list(read_projects_in_pieces(path, manifest.working_crs, piece=2))
    said = caplog.text
    caplog.clear()
    gdal = gdal_pieces(path, manifest.working_crs, monkeypatch, 2)
    assert said == caplog.text
    assert len(plain) == len(gdal) == 4
    for mine, theirs in zip(plain, gdal, strict=True):
        assert_same(mine, theirs)


def test_a_plain_geopackage_footprint_is_read_without_gdal_or_pandas(tmp_path, sample_dir):
    path = gpkg_of(tmp_path, pyogrio.read_dataframe(sample_dir / "projects" / "P04.geojson"))
    args = [sys.executable, "-c", READ_FOOTPRINT, sample_dir / "layers.yaml", path, *GDAL_READERS]
    for _ in range(2):  # the first run may check the manifest afresh, which opens its layers with GDAL
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
