"""Rule semantics on a small synthetic jurisdiction where every case can be drawn exactly.

Four 1 km units in a row (EPSG:4548 metres): A and B are park units, C is
not, D's park status is not recorded. A red-line square lies north of C.
Footprints are drawn against them.
"""

from __future__ import annotations

import textwrap

import geopandas as gpd
import pyogrio
import pytest
import shapely

from threelines.engine.screen import screen_projects
from threelines.input.footprint import projects_from_frame
from threelines.layers.manifest import load_manifest
from threelines.rules import load_rules

X0, Y0 = 400000.0, 3150000.0  # inside the sample county's zone; any place works here


def square(x, y, w, h=None):
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + (h if h is not None else w))


RULES = """\
version: 1
rules:
  - id: in-park
    title: inside a park
    dimension: spatial_layout
    outcome: conditional
    layer: units
    test: inside
    industry: [C26]
    condition: feature.is_park
    message: "in {feature.name}"
    basis: test
  - id: outside-park
    title: outside every park
    dimension: spatial_layout
    outcome: reject
    layer: units
    test: outside
    distance_m: 1500
    industry: [C26]
    condition: feature.is_park
    message: "nearest {has(feature.name) ? feature.name : 'none'}"
    basis: test
  - id: red-overlap
    title: overlaps the red line
    dimension: redline
    outcome: reject
    layer: red
    test: overlaps
    message: "{overlap_m2:.0f} m2"
    basis: test
  - id: red-near
    title: near the red line
    dimension: redline
    outcome: conditional
    layer: red
    test: within_distance
    distance_m: 100
    condition: "!overlaps"
    message: "{distance_m:.0f} m"
    basis: test
  - id: linear-only
    title: for roads
    dimension: spatial_layout
    outcome: conditional
    layer: units
    test: overlaps
    kinds: [linear]
    industry: [E48]
    message: road
    basis: test
  - id: cod-capacity
    title: water capacity
    dimension: quality
    outcome: reject
    layer: zones
    test: capacity
    pollutants: [cod]
    attains: feature.meets_target
    message: "{exceeds ? 'full' : 'offset'}"
    basis: test
  - id: sensitive
    title: ecologically sensitive cells
    dimension: redline
    outcome: conditional
    layer: sensitivity
    test: zonal
    industry: [C39]
    stat: share
    classes: [3]
    condition: value >= 0.25
    message: "{value:.0%} of {cells:.0f} cells are class 3"
    basis: test
  - id: ratio
    title: divides by an attribute
    dimension: quality
    outcome: conditional
    layer: units
    test: overlaps
    when: project.emit_nox > 0.0
    condition: int(project.emit_nox) / int(feature.capacity) >= 0
    message: "{project.emit_nox / feature.capacity:.2f} of capacity"
    basis: test
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    units = gpd.GeoDataFrame(
        {
            "code": ["A", "B", "C", "D"],
            "name": ["park A", "park B", "plain C", "unknown D"],
            "class": ["key", "key", "general", "general"],
            "is_park": pd_bool([True, True, False, None]),
            "capacity": [10.0, 0.0, 10.0, 10.0],
        },
        geometry=[square(0, 0, 1000), square(1000, 0, 1000), square(2000, 0, 1000), square(3000, 0, 1000)],
        crs=4548,
    )
    red = gpd.GeoDataFrame({"id": ["R"], "name": ["red"]}, geometry=[square(2000, 1000, 1000)], crs=4548)
    # Two water zones under units A and B: W1 misses its target, W2 meets it but is nearly full.
    zones = gpd.GeoDataFrame(
        {"id": ["W1", "W2"], "meets_target": [False, True], "remaining_cod": [10.0, 5.0], "offset_ratio": [2.0, 2.0]},
        geometry=[square(0, 0, 1000), square(1000, 0, 1000)],
        crs=4548,
    )
    pyogrio.write_dataframe(zones, root / "zones.gpkg")
    # A 100 m ecological-sensitivity grid: class 1 west of x = 2000, class 3 east of it, no data east of 3500.
    import numpy as np
    import rasterio
    from affine import Affine

    grid = np.where(np.arange(40) < 20, 1, 3).astype("uint8")[None, :].repeat(20, axis=0)
    grid[:, 35:] = 0
    profile = {"driver": "GTiff", "width": 40, "height": 20, "count": 1, "dtype": "uint8", "nodata": 0,
               "crs": "EPSG:4548", "transform": Affine.translation(X0, Y0 + 2000) @ Affine.scale(100, -100)}  # fmt: skip
    with rasterio.open(root / "sensitivity.tif", "w", **profile) as dst:
        dst.write(grid, 1)
    pyogrio.write_dataframe(units, root / "units.gpkg")
    pyogrio.write_dataframe(red, root / "red.gpkg")
    (root / "layers.yaml").write_text(
        textwrap.dedent("""\
        layers:
          - {name: units, role: unit, path: units.gpkg, id_field: code, name_field: name, class_field: class}
          - {name: red, role: redline, path: red.gpkg, id_field: id, name_field: name}
          - {name: zones, role: quality, path: zones.gpkg, id_field: id, name_field: id}
          - {name: sensitivity, role: raster, path: sensitivity.tif}
        """),
        encoding="utf-8",
    )
    (root / "rules.yaml").write_text(RULES, encoding="utf-8")
    manifest = load_manifest(root / "layers.yaml")
    return manifest, load_rules(root / "rules.yaml", manifest)


def pd_bool(values):
    import pandas as pd

    return pd.array(values, dtype="boolean")


def screen_one(world, geom, **attrs):
    manifest, rules = world
    attrs = {"emit_nox": 0.0, "emit_cod": 0.0, **attrs}
    frame = gpd.GeoDataFrame({"id": ["x"], **{k: [v] for k, v in attrs.items()}}, geometry=[geom], crs=4548)
    (verdict,) = screen_projects(projects_from_frame(frame, manifest.working_crs), manifest, rules)
    return verdict


def fired(verdict):
    return [(t.rule, t.feature_id) for t in verdict.triggers]


def test_inside_one_park(world):
    v = screen_one(world, square(100, 100, 200), industry="C2614")
    assert fired(v) == [("in-park", "A")]


def test_inside_two_adjacent_parks_counts_as_inside(world):
    v = screen_one(world, square(900, 100, 200), industry="C2614")
    assert fired(v) == [("in-park", "A"), ("in-park", "B")]
    assert [u.share for u in v.units] == pytest.approx([0.5, 0.5], abs=1e-5)


def test_partly_outside_the_parks_is_outside_with_the_overlapped_park_as_evidence(world):
    v = screen_one(world, square(1900, 100, 200), industry="C2614")
    assert v.verdict == "reject"
    (trigger,) = v.triggers
    assert (trigger.rule, trigger.feature_id, trigger.message) == ("outside-park", "B", "nearest park B")
    assert trigger.overlap_ratio == pytest.approx(0.5, abs=1e-5)


def test_outside_evidence_is_limited_to_the_rule_distance(world):
    near = screen_one(world, square(2500, 100, 200), industry="C2614")  # 500 m from park B
    assert [(t.feature_id, round(t.distance_m)) for t in near.triggers] == [("B", 500)]
    far = screen_one(world, shapely.box(X0 + 3850, Y0 + 1800, X0 + 3950, Y0 + 1900), industry="C2614")
    assert far.warnings  # it lies outside every unit, beyond the parks' reach of 1.5 km
    assert [(t.rule, t.feature_id, t.message) for t in far.triggers] == [("outside-park", None, "nearest none")]


def test_outside_with_no_feature_of_the_layer_near_has_no_evidence(world):
    # 20 km away: the units read near the footprint are none at all
    v = screen_one(world, square(20000, 20000, 200), industry="C2614")
    assert [(t.rule, t.feature_id, t.feature_name, t.overlap_m2, t.distance_m, t.message) for t in v.triggers] == [
        ("outside-park", None, None, None, None, "nearest none")
    ]
    assert v.to_dict()["triggers"][0]["overlap_ratio"] is None


def test_unknown_park_status_is_unresolved_not_a_reject(world):
    # Unit D's is_park is null: whether the project is in a park cannot be told.
    v = screen_one(world, square(3400, 100, 200), industry="C2614")
    assert v.triggers == []
    assert [(n.rule, n.reason) for n in v.unresolved] == [
        ("in-park", "feature attribute 'is_park' is not given"),
        ("outside-park", "feature attribute 'is_park' is not given"),
    ]


def test_touching_the_red_line_is_near(world):
    v = screen_one(world, square(2400, 800, 200), industry="C3311")  # shares an edge with the red square
    assert [(t.rule, t.distance_m, t.overlap_m2 < 0.01) for t in v.triggers] == [("red-near", 0.0, True)]


def test_point_on_the_red_line_boundary_overlaps(world):
    v = screen_one(world, shapely.Point(X0 + 2500, Y0 + 1000), industry="C3311")
    assert fired(v) == [("red-overlap", "R")]
    assert [(u.code, u.share) for u in v.units] == [("C", 1.0)]


def test_point_on_a_unit_boundary_counts_half_in_each(world):
    v = screen_one(world, shapely.Point(X0 + 1000, Y0 + 500), industry="C3311")
    assert sorted((u.code, u.share) for u in v.units) == [("A", 0.5), ("B", 0.5)]
    assert v.warnings == []


def test_coarse_industry_code_is_unresolved(world):
    v = screen_one(world, square(2400, 100, 200), industry="C")
    assert v.triggers == []
    assert [(n.rule, n.reason) for n in v.unresolved] == [
        ("outside-park", "the project's industry code C is coarser than the rule's C26; give its class code"),
        ("sensitive", "the project's industry code C is coarser than the rule's C39; give its class code"),
    ]


def test_kind_is_checked_before_industry(world):
    # An area project without an industry code: the linear-only rule does not concern it.
    v = screen_one(world, square(2400, 100, 200))
    assert "linear-only" not in [n.rule for n in v.unresolved]
    assert "outside-park" in [n.rule for n in v.unresolved]


def test_integer_division_by_zero_is_unresolved(world):
    v = screen_one(world, square(1100, 100, 200), industry="C3311", emit_nox=6.0)  # unit B: capacity 0
    assert [(n.rule, n.feature_id) for n in v.unresolved] == [("ratio", "B")]
    assert "cannot evaluate" in v.unresolved[0].reason
    ok = screen_one(world, square(100, 100, 200), industry="C3311", emit_nox=6.0)  # unit A: capacity 10
    assert [(t.rule, t.message) for t in ok.triggers] == [("ratio", "0.60 of capacity")]


def test_all_missing_attributes_are_named(world, tmp_path):
    manifest, _ = world
    path = tmp_path / "rules.yaml"
    path.write_text(
        RULES.split("  - id: in-park")[0]
        + textwrap.dedent("""\
          - id: emits
            title: emits
            dimension: quality
            outcome: conditional
            layer: units
            test: overlaps
            when: project.emit_nox > 0.0 || project.emit_vocs > 0.0
            message: emits
            basis: test
        """),
        encoding="utf-8",
    )
    frame = gpd.GeoDataFrame({"id": ["x"]}, geometry=[square(100, 100, 200)], crs=4548)
    (v,) = screen_projects(projects_from_frame(frame, manifest.working_crs), manifest, load_rules(path, manifest))
    assert [n.reason for n in v.unresolved] == [
        "project attribute 'emit_nox', project attribute 'emit_vocs' are not given"
    ]


def test_capacity_charges_each_zone_its_area_share(world):
    # Half the site in W1 (target missed, 10 t/a left), half in W2 (target met, 5 t/a left).
    v = screen_one(world, square(900, 100, 200), industry="C3311", emit_cod=12.0)
    w1, w2 = (t for t in v.triggers if t.rule == "cod-capacity")
    assert (w1.feature_id, w1.outcome, w1.project_load, w1.required_offset) == (
        "W1",
        "conditional",
        pytest.approx(6.0, rel=1e-4),
        pytest.approx(12.0, rel=1e-4),
    )
    assert w1.message == "COD 6 t/a (50% of 12 t/a, by area share): offset 12 t/a (2x) required in W1; offset"
    assert (w2.feature_id, w2.outcome, w2.remaining_load, w2.offset_ratio) == ("W2", "reject", 5.0, None)
    assert w2.message == "COD 6 t/a (50% of 12 t/a, by area share) exceeds the remaining capacity of 5 t/a in W2; full"


def test_capacity_that_fits_in_an_attaining_zone_passes(world):
    v = screen_one(world, square(1100, 100, 200), industry="C3311", emit_cod=4.0)
    assert [t.rule for t in v.triggers] == []


def test_capacity_without_the_load_is_unresolved(world):
    manifest, rules = world
    frame = gpd.GeoDataFrame(
        {"id": ["x"], "industry": ["C3311"], "emit_nox": [0.0]}, geometry=[square(100, 100, 200)], crs=4548
    )
    (v,) = screen_projects(projects_from_frame(frame, manifest.working_crs), manifest, rules)
    assert [(n.rule, n.reason) for n in v.unresolved] == [("cod-capacity", "project attribute 'emit_cod' is not given")]


def test_zonal_share_of_classes(world):
    half = screen_one(world, square(1800, 500, 400), industry="C3982")  # 4 columns of class 1, 4 of class 3
    (trigger,) = [t for t in half.triggers if t.rule == "sensitive"]
    assert (trigger.statistic, trigger.value, trigger.message) == ("share", 0.5, "50% of 16 cells are class 3")
    west = screen_one(world, square(500, 500, 400), industry="C3982")
    assert "sensitive" not in [t.rule for t in west.triggers]


def test_zonal_small_site_takes_the_cell_it_touches(world):
    v = screen_one(world, square(2510, 510, 20), industry="C3982")  # inside one 100 m cell
    (trigger,) = [t for t in v.triggers if t.rule == "sensitive"]
    assert (trigger.value, trigger.message) == (1.0, "100% of 1 cells are class 3")


def test_zonal_without_data_is_unresolved(world):
    v = screen_one(world, square(3600, 500, 200), industry="C3982")
    assert ("sensitive", "layer 'sensitivity' has no data under the footprint") in [
        (n.rule, n.reason) for n in v.unresolved
    ]


def test_capacity_point_on_a_zone_boundary_is_charged_half_in_each(world):
    v = screen_one(world, shapely.Point(X0 + 1000, Y0 + 500), industry="C3311", emit_cod=8.0)
    # Half of 8 t/a in each: W2 (5 t/a left, target met) takes its 4 quietly; W1 needs an offset for its 4.
    charged = [(t.feature_id, t.project_load, t.outcome) for t in v.triggers if t.rule == "cod-capacity"]
    assert charged == [("W1", 4.0, "conditional")]


def test_zonal_is_the_same_alone_and_in_a_batch(world):
    manifest, rules = world
    geoms = [square(1850, 300, 300), square(10, 10, 150), square(2900, 1500, 500)]
    frame = gpd.GeoDataFrame(
        {"id": ["a", "b", "c"], "industry": ["C3982"] * 3, "emit_nox": [0.0] * 3, "emit_cod": [0.0] * 3},
        geometry=geoms,
        crs=4548,
    )
    together = screen_projects(projects_from_frame(frame, manifest.working_crs), manifest, rules)
    for i, verdict in enumerate(together):
        alone = screen_one(world, geoms[i], industry="C3982")
        assert [(t.rule, t.value) for t in alone.triggers] == [(t.rule, t.value) for t in verdict.triggers]


def cod_capacity_world(tmp_path, zones):
    """A manifest of one quality layer (``zones``) and a rule file with one COD capacity rule."""
    pyogrio.write_dataframe(zones, tmp_path / "zones.gpkg")
    (tmp_path / "layers.yaml").write_text(
        "layers:\n  - {name: z, role: quality, path: zones.gpkg, id_field: id}\n", encoding="utf-8"
    )
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - {id: cap, title: t, dimension: quality, outcome: reject, layer: z, test: capacity,"
        " pollutants: [cod], message: m, basis: b}\n",
        encoding="utf-8",
    )
    return load_manifest(tmp_path / "layers.yaml")


def test_capacity_zone_split_into_two_features_is_charged_once(tmp_path):
    zones = gpd.GeoDataFrame(
        {"id": ["Z", "Z"], "remaining_cod": [10.0, 10.0]},
        geometry=[square(0, 0, 1000), square(1000, 0, 1000)],
        crs=4548,
    )
    manifest = cod_capacity_world(tmp_path, zones)
    rules = load_rules(tmp_path / "rules.yaml", manifest)
    frame = gpd.GeoDataFrame({"id": ["x"], "emit_cod": [16.0]}, geometry=[square(900, 100, 200)], crs=4548)
    (v,) = screen_projects(projects_from_frame(frame, manifest.working_crs), manifest, rules)
    (trigger,) = v.triggers
    assert (trigger.feature_id, trigger.outcome, trigger.project_load) == ("Z", "reject", pytest.approx(16.0, rel=1e-4))


@pytest.mark.parametrize(("value", "reason"), [(None, "is not given"), ("lots", "text")])
def test_capacity_zone_without_a_number(tmp_path, value, reason):
    import pandas as pd

    zones = gpd.GeoDataFrame(
        {"id": ["Z1", "Z2"], "remaining_cod": pd.array([10.0, None]) if value is None else ["10", value]},
        geometry=[square(0, 0, 1000), square(1000, 0, 1000)],
        crs=4548,
    )
    manifest = cod_capacity_world(tmp_path, zones)
    if value is not None:
        from threelines.errors import RuleError

        with pytest.raises(
            RuleError, match="field 'remaining_cod' of layer 'z' is text; loads and ratios must be numbers"
        ):
            load_rules(tmp_path / "rules.yaml", manifest)
        return
    rules = load_rules(tmp_path / "rules.yaml", manifest)
    frame = gpd.GeoDataFrame({"id": ["x"], "emit_cod": [4.0]}, geometry=[square(900, 100, 200)], crs=4548)
    (v,) = screen_projects(projects_from_frame(frame, manifest.working_crs), manifest, rules)
    assert [(n.rule, n.reason, n.feature_id) for n in v.unresolved] == [
        ("cap", "feature attribute 'remaining_cod' is not given", "Z2")
    ]


def test_zonal_narrow_road_takes_every_cell_it_crosses(world):
    road = shapely.box(X0 + 1510, Y0 + 545, X0 + 2490, Y0 + 555)  # 980 m long, 10 m wide, in one row of 100 m cells
    v = screen_one(world, road, industry="C3982")
    (trigger,) = [t for t in v.triggers if t.rule == "sensitive"]
    assert trigger.message == "50% of 10 cells are class 3"
