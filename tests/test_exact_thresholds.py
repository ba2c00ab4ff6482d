"""The last metre at every threshold, against a geodesic oracle that is not the tool's own geometry.

The oracle measures on the GRS80 ellipsoid (CGCS2000's) with ``pyproj.Geod``,
from the red lines as their source draws them: straight in longitude/latitude,
sampled every few centimetres. Footprints are placed at a known geodesic
distance from a red line, 5 cm either side of each threshold of the sample
rules (touching: 0 m; ``redline-buffer``: 500 m), and must get the trigger the
oracle says.
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Geod, Transformer

from threelines.curves import CURVE_TOLERANCE_M, curve_segments, disc, outer_buffer
from threelines.engine.screen import screen
from threelines.input.footprint import projects_from_frame
from threelines.layers.read import read_layer
from threelines.siting.zones import siting

GEOD = Geod(ellps="GRS80")
BUFFER_M = 500.0  # redline-buffer's distance
#: Red lines (and a sample start point outside each) the probes are placed from.
STARTS = {
    "HX360121009": (115.8640, 28.5520),
    "HX360121001": None,
    "HX360121005": None,
}


# -- The oracle ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redlines(sample_dir):
    """Red-line polygons as stored (EPSG:4490), by id."""
    frame = pyogrio.read_dataframe(sample_dir / "layers" / "redline.gpkg")
    assert frame.crs.to_epsg() == 4490
    return dict(zip(frame["id"], frame.geometry, strict=True))


def oracle_distance(lon: float, lat: float, polygon) -> float:
    """Geodesic distance (m) from a point to a lon/lat polygon's boundary drawn straight in lon/lat (0 inside)."""
    if polygon.covers(shapely.Point(lon, lat)):
        return 0.0
    boundary = shapely.boundary(polygon)
    coarse = shapely.get_coordinates(shapely.segmentize(boundary, 1e-4))
    near = _geodesic(lon, lat, coarse).min() + 20.0
    box = shapely.box(lon - near / 9e4, lat - near / 1.1e5, lon + near / 9e4, lat + near / 1.1e5)
    fine = shapely.get_coordinates(shapely.segmentize(shapely.intersection(boundary, box), 2e-7))
    return float(_geodesic(lon, lat, fine).min())


def _oracle_near(lon: float, lat: float, polygons: dict) -> float:
    """The oracle distance to the nearest of several polygons (measured finely only where it can matter)."""
    coarse = {k: _geodesic(lon, lat, shapely.get_coordinates(shapely.segmentize(p.exterior, 1e-4))).min()
              for k, p in polygons.items()}  # fmt: skip
    best = min(coarse.values())
    return min(oracle_distance(lon, lat, polygons[k]) for k, d in coarse.items() if d <= best + 20.0)


def _geodesic(lon, lat, coords) -> np.ndarray:
    n = len(coords)
    return GEOD.inv(np.full(n, lon), np.full(n, lat), coords[:, 0], coords[:, 1])[2]


def nearest_and_away(polygon, start) -> tuple[float, float, float]:
    """The boundary point nearest ``start`` (lon, lat) and the azimuth from it pointing away from the polygon."""
    boundary = shapely.boundary(polygon)
    fine = shapely.get_coordinates(shapely.segmentize(boundary, 2e-6))
    d = _geodesic(*start, fine)
    lon, lat = fine[int(np.argmin(d))]
    azimuth = GEOD.inv(lon, lat, *start)[0]
    return float(lon), float(lat), float(azimuth)


def walk(lon, lat, azimuth, metres) -> tuple[float, float]:
    """The point ``metres`` along the geodesic from (lon, lat) at ``azimuth``."""
    out = GEOD.fwd(lon, lat, azimuth, metres)
    return float(out[0]), float(out[1])


@pytest.fixture(scope="module")
def anchors(redlines):
    """Per red line: a boundary point and the outward azimuth, checked against the oracle 500 m out."""
    out = {}
    for rid, start in STARTS.items():
        polygon = redlines[rid]
        if start is None:  # a point 800 m north of the feature's northernmost vertex
            coords = shapely.get_coordinates(polygon)
            top = coords[int(np.argmax(coords[:, 1]))]
            start = walk(top[0], top[1], 0.0, 800.0)
        lon, lat, azimuth = nearest_and_away(polygon, start)
        probe = walk(lon, lat, azimuth, BUFFER_M)
        assert oracle_distance(*probe, polygon) == pytest.approx(BUFFER_M, abs=0.002)
        out[rid] = (lon, lat, azimuth)
    return out


def _screen(manifest, ruleset, rows, crs="EPSG:4490"):
    frame = gpd.GeoDataFrame(rows, geometry=[r.pop("geometry") for r in rows], crs=crs)
    result = screen(frame, manifest, ruleset)
    assert not result.problems
    return {v.project["id"]: v for v in result.verdicts}


def _rules(verdict) -> set[str]:
    return {t.rule for t in verdict.triggers}


def _square(lon, lat, azimuth, side=10.0):
    """A square whose near edge is centred on (lon, lat) and which extends ``side`` along ``azimuth``."""
    a = walk(lon, lat, azimuth - 90, side / 2)
    b = walk(lon, lat, azimuth + 90, side / 2)
    c = walk(*b, azimuth, side)
    d = walk(*a, azimuth, side)
    return shapely.Polygon([a, b, c, d, a])


# -- Squares, lines and discs at threshold +- 5 cm ---------------------------------------------------


@pytest.mark.parametrize("offset", [-0.05, 0.05])
def test_squares_lines_and_discs_at_the_buffer_threshold(manifest, ruleset, redlines, anchors, offset):
    rows, expected = [], {}
    target = BUFFER_M + offset
    for rid, (lon, lat, azimuth) in anchors.items():
        polygon = redlines[rid]
        square = _square(*walk(lon, lat, azimuth, target), azimuth)
        # A V whose round join, centred half a width beyond the target, reaches the target.
        width = 60.0
        apex = walk(lon, lat, azimuth, target + width / 2)
        v_line = shapely.LineString([walk(*apex, azimuth - 60, 80), apex, walk(*apex, azimuth + 60, 80)])
        centre = walk(lon, lat, azimuth, target + 2000.0)
        rows += [
            {"id": f"{rid}-square", "industry": "G5920", "geometry": square},
            {"id": f"{rid}-line", "industry": "E4812", "kind": "linear", "width": width, "geometry": v_line},
            {"id": f"{rid}-disc", "industry": "G5920", "kind": "point", "radius": 2000.0,
             "geometry": shapely.Point(centre)},
            {"id": f"{rid}-small-disc", "industry": "G5920", "kind": "point", "radius": 30.0,
             "geometry": shapely.Point(walk(lon, lat, azimuth, target + 30.0))},
        ]  # fmt: skip
        # The oracle, from the geometries as drawn: square edge and disc centre.
        edge = shapely.get_coordinates(shapely.segmentize(square, 1e-6))
        assert min(oracle_distance(x, y, polygon) for x, y in edge[:: max(1, len(edge) // 40)]) >= target - 0.002
        assert oracle_distance(*centre, polygon) - 2000.0 == pytest.approx(target, abs=0.002)
        for kind in ("square", "line", "disc", "small-disc"):
            expected[f"{rid}-{kind}"] = offset < 0
    verdicts = _screen(manifest, ruleset, rows)
    near = {pid: [t for t in v.triggers if t.rule == "redline-buffer" and pid.startswith(t.feature_id)]
            for pid, v in verdicts.items()}  # fmt: skip
    assert {pid: bool(found) for pid, found in near.items()} == expected
    for pid, found in near.items():
        if found and pid.endswith("disc"):
            # The true circle's distance, to the working projection's scale (within 1e-5) and the cm it is rounded to.
            radius = 2000.0 if pid.endswith("-disc") and "small" not in pid else 30.0
            assert found[0].distance_m == pytest.approx(target, abs=1e-5 * (target + radius) + 0.005)


@pytest.fixture(scope="module")
def edge_anchors(redlines):
    """Per red line: the middle of its longest edge (as drawn) and the outward azimuth there."""
    out = {}
    for rid in STARTS:
        ring = shapely.get_coordinates(redlines[rid].exterior)
        lengths = _geodesic_pairs(ring[:-1], ring[1:])
        k = int(np.argmax(lengths))
        along, _, _ = GEOD.inv(*ring[k], *ring[k + 1])
        lon, lat = walk(*ring[k], along, lengths[k] / 2)
        azimuth = along + 90
        if redlines[rid].contains(shapely.Point(walk(lon, lat, azimuth, 1.0))):
            azimuth = along - 90
        out[rid] = (lon, lat, azimuth)
    return out


def _geodesic_pairs(a, b) -> np.ndarray:
    return GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])[2]


@pytest.mark.parametrize("offset", [-0.05, 0.05])
def test_squares_at_the_touching_threshold(manifest, ruleset, redlines, edge_anchors, offset):
    """0.05 m inside a red line (as drawn) is an overlap (reject); 0.05 m outside is the buffer (conditional)."""
    rows = []
    for rid, (lon, lat, azimuth) in edge_anchors.items():
        rows.append({"id": rid, "industry": "G5920", "geometry": _square(*walk(lon, lat, azimuth, offset), azimuth)})
    for row in rows:
        inside_as_drawn = abs(
            GEOD.geometry_area_perimeter(shapely.intersection(row["geometry"], redlines[row["id"]]))[0]
        )
        assert inside_as_drawn == (pytest.approx(0.5, rel=0.1) if offset < 0 else 0.0)
    for verdict in _screen(manifest, ruleset, rows).values():
        assert _rules(verdict) >= ({"redline-overlap"} if offset < 0 else {"redline-buffer"})
        assert verdict.verdict == ("reject" if offset < 0 else "conditional")


# -- The reproductions ------------------------------------------------------------------------------


def test_disc_of_two_km_499_m_from_a_red_line(run):
    result = run(
        "screen", "--wkt", "POINT (116.13506510574597 28.859966933444593)", "--crs", "4490", "--kind", "point",
        "--radius", "2000", "--industry", "G5920", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "conditional"
    (near,) = [t for t in doc["triggers"] if t["rule"] == "redline-buffer"]
    assert near["distance_m"] == pytest.approx(498.98, abs=0.01)
    assert doc["project"]["area_m2"] == pytest.approx(math.pi * 2000**2, rel=1e-9)


def test_disc_area_and_overlap_are_within_a_millionth_of_the_circle(manifest, ruleset, redlines, anchors):
    lon, lat, azimuth = anchors["HX360121009"]
    centre = walk(lon, lat, azimuth, 300.0)  # a 1 km disc over the red line's edge
    verdicts = _screen(manifest, ruleset, [
        {"id": "d", "industry": "G5920", "kind": "point", "radius": 1000.0, "geometry": shapely.Point(centre)}
    ])  # fmt: skip
    verdict = verdicts["d"]
    assert verdict.project["area_m2"] == pytest.approx(math.pi * 1e6, rel=1e-12)
    (cut,) = [t for t in verdict.triggers if t.rule == "redline-overlap"]
    # Exact: the geodesic circle as a 20,000-gon on the ellipsoid, cut by the red line as drawn.
    ring = [walk(*centre, a, 1000.0) for a in np.linspace(0, 360, 20001)[:-1]]
    exact = abs(GEOD.geometry_area_perimeter(shapely.intersection(shapely.Polygon(ring), redlines["HX360121009"]))[0])
    assert cut.overlap_m2 == pytest.approx(exact, rel=2e-6)
    assert abs(cut.overlap_m2 - exact) <= 1e-6 * math.pi * 1e6 + 0.5


def test_long_lonlat_edge_of_a_layer_is_where_gis_draws_it(run):
    square = (
        "POLYGON ((116.14004559638592 28.733115792312745, 116.14004562723557 28.73315188326037, "
        "116.14000468071363 28.73315191029425, 116.140004649878 28.73311581934662, "
        "116.14004559638592 28.733115792312745))"
    )
    result = run(
        "screen", "--wkt", square, "--crs", "4490", "--industry", "C3311", "--emit-vocs", "5", "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert "air-capacity" in {t["rule"] for t in doc["triggers"]}
    assert doc["verdict"] == "conditional"


def test_line_footprint_area_is_within_a_centimetre_band(manifest):
    line = shapely.LineString([(116.10, 28.60), (116.12, 28.60), (116.13, 28.61), (116.125, 28.62)])
    frame = gpd.GeoDataFrame({"id": ["road"], "industry": ["E4812"], "width": [30.0]}, geometry=[line], crs=4490)
    projects = projects_from_frame(frame, manifest.working_crs)
    working = gpd.GeoSeries([shapely.segmentize(line, 1e-4)], crs=4490).to_crs(manifest.working_crs).iloc[0]
    exact = shapely.area(shapely.buffer(working, 15.0, quad_segs=20000, cap_style="flat", join_style="round"))
    # Outside the true buffer, never inside, and by no more than its edge's length times the 1 cm tolerance.
    assert 0 <= projects.area_m2[0] - exact <= shapely.length(shapely.buffer(working, 15.0)) * CURVE_TOLERANCE_M


def test_curves_lie_outside_the_true_circle_within_a_centimetre():
    for radius in (2.0, 15.0, 500.0, 2000.0, 50_000.0):
        built = disc(shapely.Point(0, 0), radius)
        coords = shapely.get_coordinates(shapely.boundary(built))
        mids = (coords[:-1] + coords[1:]) / 2  # the edge points nearest the centre
        assert np.hypot(*mids.T).min() >= radius * (1 - 1e-12)
        assert np.hypot(*coords.T).max() - radius <= min(CURVE_TOLERANCE_M, 1e-6 * radius) + 1e-9
        assert curve_segments(radius) <= curve_segments(radius, 1e-6)
    band = outer_buffer(shapely.box(0, 0, 100, 100), BUFFER_M)
    on_curve = 100 + (BUFFER_M - 1e-9) * math.sqrt(0.5)  # on the true curve, but for float rounding
    assert shapely.contains(band, shapely.Point(on_curve, on_curve))


# -- Siting -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store_zones(manifest, ruleset, anchors):
    """Siting of a warehouse in a 3 km box around the issue's site near HX360121009."""
    to_working = Transformer.from_crs(4490, manifest.working_crs, always_xy=True)
    x, y = to_working.transform(115.86344, 28.54965)
    return siting(manifest, ruleset, {"industry": "G5920"}, region=shapely.box(x - 1500, y - 1500, x + 1500, y + 1500))


def test_siting_pass_zone_stops_at_500_m(store_zones, manifest, ruleset, redlines):
    site = shapely.from_wkt(
        "POLYGON ((115.86345632363367 28.54963960430541, 115.86345627599489 28.54966667310643, "
        "115.8634256193863 28.54966663115047, 115.8634256670329 28.549639562349466, "
        "115.86345632363367 28.54963960430541))"
    )
    edge = shapely.get_coordinates(shapely.segmentize(site, 1e-6))
    near = min(oracle_distance(x, y, redlines["HX360121009"]) for x, y in edge)
    assert abs(near - BUFFER_M) < 3.0  # the last metres: where an 8-segment band put a pass zone
    outcome = "conditional" if near <= BUFFER_M else "pass"
    verdict = _screen(manifest, ruleset, [{"id": "s", "industry": "G5920", "geometry": site}])["s"]
    assert verdict.verdict == outcome
    zones = store_zones.zones
    working = gpd.GeoSeries([site], crs=4490).to_crs(manifest.working_crs).iloc[0]
    hits = zones[zones.intersects(working)]
    assert outcome in set(hits["outcome"])
    # No pass area closer than 500 m to any red line (measured on the red lines as read).
    red = read_layer(manifest.layers["redline"], manifest.working_crs).geometry
    near = shapely.buffer(shapely.union_all(red), BUFFER_M - 0.02, quad_segs=4 * curve_segments(BUFFER_M))
    passing = shapely.union_all(zones.geometry[zones["outcome"] == "pass"].to_numpy())
    assert shapely.area(shapely.intersection(passing, near)) < 1e-3


def test_points_within_two_metres_of_a_zone_edge_get_its_outcome(store_zones, manifest, ruleset, redlines):
    """Random points 0-2 m inside the edge between pass and conditional: screen agrees, and so does the oracle."""
    zones = store_zones.zones
    passing = shapely.union_all(zones.geometry[zones["outcome"] == "pass"].to_numpy())
    conditional = shapely.union_all(zones.geometry[zones["outcome"] == "conditional"].to_numpy())
    edge = shapely.intersection(shapely.boundary(passing), shapely.boundary(conditional))
    assert shapely.length(edge) > 100
    rng = np.random.default_rng(13)
    along = shapely.line_interpolate_point(edge, rng.uniform(0, shapely.length(edge), 40))
    to_lonlat = Transformer.from_crs(manifest.working_crs, 4490, always_xy=True)
    rows, zone_of, oracle = [], {}, {}
    for i, point in enumerate(along):
        # Step 0-2 m into one zone or the other, across the edge.
        x, y = shapely.get_coordinates(point)[0]
        for side, zone in (("p", passing), ("c", conditional)):
            for angle in np.linspace(0, 2 * np.pi, 16, endpoint=False):
                step = rng.uniform(0.05, 2.0)
                probe = shapely.Point(x + step * np.cos(angle), y + step * np.sin(angle))
                if zone.contains(probe) and shapely.distance(probe, shapely.boundary(zone)) > 0.02:
                    pid = f"{i}{side}"
                    zone_of[pid] = "pass" if side == "p" else "conditional"
                    lon, lat = to_lonlat.transform(probe.x, probe.y)
                    oracle[pid] = _oracle_near(lon, lat, redlines) <= BUFFER_M
                    rows.append({"id": pid, "industry": "G5920", "kind": "point", "geometry": probe})
                    break
    assert len(rows) > 40
    verdicts = _screen(manifest, ruleset, rows, crs=manifest.working_crs)
    for pid, verdict in verdicts.items():
        assert verdict.verdict == zone_of[pid], pid
        assert ("redline-buffer" in _rules(verdict)) == oracle[pid] == (zone_of[pid] == "conditional"), pid


# -- Both areas --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("epsg", "x", "y"), [(4527, 39411967.5, 3165267.3), (4548, 411967.5, 3165267.3)])
def test_plane_area_is_the_drawing_s_for_projected_input(run, epsg, x, y):
    square = shapely.box(x, y, x + 200, y + 200).wkt
    result = run("screen", "--wkt", square, "--crs", epsg, "--industry", "G5920", "--format", "json")
    assert result.exit_code == 0, result.stderr
    project = json.loads(result.stdout)["project"]
    assert project["plane_area_m2"] == pytest.approx(40_000, abs=0.01)
    assert project["plane_area_mu"] == pytest.approx(60, abs=1e-5)
    # The rules' area is on the ellipsoid (the site lies 90 km west of the zone's central meridian).
    lonlat = gpd.GeoSeries([shapely.from_wkt(square)], crs=epsg).to_crs(4490).iloc[0]
    ellipsoidal = abs(GEOD.geometry_area_perimeter(shapely.segmentize(lonlat, 1e-5))[0])
    assert project["area_m2"] == pytest.approx(ellipsoidal, abs=0.01)
    assert project["area_m2"] < 39_995
    text = run("screen", "--wkt", square, "--crs", epsg, "--industry", "G5920").stdout
    assert "area on the drawing 40,000.00 m2 (60.00 mu)" in text
    assert "compare this one with the site drawing" in text


def test_plane_area_is_absent_for_lonlat_input(run):
    result = run(
        "screen", "--wkt", "POINT (116.1 28.6)", "--crs", "4490", "--radius", "50", "--industry", "G5920",
        "--format", "json",
    )  # fmt: skip
    project = json.loads(result.stdout)["project"]
    assert "plane_area_m2" not in project
    assert "plane_area_mu" not in project
    assert project["area_m2"] == pytest.approx(math.pi * 2500, abs=0.005)  # JSON keeps centimetres


def test_markdown_and_html_reports_show_both_areas(run, tmp_path):
    square = shapely.box(411967.5, 3165267.3, 412167.5, 3165467.3).wkt
    for name in ("r.md", "r.html"):
        result = run("screen", "--wkt", square, "--crs", 4548, "--industry", "G5920", "-o", tmp_path / name)
        assert result.exit_code == 0, result.stderr
        page = (tmp_path / name).read_text("utf-8")
        assert "40,000.00" in page
        assert "60.00" in page
        assert "compare it with the site drawing" in page or "与用地红线图和土地文件核对" in page


# -- Gaps between the control units --------------------------------------------------------------------


@pytest.mark.parametrize(("gap_side", "warned"), [(0.7, False), (5.0, True)])
def test_gaps_outside_the_units_below_the_tolerance_are_not_reported(manifest, ruleset, gap_side, warned):
    units = read_layer(manifest.unit_layer, manifest.working_crs).geometry
    covered = shapely.union_all(units)
    # The westernmost vertex of the units: a site just inside it and a small square just outside.
    coords = shapely.get_coordinates(covered.exterior if covered.geom_type == "Polygon" else covered.geoms[0].exterior)
    x0, y0 = coords[int(np.argmin(coords[:, 0]))]
    inside = shapely.intersection(shapely.box(x0, y0 - 300, x0 + 600, y0 + 300), covered)
    inside = max(shapely.get_parts(inside), key=shapely.area)
    gap = shapely.box(x0 - 50 - gap_side, y0, x0 - 50, y0 + gap_side)
    assert not shapely.intersects(gap, covered)
    site = shapely.MultiPolygon([inside, gap])
    frame = gpd.GeoDataFrame({"id": ["edge"], "industry": ["G5920"]}, geometry=[site], crs=manifest.working_crs)
    (verdict,) = screen(frame, manifest, ruleset).verdicts
    gaps = [w for w in verdict.warnings if "outside every control unit" in w]
    if not warned:
        assert gap_side**2 < 1.0
        assert gap_side**2 < 1e-4 * shapely.area(site)
        assert gaps == []
        return
    (message,) = gaps
    assert f"({gap_side**2:,.1f} m2, its largest part around lon " in message
    lon, lat = Transformer.from_crs(manifest.working_crs, 4490, always_xy=True).transform(*gap.centroid.coords[0])
    shown = message.split("around lon ")[1]
    assert float(shown.split(",")[0]) == pytest.approx(lon, abs=2e-5)
    assert float(shown.split("lat ")[1].split(")")[0]) == pytest.approx(lat, abs=2e-5)


# -- A layer with a long longitude/latitude edge --------------------------------------------------------

LONG_EDGE_RULES = """\
version: 1
name: long edge
rules:
  - id: in-zone
    title: In the zone
    dimension: quality
    outcome: conditional
    layer: zone
    test: overlaps
    message: In the zone {feature.name}
    basis: a synthetic zone
"""


@pytest.fixture
def long_edge(tmp_path):
    """A zone whose southern edge is two lon/lat vertices 32 km apart along 28.6 N, with its manifest and rules."""
    zone = shapely.Polygon([(116.0, 28.6), (116.33, 28.6), (116.33, 28.65), (116.0, 28.65), (116.0, 28.6)])
    # A small second zone to the south, so that the layers' extent covers sites south of the edge too.
    south = shapely.box(116.16, 28.55, 116.17, 28.56)
    frame = gpd.GeoDataFrame({"zid": ["Z1", "Z0"], "name": ["zone", "south"]}, geometry=[zone, south], crs=4490)
    pyogrio.write_dataframe(frame, tmp_path / "zone.gpkg", layer="zone")
    (tmp_path / "layers.yaml").write_text(
        "version: 1\nname: long edge\nlayers:\n  - name: zone\n    role: quality\n    path: zone.gpkg\n"
        "    layer: zone\n    id_field: zid\n    name_field: name\n",
        "utf-8",
    )
    (tmp_path / "rules.yaml").write_text(LONG_EDGE_RULES, "utf-8")
    return tmp_path


def test_a_long_lonlat_edge_is_read_where_gis_draws_it(long_edge):
    from threelines.layers.manifest import load_manifest

    manifest = load_manifest(long_edge / "layers.yaml")
    zone = read_layer(manifest.layers["zone"], manifest.working_crs).geometry[0]
    # The edge as drawn: straight in lon/lat, sampled every ~10 m, put in the working CRS point by point.
    lons = np.linspace(116.0, 116.33, 3301)
    x, y = Transformer.from_crs(4490, manifest.working_crs, always_xy=True).transform(lons, np.full_like(lons, 28.6))
    off = shapely.distance(shapely.boundary(zone), shapely.points(x, y))
    assert off.max() < 0.01
    # Without densifying, the middle of the chord lies metres north of where the edge is drawn.
    ends = shapely.LineString([(x[0], y[0]), (x[-1], y[-1])])
    assert shapely.distance(ends, shapely.Point(x[1650], y[1650])) > 5.0


@pytest.mark.parametrize(("north_m", "inside"), [(5.0, True), (-5.0, False)])
def test_a_site_5_m_inside_a_long_edge_is_in_the_zone(run, long_edge, north_m, inside):
    centre = walk(116.165, 28.6, 0.0, north_m)
    site = _square(*walk(*centre, 180.0, 1.0), 0.0, side=2.0)
    assert shapely.within(site, shapely.box(116.0, 28.6, 116.33, 28.65)) == inside  # as drawn, in lon/lat
    result = run(
        "screen", "--wkt", site.wkt, "--crs", "4490", "--industry", "G5920", "--layers", long_edge / "layers.yaml",
        "--rules", long_edge / "rules.yaml", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    triggers = json.loads(result.stdout)["triggers"]
    assert [t["feature_id"] for t in triggers if t["rule"] == "in-zone"] == (["Z1"] if inside else [])


def test_the_layer_cache_key_names_how_edges_are_densified(manifest, monkeypatch):
    import threelines.layers.cache as layer_cache

    spec = manifest.layers["redline"]
    before = layer_cache.cache_key(spec, manifest.working_crs)
    monkeypatch.setattr(layer_cache, "DENSIFY_VERSION", layer_cache.DENSIFY_VERSION + 1)
    assert layer_cache.cache_key(spec, manifest.working_crs) != before


def test_a_long_lonlat_edge_of_a_footprint_is_where_gis_draws_it(run, long_edge):
    """A 30 km strip 1-5 m south of the zone, both drawn in lon/lat: outside it, however long its edges."""
    south = [walk(116.0, 28.6, 180.0, m)[1] for m in (1.0, 5.0)]  # latitudes 1 m and 5 m south of 28.6
    strip = shapely.box(116.01, south[1], 116.31, south[0])
    result = run(
        "screen", "--wkt", strip.wkt, "--crs", "4490", "--industry", "G5920", "--layers", long_edge / "layers.yaml",
        "--rules", long_edge / "rules.yaml", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [t["feature_id"] for t in json.loads(result.stdout)["triggers"]] == []
    # Straight in the working CRS, its northern edge would cross the zone by metres in the middle.
    from threelines.layers.manifest import load_manifest

    working = load_manifest(long_edge / "layers.yaml").working_crs
    corners = gpd.GeoSeries([strip], crs=4490).to_crs(working).iloc[0]
    zone = read_layer(load_manifest(long_edge / "layers.yaml").layers["zone"], working).geometry[0]
    assert shapely.area(shapely.intersection(corners, zone)) > 1000
