"""A request's GeoJSON read without a data frame gives the projects a GeoJSON file read by ``screen`` gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from threelines.input.attributes import plain_cells, plain_column
from threelines.input.footprint import read_projects
from threelines.serve.problems import ServiceError
from threelines.serve.uploads import geojson_projects


def _collection(sample_projects, crs: int = 4326) -> dict:
    """The sample's sites as a FeatureCollection with awkward properties: missing, blank, mixed numbers, nested."""
    frame = sample_projects.to_crs(crs).head(4)
    extra = [
        {"width": 12, "radius": None, "emit_so2": 3, "fuel": "gas", "Name": "  "},
        {"width": 7.5, "emit_so2": 4, "fuel": " ", "water_source": "自来水"},
        {"radius": 40, "emit_so2": 5, "geometry": "a property of that name"},
        {"width": 3, "emit_nox": 2.25},
    ]
    features = []
    for (_, row), more in zip(frame.iterrows(), extra, strict=True):
        props = {"id": row["id"], "industry": row["industry"], **more}
        features.append(
            {"type": "Feature", "properties": props, "geometry": json.loads(shapely.to_geojson(row.geometry))}
        )
    return {"type": "FeatureCollection", "features": features}


@pytest.mark.parametrize(
    "values",
    [
        [1, None, 3],
        [1, 2.5],
        [1, 2],
        [True, None],
        [1, True],
        ["a", 2, None],
        [" ", 2],
        [None, None],
        [2.0, None],
    ],
)
def test_plain_cells_match_a_table_column(values):
    pd = pytest.importorskip("pandas")
    column = pd.DataFrame([{"v": v} for v in values])["v"]
    got, want = plain_cells(values), plain_column(column)
    assert got == want
    assert [type(v) for v in got] == [type(v) for v in want]


def test_request_body_reads_as_the_same_file(sample_projects, manifest, tmp_path):
    doc = _collection(sample_projects)
    path = tmp_path / "request body"
    path.write_text(json.dumps(doc), encoding="utf-8")
    body = json.dumps(doc).encode()
    got = geojson_projects(body, "request body", manifest.working_crs, line_widths=manifest.line_widths)
    want = read_projects(path, manifest.working_crs, line_widths=manifest.line_widths)
    assert got.attrs == want.attrs
    assert shapely.equals_exact(got.geometry, want.geometry, tolerance=0).all()
    np.testing.assert_array_equal(got.area_m2, want.area_m2)
    assert got.crs == want.crs


def test_projected_body_keeps_plane_areas(sample_projects, manifest):
    doc = _collection(sample_projects, crs=4527)
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4527"}}
    got = geojson_projects(json.dumps(doc).encode(), "request body", manifest.working_crs, line_widths={})
    drawn = sample_projects.to_crs(4527).head(4).geometry.to_numpy()[[key[2] for key in got.keys]]
    plain = np.array([a["kind"] == "area" and a["radius"] is None for a in got.attrs])
    assert plain.any()
    np.testing.assert_array_equal(got.plane_area_m2[plain], shapely.area(drawn[plain]))
    assert np.isfinite(got.plane_area_m2).all()


def test_web_offset_body_is_shifted_back(sample_projects, manifest):
    from threelines.input.crs import wgs84_to_gcj02

    doc = _collection(sample_projects)
    plain = geojson_projects(json.dumps(doc).encode(), "request body", manifest.working_crs, line_widths={})
    for feature in doc["features"]:
        geom = shapely.transform(shapely.from_geojson(json.dumps(feature["geometry"])), wgs84_to_gcj02)
        feature["geometry"] = json.loads(shapely.to_geojson(geom))
    shifted = geojson_projects(json.dumps(doc).encode(), "request body", manifest.working_crs, crs="gcj02")
    assert shapely.hausdorff_distance(shifted.geometry, plain.geometry).max() < 0.01


def test_nested_property_is_refused_for_its_project(sample_projects, manifest):
    doc = _collection(sample_projects)
    before = geojson_projects(json.dumps(doc).encode(), "request body", manifest.working_crs, line_widths={})
    doc["features"][0]["properties"]["industry"] = ["C2511", "C2614"]
    got = geojson_projects(json.dumps(doc).encode(), "request body", manifest.working_crs, line_widths={})
    assert len(got) == len(before) - 1
    assert "project 'P01': industry ['C2511', 'C2614'] is not a code" in str(got.problems[0])


def test_empty_collection_is_refused(manifest):
    with pytest.raises(ServiceError, match="has no features"):
        geojson_projects(b'{"type": "FeatureCollection", "features": []}', "request body", manifest.working_crs)
