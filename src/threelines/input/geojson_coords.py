"""GeoJSON geometry objects to shapely arrays without GDAL: one vectorised build per geometry type.

Both GDAL-free readers use it: the plain footprint reader
(:mod:`threelines.input.geojson`) and the fast path for big GeoJSON files
(:func:`threelines.input.sources.read_source`). Anything outside the plain
form (3D or text coordinates, empty parts, unclosed or too short rings,
members GDAL may act on) raises :class:`NotPlain`, and GDAL's reader then
reads the file and judges it as usual.
"""

from __future__ import annotations

import importlib.util
from itertools import chain

import numpy as np
import orjson
import shapely

#: GeoJSON geometry types the fast path builds -> nesting of lists above the vertices.
_GEOJSON_DEPTH = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2, "MultiPolygon": 3}

#: Least vertices of a sound line or ring; fewer (or an unclosed ring) is left to GDAL's reader and its repair.
_LEAST_VERTICES = {"LineString": 2, "MultiLineString": 2, "Polygon": 4, "MultiPolygon": 4}


#: The bytes of a JSON list of lists of numbers.
_NUMBER_BYTES = b"0123456789.-+eE[],"


#: Whether pyarrow (the parquet extra) is installed: it converts vertices about three times as fast as numpy.
_HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None


#: Vertices from which pyarrow converts them (when it is installed).
_ARROW_VERTICES = 10_000


class NotPlain(Exception):
    """The GeoJSON is not in the plain form the fast path reads: GDAL reads it."""


def geojson_features(doc) -> tuple[list[dict], dict]:
    """The features of a GeoJSON document and the document GDAL reads for their attributes."""
    if not isinstance(doc, dict):
        raise NotPlain
    kind = doc.get("type")
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list) or not features:
            raise NotPlain
        if any(not isinstance(f, dict) or f.get("type") != "Feature" for f in features):
            raise NotPlain
        return features, doc
    if kind == "Feature":
        return [doc], doc
    if kind in _GEOJSON_DEPTH:  # a bare geometry: one feature without attributes
        feature = {"type": "Feature", "properties": {}, "geometry": doc}
        if "crs" in doc:
            feature["crs"] = doc.pop("crs")
        return [feature], feature
    raise NotPlain


def geojson_geometries(geometries: list) -> np.ndarray:
    """Shapely geometries of GeoJSON geometry objects (None stays None), one vectorised build per type."""
    out = np.full(len(geometries), None, dtype=object)
    by_kind: dict[str, list[int]] = {}
    for i, geometry in enumerate(geometries):
        if geometry is None:
            continue
        if not isinstance(geometry, dict) or not geometry.keys() <= {"type", "coordinates", "bbox"}:
            raise NotPlain  # a member GDAL may act on (a per-geometry crs, geometries of a collection)
        if geometry.get("type") not in _GEOJSON_DEPTH:
            raise NotPlain
        by_kind.setdefault(geometry["type"], []).append(i)
    for kind, positions in by_kind.items():
        out[positions] = _ragged(kind, [geometries[i]["coordinates"] for i in positions])
    return out


def _vertices(vertices: list) -> np.ndarray:
    """JSON ``[x, y]`` pairs as an (n, 2) array, converted in C (by pyarrow when it is installed).

    Anything else raises NotPlain: 3D or mixed vertices (GDAL gives a 3D
    file a 3D CRS), and text, null or true/false for a coordinate (which
    GDAL reads as no geometry).
    """
    # Below some thousands of vertices numpy is as quick, and a footprint needs no pyarrow import (0.1 s).
    return (
        _vertices_arrow(vertices) if _HAVE_PYARROW and len(vertices) >= _ARROW_VERTICES else _vertices_numpy(vertices)
    )


def _vertices_arrow(vertices: list) -> np.ndarray:
    import pyarrow as pa

    try:
        pairs = pa.array(vertices, type=pa.list_(pa.float64(), 2))  # refuses other lengths and text
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise NotPlain from None
    values = pairs.flatten()
    if pairs.null_count or values.null_count:
        raise NotPlain
    out = values.to_numpy()
    # pyarrow takes true and false as 1 and 0: look at the JSON only when such a value is there at all.
    if ((out == 0) | (out == 1)).any() and _not_only_numbers(vertices):
        raise NotPlain
    return out.reshape(-1, 2)


def _vertices_numpy(vertices: list) -> np.ndarray:
    # numpy turns "1" into 1.0, null into NaN and true into 1.0: only numbers may be there at all.
    if _not_only_numbers(vertices):
        raise NotPlain
    try:  # a third faster than np.array on a list of pairs
        counts = np.fromiter(map(len, vertices), dtype=np.int64, count=len(vertices))
        if (counts != 2).any():
            raise NotPlain
        out = np.fromiter(chain.from_iterable(vertices), dtype=np.float64, count=2 * len(vertices))
    except (ValueError, TypeError):  # a bare number for a vertex, a list for a coordinate
        raise NotPlain from None
    return out.reshape(-1, 2)


def _not_only_numbers(vertices: list) -> bool:
    """Whether the vertices' JSON holds anything but numbers, brackets and commas (text, null, true, false)."""
    return bool(orjson.dumps(vertices).translate(None, _NUMBER_BYTES))


def _ragged(kind: str, coordinates: list) -> np.ndarray:
    """Geometries of one type from their coordinate lists (2D vertices)."""
    depth = _GEOJSON_DEPTH[kind]
    level = [[c] for c in coordinates] if depth == 0 else coordinates
    offsets = []
    for _ in range(max(depth, 1)):  # counts of parts, rings and vertices: a loop over parts, not vertices
        counts = np.fromiter(map(len, level), dtype=np.int64, count=len(level))
        if (counts == 0).any():
            raise NotPlain  # empty geometries and parts: GDAL's reading of them
        offsets.append(np.concatenate([[0], np.cumsum(counts)]))
        level = list(chain.from_iterable(level))
    vertices = _vertices(level)
    least = _LEAST_VERTICES.get(kind)
    if least:
        starts, ends = offsets[-1][:-1], offsets[-1][1:]
        if (ends - starts < least).any():
            raise NotPlain
        if kind.endswith("Polygon") and (vertices[starts] != vertices[ends - 1]).any():
            raise NotPlain  # an unclosed ring: GDAL's reader, then the repair that says so
    kind_id = getattr(shapely.GeometryType, kind.upper())
    if depth == 0:
        return shapely.points(vertices)
    return shapely.from_ragged_array(kind_id, vertices, tuple(offsets[::-1]))
