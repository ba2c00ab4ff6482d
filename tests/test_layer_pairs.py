"""Projects no far-looking rule concerns, and features no far-looking rule can select, are measured where they touch only."""

from __future__ import annotations

import numpy as np

from threelines.engine.compile import compile_rules
from threelines.engine.measure import PAIR_FIELDS, measure_pairs
from threelines.engine.pairs import far_features, layer_pairs
from threelines.input.footprint import read_projects
from threelines.layers.read import read_layer
from threelines.rules.decide import applies, project_context
from threelines.rules.expr import compile_expr

NAMES = ("project", "feature", "overlaps", "distance_m")


def test_far_pairs_only_where_a_far_rule_applies(sample_dir, manifest, ruleset):
    projects = read_projects(sample_dir / "projects.gpkg", manifest.working_crs)
    contexts = [project_context(a, area) for a, area in zip(projects.attrs, projects.area_m2, strict=True)]
    units = read_layer(manifest.layers["units"], manifest.working_crs)
    (outside,) = [r for r in ruleset.rules if r.layer == "units" and r.test == "outside"]
    far = np.array([applies(outside, c).holds or applies(outside, c).missing is not None for c in contexts])
    assert 0 < far.sum() < len(far)  # the chemical projects only
    full = measure_pairs(projects.geometry, projects.area_m2, units.tree, ruleset.reach_m("units"))
    got = layer_pairs(compile_rules(ruleset, manifest, projects), projects, "units", units)
    # The outside rule's condition is feature.is_park: other units are its evidence nowhere.
    park = np.array([a.get("is_park") is not False for a in units.attributes])
    assert 0 < park.sum() < len(park)
    keep = far[full.project] & park[full.feature] | (full.distance_m == 0)
    assert (~keep).sum() > 0  # pairs that were measured for nothing before
    for name in PAIR_FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(full, name)[keep])


def test_far_mask_keeps_touching_pairs(sample_dir, manifest):
    projects = read_projects(sample_dir / "projects.gpkg", manifest.working_crs)
    units = read_layer(manifest.layers["units"], manifest.working_crs)
    full = measure_pairs(projects.geometry, projects.area_m2, units.tree, 5000.0)
    far = np.zeros(len(units), dtype=bool)
    far[::2] = True
    got = measure_pairs(projects.geometry, projects.area_m2, units.tree, 5000.0, far=far)
    keep = far[full.feature] | (full.distance_m == 0)
    assert (~keep).sum() > 0
    assert (full.distance_m[keep] > 0).any()
    for name in PAIR_FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(full, name)[keep])


def test_far_features_need_a_feature_only_condition(manifest):
    units = read_layer(manifest.layers["units"], manifest.working_crs)
    park = far_features(units, [compile_expr("feature.is_park", NAMES)])
    np.testing.assert_array_equal(park, [a.get("is_park") is not False for a in units.attributes])
    assert far_features(units, [compile_expr("feature.is_park", NAMES), None]) is None
    assert far_features(units, [compile_expr("!overlaps", NAMES)]) is None
