"""Read a plain GeoJSON footprint without GDAL: the geometries, the declared CRS and the attribute cells.

The whole reading is a parse with orjson and a few vectorised shapely calls,
so screening one GeoJSON project imports neither pyogrio nor pandas nor
geopandas. It answers only where the answer is certainly the one GDAL's
reader gives (:func:`threelines.input.sources.read_source`): anything else
(broken or non-UTF-8 JSON, foreign members, a feature ``id``, geometry
collections, unclosed rings, 3D vertices, a ``crs`` other than an EPSG
code or CRS84, attributes GDAL would type otherwise: dates, booleans,
mixed text and numbers, nested values) gives None, and GDAL reads the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from threelines.collector import collector_held
from threelines.input.attributes import attribute_names, plain_cells
from threelines.input.geojson_coords import NotPlain, geojson_features, geojson_geometries

#: Members of a feature, and of each kind of document, that GDAL reads as no more than the features and their CRS.
_FEATURE_MEMBERS = {"type", "properties", "geometry", "bbox"}
_DOCUMENT_MEMBERS = {
    "FeatureCollection": {"type", "features", "crs", "name", "bbox"},
    "Feature": {*_FEATURE_MEMBERS, "crs"},
}
_GEOMETRY_MEMBERS = {"type", "coordinates", "bbox", "crs"}

#: ``crs`` names GDAL maps to an EPSG code, and the code.
_EPSG_NAME = re.compile(r"(?:urn:ogc:def:crs:EPSG:[\d.]*:|EPSG:)(\d{1,6})")
_CRS84 = "urn:ogc:def:crs:OGC:1.3:CRS84"

#: Text GDAL may take for a date, a time or a date-time (and type the column so).
_DATE_LIKE = re.compile(r"[\d\s:/.TZ+-]*[\d][-/:][\d\s:/.TZ+-]*")

#: Whole numbers beyond this may come out of GDAL as reals.
_LARGEST_INTEGER = 2**53


@dataclass
class PlainGeoJSON:
    """A GeoJSON footprint as :func:`~threelines.input.footprint.projects_from_arrays` takes it.

    Attributes
    ----------
    geometries : numpy.ndarray of shapely geometries
        One per feature (None: no geometry).
    crs : str
        The declared CRS (``EPSG:4326`` by RFC 7946 when there is none), as GDAL names it.
    cells : dict
        Per attribute of :data:`~threelines.input.attributes.ATTRIBUTES` given, one plain value per feature.
    """

    geometries: np.ndarray
    crs: str
    cells: dict[str, list[Any]]


def read_plain_geojson(data: bytes) -> PlainGeoJSON | None:
    """The features of a GeoJSON document, or None when GDAL's reader is to read it.

    Parameters
    ----------
    data : bytes
        The document: a FeatureCollection, a Feature or a bare geometry.

    Returns
    -------
    PlainGeoJSON or None
    """
    try:
        with collector_held():  # many small lists: the collector's passes over them cost more than the parse
            doc = orjson.loads(data)
            if not isinstance(doc, dict) or not doc.keys() <= _DOCUMENT_MEMBERS.get(doc.get("type"), _GEOMETRY_MEMBERS):
                return None
            crs = _declared_crs(doc.get("crs"))
            features, _ = geojson_features(doc)
            if crs is None or any(not f.keys() <= _FEATURE_MEMBERS for f in features):
                return None
            cells = _cells(features)
            if cells is None:
                return None
            geometries = geojson_geometries([f.get("geometry") for f in features])
    except (NotPlain, orjson.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError):
        return None
    return PlainGeoJSON(geometries, crs, cells)


def _declared_crs(member) -> str | None:
    """The CRS GDAL gives a document's ``crs`` member (WGS84 without one); None for any other form of it."""
    if member is None:
        return "EPSG:4326"
    if not isinstance(member, dict) or member.get("type") != "name" or not isinstance(member.get("properties"), dict):
        return None
    name = member["properties"].get("name")
    if name == _CRS84:
        return "EPSG:4326"
    found = _EPSG_NAME.fullmatch(name) if isinstance(name, str) else None
    return f"EPSG:{int(found.group(1))}" if found else None


def _cells(features: list[dict]) -> dict[str, list[Any]] | None:
    """The features' attribute cells as GDAL's typed columns give them; None when GDAL may type them otherwise."""
    columns: dict[str, list[Any]] = {}
    for n, feature in enumerate(features):
        properties = feature.get("properties")
        if properties is None:
            continue
        if not isinstance(properties, dict):
            return None
        for key, value in properties.items():
            columns.setdefault(key, [None] * len(features))[n] = value
    names = [key.lower() for key in columns]
    if len(set(names)) != len(names) or "geometry" in names:
        return None  # GDAL merges names that differ in case only; a 'geometry' property is its geometry column
    cells = {}
    for name, key in attribute_names(columns).items():
        values = columns[key]
        if _typed_otherwise(values):
            return None
        cells[name] = plain_cells(values)
    return cells


def _typed_otherwise(values: list) -> bool:
    """Whether GDAL may read a property's values as other than these (a date, a boolean, text of numbers, JSON)."""
    kinds = {type(v) for v in values} - {type(None)}
    if kinds <= {int, float}:
        return any(type(v) is int and abs(v) >= _LARGEST_INTEGER for v in values)
    if kinds == {str}:
        return any(_DATE_LIKE.fullmatch(v) for v in values if v is not None)
    return True
