"""A plain GeoJSON footprint read without GDAL gives the very projects and messages GDAL's reading gives."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import shapely

from geojson_docs import CGCS2000, SQUARE, collection, feature
from threelines.errors import FootprintError
from threelines.input import sources
from threelines.input.footprint import read_projects
from threelines.input.geojson import read_plain_geojson

BOWTIE = [[116.0, 28.0], [116.01, 28.01], [116.01, 28.0], [116.0, 28.01], [116.0, 28.0]]
LINE = {"type": "LineString", "coordinates": [[116.0, 28.0], [116.02, 28.01]]}
POINT = {"type": "Point", "coordinates": [116.0, 28.0]}


def polygon(ring=SQUARE, dx=0.0):
    return {"type": "Polygon", "coordinates": [[[x + dx, y] for x, y in ring]]}


#: Documents the plain reader takes: each must come out as GDAL's reading of it.
PLAIN = {
    "attributes of every kind": collection(
        feature(polygon(), {"id": 1, "name": "物流园", "industry": "G5920", "width": 2, "emit_so2": 1.5, "x": [1]}),
        feature(polygon(dx=0.1), {"id": None, "name": " ", "industry": "C2511", "width": 2.5, "flag": True}),
        feature(polygon(dx=0.2), {"id": 3, "emit_nox": None, "day": "2024-05-01", "obj": {"k": "v"}}),
    ),
    "declared CGCS2000": collection(feature(polygon(), {"id": "A"}), crs=CGCS2000, name="sites"),
    "declared CRS84": collection(
        feature(polygon(), {"id": "A"}), crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    ),
    "one feature": feature(polygon(), {"id": "solo", "industry": "G5920"}),
    "bare geometry": polygon(),
    "no geometry, a line, a point": collection(
        feature(None, {"id": "nothing"}),
        feature(LINE, {"id": "road", "width": 30}),
        feature(LINE, {"id": "no width"}),
        feature(POINT, {"id": "well", "radius": 50}),
    ),
    "an invalid polygon repaired, a bad code, a bad number": collection(
        feature(polygon(BOWTIE), {"id": "bowtie"}),
        feature(polygon(dx=0.1), {"id": "code", "industry": "Z9999"}),
        feature(polygon(dx=0.2), {"id": "neg", "emit_so2": -1}),
    ),
    "one feature far off": collection(*(feature(polygon(dx=0.01 * i)) for i in range(5)), feature(polygon(dx=80.0))),
    "metres read as degrees": collection(
        feature({"type": "Polygon", "coordinates": [[[x * 1e5, y * 1e5] for x, y in SQUARE]]})
    ),
    "no properties member": collection({"type": "Feature", "properties": None, "geometry": polygon()}),
}

#: Documents GDAL's reader must read, as the plain one could answer otherwise.
UNPLAIN = {
    "a date for an id": collection(feature(polygon(), {"id": "2024-05-01"})),
    "a boolean attribute": collection(feature(polygon(), {"id": "A", "fuel": True})),
    "a nested attribute": collection(feature(polygon(), {"id": "A", "name": {"zh": "园"}})),
    "text and numbers in one attribute": collection(
        feature(polygon(), {"id": "A"}), feature(polygon(dx=0.1), {"id": 2})
    ),
    "a feature id member": collection(feature(polygon(), {"name": "A"}, id=7)),
    "names differing in case": collection(feature(polygon(), {"id": "A", "ID": "B"})),
    "a geometry property": collection(feature(polygon(), {"id": "A", "geometry": "x"})),
    "a foreign member": collection(feature(polygon(), {"id": "A"}), extra=1),
    "an unclosed ring": collection(feature({"type": "Polygon", "coordinates": [SQUARE[:-1]]})),
    "3D vertices": collection(feature({"type": "Polygon", "coordinates": [[[x, y, 5.0] for x, y in SQUARE]]})),
    "a geometry collection": collection(feature({"type": "GeometryCollection", "geometries": [POINT]})),
    "a crs by link": collection(feature(polygon()), crs={"type": "link", "properties": {"href": "x"}}),
    "no features": collection(),
    "a huge whole number": collection(feature(polygon(), {"id": 2**60})),
}


def gdal_projects(path, working_crs, monkeypatch, **options):
    """The projects (or the refusal) as GDAL's reading of the file gives them."""
    with monkeypatch.context() as patch:
        patch.setattr(sources, "_plain_geojson", lambda data: None)
        return outcome(path, working_crs, **options)


def outcome(path, working_crs, **options):
    try:
        return read_projects(path, working_crs, **options)
    except FootprintError as exc:
        return str(exc)


def assert_same(plain, gdal):
    """Field by field: attributes, footprints, areas, problems and where they are from, CRS, keys."""
    if isinstance(gdal, str):
        assert plain == gdal
        return
    assert (plain.source, plain.attrs, plain.keys) == (gdal.source, gdal.attrs, gdal.keys)
    assert [type(v) for a in plain.attrs for v in a.values()] == [type(v) for a in gdal.attrs for v in a.values()]
    assert shapely.to_wkb(plain.geometry).tolist() == shapely.to_wkb(gdal.geometry).tolist()
    assert plain.area_m2.tobytes() == gdal.area_m2.tobytes()
    assert np.array_equal(plain.plane_area_m2, gdal.plane_area_m2, equal_nan=True)
    assert plain.problems == gdal.problems
    assert [(p.file, p.layer, p.feature) for p in plain.problems] == [
        (p.file, p.layer, p.feature) for p in gdal.problems
    ]
    assert plain.crs == gdal.crs
    assert plain.crs.name == gdal.crs.name


def read_both(path, working_crs, monkeypatch, caplog, **options):
    caplog.set_level(logging.INFO)
    caplog.clear()
    plain = outcome(path, working_crs, **options)
    said = caplog.text
    caplog.clear()
    gdal = gdal_projects(path, working_crs, monkeypatch, **options)
    assert said == caplog.text  # the same warnings, word for word
    return plain, gdal


@pytest.mark.parametrize("number", range(1, 14))
def test_the_sample_projects_read_as_gdal_reads_them(sample_dir, manifest, monkeypatch, caplog, number):
    path = sample_dir / "projects" / f"P{number:02d}.geojson"
    assert read_plain_geojson(path.read_bytes()) is not None
    assert_same(*read_both(path, manifest.working_crs, monkeypatch, caplog))


@pytest.mark.parametrize("name", list(PLAIN))
def test_plain_documents_read_as_gdal_reads_them(tmp_path, manifest, monkeypatch, caplog, name):
    path = tmp_path / "site.geojson"
    path.write_bytes(json.dumps(PLAIN[name], ensure_ascii=False).encode())
    assert read_plain_geojson(path.read_bytes()) is not None
    assert_same(*read_both(path, manifest.working_crs, monkeypatch, caplog))


@pytest.mark.parametrize(
    "options",
    [
        {"crs": "gcj02"},
        {"crs": "4490"},
        {"overrides": {"industry": "C2511", "id": "given"}},
        {"line_widths": {"*": 12}},
    ],
)
def test_options_act_alike_on_both_readings(tmp_path, manifest, monkeypatch, caplog, options):
    path = tmp_path / "site.json"
    path.write_bytes(json.dumps(PLAIN["no geometry, a line, a point"]).encode())
    assert_same(*read_both(path, manifest.working_crs, monkeypatch, caplog, **options))


@pytest.mark.parametrize("name", list(UNPLAIN))
def test_anything_else_is_left_to_gdal(name):
    data = json.dumps(UNPLAIN[name]).encode()
    assert read_plain_geojson(data) is None


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(PLAIN["one feature"]).encode("utf-8-sig"),  # a byte-order mark
        json.dumps(PLAIN["attributes of every kind"], ensure_ascii=False).encode("gbk"),
        b'{"type": "FeatureCollection", "features": [',
    ],
    ids=["bom", "gbk", "broken"],
)
def test_bytes_that_are_not_plain_utf8_json_are_left_to_gdal(data):
    assert read_plain_geojson(data) is None


def test_geojson_on_stdin_reads_as_the_file(tmp_path, manifest, monkeypatch, caplog, sample_dir):
    import io
    import sys

    data = (sample_dir / "projects" / "P02.geojson").read_bytes()
    results = []
    for plain in (lambda d: read_plain_geojson(d), lambda d: None):
        monkeypatch.setattr(sources, "_plain_geojson", plain)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        results.append(read_projects("-", manifest.working_crs))
    assert results[0].source == results[1].source == "<stdin>"
    assert_same(*results)
