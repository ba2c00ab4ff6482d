"""Distances measured on the parts of a feature within reach, and raster statistics only where a rule reads them."""

from __future__ import annotations

import numpy as np
import shapely

from threelines.engine import pairs as pairs_module
from threelines.engine.compile import compile_rules
from threelines.engine.measure import RING_BLOCK, _distances, _pairs_within, measure_pairs
from threelines.input.footprint import read_projects
from threelines.layers.read import read_layer
from threelines.layers.zonal import zonal_columns


def _features() -> np.ndarray:
    """Features of many vertices: a ring with a hole, a multipolygon, a plain polygon, a line."""
    disc = shapely.Point(0, 0).buffer(1000, quad_segs=64)
    holed = disc.difference(shapely.Point(0, 0).buffer(400, quad_segs=32))
    multi = shapely.MultiPolygon([shapely.Point(3000, 0).buffer(500, quad_segs=40), shapely.box(3600, -50, 3700, 50)])
    long_side = shapely.segmentize(shapely.box(-2000, 2000, 2000, 2100), 10)
    line = shapely.LineString([(-3000, -3000), (-1000, -2500), (0, -2600)])
    return np.array([holed, multi, long_side, line], dtype=object)


def _footprints(rng: np.random.Generator, n: int) -> np.ndarray:
    """Small squares and a few points scattered over the features' surroundings."""
    x, y = rng.uniform(-4000, 4500, n), rng.uniform(-4000, 3000, n)
    side = rng.uniform(5, 200, n)
    shapes = shapely.box(x, y, x + side, y + side)
    shapes[::7] = shapely.points(x[::7], y[::7])
    return shapes


def test_distances_are_those_of_the_whole_features():
    features = _features()
    assert (shapely.get_num_coordinates(features[:3]) > 8 * RING_BLOCK).all()  # many blocks each
    footprints = _footprints(np.random.default_rng(7), 400)
    # A footprint inside the hole, one in the multipolygon's gap, one touching nothing within reach.
    footprints = np.concatenate(
        [footprints, shapely.box([-50, 3520, 9000], [-50, -10, 9000], [50, 3580, 9010], [50, 10, 9010])]
    )
    left, right = np.meshgrid(np.arange(len(footprints)), np.arange(len(features)), indexing="ij")
    left, right = left.ravel(), right.ravel()
    apart = ~shapely.intersects(footprints[left], features[right])
    left, right = left[apart], right[apart]
    exact = shapely.distance(footprints[left], features[right])
    for reach in (0.001, 50.0, 300.0, 1e6):
        within = np.full(len(left), reach)
        got = _distances(footprints, features, left, right, within)
        close = exact <= reach
        assert close.any() or reach < 1
        np.testing.assert_array_equal(got[close], exact[close])  # to the last bit
        assert (got[~close] > reach).all()


def test_covered_and_met_as_the_predicates_say():
    features = _features()
    footprints = _footprints(np.random.default_rng(11), 600)
    # Inside a feature, across its edge, in its hole, on a vertex: every relation the two tests answer.
    extra = shapely.box(
        [-100, 900, -50, 3590, 1000], [-100, -50, -50, -10, -1], [100, 1100, 50, 3610, 1001], [100, 50, 50, 10, 1]
    )
    footprints = np.concatenate([footprints, extra, [shapely.Point(1000, 0)]])
    tree = shapely.STRtree(features)
    for reach in (0.001, 300.0):
        left, right, meets, inside, _ = _pairs_within(footprints, features, tree, reach)
        assert inside.sum() > 20
        assert (meets & ~inside).sum() > 20
        np.testing.assert_array_equal(meets, shapely.intersects(features[right], footprints[left]))
        np.testing.assert_array_equal(inside, shapely.covers(features[right], footprints[left]))


def test_pairs_beyond_reach_are_left_out(sample_dir, manifest):
    projects = read_projects(sample_dir / "projects.gpkg", manifest.working_crs)
    redline = read_layer(manifest.layers["redline"], manifest.working_crs)
    found = measure_pairs(projects.geometry, projects.area_m2, redline.tree, 500.0)
    features = np.asarray(redline.tree.geometries)
    exact = shapely.distance(projects.geometry[found.project], features[found.feature])
    assert (found.distance_m > 0).any()
    np.testing.assert_array_equal(found.distance_m, np.where(exact < 0.001, 0.0, exact))
    # Every pair within reach is there, and no other.
    every = shapely.distance(projects.geometry[:, None], features[None, :])
    assert {tuple(p) for p in np.argwhere(every <= 500.0)} == set(zip(found.project, found.feature, strict=True))


def test_raster_statistics_only_for_the_projects_a_zonal_rule_concerns(sample_dir, manifest, ruleset, monkeypatch):
    projects = read_projects(sample_dir / "projects.gpkg", manifest.working_crs)
    for attributes in projects.attrs[::2]:  # half of them emit nothing: the PM2.5 rule does not concern them
        attributes.update(emit_pm=0.0, emit_so2=0.0, emit_nox=0.0)
    plan = compile_rules(ruleset, manifest, projects)
    (rule,) = [c for c in plan.rules if c.rule.test == "zonal"]
    assert 0 < rule.relevant.sum() < len(projects)
    sizes = []

    def counted(footprints, *rest):
        sizes.append(len(footprints))
        return zonal_columns(footprints, *rest)

    monkeypatch.setattr(pairs_module, "zonal_columns", counted)
    measured = pairs_module.measure_layers(plan, projects, manifest)
    assert sizes == [rule.relevant.sum()]
    every = zonal_columns(projects.geometry, manifest.working_crs, manifest.layers[rule.rule.layer], rule.rule.stat)
    ((value, cells),) = measured.zonal.values()
    assert value.dtype == float
    assert cells.dtype == np.int64
    np.testing.assert_array_equal(value[rule.relevant], every[0][rule.relevant])  # NaN where NaN
    np.testing.assert_array_equal(cells[rule.relevant], every[1][rule.relevant])
    assert np.isnan(value[~rule.relevant]).all()
    assert (cells[~rule.relevant] == 0).all()
