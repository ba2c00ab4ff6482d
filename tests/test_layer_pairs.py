"""Projects no far-looking rule concerns are measured against the features they touch only."""

from __future__ import annotations

import numpy as np

from threelines.engine.compile import compile_rules
from threelines.engine.measure import PAIR_FIELDS, measure_pairs
from threelines.engine.pairs import layer_pairs
from threelines.input.footprint import read_projects
from threelines.layers.read import read_layer
from threelines.rules.decide import applies, project_context


def test_far_pairs_only_where_a_far_rule_applies(sample_dir, manifest, ruleset):
    projects = read_projects(sample_dir / "projects.gpkg", manifest.working_crs)
    contexts = [project_context(a, area) for a, area in zip(projects.attrs, projects.area_m2, strict=True)]
    units = read_layer(manifest.layers["units"], manifest.working_crs)
    (outside,) = [r for r in ruleset.rules if r.layer == "units" and r.test == "outside"]
    far = np.array([applies(outside, c).holds or applies(outside, c).missing is not None for c in contexts])
    assert 0 < far.sum() < len(far)  # the chemical projects only
    full = measure_pairs(projects.geometry, projects.area_m2, units.tree, ruleset.reach_m("units"))
    got = layer_pairs(compile_rules(ruleset, manifest, projects), projects, "units", units.tree)
    keep = far[full.project] | (full.distance_m == 0)
    assert (~keep).sum() > 0  # pairs that were measured for nothing before
    for name in PAIR_FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(full, name)[keep])
