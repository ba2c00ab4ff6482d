"""The geometry behind a verdict: the footprint, each overlap piece, each nearest-distance line.

Reports draw it and write it as an evidence layer. The features are read
again near each footprint (through the files' spatial indexes) and the
pieces computed in bulk: one ``intersection`` call for every overlap
trigger of every project, one ``shortest_line`` call for every distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from threelines.engine.verdict import Verdict
from threelines.layers.read import LayerData, read_layer
from threelines.layers.spec import Manifest

#: Layer roles drawn on the map, bottom to top.
MAP_ROLES = ("unit", "quality", "cap", "redline", "boundary")

#: Columns of the evidence layer, besides ``geometry``.
EVIDENCE_COLUMNS = (
    "project_id", "piece", "rule", "outcome", "dimension", "layer", "feature_id", "feature_name",
    "overlap_m2", "overlap_ha", "overlap_mu", "overlap_ratio", "distance_m", "message", "basis",
)  # fmt: skip


@dataclass
class ProjectEvidence:
    """One project's verdict with its geometry, in the working CRS.

    Attributes
    ----------
    verdict : Verdict
    footprint : shapely geometry
    extent : tuple of float
        The map's box around the footprint and its evidence.
    context : dict of str to LayerData
        Per drawn layer, the features that meet the extent.
    pieces : geopandas.GeoDataFrame
        The footprint, then one row per overlap piece (``piece`` is
        ``overlap``) and per nearest-distance line (``distance``), with the
        trigger's attributes (:data:`EVIDENCE_COLUMNS`).
    """

    verdict: Verdict
    footprint: object
    extent: tuple[float, float, float, float]
    context: dict[str, LayerData]
    pieces: gpd.GeoDataFrame


def collect(verdicts: list[Verdict], footprints: list, manifest: Manifest) -> list[ProjectEvidence]:
    """Gather the evidence of several screened projects (features read once for all).

    Parameters
    ----------
    verdicts : list of Verdict
    footprints : list of shapely geometries
        Each verdict's footprint in the working CRS.
    manifest : Manifest

    Returns
    -------
    list of ProjectEvidence
    """
    if not verdicts:
        return []
    geoms = np.asarray(footprints, dtype=object)
    extents = np.array([_extent(v, g) for v, g in zip(verdicts, geoms, strict=True)])
    box = (extents[:, 0].min(), extents[:, 1].min(), extents[:, 2].max(), extents[:, 3].max())
    drawn = [s for role in MAP_ROLES for s in manifest.layers.values() if s.role == role]
    layers = {spec.name: read_layer(spec, manifest.working_crs, box) for spec in drawn}
    pieces = _pieces(verdicts, geoms, layers)
    out = []
    for p, (verdict, extent) in enumerate(zip(verdicts, extents, strict=True)):
        context = {name: _within(data, extent) for name, data in layers.items()}
        own = pieces[pieces["_p"] == p].drop(columns="_p").reset_index(drop=True)
        out.append(ProjectEvidence(verdict, geoms[p], tuple(map(float, extent)), context, own))
    return out


def _extent(verdict: Verdict, footprint) -> tuple[float, float, float, float]:
    """A box around the footprint wide enough to show what the triggers name."""
    minx, miny, maxx, maxy = shapely.bounds(footprint)
    reach = max([t.distance_m or 0.0 for t in verdict.triggers] + [0.0])
    margin = max(0.35 * max(maxx - minx, maxy - miny), reach * 1.15, 400.0)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = max(maxx - minx, maxy - miny) / 2 + margin
    return (cx - half * 1.25, cy - half, cx + half * 1.25, cy + half)  # 5:4, as the map is drawn


def _within(data: LayerData, extent) -> LayerData:
    """The features of a layer that meet a box."""
    hits = np.sort(data.tree.query(shapely.box(*extent)))
    return LayerData(
        spec=data.spec,
        geometry=data.geometry[hits],
        ids=data.ids[hits],
        names=data.names[hits],
        classes=None if data.classes is None else data.classes[hits],
        attributes=[data.attributes[i] for i in hits],
    )


def _pieces(verdicts: list[Verdict], footprints: np.ndarray, layers: dict[str, LayerData]) -> gpd.GeoDataFrame:
    """Footprints, overlap pieces and distance lines of every project, in one frame."""
    rows, left, right = [], [], []
    for p, verdict in enumerate(verdicts):
        rows.append(_row(p, verdict, "footprint", None))
        left.append(footprints[p])
        right.append(None)
        for t in verdict.triggers:
            data = layers.get(t.layer)
            if data is None or t.feature_id is None:
                continue  # zonal and project-only rules have no feature to draw
            # Features sharing an id (a zone in several parts) are one feature to the rules.
            same = np.flatnonzero(data.ids == t.feature_id)
            if not len(same):
                continue
            feature = shapely.union_all(data.geometry[same])
            if (t.overlap_m2 or 0.0) > 0:
                piece = "overlap"
            elif (t.distance_m or 0.0) > 0:
                piece = "distance"
            else:
                continue  # a point on a feature: the footprint itself shows it
            rows.append(_row(p, verdict, piece, t))
            left.append(footprints[p])
            right.append(feature)
    rows_frame = gpd.GeoDataFrame(rows)
    left_a, right_a = np.asarray(left, dtype=object), np.asarray(right, dtype=object)
    kinds = rows_frame["piece"].to_numpy()
    geometry = left_a.copy()
    over, dist = kinds == "overlap", kinds == "distance"
    if over.any():
        geometry[over] = shapely.intersection(left_a[over], right_a[over])
    if dist.any():
        geometry[dist] = shapely.shortest_line(left_a[dist], right_a[dist])
    return gpd.GeoDataFrame(rows_frame, geometry=geometry, crs=None)


def _row(p: int, verdict: Verdict, piece: str, trigger) -> dict:
    row = dict.fromkeys(EVIDENCE_COLUMNS)
    row.update(_p=p, project_id=verdict.project["id"], piece=piece)
    if trigger is None:
        row.update(outcome=verdict.verdict, feature_name=verdict.project["name"])
        return row
    for key in EVIDENCE_COLUMNS[2:]:
        row[key] = getattr(trigger, key)
    row["feature_id"] = str(trigger.feature_id)
    return row


def evidence_frame(evidence: list[ProjectEvidence], working_crs: CRS) -> gpd.GeoDataFrame:
    """Every project's pieces as one layer in the working CRS."""
    frames = [e.pieces for e in evidence]
    frame = gpd.GeoDataFrame(
        gpd.pd.concat(frames, ignore_index=True) if frames else None, columns=[*EVIDENCE_COLUMNS, "geometry"]
    )
    return frame.set_geometry("geometry").set_crs(working_crs, allow_override=True)
