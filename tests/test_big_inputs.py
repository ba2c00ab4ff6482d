"""Big inputs: the GeoJSON fast path reads files as GDAL does; corner tables built in bulk as parcel by parcel."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely

from geojson_docs import CGCS2000, SQUARE, collection, feature
from threelines.errors import FootprintError
from threelines.input import geojson_coords, sources, vector_files
from threelines.input.corners import read_corners

HOLE = [[116.002, 28.002], [116.004, 28.002], [116.004, 28.004], [116.002, 28.002]]
FAR = [[[116.1, 28.1], [116.11, 28.1], [116.11, 28.11], [116.1, 28.1]]]


POLYGON = {"type": "Polygon", "coordinates": [SQUARE, HOLE]}

DOCUMENTS = {
    "properties of every kind": collection(
        feature(
            POLYGON,
            {
                "id": "A",
                "n": 1,
                "x": 1.5,
                "mixed": 3,
                "flag": True,
                "day": "2024-05-01",
                "list": [1, 2],
                "obj": {"k": "v"},
                "名称": "项目",
                "empty": None,
            },
        ),
        feature(
            POLYGON,
            {
                "id": "B",
                "n": None,
                "x": 2,
                "mixed": "three",
                "flag": False,
                "day": "2024-06-01",
                "list": None,
                "obj": {"k": [1]},
                "名称": None,
                "empty": None,
            },
        ),
        feature(
            POLYGON,
            {
                "id": None,
                "n": 3,
                "x": None,
                "mixed": None,
                "flag": None,
                "day": None,
                "list": ["a"],
                "obj": None,
                "名称": "二",
                "empty": None,
            },
        ),
    ),
    "string and integer feature ids": collection(
        feature(POLYGON, {"a": 1}, id="f1"), feature(POLYGON, {"a": 2}, id=7), feature(POLYGON, {"a": 3})
    ),
    "legacy crs member": collection(feature(POLYGON, {"industry": "C2614"}), crs=CGCS2000),
    "projected crs member": collection(
        feature(
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [39_430_000.5, 3_150_000.25],
                        [39_430_400, 3_150_000],
                        [39_430_400, 3_150_300],
                        [39_430_000.5, 3_150_000.25],
                    ]
                ],
            }
        ),
        crs={"type": "name", "properties": {"name": "EPSG:4527"}},
    ),
    "CRS84 crs member": collection(
        feature(POLYGON), crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    ),
    "multipolygons with holes": collection(
        feature({"type": "MultiPolygon", "coordinates": [[SQUARE, HOLE], FAR]}, {"n": 1}),
        feature({"type": "MultiPolygon", "coordinates": [FAR]}, {"n": 2}),
    ),
    "points, lines and nulls": collection(
        feature({"type": "Point", "coordinates": [116.0, 28.0]}, {"radius": 300}),
        feature({"type": "LineString", "coordinates": [[116.0, 28.0], [116.2, 28.1], [116.3, 28.3]]}, {"width": 30}),
        feature({"type": "MultiLineString", "coordinates": [[[116, 28], [117, 28]], [[116, 29], [117, 29.5]]]}),
        feature({"type": "MultiPoint", "coordinates": [[116, 28], [116.5, 28.5]]}),
        feature(None, {"width": 10}),
        feature(POLYGON, {"radius": None}),
    ),
    "one Feature": feature(POLYGON, {"industry": "G5920", "capacity": 2.5}, id="only"),
    "bare geometry": {"type": "MultiPolygon", "coordinates": [[SQUARE], FAR]},
    "bare geometry with crs": {**POLYGON, "crs": CGCS2000},
    "precision of coordinates": collection(
        feature(
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [116.12345678901234, 28.98765432109876],
                        [1e-7, -2.5e2],
                        [116.1, 28.000000000000004],
                        [116.12345678901234, 28.98765432109876],
                    ]
                ],
            }
        ),
    ),
}


@pytest.fixture(params=["pyarrow", "numpy"])
def vertex_path(request, monkeypatch):
    """Each of the fast path's ways of converting vertices: pyarrow's, and numpy's when pyarrow is not installed."""
    if request.param == "pyarrow":
        pytest.importorskip("pyarrow")
    monkeypatch.setattr(geojson_coords, "_HAVE_PYARROW", request.param == "pyarrow")
    monkeypatch.setattr(geojson_coords, "_ARROW_VERTICES", 0)  # the small documents here too
    return request.param


def gdal_frame(path, monkeypatch):
    """The frame GDAL's own reader gives (the fast path switched off)."""
    monkeypatch.setattr(vector_files, "FAST_GEOJSON_BYTES", float("inf"))
    return vector_files.read_vector(str(path), None, str(path), None)


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_the_fast_path_reads_a_geojson_file_as_gdal_does(tmp_path, monkeypatch, vertex_path, name):
    path = tmp_path / "site.geojson"
    path.write_text(json.dumps(DOCUMENTS[name], ensure_ascii=False), encoding="utf-8")
    fast = vector_files._read_geojson_fast(str(path))
    assert fast is not None
    slow = gdal_frame(path, monkeypatch)
    assert fast.crs == slow.crs
    assert fast.geometry.name == slow.geometry.name
    pd.testing.assert_frame_equal(fast.drop(columns=fast.geometry.name), slow.drop(columns=slow.geometry.name))
    a, b = fast.geometry.values, slow.geometry.values
    assert list(shapely.is_missing(a)) == list(shapely.is_missing(b))
    assert list(shapely.get_type_id(a)) == list(shapely.get_type_id(b))
    assert list(shapely.has_z(a)) == list(shapely.has_z(b))
    assert shapely.equals_exact(a, b, tolerance=0)[~shapely.is_missing(b)].all()
    for mine, theirs in zip(a, b, strict=True):  # the very same vertices, to the last bit
        if theirs is not None:
            assert (
                shapely.get_coordinates(mine, include_z=True).tobytes()
                == shapely.get_coordinates(theirs, include_z=True).tobytes()
            )


UNUSUAL = {
    "geometry collection": collection(
        feature({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [116, 28]}]})
    ),
    "unclosed ring": collection(feature({"type": "Polygon", "coordinates": [SQUARE[:-1]]})),
    "ring of three points": collection(
        feature({"type": "Polygon", "coordinates": [[SQUARE[0], SQUARE[1], SQUARE[0]]]})
    ),
    "empty polygon": collection(feature({"type": "Polygon", "coordinates": []})),
    "3D polygon": collection(feature({"type": "Polygon", "coordinates": [[[*p, 12.5] for p in SQUARE]]})),
    "2D and 3D vertices": collection(
        feature({"type": "LineString", "coordinates": [[116, 28], [117, 28, 5]]}),
    ),
    "a crs on a geometry": collection(feature({**POLYGON, "crs": CGCS2000})),
    "text for a coordinate": collection(feature({"type": "Point", "coordinates": ["east", 28]})),
    "a number as text for a coordinate": collection(feature({"type": "Point", "coordinates": ["116.5", 28]})),
    "true for a coordinate": collection(feature({"type": "Point", "coordinates": [True, 28]})),
    "null for a coordinate": collection(feature({"type": "LineString", "coordinates": [[116, 28], [None, 28]]})),
    "no features": collection(),
    "a list": [POLYGON],
}


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_geojson_is_left_to_gdal(tmp_path, vertex_path, name):
    path = tmp_path / "odd.geojson"
    path.write_text(json.dumps(UNUSUAL[name]), encoding="utf-8")
    assert vector_files._read_geojson_fast(str(path)) is None


VERTICES = {
    "pairs": [[116.0, 28.0], [116.5, 28.25], [-1e-7, 2.5e2]],
    "integers": [[500000, 3000000], [0, 1]],
    "zeros and ones": [[0.0, 1.0], [1, 0]],
    "big and precise": [[116.12345678901234, 28.000000000000004], [1.7976931348623157e308, -5e-324]],
    "3D": [[116.0, 28.0, 5.0]],
    "2D and 3D": [[116.0, 28.0], [116.0, 28.0, 5.0]],
    "one number": [[116.0]],
    "a bare number": [116.0, 28.0],
    "text": [["east", 28.0]],
    "a number as text": [["116.5", 28.0]],
    "null": [[116.0, None]],
    "true": [[True, 28.0]],
    "false": [[116.0, False]],
    "a nested list": [[[116.0, 28.0], [1.0, 2.0]]],
    "an object": [{"x": 116.0, "y": 28.0}],
}


@pytest.mark.parametrize("name", list(VERTICES))
def test_both_vertex_conversions_give_the_same_array_or_refuse_alike(name):
    pytest.importorskip("pyarrow")
    answers = []
    for convert in (geojson_coords._vertices_arrow, geojson_coords._vertices_numpy):
        try:
            answers.append(convert(VERTICES[name]))
        except geojson_coords.NotPlain:
            answers.append(None)
    arrow, plain = answers
    if name in ("pairs", "integers", "zeros and ones", "big and precise"):
        assert arrow is not None
        assert plain is not None
        assert arrow.dtype == plain.dtype == np.float64
        assert arrow.shape == plain.shape == (len(VERTICES[name]), 2)
        assert arrow.tobytes() == plain.tobytes()
        assert plain.tolist() == [[float(v) for v in pair] for pair in VERTICES[name]]
    else:
        assert arrow is None
        assert plain is None


def test_without_pyarrow_the_numpy_conversion_is_used(monkeypatch):
    monkeypatch.setattr(geojson_coords, "_HAVE_PYARROW", False)
    monkeypatch.setattr(geojson_coords, "_vertices_arrow", None)  # would fail if called
    assert geojson_coords._vertices([[116, 28.5]]).tolist() == [[116.0, 28.5]]
    with pytest.raises(geojson_coords.NotPlain):
        geojson_coords._vertices([[116, "28.5"]])


def test_broken_json_is_left_to_gdal(tmp_path):
    path = tmp_path / "cut.geojson"
    path.write_text(json.dumps(collection(feature(POLYGON)))[:-20], encoding="utf-8")
    assert vector_files._read_geojson_fast(str(path)) is None


def test_a_big_geojson_file_goes_the_fast_way_and_its_errors_stay_gdals(tmp_path, monkeypatch):
    path = tmp_path / "site.geojson"
    path.write_text(json.dumps(DOCUMENTS["legacy crs member"]), encoding="utf-8")
    calls = []
    real = vector_files._read_geojson_fast
    monkeypatch.setattr(vector_files, "_read_geojson_fast", lambda text: calls.append(text) or real(text))
    monkeypatch.setattr(vector_files, "FAST_GEOJSON_BYTES", path.stat().st_size)
    source = sources.read_source(str(path))
    assert calls == [str(path)]
    assert source.frame.crs.to_epsg() == 4490
    assert list(source.frame["industry"]) == ["C2614"]

    monkeypatch.setattr(vector_files, "FAST_GEOJSON_BYTES", path.stat().st_size + 1)  # just under: GDAL's reader
    sources.read_source(str(path))
    assert len(calls) == 1

    cut = tmp_path / "cut.geojson"
    cut.write_text(path.read_text()[:-20], encoding="utf-8")
    monkeypatch.setattr(vector_files, "FAST_GEOJSON_BYTES", 0)
    with pytest.raises(FootprintError) as fast:
        sources.read_source(str(cut))
    monkeypatch.setattr(vector_files, "FAST_GEOJSON_BYTES", float("inf"))
    with pytest.raises(FootprintError) as slow:
        sources.read_source(str(cut))
    assert str(fast.value) == str(slow.value)
    assert str(fast.value).startswith(f"{cut}: cannot read it as a vector file (")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # GDAL's own warning
def test_an_unclosed_ring_in_a_big_file_is_still_closed_and_reported(tmp_path, monkeypatch, caplog):
    path = tmp_path / "open.geojson"
    path.write_text(json.dumps(UNUSUAL["unclosed ring"]), encoding="utf-8")
    monkeypatch.setattr(vector_files, "FAST_GEOJSON_BYTES", 0)
    with caplog.at_level("WARNING"):
        frame = sources.read_source(str(path)).frame
    assert shapely.equals_exact(frame.geometry.iloc[0], shapely.Polygon(SQUARE), tolerance=0)
    assert "closed rings that were not closed" in caplog.text


def corner_table(path, with_rings: bool):
    """Parcels closed and not, one with a bad number, one with two points, one whose cells are padded."""
    rows = []
    rng = np.random.default_rng(3)
    for k in range(40):
        x0, y0 = 3_150_000 + k * 500.0, 39_430_000 + k * 500.0
        size = rng.uniform(50, 300)
        pts = [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size)]
        if k % 3 == 0:
            pts.append(pts[0])  # closed tables repeat the first point
        if k == 7:
            pts = pts[:2]
        for i, (x, y) in enumerate(pts):
            cell = "3150x00" if (k == 11 and i == 2) else f"{x:.3f}"
            rows.append([f" P{k} " if k == 5 else f"P{k}", "1", str(i + 1), cell, f"{y:.3f}", f"use{k % 4}"])
    frame = pd.DataFrame(rows, columns=["地块", "圈号", "点号", "X", "Y", "用途"])
    if not with_rings:
        frame = frame.drop(columns="圈号")
    frame.to_csv(path, index=False)
    return path


def test_corner_parcels_built_at_once_match_those_built_one_by_one(tmp_path):
    bulk, bulk_problems = read_corners(corner_table(tmp_path / "plain.csv", with_rings=False), label="t.csv")
    each, each_problems = read_corners(corner_table(tmp_path / "rings.csv", with_rings=True), label="t.csv")
    assert len(bulk) == 38
    assert (
        bulk_problems
        == each_problems
        == [
            "t.csv:33: parcel 'P7' ring '1' has 2 point(s); a polygon needs at least 3",
            "t.csv:50: X '3150x00' is not a number (nor degrees-minutes-seconds)",
        ]
    )
    pd.testing.assert_frame_equal(bulk.drop(columns="geometry"), each.drop(columns="geometry"))
    assert shapely.equals_exact(bulk.geometry.values, each.geometry.values, tolerance=0).all()
    assert "P5" in set(bulk["id"])  # padded cells are stripped
