"""``threelines layers check``: find what is wrong with a jurisdiction's layers.

Invalid and empty geometries (with where they are), duplicate feature ids,
attributes that look mis-decoded (a GBK file read as Latin-1), and control
units that do not tile the territory: overlaps between units and gaps no
unit covers, each with its area and location. Locations are CGCS2000
longitude/latitude (EPSG:4490) whatever the layer's CRS.
"""

from __future__ import annotations

import re

import numpy as np
import pyogrio
import shapely
from pyproj import Transformer

from threelines.errors import ManifestError, ThreelinesError
from threelines.input.crs import CGCS2000
from threelines.layers.read import read_frame, read_layer
from threelines.layers.spec import LayerSpec, Manifest

#: Overlaps and gaps between units smaller than this (m2), or thinner on average than
#: SLIVER_WIDTH_M, are noise from rounding coordinates (often in another CRS), not errors.
TILING_TOLERANCE_M2 = 1.0
SLIVER_WIDTH_M = 0.1

# Latin-1 characters in a row (C1 controls included): what GBK or UTF-8 Chinese looks like
# when read as Latin-1.
_MOJIBAKE = re.compile(r"[\u0080-\u00ff]{2,}")


def check_layers(manifest: Manifest) -> list[str]:
    """List every problem found in the manifest's layers.

    Parameters
    ----------
    manifest : Manifest

    Returns
    -------
    list of str
        One message per problem, naming the file, the feature and the place.
    """
    problems: list[str] = []
    for spec in manifest.layers.values():
        if spec.role != "raster":
            problems += _check_features(spec)
    units = manifest.unit_layer
    if units is not None:
        boundary = next((s for s in manifest.layers.values() if s.role == "boundary"), None)
        problems += _check_tiling(units, boundary, manifest)
    return problems


def _where(points, crs) -> list[str]:
    """Format points (in ``crs``) as CGCS2000 lon/lat."""
    xy = shapely.get_coordinates(points)
    lon, lat = Transformer.from_crs(crs, CGCS2000, always_xy=True).transform(xy[:, 0], xy[:, 1])
    return [f"{x:.5f}E {y:.5f}N" for x, y in zip(lon, lat, strict=True)]


def _check_features(spec: LayerSpec) -> list[str]:
    """Geometry validity, emptiness, duplicate ids and mis-decoded text of one layer."""
    try:
        frame = read_frame(spec)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, UnicodeDecodeError, ManifestError) as exc:
        return [f"{spec.location}: layer {spec.name!r}: cannot read it ({exc})"]
    except shapely.errors.ShapelyError as exc:
        return [f"{spec.location}: layer {spec.name!r}: a geometry GEOS cannot build ({exc})"]
    problems = []
    label = f"{spec.location}: layer {spec.name!r}"
    geoms = frame.geometry.values.to_numpy() if hasattr(frame.geometry.values, "to_numpy") else frame.geometry.values
    geoms = np.asarray(geoms, dtype=object)
    raw_ids = frame[spec.id_field].to_numpy(dtype=object) if spec.id_field else frame.index.to_numpy(dtype=object)
    ids = np.array(["" if v is None or v != v else str(v) for v in raw_ids], dtype=object)  # v != v: NaN
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for fid, code in zip(frame.index[empty], ids[empty], strict=True):
        problems.append(f"{label}: feature FID {fid} ({code}) has no geometry")
    invalid = ~empty & ~shapely.is_valid(geoms)
    if invalid.any():
        spots = _where(shapely.point_on_surface(shapely.make_valid(geoms[invalid])), spec.crs)
        reasons = shapely.is_valid_reason(geoms[invalid])
        for fid, code, reason, spot in zip(frame.index[invalid], ids[invalid], reasons, spots, strict=True):
            problems.append(f"{label}: feature FID {fid} ({code}) is invalid: {reason.split('[')[0]}, near {spot}")
    if spec.id_field:
        for fid in frame.index[ids == ""][:20]:
            problems.append(f"{label}: feature FID {fid} has no {spec.id_field}")
        values, counts = np.unique(ids[ids != ""], return_counts=True)
        for value in values[counts > 1]:
            fids = ", ".join(str(f) for f in frame.index[ids == value][:5])
            problems.append(
                f"{label}: {spec.id_field} {value!r} is used by {int((ids == value).sum())} features (FID {fids})"
            )
    texts = [c for c in frame.columns if c != frame.geometry.name and frame[c].map(type).eq(str).any()]
    for column in texts:
        sample = next((v for v in frame[column] if isinstance(v, str) and _MOJIBAKE.search(v)), None)
        if sample is not None:
            problems.append(
                f"{label}: field {column!r} looks mis-decoded (e.g. {sample[:20]!r}); "
                f"set 'encoding: {_real_encoding(sample)}' in the manifest"
            )
    return problems


def _real_encoding(text: str) -> str:
    """Guess what a mis-decoded string was really encoded in: UTF-8, else GBK."""
    try:
        text.encode("latin-1").decode("utf-8")
        return "UTF-8"
    except (UnicodeEncodeError, UnicodeDecodeError):
        return "GBK"


def _check_tiling(units: LayerSpec, boundary: LayerSpec | None, manifest: Manifest) -> list[str]:
    """Overlaps between units, and gaps inside their outline (or the boundary layer's)."""
    try:
        data = read_layer(units, manifest.working_crs)
    except ThreelinesError as exc:
        return [str(exc)]
    label = f"layer {units.name!r}"
    problems = []
    left, right = data.tree.query(data.geometry, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    pieces = shapely.intersection(data.geometry[left], data.geometry[right])
    areas = shapely.area(pieces)
    big = _significant(pieces)
    spots = _where(shapely.point_on_surface(pieces[big]), manifest.working_crs) if big.any() else []
    for a, b, area, spot in zip(left[big], right[big], areas[big], spots, strict=True):
        problems.append(f"{label}: units {data.ids[a]} and {data.ids[b]} overlap by {area:,.1f} m2 near {spot}")
    union = shapely.union_all(data.geometry)
    if boundary is not None:
        outline = shapely.union_all(read_layer(boundary, manifest.working_crs).geometry)
        gaps = shapely.difference(outline, union)
        outside = shapely.difference(union, outline)
        for piece in _big_parts(outside):
            problems.append(
                f"{label}: {shapely.area(piece):,.1f} m2 of units lie outside the boundary layer {boundary.name!r} "
                f"near {_where(shapely.point_on_surface(piece), manifest.working_crs)[0]}"
            )
    else:  # without a boundary, the gaps are the holes inside the units' outline
        holes = [shapely.Polygon(ring) for part in shapely.get_parts(union) for ring in part.interiors]
        gaps = shapely.union_all(holes) if holes else shapely.Polygon()
    for piece in _big_parts(gaps):
        problems.append(
            f"{label}: a gap of {shapely.area(piece):,.1f} m2 that no unit covers, "
            f"near {_where(shapely.point_on_surface(piece), manifest.working_crs)[0]}"
        )
    return problems


def _big_parts(geom) -> list:
    """The polygonal parts of a geometry that are not noise."""
    parts = shapely.get_parts(geom)
    return list(parts[(shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & _significant(parts)])


def _significant(pieces: np.ndarray) -> np.ndarray:
    """Pieces large and wide enough to be a real overlap or gap (mean width = 2 area / perimeter)."""
    area, perimeter = shapely.area(pieces), shapely.length(pieces)
    width = np.divide(2 * area, perimeter, out=np.zeros_like(area), where=perimeter > 0)
    return (area > TILING_TOLERANCE_M2) & (width >= SLIVER_WIDTH_M)
