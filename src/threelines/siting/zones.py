"""Siting: where in a region a project of a given profile would pass, be conditional, or be rejected.

The region is cut by every line where a rule's answer can change: the
boundaries of the features of every layer the rules read, the edges of the
zones ``within_distance`` rules draw around features (features buffered by
the distance, to :data:`threelines.curves.CURVE_TOLERANCE_M` outside the true
distance line), and the edges of the raster cells where a zonal rule's
condition turns. Inside one piece of that overlay a small footprint meets
the same features, at the same side of every distance, over cells that all
answer alike; so each piece is screened once, through the same engine as
``screen``, with a small footprint inside it standing for any site there.
Pieces with the same outcome and rules are merged into zones.

What a piece cannot stand for: rules whose answer depends on the size of
the footprint (``min_overlap_m2`` above the footprint's area, conditions on
``overlap_ratio`` for sites that straddle zones, capacity charges shared
between zones) are evaluated as for a site wholly inside the piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from threelines.curves import outer_buffer
from threelines.engine.measure import M2_PER_MU
from threelines.errors import ThreelinesError
from threelines.layers.spec import Manifest
from threelines.rules import RuleSet

#: Radius (m) of the footprint that stands for any site inside a piece.
PROBE_RADIUS_M = 2.0
#: Pieces smaller than this (m2), or thinner on average than SLIVER_WIDTH_M (2 x area / perimeter), are
#: slivers between layers drawn in different CRSs; they take the outcome of the piece nearest to them.
SLIVER_M2 = 0.5
SLIVER_WIDTH_M = 0.05
#: Outcomes of zones, best first; ``unknown`` is where no control unit covers the region.
OUTCOMES = ("pass", "conditional", "reject", "unknown")


class SitingError(ThreelinesError, ValueError):
    """A siting request that cannot be answered (no region, a region outside the layers)."""


@dataclass
class Siting:
    """The zones of a region for one project profile, in the working CRS.

    Attributes
    ----------
    zones : geopandas.GeoDataFrame
        ``outcome``, ``rules`` (comma-separated ids of the rules that fire),
        ``area_m2``, ``area_ha``, ``area_mu``; they do not overlap and cover the region.
    region : shapely geometry
    pieces : int
        How many overlay pieces were screened.
    crs : pyproj.CRS
    """

    zones: gpd.GeoDataFrame
    region: Any
    pieces: int
    crs: CRS

    def summary(self) -> dict[str, float]:
        """Area (m2) by outcome, every outcome listed."""
        areas = self.zones.groupby("outcome")["area_m2"].sum()
        return {o: float(areas.get(o, 0.0)) for o in OUTCOMES if o != "unknown" or o in areas}

    def candidates(self, min_area_m2: float, units=None) -> gpd.GeoDataFrame:
        """Contiguous pass and conditional areas of at least ``min_area_m2``, largest first.

        Each has its ``rank``, ``outcome``, area, its centroid
        (``centroid_lon``, ``centroid_lat``) and a point surely inside it
        (``lon``, ``lat``), in EPSG:4490, and, with a unit layer, the
        ``units`` it lies in (codes, largest share first).
        """
        rows = []
        for outcome in ("pass", "conditional"):
            mine = self.zones.geometry[self.zones["outcome"] == outcome].to_numpy()
            if not len(mine):
                continue
            parts = shapely.get_parts(shapely.union_all(mine))
            areas = shapely.area(parts)
            for part, area in zip(parts, areas, strict=True):
                if area >= min_area_m2:
                    rows.append({"outcome": outcome, "area_m2": float(area), "geometry": part})
        frame = gpd.GeoDataFrame(rows, columns=["outcome", "area_m2", "geometry"], geometry="geometry", crs=self.crs)
        frame = frame.sort_values(["area_m2", "outcome"], ascending=[False, True], kind="stable").reset_index(drop=True)
        frame.insert(0, "rank", np.arange(1, len(frame) + 1))
        frame["area_ha"] = frame["area_m2"] / 1e4
        frame["area_mu"] = frame["area_m2"] / M2_PER_MU
        # The centroid, and a point surely inside (the centroid of a C-shaped area lies outside it).
        centroid = gpd.GeoSeries(shapely.centroid(frame.geometry.to_numpy()), crs=self.crs).to_crs(4490)
        frame["centroid_lon"], frame["centroid_lat"] = centroid.x.round(6), centroid.y.round(6)
        inside = gpd.GeoSeries(shapely.point_on_surface(frame.geometry.to_numpy()), crs=self.crs).to_crs(4490)
        frame["lon"], frame["lat"] = inside.x.round(6), inside.y.round(6)
        if units is not None:
            frame["units"] = [_units_of(g, units) for g in frame.geometry]
        return frame


def siting(manifest: Manifest, rules: RuleSet, profile: dict[str, Any], region=None) -> Siting:
    """Partition a region into pass, conditional and reject zones for a project profile.

    Parameters
    ----------
    manifest : Manifest
    rules : RuleSet
    profile : dict
        The hypothetical project's attributes (``industry``, ``kind``,
        ``emit_nox``, ...), as ``screen``'s options give them.
    region : shapely geometry, optional
        In the working CRS; by default the manifest's boundary layer, else
        its control units.

    Returns
    -------
    Siting
    """
    from threelines.layers.read import read_layer

    working = manifest.working_crs
    region = _default_region(manifest) if region is None else shapely.make_valid(region)
    if region is None or region.is_empty:
        raise SitingError(f"{manifest.path}: has no boundary or unit layer to take the region from; give --region")
    reach = max([r.reach_m for r in rules.rules] + [0.0])
    box = tuple(np.array(region.bounds) + np.array([-reach, -reach, reach, reach]) - np.array([1, 1, -1, -1]))
    lines = [shapely.boundary(region)]
    names = dict.fromkeys([*rules.layers(), *([manifest.unit_layer.name] if manifest.unit_layer else [])])
    for name in names:
        spec = manifest.layers[name]
        if spec.role == "raster":
            continue
        data = read_layer(spec, working, box)
        if not len(data):
            continue
        lines.append(shapely.boundary(data.geometry))
        for distance in sorted({r.distance_m for r in rules.rules if r.layer == name and r.test == "within_distance"}):
            if distance:
                # Within the curve tolerance outside the true distance line: a site it puts in the
                # band may lie up to 1 cm beyond the distance; none within it is left out.
                lines.append(shapely.boundary(outer_buffer(data.geometry, distance)))
    attrs = _probe(np.array([shapely.point_on_surface(region)]), manifest, profile).attrs[0]
    for rule in rules.rules:
        if rule.test == "zonal":
            lines.append(shapely.boundary(_zonal_regions(rule, manifest, region, attrs)))
    pieces = _overlay(lines, region)
    outcomes, fired = _screen_pieces(pieces, manifest, rules, profile)
    zones = gpd.GeoDataFrame({"outcome": outcomes, "rules": fired}, geometry=pieces, crs=working)
    zones = zones.dissolve(by=["outcome", "rules"], as_index=False, sort=True)
    zones["order"] = zones["outcome"].map(OUTCOMES.index)
    zones = zones.sort_values(["order", "rules"], kind="stable").drop(columns="order").reset_index(drop=True)
    zones["area_m2"] = zones.area
    zones["area_ha"] = zones["area_m2"] / 1e4
    zones["area_mu"] = zones["area_m2"] / M2_PER_MU
    return Siting(zones=zones, region=region, pieces=len(pieces), crs=working)


def region_from_boundary(manifest: Manifest, code: str):
    """The feature of the boundary layer whose id is ``code`` (e.g. an adcode), in the working CRS."""
    from threelines.layers.read import read_layer

    boundary = next((s for s in manifest.layers.values() if s.role == "boundary"), None)
    if boundary is None:
        raise SitingError(f"{manifest.path}: has no boundary layer to look up {code!r} in; give --region FILE")
    data = read_layer(boundary, manifest.working_crs)
    hits = [i for i, v in enumerate(data.ids) if str(v) == str(code)]
    if not hits:
        known = ", ".join(sorted(str(v) for v in data.ids)[:10])
        raise SitingError(f"layer {boundary.name!r}: no feature with id {code!r}; ids: {known}")
    return shapely.union_all(data.geometry[hits])


def _default_region(manifest: Manifest):
    from threelines.layers.read import read_layer

    for role in ("boundary", "unit"):
        spec = next((s for s in manifest.layers.values() if s.role == role), None)
        if spec is not None:
            return shapely.union_all(read_layer(spec, manifest.working_crs).geometry)
    return None


def _overlay(lines: list, region) -> np.ndarray:
    """The pieces the lines cut the region into (noded once, polygonised, kept inside the region)."""
    linework = [np.atleast_1d(np.asarray(g, dtype=object)) for g in lines]
    every = np.concatenate(linework)
    every = every[~shapely.is_empty(every)]
    clipped = shapely.intersection(every, shapely.buffer(region, 1.0))
    noded = shapely.union_all(clipped[~shapely.is_empty(clipped)])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    inside = shapely.intersection(faces, region)
    inside = shapely.get_parts(inside[~shapely.is_empty(inside)])
    inside = inside[np.isin(shapely.get_type_id(inside), (3, 6))]
    return inside[shapely.area(inside) > 0]


def _screen_pieces(pieces: np.ndarray, manifest: Manifest, rules: RuleSet, profile: dict[str, Any]):
    """Each piece's outcome and fired rules, from a small footprint inside it screened like any site.

    Slivers take the outcome and rules of the nearest piece that is not one.
    """
    from threelines.engine.screen import screen_projects

    points = shapely.point_on_surface(pieces)
    verdicts = screen_projects(_probe(points, manifest, profile, within=pieces), manifest, rules)
    outcomes, fired = [], []
    for verdict in verdicts:
        if manifest.unit_layer is not None and not verdict.units:
            outcomes.append("unknown")
            fired.append("")
            continue
        outcomes.append(verdict.verdict)
        fired.append(",".join(sorted({t.rule for t in verdict.triggers})))
    area = shapely.area(pieces)
    small = (area < SLIVER_M2) | (2 * area / shapely.length(pieces) < SLIVER_WIDTH_M)
    if small.any() and (~small).any():
        big = np.flatnonzero(~small)
        tree = shapely.STRtree(pieces[big])
        for i in np.flatnonzero(small):
            near = big[tree.query_nearest(pieces[i])[0]]
            outcomes[i], fired[i] = outcomes[near], fired[near]
    return outcomes, fired


def _probe(points: np.ndarray, manifest: Manifest, profile: dict[str, Any], within=None):
    """Small footprints at ``points`` (cut to ``within``) with the profile's attributes, checked like any input."""
    from threelines.input.footprint import projects_from_frame

    discs = shapely.buffer(points, PROBE_RADIUS_M)
    if within is not None:
        discs = shapely.intersection(within, discs)
        # Where the disc crosses a narrow neck of its piece the cut is not one polygon: the piece itself
        # (a footprint wholly inside it) stands for its sites instead.
        odd = (shapely.get_type_id(discs) != 3) | (shapely.area(discs) < 1e-3)
        discs[odd] = within[odd]
        # A piece that is an overlay's sliver of no area is no footprint: its whole disc probes it instead
        # (a sliver's outcome is taken from its neighbour anyway, see _screen_pieces).
        sliver = shapely.area(discs) < 1e-3
        discs[sliver] = shapely.buffer(points[sliver], PROBE_RADIUS_M)
    frame = gpd.GeoDataFrame(
        {"id": [f"piece-{i}" for i in range(len(points))]}, geometry=discs, crs=manifest.working_crs
    )
    projects = projects_from_frame(
        frame, manifest.working_crs, label="siting", overrides=profile, line_widths=manifest.line_widths
    )
    if projects.problems:
        raise SitingError(projects.problems[0].replace("siting: project 'piece-0': ", ""))
    return projects


def _zonal_regions(rule, manifest: Manifest, region, attrs: dict[str, Any]):
    """The cells of a zonal rule's raster where its condition holds for one cell, as polygons in the working CRS."""
    import rasterio
    from rasterio.features import shapes
    from rasterio.windows import Window, from_bounds

    from threelines.rules.decide import applies, decide_cached, project_context

    spec = manifest.layers[rule.layer]
    native = gpd.GeoSeries([region], crs=manifest.working_crs).to_crs(spec.crs).total_bounds
    with rasterio.open(spec.path) as src:
        exact = from_bounds(*native, transform=src.transform)
        window = exact.round_offsets().round_lengths()
        if window.width < 1 or window.height < 1:  # a region within one cell (rounded to nothing): that cell
            window = Window(int(np.floor(exact.col_off)), int(np.floor(exact.row_off)), 1, 1)
        values = src.read(spec.band, window=window, masked=True, boundless=False)
        transform = _window_transform(src.transform, window)
    data = np.ma.filled(values.astype(float), np.nan)
    unique = np.unique(data[np.isfinite(data)])
    # One cell's statistic: its value, or for ``share`` whether it is one of the classes.
    cell = np.isin(unique, rule.classes).astype(float) if rule.stat == "share" else unique
    context = project_context(attrs, PROBE_RADIUS_M**2 * np.pi)
    cache: dict = {}
    concerned = applies(rule, context, cache).holds
    holds = np.array(
        [concerned and decide_cached(rule.condition, {"project": context, "value": float(v), "cells": 1.0}, cache).holds
         for v in cell.tolist()],
        dtype=bool,
    )  # fmt: skip
    mask = np.isin(data, unique[holds])
    polygons = [shapely.geometry.shape(g) for g, v in shapes(mask.astype("uint8"), mask=mask, transform=transform)]
    if not polygons:
        return shapely.GeometryCollection()
    merged = shapely.segmentize(shapely.union_all(polygons), _cell_size(transform) / 4)
    return gpd.GeoSeries([merged], crs=spec.crs).to_crs(manifest.working_crs).iloc[0]


def _window_transform(transform, window):
    """The affine transform of a window (with ``@``: rasterio's own helper uses a deprecated operator)."""
    from affine import Affine

    return transform @ Affine.translation(window.col_off, window.row_off)


def _cell_size(transform) -> float:
    return float(min(abs(transform.a), abs(transform.e)))


def _units_of(geometry, units) -> str:
    """The codes of the control units a geometry lies in, largest share first."""
    hits = units.tree.query(geometry, predicate="intersects")
    shares = shapely.area(shapely.intersection(units.geometry[hits], geometry))
    order = np.argsort(-shares, kind="stable")
    return ",".join(str(units.ids[hits[i]]) for i in order if shares[i] > 0)
