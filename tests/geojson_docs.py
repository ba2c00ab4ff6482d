"""GeoJSON documents built in tests: a square near 南昌, features and collections."""

from __future__ import annotations

#: A 0.01° square south-east of (116.0, 28.0), in longitude/latitude.
SQUARE = [[116.0, 28.0], [116.01, 28.0], [116.01, 28.01], [116.0, 28.01], [116.0, 28.0]]
#: The old-style ``crs`` member naming CGCS2000 (EPSG:4490).
CGCS2000 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}


def feature(geometry, properties=None, **extra):
    """A Feature with these properties (none given: an empty object) and any other members."""
    return {
        "type": "Feature",
        "properties": properties if properties is not None else {},
        "geometry": geometry,
        **extra,
    }


def collection(*features, **extra):
    """A FeatureCollection of these features, with any other members before them."""
    return {"type": "FeatureCollection", **extra, "features": list(features)}
