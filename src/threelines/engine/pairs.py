"""Step 2 of the flow: the footprints measured against the layers, as tables of (project, feature) pairs.

Per vector layer one bulk query gives the pairs and their measures (see
:func:`threelines.engine.measure.measure_pairs`); per raster the statistic of
each footprint. The control units each footprint lies in (with their shares)
and the parts of footprints outside every unit are measured here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS

from threelines.curves import disc_centres
from threelines.engine.compile import Plan
from threelines.engine.measure import OVERLAP_FLOOR_M2, PAIR_FIELDS, Pairs, measure_pairs
from threelines.engine.verdict import UnitShare
from threelines.input.crs import CGCS2000, to_crs
from threelines.input.projects import Projects
from threelines.layers.cache import read_layer_cached
from threelines.layers.read import LayerData, read_layer
from threelines.layers.spec import Manifest
from threelines.layers.zonal import zonal_columns
from threelines.rules.decide import decide
from threelines.rules.expr import Expr

#: CGCS2000 longitude/latitude, one object for the process: transformers are kept by the identity of their CRSs.
_LONLAT = CRS(CGCS2000)

#: A part of a footprint outside every control unit is not reported while it is smaller than both
#: this area (m2) and :data:`GAP_SHARE` of the footprint: units digitised along a county edge leave
#: slivers of that size between them and the boundary, not places the rules miss.
GAP_M2 = 1.0
#: See :data:`GAP_M2`.
GAP_SHARE = 1e-4


@dataclass
class Measured:
    """The layers near the footprints, the pairs and statistics measured, the units and gaps of each footprint."""

    layers: dict[str, LayerData] = field(default_factory=dict)
    pairs: dict[str, Pairs] = field(default_factory=dict)
    zonal: dict[tuple, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    units: list[list[UnitShare]] = field(default_factory=list)
    gaps: dict[int, str] = field(default_factory=dict)


def measure_layers(
    plan: Plan,
    projects: Projects,
    manifest: Manifest,
    layer_cache: dict[str, LayerData] | None = None,
    cache_dir: Path | None = None,
) -> Measured:
    """Measure the footprints against every layer the rules and the access list use.

    Parameters
    ----------
    plan : Plan
        The compiled rules: a layer's far-looking rules are measured far only
        for the projects they concern.
    projects : Projects
    manifest : Manifest
    layer_cache, cache_dir
        As for :func:`threelines.engine.screen.screen_projects`.

    Returns
    -------
    Measured
    """
    measured = Measured(units=[[] for _ in range(len(projects))])
    radii = np.array([a.get("radius") or 0.0 for a in projects.attrs], dtype=float)
    centres = disc_centres(projects.geometry, radii)
    if not (centres != None).any():  # noqa: E711 (no point site: nothing measured as a circle)
        radii = centres = None
    for name in plan.vector_layers:
        if layer_cache is None:  # one screening: read only what lies near the footprints
            box = shapely.total_bounds(projects.geometry)
            reach = plan.reach[name] + 1.0
            box_near = (box[0] - reach, box[1] - reach, box[2] + reach, box[3] + reach)
            measured.layers[name] = read_layer(manifest.layers[name], manifest.working_crs, box_near)
        else:  # many chunks in one process: read each layer whole, once
            if name not in layer_cache:
                layer_cache[name] = read_layer_cached(manifest.layers[name], manifest.working_crs, cache_dir)
            measured.layers[name] = layer_cache[name]
        measured.pairs[name] = layer_pairs(plan, projects, name, measured.layers[name], radii, centres)
    measured.zonal = _zonal(plan, projects, manifest, cache_dir)
    if plan.unit_layer:
        units, pairs = measured.layers[plan.unit_layer], measured.pairs[plan.unit_layer]
        measured.units, outside = _unit_shares(plan.table.areas, units, pairs)
        measured.gaps = unit_gaps(projects, outside, units, manifest.working_crs)
    return measured


def _zonal(
    plan: Plan, projects: Projects, manifest: Manifest, cache_dir: Path | None
) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """Per (raster layer, statistic, classes) of the zonal rules, the statistic of each footprint and its cells.

    As the columns of :func:`~threelines.layers.zonal.zonal_columns`. Only
    the footprints one of those rules concerns are measured (the decisions
    read no other): the others get no data (NaN, no cells).
    """
    wanted: dict[tuple, np.ndarray] = {}
    for compiled in plan.rules:
        rule = compiled.rule
        if rule.test == "zonal":
            key = (rule.layer, rule.stat, rule.classes)
            wanted[key] = wanted[key] | compiled.relevant if key in wanted else compiled.relevant
    out = {}
    for (layer, stat, classes), relevant in wanted.items():
        which = np.flatnonzero(relevant)
        found = zonal_columns(
            projects.geometry[which], manifest.working_crs, manifest.layers[layer], stat, classes, cache_dir
        )
        if len(which) < len(projects):
            value, cells = np.full(len(projects), np.nan), np.zeros(len(projects), dtype=np.int64)
            value[which], cells[which] = found
            found = value, cells
        out[(layer, stat, classes)] = found
    return out


def layer_pairs(
    plan: Plan,
    projects: Projects,
    name: str,
    layer: LayerData,
    radii: np.ndarray | None = None,
    centres: np.ndarray | None = None,
) -> Pairs:
    """Measure the projects against one layer, looking far only where a far-looking rule needs it.

    Distances to features a footprint does not touch are only read by the
    layer's ``within_distance`` and ``outside`` rules: projects that none of
    them concerns (by kind, industry and ``when``) are measured against the
    features they touch only, and so are the features no such rule's
    condition can select (see :func:`far_features`). Each project's pairs
    come in the order one query over every project gives them.
    ``centres`` are the footprints' disc centres for ``radii``, when known.
    """
    reach, tree = plan.reach[name], layer.tree
    far_rules = [c for c in plan.rules if c.rule.layer == name and c.rule.reach_m > 0]
    if not far_rules:
        return measure_pairs(projects.geometry, projects.area_m2, tree, reach, radii, centres=centres)
    selectable = far_features(layer, [c.rule.condition for c in far_rules])
    far = np.logical_or.reduce([c.relevant for c in far_rules])
    if far.all():
        return measure_pairs(projects.geometry, projects.area_m2, tree, reach, radii, far=selectable, centres=centres)
    parts = []
    for group, distance in ((np.flatnonzero(far), reach), (np.flatnonzero(~far), 0.0)):
        mine = None if radii is None else radii[group]
        kept = None if centres is None else centres[group]
        found = measure_pairs(
            projects.geometry[group], projects.area_m2[group], tree, distance, mine, far=selectable, centres=kept
        )
        parts.append(replace(found, project=group[found.project]))
    order = np.argsort(np.concatenate([p.project for p in parts]), kind="stable")
    return Pairs(*(np.concatenate([getattr(p, f) for p in parts])[order] for f in PAIR_FIELDS))


def far_features(layer: LayerData, conditions: list[Expr | None]) -> np.ndarray | None:
    """Per feature: whether one of the far-looking rules' ``conditions`` may select it (None: any feature).

    A condition that reads only the ``feature`` map is decided once per
    feature (kept with the layer): a feature it rejects is never the
    evidence of those rules, so its distance need not be measured. A
    condition undecided for a feature (an attribute not given) keeps it. A
    rule without a condition, or one that reads anything else, needs every
    feature.
    """
    masks = []
    for expr in conditions:
        if expr is None or expr.reads.names != ("feature",):
            return None
        key = ("far", id(expr))
        kept = layer.derived.get(key)
        if kept is None or kept[0] is not expr:  # the condition kept too: its id stays its own
            kept = layer.derived[key] = (expr, _selected(layer, expr))
        masks.append(kept[1])
    return np.logical_or.reduce(masks)


def _selected(layer: LayerData, expr: Expr) -> np.ndarray:
    """Per feature: ``expr`` holds for it or cannot be decided; decided once per distinct value it reads."""
    seen: dict = {}
    out = np.empty(len(layer), dtype=bool)
    for f, attributes in enumerate(layer.attributes):
        variables = {"feature": attributes}
        key = expr.reads.key(variables)
        if key is None or key not in seen:
            decision = decide(expr, variables)
            value = decision.holds or decision.missing is not None
            if key is None:
                out[f] = value
                continue
            seen[key] = value
        out[f] = seen[key]
    return out


def _unit_shares(areas: np.ndarray, units: LayerData, pairs: Pairs) -> tuple[list[list[UnitShare]], np.ndarray]:
    """The control units each footprint lies in (largest share first), and per footprint the share outside them."""
    point = areas[pairs.project] == 0
    hit = np.flatnonzero(np.where(point, pairs.distance_m == 0, pairs.overlap_m2 > OVERLAP_FLOOR_M2))
    project, feature, overlap = pairs.project[hit], pairs.feature[hit], pairs.overlap_m2[hit]
    # A point on a boundary touches two units: it counts half in each.
    touched = np.bincount(project, minlength=len(areas))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(areas[project] == 0, 1.0 / touched[project], np.minimum(overlap / areas[project], 1.0))
    unit_codes, unit_classes = unit_texts(units)
    codes = unit_codes[feature]
    # Largest share first, then by code; the shares summed in that order.
    order = np.lexsort((codes.astype(str), -share, project)) if len(hit) else np.arange(0)
    out: list[list[UnitShare]] = [[] for _ in range(len(areas))]
    inside = [0.0] * len(areas)
    names, classes = units.names.tolist(), unit_classes.tolist()
    columns = (project[order], feature[order], codes[order], overlap[order], share[order])
    for p, f, code, overlap_m2, part in zip(*(c.tolist() for c in columns), strict=True):
        out[p].append(UnitShare(code, names[f], classes[f], overlap_m2, part))
        inside[p] += part
    return out, 1.0 - np.array(inside)


def unit_texts(units: LayerData) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's code and class as text (kept with the layer: the same for every chunk)."""
    kept = units.derived.get("texts")
    if kept is None:
        kept = units.derived["texts"] = (
            np.array([str(c) for c in units.ids], dtype=object),
            np.array([str(c) for c in units.classes], dtype=object),
        )
    return kept


def unit_gaps(projects: Projects, outside: np.ndarray, units: LayerData, working_crs: Any) -> dict[int, str]:
    """Per project with a part outside every control unit above the gap tolerance, the warning naming it.

    Parts smaller than both :data:`GAP_M2` and :data:`GAP_SHARE` of the
    footprint are slivers between the units and are not reported.
    """
    areas = projects.area_m2
    gap = np.maximum(outside, 0.0) * areas
    flagged = np.flatnonzero((areas > 0) & ((gap >= GAP_M2) | (outside >= GAP_SHARE)) & (gap > 0))
    if not len(flagged):
        return {}
    shapes = shapely.difference(projects.geometry[flagged], units.coverage)
    found = {}
    for p, gap_shape in zip(flagged.tolist(), shapes, strict=True):  # few: footprints partly outside the units
        parts = shapely.get_parts(gap_shape)
        if not len(parts) or shapely.area(gap_shape) < min(GAP_M2, GAP_SHARE * areas[p]):
            continue  # the shares summed short by rounding only
        found[p] = shapely.point_on_surface(parts[int(np.argmax(shapely.area(parts)))])
    if not found:
        return {}
    at = shapely.get_coordinates(to_crs(np.array(list(found.values()), dtype=object), working_crs, _LONLAT))
    lon, lat = at[:, 0], at[:, 1]
    return {
        p: f"{outside[p]:.1%} of the footprint lies outside every control unit of layer {units.spec.name!r} "
        f"({gap[p]:,.1f} m2, its largest part around lon {x:.6f}, lat {y:.6f}): rules cannot see it; "
        "check the footprint's CRS and the manifest"
        for p, x, y in zip(found, lon.tolist(), lat.tolist(), strict=True)
    }
