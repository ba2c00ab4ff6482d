"""What the page's map shows: the layers in EPSG:4490 (simplified, cut to a box, shifted for web maps) and zones.

Display only: nothing here feeds a screening. Coordinates are rounded and
simplified for a web map; the engine always works on the layers as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import shapely

from threelines.serve.problems import ServiceError

#: The web-map zoom the page asks the layers at (kept simplified and compressed from the start).
PAGE_ZOOM = 12.0


@dataclass(frozen=True)
class Shown:
    """A layer's GeoJSON for display, as sent: plain and gzip-compressed (None: not asked for)."""

    text: bytes
    gzipped: bytes | None


def zones_geojson(result, rules, profile: dict[str, Any]) -> str:
    """The zones in EPSG:4490 with their outcome, rules and area; the rules' outcome and title, and the summary."""
    zones = result.zones.to_crs(4490)
    features = []
    texts = shapely.to_geojson(shapely.set_precision(zones.geometry.to_numpy(), 1e-6))
    for zone, text in zip(zones.itertuples(), texts, strict=True):
        props = {
            "outcome": zone.outcome,
            "rules": [r for r in zone.rules.split(",") if r],
            "area_ha": round(float(zone.area_ha), 4),
        }
        features.append(f'{{"type":"Feature","properties":{orjson.dumps(props).decode()},"geometry":{text}}}')
    explain = {
        r.id: {"outcome": r.outcome, "title": r.title, "titles": dict(r.titles), "layer": r.layer,
               "dimension": r.dimension, "basis": r.basis}
        for r in rules.rules
    }  # fmt: skip
    # Access-list clauses fire in zones too: their text is their title.
    explain |= {
        c.id: {"outcome": c.outcome, "title": c.text, "titles": {}, "layer": None, "dimension": c.dimension,
               "basis": c.basis}
        for c in rules.clauses
    }  # fmt: skip
    extra = orjson.dumps({"profile": profile, "summary_m2": result.summary(), "rules": explain}).decode()[1:-1]
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]," + extra + "}"


def display_layers(manifest) -> dict[str, dict]:
    """Each vector layer in EPSG:4490 with its id, name and class, for the page's map."""
    import geopandas as gpd

    from threelines.layers.read import read_layer

    out = {}
    for name, spec in manifest.layers.items():
        if spec.role == "raster":
            continue
        data = read_layer(spec, manifest.working_crs)
        lonlat = gpd.GeoSeries(data.geometry, crs=manifest.working_crs).to_crs(4490).to_numpy()
        classes = data.classes if data.classes is not None else [None] * len(data)
        props = [
            {
                "id": str(i),
                "name": None if n is None else str(n),
                "class": None if c is None else str(c),
                "layer": name,
                "role": spec.role,
            }
            for i, n, c in zip(data.ids, data.names, classes, strict=True)
        ]
        out[name] = {"geometry": np.asarray(lonlat, dtype=object), "properties": props}
    return out


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """A ``west,south,east,north`` box in degrees from a query string, refused unless finite and ordered."""
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not np.isfinite(box).all() or box[0] >= box[2] or box[1] >= box[3]:
        raise ServiceError(422, "Invalid bbox", f"bbox {text!r}: give west,south,east,north in degrees, west < east")
    return box  # type: ignore[return-value]


def simplify_tolerance(zoom: float | None, tolerance: float | None) -> float:
    """Simplification step, degrees: as given, or half a pixel at a web-map zoom level."""
    if tolerance is not None:
        if not 0 <= tolerance <= 1:
            raise ServiceError(422, "Invalid tolerance", "tolerance: give degrees between 0 and 1")
        return float(tolerance)
    if zoom is None:
        return 0.0
    if not 0 <= zoom <= 24:
        raise ServiceError(422, "Invalid zoom", "zoom: give a web-map zoom level between 0 and 24")
    return 360.0 / (256 * 2**zoom) / 2


def to_web_offset(geoms: np.ndarray, crs: str) -> np.ndarray:
    """Shift lon/lat geometries to a web map's offset coordinates (GCJ-02 or BD-09), for display only."""
    from threelines.input.crs import gcj02_to_bd09, wgs84_to_gcj02

    kind = crs.strip().lower()
    if kind == "gcj02":
        return shapely.transform(geoms, wgs84_to_gcj02)
    if kind == "bd09":
        return shapely.transform(geoms, lambda xy: gcj02_to_bd09(wgs84_to_gcj02(xy)))
    raise ServiceError(422, "Invalid crs", f"crs {crs!r}: layers are shown in EPSG:4490, or shifted for gcj02 or bd09")
