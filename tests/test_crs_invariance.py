"""Results must not depend on the CRS the footprint came in; areas match an independent computation."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import shapely
from geopandas import GeoSeries
from pyproj import Geod, Transformer

from threelines import screen
from threelines.errors import CRSError
from threelines.input.crs import fitted_albers, gcj02_to_wgs84, parse_crs, to_crs, wgs84_to_gcj02

CRSS = ["EPSG:4490", "EPSG:4527", "EPSG:4548", "EPSG:3857", "EPSG:4326"]


@pytest.fixture(scope="module")
def reference(sample_dir):
    return {v.project["id"]: v for v in screen(sample_dir / "projects.gpkg").verdicts}


@pytest.mark.parametrize("crs", CRSS)
@pytest.mark.parametrize("pid", ["P02", "P03", "P04", "P06", "P11"])
def test_same_verdict_and_areas_in_any_crs(write_project, reference, crs, pid):
    path = write_project(pid, crs=crs, name=f"{pid}.gpkg")
    (verdict,) = screen(path).verdicts
    expected = reference[pid]
    assert verdict.verdict == expected.verdict
    assert [t.rule for t in verdict.triggers] == [t.rule for t in expected.triggers]
    assert verdict.project["area_m2"] == pytest.approx(expected.project["area_m2"], rel=1e-3)
    for got, want in zip(verdict.triggers, expected.triggers, strict=True):
        assert got.feature_id == want.feature_id
        assert (got.overlap_m2 or 0) == pytest.approx(want.overlap_m2 or 0, rel=1e-3, abs=0.5)
        assert (got.distance_m or 0) == pytest.approx(want.distance_m or 0, rel=1e-3, abs=0.5)


def test_overlap_area_matches_geodesic_computation(sample_dir, reference):
    """Intersect in lon/lat with shapely and measure on the ellipsoid with pyproj.Geod."""
    project = pyogrio.read_dataframe(sample_dir / "projects" / "P02.geojson")
    redline = pyogrio.read_dataframe(sample_dir / "layers" / "redline.gpkg", where="id = 'HX360121010'")
    piece = shapely.intersection(project.geometry.iloc[0], redline.geometry.iloc[0])
    geod = Geod(ellps="GRS80")
    area, _ = geod.geometry_area_perimeter(piece)
    footprint, _ = geod.geometry_area_perimeter(project.geometry.iloc[0])
    trigger = reference["P02"].triggers[0]
    assert trigger.overlap_m2 == pytest.approx(abs(area), rel=1e-3)
    assert reference["P02"].project["area_m2"] == pytest.approx(abs(footprint), rel=1e-4)


def test_distance_matches_geodesic_computation(sample_dir, reference):
    project = pyogrio.read_dataframe(sample_dir / "projects" / "P04.geojson").to_crs("EPSG:4548")
    redline = pyogrio.read_dataframe(sample_dir / "layers" / "redline.gpkg", where="id = 'HX360121003'").to_crs(
        "EPSG:4548"
    )
    near = shapely.shortest_line(project.geometry.iloc[0], redline.geometry.iloc[0])
    ends = GeoSeries([shapely.Point(c) for c in near.coords], crs="EPSG:4548").to_crs(4490)
    _, _, metres = Geod(ellps="GRS80").inv(ends.iloc[0].x, ends.iloc[0].y, ends.iloc[1].x, ends.iloc[1].y)
    assert reference["P04"].triggers[0].distance_m == pytest.approx(metres, rel=2e-3)


def test_gcj02_matches_the_published_reference_pair():
    # WGS84 (116.397428, 39.90923) is GCJ-02 (116.403672, 39.910634) in every implementation.
    assert wgs84_to_gcj02(np.array([[116.397428, 39.90923]])) == pytest.approx(
        np.array([[116.403672, 39.910634]]), abs=1e-6
    )


def test_published_reference_pairs():
    # wandergis/coordtransform's test values for (116.404, 39.915), which every port reproduces
    from threelines.input.crs import bd09_to_gcj02, gcj02_to_bd09

    point = np.array([[116.404, 39.915]])
    assert wgs84_to_gcj02(point) == pytest.approx(np.array([[116.41024449916938, 39.91640428150164]]), abs=1e-9)
    assert gcj02_to_bd09(point) == pytest.approx(np.array([[116.41036949371029, 39.92133699351021]]), abs=1e-9)
    # their inverses are one-step approximations; ours iterate, and agree within a few centimetres
    geod = Geod(ellps="GRS80")
    for ours, theirs in [
        (gcj02_to_wgs84(point)[0], (116.39775550083061, 39.91359571849836)),
        (bd09_to_gcj02(point)[0], (116.39762729119315, 39.90865673957631)),
    ]:
        assert geod.inv(*ours, *theirs)[2] < 0.1


def test_gcj02_inverse_round_trips_to_a_millimetre():
    rng = np.random.default_rng(1)
    wgs = np.column_stack([rng.uniform(113.5, 118.5, 200), rng.uniform(24.5, 30.1, 200)])
    back = gcj02_to_wgs84(wgs84_to_gcj02(wgs))
    assert np.abs(back - wgs).max() < 1e-8  # about 1 mm
    shift = wgs84_to_gcj02(wgs) - wgs
    assert (np.abs(shift) > 1e-3).all()  # the offset itself is hundreds of metres


def test_fitted_albers_keeps_scale_within_a_tenth_of_a_percent():
    crs = fitted_albers((113.5, 24.5, 118.5, 30.1))  # Jiangxi
    to = Transformer.from_crs(4490, crs, always_xy=True)
    geod = Geod(ellps="GRS80")
    for lon, lat in [(113.6, 24.6), (118.4, 30.0), (116.0, 27.3), (114.0, 29.9)]:
        for dlon, dlat in [(0.01, 0), (0, 0.01)]:
            x1, y1 = to.transform(lon, lat)
            x2, y2 = to.transform(lon + dlon, lat + dlat)
            metres = geod.inv(lon, lat, lon + dlon, lat + dlat)[2]
            assert np.hypot(x2 - x1, y2 - y1) / metres == pytest.approx(1.0, abs=1e-3)


def test_parse_crs_errors():
    with pytest.raises(CRSError, match="not a CRS pyproj understands"):
        parse_crs("EPSG:99999")
    with pytest.raises(CRSError, match="gcj02 is a web-map offset, not a CRS; it is accepted for footprints"):
        parse_crs("gcj02")
    assert parse_crs("4527").to_epsg() == 4527


def test_to_crs_gives_geopandas_coordinates(manifest):
    """The kept-transformer reprojection is geopandas' to the last bit, for 2D, 3D, missing and empty geometries."""
    from pyproj import CRS

    geoms = np.array(
        [
            shapely.box(115.9, 28.5, 115.91, 28.51),
            shapely.Point(116.0, 28.6, 35.0),
            None,
            shapely.Polygon(),
            shapely.LineString([(116.1, 28.7, 1.0), (116.2, 28.8, 2.0)]),
        ],
        dtype=object,
    )
    source = CRS.from_epsg(4490)
    want = np.asarray(GeoSeries(geoms, crs=source).to_crs(manifest.working_crs).array, dtype=object)
    got = to_crs(geoms, source, manifest.working_crs)
    assert got[2] is None
    assert shapely.equals_exact(got, want, tolerance=0).sum() == 4
    assert (shapely.has_z(got) == shapely.has_z(want)).all()
    assert to_crs(geoms, source, CRS.from_epsg(4490)) is geoms
