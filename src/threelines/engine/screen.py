"""The screening flow: footprints -> nearby features -> measures -> rules -> verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from geopandas import GeoDataFrame

from threelines import sample
from threelines.engine.measure import M2_PER_MU, OVERLAP_FLOOR_M2, PAIR_FIELDS, Pairs, measure_pairs
from threelines.engine.verdict import UnitShare, Verdict
from threelines.input.attributes import project_record
from threelines.input.footprint import Projects, projects_from_frame, read_projects
from threelines.layers.cache import read_layer_cached
from threelines.layers.manifest import Manifest, load_manifest
from threelines.layers.read import LayerData, read_layer
from threelines.layers.zonal import zonal_stats
from threelines.rules import RuleSet, load_rules
from threelines.rules.access_list import apply_clauses, clause_index, level_of_adcode
from threelines.rules.decide import applies, project_context
from threelines.rules.evaluate import evaluate_rule, evaluate_zonal

#: A part of a footprint outside every control unit is not reported while it is smaller than both
#: this area (m2) and :data:`GAP_SHARE` of the footprint: units digitised along a county edge leave
#: slivers of that size between them and the boundary, not places the rules miss.
GAP_M2 = 1.0
#: See :data:`GAP_M2`.
GAP_SHARE = 1e-4


@dataclass
class Screening:
    """The verdicts for a footprint file, and the features that could not be screened.

    ``footprints`` holds each verdict's footprint in the working CRS (lines
    already buffered) and ``crs`` the CRS the file came in, for reports that
    draw and write the evidence.
    """

    verdicts: list[Verdict]
    problems: list[str] = field(default_factory=list)
    footprints: list[Any] = field(default_factory=list)
    crs: Any = None


def screen(
    footprint: str | Path | GeoDataFrame,
    layers: str | Path | Manifest | None = None,
    rules: str | Path | RuleSet | None = None,
    *,
    crs: object = None,
    encoding: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Screening:
    """Screen the projects of a footprint file against the three lines and the list.

    Parameters
    ----------
    footprint : str, Path or geopandas.GeoDataFrame
        A vector file, corner table, zip or folder with one project per
        feature (``file.gpkg:layer`` picks a layer; ``-`` reads GeoJSON from
        stdin), or the footprints themselves as a GeoDataFrame.
    layers : str, Path or Manifest, optional
        The layer manifest; when omitted, ``THREELINES_LAYERS`` or a
        ``threelines.toml`` names it, else the bundled sample is used (with a
        warning, and the sample mark in every report).
    rules : str, Path or RuleSet, optional
        The rule file; the manifest's ``rules`` when omitted, else the
        configured or the sample's.
    crs : optional
        The footprint's CRS when the file has none.
    encoding : str, optional
        The footprint's attribute encoding (e.g. ``GBK``).
    overrides : dict, optional
        Project attributes applied to every feature (``industry``, ``kind``, ...).

    Returns
    -------
    Screening
        One :class:`Verdict` per usable feature, and a message per feature
        that could not be used.

    Raises
    ------
    ThreelinesError
        For an unusable manifest, rule file or footprint file.

    Examples
    --------
    >>> result = screen("data/sample/projects/p05_chemical_outside_park.geojson")  # doctest: +SKIP
    >>> result.verdicts[0].verdict  # doctest: +SKIP
    'reject'
    """
    manifest = layers if isinstance(layers, Manifest) else load_manifest(sample.resolve_layers(layers))
    ruleset = rules if isinstance(rules, RuleSet) else load_rules(sample.resolve_rules(rules, manifest.rules), manifest)
    if isinstance(footprint, GeoDataFrame):
        label = footprint.attrs.get("label", "<frame>")
        projects = projects_from_frame(
            footprint, manifest.working_crs, label=label, crs=crs, overrides=overrides, line_widths=manifest.line_widths
        )
    else:
        projects = read_projects(
            footprint, manifest.working_crs, crs=crs, encoding=encoding, overrides=overrides,
            line_widths=manifest.line_widths,
        )  # fmt: skip
    results = screen_checked(projects, manifest, ruleset)
    screened = [i for i, r in enumerate(results) if isinstance(r, Verdict)]
    return Screening(
        verdicts=[results[i] for i in screened],
        problems=list(projects.problems) + [r for r in results if isinstance(r, str)],
        footprints=[projects.geometry[i] for i in screened],
        crs=projects.crs,
    )


def screen_checked(
    projects: Projects,
    manifest: Manifest,
    rules: RuleSet,
    layer_cache: dict[str, LayerData] | None = None,
    cache_dir: Path | None = None,
) -> list[Verdict | str]:
    """Screen projects, refusing those that lie where the layers cannot judge them.

    A footprint outside the extent of every layer, or (with a unit layer)
    outside every control unit, is almost always in the wrong CRS or the
    wrong jurisdiction: a "pass" for it would be a confident wrong answer.
    ``layer_cache`` and ``cache_dir`` are as for :func:`screen_projects`.

    Returns
    -------
    list of Verdict or str
        Per project, in order: its verdict, or the message saying why it was
        not screened.
    """
    verdicts: list[Verdict | str] = list(screen_projects(projects, manifest, rules, layer_cache, cache_dir))
    where = (
        f"{manifest.jurisdiction_name} ({manifest.path}); give the layers of its jurisdiction with --layers, "
        "or check its CRS (--crs)"
    )
    for p in _outside_extent(projects, manifest):
        verdicts[p] = f"{projects.source}: project {projects.attrs[p]['id']!r}: lies outside the layers of {where}"
    if manifest.unit_layer is not None:
        for p, verdict in enumerate(verdicts):
            if isinstance(verdict, Verdict) and not verdict.units:
                project = f"{projects.source}: project {projects.attrs[p]['id']!r}"
                verdicts[p] = f"{project}: lies outside every control unit of {where}"
    return verdicts


def screen_projects(
    projects: Projects,
    manifest: Manifest,
    rules: RuleSet,
    layer_cache: dict[str, LayerData] | None = None,
    cache_dir: Path | None = None,
) -> list[Verdict]:
    """Screen projects already in the working CRS (the whole flow, step by step).

    Parameters
    ----------
    projects : Projects
    manifest : Manifest
    rules : RuleSet
    layer_cache : dict, optional
        Layers read whole, by name, kept between calls (for many chunks in
        one process); without it only the features near the projects are read.
    cache_dir : Path, optional
        The prepared-layer cache folder for layers read whole (see
        :mod:`threelines.layers.cache`); None: no disk cache.

    Returns
    -------
    list of Verdict
        In the order of ``projects``.
    """
    if len(projects) == 0:
        return []
    contexts = [project_context(a, area) for a, area in zip(projects.attrs, projects.area_m2, strict=True)]
    verdicts = [
        Verdict(project=project_record(a, area), jurisdiction=manifest.jurisdiction)
        for a, area in zip(projects.attrs, projects.area_m2, strict=True)
    ]
    _add_plane_areas(verdicts, projects.plane_area_m2)
    radii = np.array([a.get("radius") or 0.0 for a in projects.attrs], dtype=float)
    unit_layer = manifest.unit_layer.name if manifest.unit_layer else None
    names = dict.fromkeys([*rules.layers(), *([unit_layer] if unit_layer else [])])
    vectors = [n for n in names if manifest.layers[n].role != "raster"]

    # Read only the features within reach of the footprints, then measure in bulk.
    box = shapely.total_bounds(projects.geometry)
    data: dict[str, LayerData] = {}
    pairs: dict[str, Pairs] = {}
    for name in vectors:
        reach = rules.reach_m(name)
        if layer_cache is None:  # one screening: read only what lies near the footprints
            data[name] = read_layer(manifest.layers[name], manifest.working_crs, _grow(box, reach + 1.0))
        else:  # many chunks in one process: read each layer whole, once
            if name not in layer_cache:
                layer_cache[name] = read_layer_cached(manifest.layers[name], manifest.working_crs, cache_dir)
            data[name] = layer_cache[name]
        pairs[name] = _layer_pairs(projects, contexts, rules, name, data[name].tree, radii)

    zonal: dict[tuple, list] = {}
    for rule in rules.rules:
        if rule.test == "zonal":
            key = (rule.layer, rule.stat, rule.classes)
            if key not in zonal:
                spec = manifest.layers[rule.layer]
                zonal[key] = zonal_stats(projects.geometry, manifest.working_crs, spec, rule.stat, rule.classes)
            fired, unresolved = evaluate_zonal(rule, contexts, zonal[key])
        else:
            fired, unresolved = evaluate_rule(
                rule, contexts, projects.geometry, projects.area_m2, data[rule.layer], pairs[rule.layer]
            )
        for p, trigger in fired:
            verdicts[p].triggers.append(trigger)
        for p, note in unresolved:
            verdicts[p].unresolved.append(note)

    if unit_layer:
        for p, shares in _unit_shares(projects.area_m2, data[unit_layer], pairs[unit_layer]).items():
            verdicts[p].units = shares
        if rules.clauses:
            index = clause_index(rules.clauses)
            whole = level_of_adcode((manifest.jurisdiction or {}).get("adcode"))
            for verdict, context in zip(verdicts, contexts, strict=True):
                fired, required, unresolved, table = apply_clauses(
                    rules.clauses, context, verdict.units, unit_layer, index=index, whole_level=whole
                )
                verdict.triggers += fired
                verdict.requirements += required
                verdict.unresolved += unresolved
                verdict.clauses = table
        for p, message in _unit_gaps(projects, verdicts, data[unit_layer], manifest.working_crs).items():
            verdicts[p].warnings.append(message)
    return verdicts


def _add_plane_areas(verdicts: list[Verdict], plane: np.ndarray | None) -> None:
    """Give each project that came in a projected CRS its area in that plane (as the site drawing states it)."""
    if plane is None:
        return
    for verdict, area in zip(verdicts, plane.tolist(), strict=True):
        if area == area:  # not NaN: a projected input
            verdict.project.update(plane_area_m2=area, plane_area_mu=area / M2_PER_MU)


def _unit_gaps(projects: Projects, verdicts: list[Verdict], units: LayerData, working_crs) -> dict[int, str]:
    """Per project with a part outside every control unit above the gap tolerance, the warning naming it.

    Parts smaller than both :data:`GAP_M2` and :data:`GAP_SHARE` of the
    footprint are slivers between the units and are not reported.
    """
    areas = projects.area_m2
    share = np.array([1.0 - sum(u.share for u in v.units) for v in verdicts])
    gap = np.maximum(share, 0.0) * areas
    flagged = np.flatnonzero((areas > 0) & ((gap >= GAP_M2) | (share >= GAP_SHARE)) & (gap > 0))
    if not len(flagged):
        return {}
    outside = shapely.difference(projects.geometry[flagged], units.coverage)
    found = {}
    for p, gap_shape in zip(flagged.tolist(), outside, strict=True):  # few: footprints partly outside the units
        parts = shapely.get_parts(gap_shape)
        if not len(parts) or shapely.area(gap_shape) < min(GAP_M2, GAP_SHARE * areas[p]):
            continue  # the shares summed short by rounding only
        found[p] = shapely.point_on_surface(parts[int(np.argmax(shapely.area(parts)))])
    if not found:
        return {}
    from pyproj import Transformer

    at = shapely.get_coordinates(np.array(list(found.values()), dtype=object))
    lon, lat = Transformer.from_crs(working_crs, "EPSG:4490", always_xy=True).transform(at[:, 0], at[:, 1])
    return {
        p: f"{share[p]:.1%} of the footprint lies outside every control unit of layer {units.spec.name!r} "
        f"({gap[p]:,.1f} m2, its largest part around lon {x:.6f}, lat {y:.6f}): rules cannot see it; "
        "check the footprint's CRS and the manifest"
        for p, x, y in zip(found, lon.tolist(), lat.tolist(), strict=True)
    }


def _layer_pairs(
    projects: Projects, contexts: list[dict], rules: RuleSet, name: str, tree, radii: np.ndarray | None = None
) -> Pairs:
    """Measure the projects against one layer, looking far only for the projects a far-looking rule concerns.

    Distances to features a footprint does not touch are only read by the
    layer's ``within_distance`` and ``outside`` rules: projects that none of
    them concerns (by kind, industry and ``when``) are measured against the
    features they touch only. Each project's pairs come in the order one
    query over every project gives them.
    """
    reach = rules.reach_m(name)
    far_rules = [r for r in rules.rules if r.layer == name and r.reach_m > 0]
    if not far_rules:
        return measure_pairs(projects.geometry, projects.area_m2, tree, reach, radii)
    far = np.zeros(len(projects), dtype=bool)
    decided: dict = {}
    for rule in far_rules:
        decisions = [applies(rule, c, decided) for c in contexts]
        far |= np.array([d.holds or d.missing is not None for d in decisions], dtype=bool)
    if far.all():
        return measure_pairs(projects.geometry, projects.area_m2, tree, reach, radii)
    parts = []
    for group, distance in ((np.flatnonzero(far), reach), (np.flatnonzero(~far), 0.0)):
        mine = None if radii is None else radii[group]
        found = measure_pairs(projects.geometry[group], projects.area_m2[group], tree, distance, mine)
        parts.append(replace(found, project=group[found.project]))
    order = np.argsort(np.concatenate([p.project for p in parts]), kind="stable")
    return Pairs(*(np.concatenate([getattr(p, f) for p in parts])[order] for f in PAIR_FIELDS))


def _outside_extent(projects: Projects, manifest: Manifest) -> set[int]:
    """Projects whose footprint misses the box around all the manifest's layers."""
    box = _extent_box(manifest)
    return set(np.flatnonzero(~shapely.intersects(projects.geometry, box)).tolist()) if len(projects) else set()


#: The box of each manifest's extent in its working CRS, by the CRS object's id (hashing a CRS writes its WKT).
_EXTENT_BOXES: dict[int, tuple] = {}


def _extent_box(manifest: Manifest):
    """The layers' lon/lat extent as a box in the working CRS (kept: a transformer takes ~10 ms to build)."""
    from pyproj import Transformer

    crs, extent = manifest.working_crs, tuple(manifest.extent)
    kept = _EXTENT_BOXES.get(id(crs))
    if kept is None or kept[0] is not crs or kept[1] != extent:
        to_working = Transformer.from_crs("EPSG:4490", crs, always_xy=True)
        kept = (crs, extent, shapely.box(*to_working.transform_bounds(*extent, densify_pts=21)))
        _EXTENT_BOXES[id(crs)] = kept
    return kept[2]


def _grow(box: np.ndarray, by: float) -> tuple[float, float, float, float]:
    """Grow a bounding box by a distance on every side."""
    return (box[0] - by, box[1] - by, box[2] + by, box[3] + by)


def _unit_shares(areas: np.ndarray, units: LayerData, pairs: Pairs) -> dict[int, list[UnitShare]]:
    """The control units each footprint lies in, largest share first."""
    point = areas[pairs.project] == 0
    hit = np.where(point, pairs.distance_m == 0, pairs.overlap_m2 > OVERLAP_FLOOR_M2)
    # A point on a boundary touches two units: it counts half in each.
    touched = np.bincount(pairs.project[hit], minlength=len(areas))
    out: dict[int, list[UnitShare]] = {}
    for k in np.flatnonzero(hit).tolist():
        p, f = int(pairs.project[k]), int(pairs.feature[k])
        share = 1.0 / touched[p] if areas[p] == 0 else min(float(pairs.overlap_m2[k]) / float(areas[p]), 1.0)
        out.setdefault(p, []).append(
            UnitShare(
                code=str(units.ids[f]),
                name=units.names[f],
                class_=str(units.classes[f]),
                overlap_m2=float(pairs.overlap_m2[k]),
                share=share,
            )
        )
    for shares in out.values():
        shares.sort(key=lambda u: (-u.share, u.code))
    return out
