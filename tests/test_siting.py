"""Siting: zones that cover the region, agree with screen for any small site inside them, and their outputs."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threelines.engine.screen import screen_projects
from threelines.input.footprint import projects_from_frame
from threelines.siting.zones import siting

CHEMICAL = {"industry": "C2614", "emit_vocs": 10.0, "emit_nox": 5.0}
WAREHOUSE = {"industry": "G5920"}


@pytest.fixture(scope="module")
def zoned(manifest, ruleset):
    return {name: siting(manifest, ruleset, profile) for name, profile in (("chem", CHEMICAL), ("store", WAREHOUSE))}


@pytest.mark.parametrize("name", ["chem", "store"])
def test_zones_cover_the_region_without_overlapping(zoned, name):
    result = zoned[name]
    geoms = result.zones.geometry.to_numpy()
    assert shapely.area(shapely.union_all(geoms)) == pytest.approx(result.region.area, rel=1e-9)
    assert float(shapely.area(geoms).sum()) == pytest.approx(result.region.area, rel=1e-9)  # no overlaps
    assert set(result.zones["outcome"]) <= {"pass", "conditional", "reject"}


def test_a_chemical_plant_may_only_go_in_the_park(zoned):
    zones = zoned["chem"].zones
    conditional = zones[zones["outcome"] == "conditional"]
    assert list(conditional["rules"]) == ["ZD-01,ZD-02,air-capacity,chem-in-park,pm25-exceed"]
    assert float(conditional["area_m2"].sum()) / 1e6 == pytest.approx(13.80, abs=0.005)
    assert (zones["outcome"] != "pass").all()


def test_summary_and_candidates(zoned, manifest):
    from threelines.layers.read import read_layer

    result = zoned["store"]
    summary = result.summary()
    assert list(summary) == ["pass", "conditional", "reject"]
    assert sum(summary.values()) == pytest.approx(result.region.area, rel=1e-9)
    units = read_layer(manifest.unit_layer, manifest.working_crs)
    candidates = result.candidates(500e4, units)
    assert list(candidates["rank"]) == list(range(1, len(candidates) + 1))
    assert (np.diff(candidates["area_m2"].to_numpy()) <= 0).all()
    assert (candidates["area_m2"] >= 500e4).all()
    assert set(candidates["outcome"]) <= {"pass", "conditional"}
    first = candidates.iloc[0]
    assert shapely.contains(first.geometry, shapely.points(*_working(manifest, first.lon, first.lat)))
    centroid = shapely.points(*_working(manifest, first.centroid_lon, first.centroid_lat))
    assert shapely.distance(centroid, first.geometry.centroid) < 0.1  # lon/lat rounded to 1e-6 degrees
    assert first["units"].split(",")[0].startswith("ZH360121")


def _working(manifest, lon, lat):
    return gpd.GeoSeries(shapely.points([lon], [lat]), crs=4490).to_crs(manifest.working_crs).get_coordinates().iloc[0]


def _screen_square(manifest, ruleset, profile, x, y, half):
    frame = gpd.GeoDataFrame({"id": ["site"]}, geometry=[shapely.box(x - half, y - half, x + half, y + half)],
                             crs=manifest.working_crs)  # fmt: skip
    projects = projects_from_frame(frame, manifest.working_crs, overrides=profile, line_widths=manifest.line_widths)
    return screen_projects(projects, manifest, ruleset)[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_screen_agrees_with_the_zone_of_any_small_site(zoned, manifest, ruleset, data):
    name = data.draw(st.sampled_from(["chem", "store"]), label="profile")
    result = zoned[name]
    zones = result.zones
    k = data.draw(st.integers(0, len(zones) - 1), label="zone")
    zone = zones.geometry.iloc[k]
    half = data.draw(st.sampled_from([5.0, 20.0, 60.0]), label="half side (m)")
    inner = shapely.buffer(zone, -half * 1.5)
    if inner.is_empty:
        return  # a zone too thin for this site
    minx, miny, maxx, maxy = inner.bounds
    for _ in range(50):
        x = data.draw(st.floats(minx, maxx), label="x")
        y = data.draw(st.floats(miny, maxy), label="y")
        if inner.contains(shapely.Point(x, y)):
            break
    else:
        return
    profile = CHEMICAL if name == "chem" else WAREHOUSE
    verdict = _screen_square(manifest, ruleset, profile, x, y, half)
    assert verdict.verdict == zones["outcome"].iloc[k]
    assert ",".join(sorted({t.rule for t in verdict.triggers})) == zones["rules"].iloc[k]


def test_siting_command_writes_zones_map_and_report(run, tmp_path):
    out = tmp_path / "zones.gpkg"
    result = run("siting", "--industry", "C2614", "--emit-vocs", "10", "--emit-nox", "5", "--min-area", "20",
                 "-o", out, "--lang", "zh")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    # the bundled sample, never mistaken for real
    assert lines.pop(0) == "*** 示例数据 — 合成图层（SAMPLE DATA — synthetic layers） ***"
    assert lines[:4] == [
        "结果           平方千米         公顷             亩",
        "通过               0.00         0.00              0",
        "有条件准入        13.80     1,379.79         20,697",
        "不予准入       1,792.83   179,283.33      2,689,250",
    ]
    assert lines[4:6] == [
        "候选地块 1 处：",
        "  1. 有条件准入，1,379.79 公顷，位于东经 116.19090、北纬 28.78763，所在单元 ZH36012120002",
    ]
    assert [name for name, _ in pyogrio.list_layers(out)] == ["zones", "candidates"]
    zones = pyogrio.read_dataframe(out, layer="zones")
    assert zones.crs.to_epsg() == 4490
    assert list(zones.columns) == ["outcome", "rules", "area_m2", "area_ha", "area_mu", "geometry"]
    from PIL import Image

    png = np.asarray(Image.open(tmp_path / "zones.png").convert("RGB")).astype(int)
    assert (np.abs(png - [0xD9, 0x53, 0x4F]).max(axis=2) < 10).mean() > 0.2  # mostly reject red
    page = (tmp_path / "zones.html").read_text("utf-8")
    assert "项目选址分区" in page
    assert (
        '<p class="sample-mark" data-sample="true"><strong>示例数据 — 合成图层（SAMPLE DATA — synthetic layers）</strong></p>'
        in page
    )
    assert "data:image/svg+xml;base64," in page
    assert '<tr data-outcome="conditional">' in page
    again = run("siting", "--industry", "C2614", "-o", out)
    assert again.exit_code == 2
    assert again.stderr.strip() == f"Error: {out}: exists; give --overwrite to replace it, or another -o"


def test_siting_geojson_and_region_by_adcode(run, tmp_path):
    out = tmp_path / "z.geojson"
    result = run("siting", "--industry", "G5920", "--adcode", "360121", "--min-area", "1000", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "z.candidates.geojson").exists()
    candidates = pyogrio.read_dataframe(tmp_path / "z.candidates.geojson")
    assert list(candidates["rank"]) == list(range(1, len(candidates) + 1))
    assert (candidates["area_ha"] >= 1000).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--industry", "C2614", "--adcode", "999999"],
            "Error: layer 'county': no feature with id '999999'; ids: 360121",
        ),
        (["--industry", "X9999"], "Error: Invalid value for '--industry': industry code 'X9999' is not a GB/T 4754"),
    ],
)
def test_siting_bad_input(run, tmp_path, args, message):
    result = run("siting", *args, "-o", tmp_path / "z.gpkg")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert not (tmp_path / "z.gpkg").exists()


def test_siting_output_must_be_a_vector_file(run, tmp_path):
    result = run("siting", "--industry", "C2614", "-o", tmp_path / "z.txt")
    assert result.exit_code == 2
    assert "-o must end in .gpkg or .geojson" in result.stderr


def test_siting_region_must_be_an_area(run, tmp_path):
    point = tmp_path / "pt.geojson"
    point.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
                     '"geometry": {"type": "Point", "coordinates": [116.0, 28.6]}}]}', encoding="utf-8")  # fmt: skip
    result = run("siting", "--industry", "C2614", "--region", point, "-o", tmp_path / "z.gpkg")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {point}: holds no polygon; the region to zone must be an area"


def test_siting_output_folder_must_exist(run, tmp_path):
    out = tmp_path / "nowhere" / "z.gpkg"
    result = run("siting", "--industry", "C2614", "-o", out)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {out}: folder {out.parent} does not exist; create it or give another -o"
