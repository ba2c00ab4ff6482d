"""One manifest entry checked against its file (vector, raster) or PostGIS table, and made a :class:`LayerSpec`.

Everything that can be checked without reading features: the file or
table exists and can be read, its geometry type, its fields (id, name,
class), its CRS (or the entry's, for a file without one), its encoding
(a shapefile's, guessed when not given), a raster's band and orientation.
Also the two CRS helpers the manifest's checks share:
:func:`equal_area_metres` and :func:`union_lonlat` (the layers' extent).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS

from threelines.errors import CRSError, ManifestError
from threelines.input.crs import bounds_to_lonlat, parse_crs
from threelines.input.encoding import guess_encoding
from threelines.layers.postgis import describe, is_postgis_path, parse_source
from threelines.layers.spec import DEFAULT_CLASS_MAP, LayerSpec

#: Projection methods that preserve area (pyproj method names).
EQUAL_AREA_METHODS = (
    "Albers Equal Area", "Lambert Azimuthal Equal Area", "Lambert Cylindrical Equal Area", "Equal Earth",
    "Mollweide", "Sinusoidal",
)  # fmt: skip

#: Geometry types a layer may declare (GDAL names); "Unknown" covers mixed files, checked per feature.
POLYGON_TYPES = ("Polygon", "MultiPolygon", "Polygon Z", "MultiPolygon Z", "3D Polygon", "3D MultiPolygon", "Unknown")

#: Drivers whose files are UTF-8 by definition: an encoding override means nothing there.
UTF8_DRIVERS = ("GPKG", "GeoJSON", "GeoJSONSeq", "FlatGeobuf", "Parquet")


def equal_area_metres(crs: CRS) -> bool:
    """Tell whether a CRS is an equal-area projection with metre axes."""
    if not crs.is_projected or crs.coordinate_operation is None:
        return False
    method = crs.coordinate_operation.method_name.lower()
    units = {axis.unit_name for axis in crs.axis_info}
    return any(m.lower() in method for m in EQUAL_AREA_METHODS) and units == {"metre"}


def check_entry(entry: dict[str, Any], base: Path, where: str) -> LayerSpec:
    """Check one manifest entry against its file and build its spec."""
    name = entry["name"]
    if "source" in entry or is_postgis_path(entry["path"]):
        return _check_postgis(entry, where)
    if "\x00" in entry["path"]:
        raise ManifestError(f"{where}: layer {name!r}: the path contains a NUL character")
    file = (base / entry["path"]).resolve() if not Path(entry["path"]).is_absolute() else Path(entry["path"])
    if not file.exists():
        raise ManifestError(
            f"{where}: layer {name!r}: file {entry['path']} not found (paths are relative to the manifest)"
        )
    if not (file.is_file() or file.is_dir()):  # a FIFO, device or socket: opening it could hang
        raise ManifestError(
            f"{where}: layer {name!r}: {entry['path']} is not a regular file (a pipe, device or socket); "
            "give the data file"
        )
    if entry["role"] == "raster":
        return _check_raster(entry, file, where)
    import pyogrio

    try:
        info = pyogrio.read_info(
            file, layer=entry.get("layer"), encoding=entry.get("encoding"), force_total_bounds=True
        )
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, shapely.errors.ShapelyError) as exc:
        available = _layer_names(file)
        hint = f"; layers in the file: {', '.join(available)}" if available else ""
        raise ManifestError(f"{where}: layer {name!r}: cannot read {entry['path']}: {exc}{hint}") from None
    except LookupError:
        raise ManifestError(
            f"{where}: layer {name!r}: unknown encoding {entry['encoding']!r}; try GBK or UTF-8"
        ) from None
    except UnicodeDecodeError:
        raise ManifestError(
            f"{where}: layer {name!r}: {entry['path']} is not {entry.get('encoding') or 'UTF-8'} text; "
            "set 'encoding' in the entry (GBK for most Chinese shapefiles)"
        ) from None
    if info["geometry_type"] not in POLYGON_TYPES:
        raise ManifestError(
            f"{where}: layer {name!r}: {entry['path']} holds {info['geometry_type']} geometries; layers must be "
            "polygons (buffer lines and points into the areas they protect first)"
        )
    if entry.get("encoding") and info["driver"] in UTF8_DRIVERS:
        raise ManifestError(f"{where}: layer {name!r}: 'encoding' is for shapefiles; a {info['driver']} file is UTF-8")
    encoding = entry.get("encoding") or guess_encoding(file)
    fields = dict(zip(info["fields"], info["dtypes"], strict=True))
    _check_fields(entry, fields, entry["path"], where)
    if entry.get("crs") is not None:
        crs = _entry_crs(entry, where)
    elif info["crs"]:
        crs = CRS.from_user_input(info["crs"])
    else:
        raise ManifestError(
            f"{where}: layer {name!r}: {entry['path']} has no CRS; "
            "add 'crs: EPSG:4490' (or the right code) to the entry"
        )
    class_map = {**DEFAULT_CLASS_MAP, **{str(k): v for k, v in entry.get("class_map", {}).items()}}
    return LayerSpec(
        name=name,
        role=entry["role"],
        path=file,
        layer=entry.get("layer"),
        id_field=entry.get("id_field"),
        name_field=entry.get("name_field"),
        class_field=entry.get("class_field"),
        class_map=class_map,
        crs=crs,
        encoding=encoding,
        fields=fields,
        bounds=tuple(info["total_bounds"]) if info["total_bounds"] is not None else (np.nan,) * 4,
    )


def _check_postgis(entry: dict[str, Any], where: str) -> LayerSpec:
    """Check a manifest entry that names a PostGIS table or query, and build its spec."""
    name = entry["name"]
    if entry["role"] == "raster":
        raise ManifestError(f"{where}: layer {name!r}: a raster layer must be a file (GeoTIFF)")
    for key in ("layer", "encoding"):
        if key in entry:
            raise ManifestError(f"{where}: layer {name!r}: a PostGIS layer takes no {key}")
    source = parse_source(entry, where)
    info = describe(source, where, name)
    if not set(info["kinds"]) <= {"POLYGON", "MULTIPOLYGON"}:
        raise ManifestError(
            f"{where}: layer {name!r}: {source.label} holds {', '.join(info['kinds'])} geometries; layers must be "
            "polygons"
        )
    fields = info["fields"]
    if "id_field" not in entry:
        raise ManifestError(
            f"{where}: layer {name!r}: a PostGIS layer needs id_field (rows have no stable feature numbers); "
            f"fields: {', '.join(fields)}"
        )
    _check_fields(entry, fields, source.label, where)
    if entry.get("crs") is not None:
        crs = _entry_crs(entry, where)
    elif info["srid"]:
        crs = CRS.from_epsg(info["srid"])
    else:
        raise ManifestError(f"{where}: layer {name!r}: {source.label} has no SRID; add 'crs: EPSG:4490' to the entry")
    return LayerSpec(
        name=name, role=entry["role"], path=source.label, layer=None, id_field=entry.get("id_field"),
        name_field=entry.get("name_field"), class_field=entry.get("class_field"),
        class_map={**DEFAULT_CLASS_MAP, **{str(k): v for k, v in entry.get("class_map", {}).items()}},
        crs=crs, encoding=None, fields=fields, bounds=info["bounds"],
        source=dataclasses.replace(source, srid=info["srid"] or 0), geometry_column=info["geometry"],
    )  # fmt: skip


def _check_fields(entry: dict[str, Any], fields: dict[str, str], location: str, where: str) -> None:
    """The id, name and class fields an entry names must exist; a unit layer needs its class field."""
    name = entry["name"]
    for key in ("id_field", "name_field", "class_field"):
        if key in entry and entry[key] not in fields:
            raise ManifestError(
                f"{where}: layer {name!r}: {key} {entry[key]!r} is not a field of {location}; "
                f"fields: {', '.join(fields) or '(none)'}"
            )
    if entry["role"] == "unit" and "class_field" not in entry:
        raise ManifestError(
            f"{where}: layer {name!r}: a unit layer needs class_field (the column holding the unit class)"
        )


def _entry_crs(entry: dict[str, Any], where: str) -> CRS:
    try:
        return parse_crs(entry["crs"], what=f"{where}: layer {entry['name']!r}: crs")
    except CRSError as exc:
        raise ManifestError(str(exc)) from None


def _check_raster(entry: dict[str, Any], file: Path, where: str) -> LayerSpec:
    """Check a raster manifest entry: readable, with a CRS and the band asked for."""
    import rasterio
    from rasterio.errors import RasterioIOError

    name = entry["name"]
    for key in ("layer", "id_field", "name_field", "class_field", "class_map", "encoding"):
        if key in entry:
            raise ManifestError(f"{where}: layer {name!r}: a raster layer takes no {key}")
    try:
        with rasterio.open(file) as src:
            crs, bounds, count, transform = src.crs, tuple(src.bounds), src.count, src.transform
    except RasterioIOError as exc:
        raise ManifestError(f"{where}: layer {name!r}: cannot read {entry['path']} as a raster ({exc})") from None
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise ManifestError(
            f"{where}: layer {name!r}: {entry['path']} is not a north-up grid (rotated, or rows running south "
            "to north); warp it first, e.g. gdalwarp in.tif out.tif"
        )
    band = int(entry.get("band", 1))
    if not 1 <= band <= count:
        raise ManifestError(f"{where}: layer {name!r}: band {band} does not exist; {entry['path']} has {count}")
    if entry.get("crs") is not None:
        crs = _entry_crs(entry, where)
    elif crs is None:
        raise ManifestError(f"{where}: layer {name!r}: {entry['path']} has no CRS; add 'crs: EPSG:4490' to the entry")
    return LayerSpec(
        name=name, role="raster", path=file, layer=None, id_field=None, name_field=None, class_field=None,
        class_map={}, crs=CRS.from_user_input(crs), encoding=None, fields={}, bounds=bounds, band=band,
    )  # fmt: skip


def _layer_names(file: Path) -> list[str]:
    """Return the layer names of a data source, or [] if it cannot be listed."""
    import pyogrio

    try:
        return [str(row[0]) for row in pyogrio.list_layers(file)]
    except pyogrio.errors.DataSourceError:
        return []


def union_lonlat(specs) -> tuple[float, float, float, float]:
    """Return the lon/lat extent of all layers together."""
    boxes = np.array([bounds_to_lonlat(s.bounds, s.crs) for s in specs if np.all(np.isfinite(s.bounds))])
    if len(boxes) == 0:
        raise ManifestError("every layer in the manifest is empty; there is nothing to screen against")
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
