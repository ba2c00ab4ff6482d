"""The layer manifest and the layers it names: read, check, reproject, index.

A manifest (YAML) lists the layers of one jurisdiction: red lines, control
units, quality-baseline zones and resource-cap zones. Loading a manifest
checks everything that can be checked without reading features (files,
layers, fields, CRS); :func:`read_layer` then reads the features near the
footprints, reprojects them once to the working CRS and indexes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer

from threelines import yamlio
from threelines.crs import bounds_to_lonlat, fitted_albers, parse_crs
from threelines.encoding import guess_encoding
from threelines.errors import CRSError, ManifestError

log = logging.getLogger(__name__)

#: What a layer can stand for (``raster``: a grid such as annual mean PM2.5, for zonal rules;
#: ``boundary``: the jurisdiction's outline, which the units should tile).
ROLES = ("redline", "unit", "quality", "cap", "raster", "boundary")

#: The three classes of environmental control unit.
UNIT_CLASSES = ("priority", "key", "general")

#: Class values as published, mapped to the three classes; extend per layer with ``class_map``.
DEFAULT_CLASS_MAP = {
    "priority": "priority", "优先保护单元": "priority", "优先保护": "priority", "1": "priority",
    "key": "key", "重点管控单元": "key", "重点管控": "key", "2": "key",
    "general": "general", "一般管控单元": "general", "一般管控": "general", "3": "general",
}  # fmt: skip


@dataclass(frozen=True)
class LayerSpec:
    """One manifest entry, checked against its file.

    Attributes
    ----------
    name, role : str
        The layer's name in rules, and what it stands for (one of ``ROLES``).
    path : Path
        The data file, resolved against the manifest's folder.
    layer : str or None
        The layer inside a multi-layer file (GeoPackage).
    id_field, name_field, class_field : str or None
        Attribute columns for the feature id, name and (units) class.
    class_map : dict
        Published class value -> ``priority`` / ``key`` / ``general``.
    crs : pyproj.CRS
        The file's CRS, or the manifest's override for a file without one.
    encoding : str or None
        Attribute encoding override (e.g. ``GBK`` for a shapefile without .cpg).
    fields : dict
        Attribute name -> numpy dtype name, as the file declares them (none for a raster).
    bounds : tuple of float
        The file's extent in its CRS.
    band : int
        The band a raster layer's rules read.
    """

    name: str
    role: str
    path: Path
    layer: str | None
    id_field: str | None
    name_field: str | None
    class_field: str | None
    class_map: dict[str, str]
    crs: CRS
    encoding: str | None
    fields: dict[str, str]
    bounds: tuple[float, float, float, float]
    band: int = 1


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: its layers by name and the working CRS."""

    path: Path
    name: str
    layers: dict[str, LayerSpec]
    working_crs: CRS

    @property
    def unit_layer(self) -> LayerSpec | None:
        """The control-unit layer, if the manifest has one."""
        return next((s for s in self.layers.values() if s.role == "unit"), None)


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a layer manifest.

    Parameters
    ----------
    path : str or Path
        The manifest YAML file.

    Returns
    -------
    Manifest

    Raises
    ------
    ManifestError
        For an unreadable or malformed manifest, a missing file, layer or
        field, an unknown role, or a layer without a CRS; the message starts
        with ``manifest:line:`` and says how to fix it.
    """
    path = Path(path)
    doc, problems = yamlio.load_checked(path, "manifest.schema.json", ManifestError, "manifest (--layers)")
    if problems:
        raise ManifestError(problems[0])
    specs: dict[str, LayerSpec] = {}
    for i, entry in enumerate(doc.data["layers"]):
        where = doc.where("layers", i)
        if entry["name"] in specs:
            raise ManifestError(f"{where}: layer name {entry['name']!r} is used twice; names must be unique")
        specs[entry["name"]] = _check_entry(entry, path.parent, where)
    units = [s.name for s in specs.values() if s.role == "unit"]
    if len(units) > 1:
        raise ManifestError(f"{path}: {len(units)} layers have role 'unit' ({', '.join(units)}); give exactly one")
    if "working_crs" in doc.data:
        try:
            working = parse_crs(doc.data["working_crs"], what=f"{doc.where('working_crs')}: working_crs")
        except CRSError as exc:
            raise ManifestError(str(exc)) from None
        if not _equal_area_metres(working):
            raise ManifestError(
                f"{doc.where('working_crs')}: working_crs {working.name!r} is not an equal-area projection in metres "
                "(areas would be wrong); use e.g. '+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=m', "
                "or leave it out to have one fitted to the layers"
            )
    else:
        working = fitted_albers(_union_lonlat(specs.values()))
    return Manifest(path=path, name=doc.data.get("name", path.stem), layers=specs, working_crs=working)


#: Projection methods that preserve area (pyproj method names).
EQUAL_AREA_METHODS = (
    "Albers Equal Area", "Lambert Azimuthal Equal Area", "Lambert Cylindrical Equal Area", "Equal Earth",
    "Mollweide", "Sinusoidal",
)  # fmt: skip

#: Geometry types a layer may declare (GDAL names); "Unknown" covers mixed files, checked per feature.
POLYGON_TYPES = ("Polygon", "MultiPolygon", "Polygon Z", "MultiPolygon Z", "3D Polygon", "3D MultiPolygon", "Unknown")

#: shapely type ids of polygons and multipolygons.
POLYGONAL_IDS = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)

#: Drivers whose files are UTF-8 by definition: an encoding override means nothing there.
UTF8_DRIVERS = ("GPKG", "GeoJSON", "GeoJSONSeq", "FlatGeobuf", "Parquet")


def _equal_area_metres(crs: CRS) -> bool:
    """Tell whether a CRS is an equal-area projection with metre axes."""
    if not crs.is_projected or crs.coordinate_operation is None:
        return False
    method = crs.coordinate_operation.method_name.lower()
    units = {axis.unit_name for axis in crs.axis_info}
    return any(m.lower() in method for m in EQUAL_AREA_METHODS) and units == {"metre"}


def _check_entry(entry: dict[str, Any], base: Path, where: str) -> LayerSpec:
    """Check one manifest entry against its file and build its spec."""
    name = entry["name"]
    if "\x00" in entry["path"]:
        raise ManifestError(f"{where}: layer {name!r}: the path contains a NUL character")
    file = (base / entry["path"]).resolve() if not Path(entry["path"]).is_absolute() else Path(entry["path"])
    if not file.exists():
        raise ManifestError(
            f"{where}: layer {name!r}: file {entry['path']} not found (paths are relative to the manifest)"
        )
    if entry["role"] == "raster":
        return _check_raster(entry, file, where)
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
    for key in ("id_field", "name_field", "class_field"):
        if key in entry and entry[key] not in fields:
            raise ManifestError(
                f"{where}: layer {name!r}: {key} {entry[key]!r} is not a field of {entry['path']}; "
                f"fields: {', '.join(fields) or '(none)'}"
            )
    if entry["role"] == "unit" and "class_field" not in entry:
        raise ManifestError(
            f"{where}: layer {name!r}: a unit layer needs class_field (the column holding the unit class)"
        )
    if entry.get("crs") is not None:
        try:
            crs = parse_crs(entry["crs"], what=f"{where}: layer {name!r}: crs")
        except CRSError as exc:
            raise ManifestError(str(exc)) from None
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
            crs, bounds, count = src.crs, tuple(src.bounds), src.count
    except RasterioIOError as exc:
        raise ManifestError(f"{where}: layer {name!r}: cannot read {entry['path']} as a raster ({exc})") from None
    band = int(entry.get("band", 1))
    if not 1 <= band <= count:
        raise ManifestError(f"{where}: layer {name!r}: band {band} does not exist; {entry['path']} has {count}")
    if entry.get("crs") is not None:
        try:
            crs = parse_crs(entry["crs"], what=f"{where}: layer {name!r}: crs")
        except CRSError as exc:
            raise ManifestError(str(exc)) from None
    elif crs is None:
        raise ManifestError(f"{where}: layer {name!r}: {entry['path']} has no CRS; add 'crs: EPSG:4490' to the entry")
    return LayerSpec(
        name=name, role="raster", path=file, layer=None, id_field=None, name_field=None, class_field=None,
        class_map={}, crs=CRS.from_user_input(crs), encoding=None, fields={}, bounds=bounds, band=band,
    )  # fmt: skip


def unit_codes(spec: LayerSpec) -> set[str]:
    """The unit codes of a unit layer (its ``id_field``, or FIDs), read without geometry."""
    try:
        frame = pyogrio.read_dataframe(
            spec.path, layer=spec.layer, encoding=spec.encoding, read_geometry=False, fid_as_index=True,
            columns=[spec.id_field] if spec.id_field else [],
        )  # fmt: skip
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise ManifestError(f"layer {spec.name!r}: cannot read {spec.path}: {exc}") from None
    values = frame[spec.id_field] if spec.id_field else frame.index
    return {str(_plain(v)) for v in values}


def _layer_names(file: Path) -> list[str]:
    """Return the layer names of a data source, or [] if it cannot be listed."""
    try:
        return [str(row[0]) for row in pyogrio.list_layers(file)]
    except pyogrio.errors.DataSourceError:
        return []


def _union_lonlat(specs) -> tuple[float, float, float, float]:
    """Return the lon/lat extent of all layers together."""
    boxes = np.array([bounds_to_lonlat(s.bounds, s.crs) for s in specs if np.all(np.isfinite(s.bounds))])
    if len(boxes) == 0:
        raise ManifestError("every layer in the manifest is empty; there is nothing to screen against")
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())


@dataclass
class LayerData:
    """The features of one layer near the footprints, in the working CRS.

    Attributes
    ----------
    spec : LayerSpec
    geometry : numpy.ndarray of shapely geometries
        Valid polygons in the working CRS.
    ids, names : numpy.ndarray
        The feature id (``id_field`` or the file's FID) and name per feature.
    classes : numpy.ndarray or None
        Unit class per feature (``priority`` / ``key`` / ``general``), units only.
    """

    spec: LayerSpec
    geometry: np.ndarray
    ids: np.ndarray
    names: np.ndarray
    classes: np.ndarray | None
    attributes: list[dict[str, Any]] = field(repr=False)

    @cached_property
    def tree(self) -> shapely.STRtree:
        """A spatial index over the features, built once on first use."""
        return shapely.STRtree(self.geometry)

    def __len__(self) -> int:
        return len(self.geometry)


def read_layer(spec: LayerSpec, working_crs: CRS, bbox: tuple[float, float, float, float] | None = None) -> LayerData:
    """Read a layer's features (all, or those meeting a box) into the working CRS.

    Parameters
    ----------
    spec : LayerSpec
        The checked manifest entry.
    working_crs : pyproj.CRS
        The CRS to reproject to.
    bbox : tuple of float, optional
        ``(minx, miny, maxx, maxy)`` in the working CRS; only features whose
        envelope meets it are read (through the file's spatial index).

    Returns
    -------
    LayerData

    Raises
    ------
    ManifestError
        If the file cannot be read, or a unit's class is not in ``class_map``.
    """
    native_bbox = None
    if bbox is not None:
        to_native = Transformer.from_crs(working_crs, spec.crs, always_xy=True)
        native_bbox = tuple(to_native.transform_bounds(*bbox, densify_pts=21))
    try:
        frame = pyogrio.read_dataframe(
            spec.path, layer=spec.layer, bbox=native_bbox, encoding=spec.encoding, fid_as_index=True
        )
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as exc:
        raise ManifestError(f"layer {spec.name!r}: cannot read {spec.path}: {exc}") from None
    except UnicodeDecodeError:
        raise ManifestError(
            f"layer {spec.name!r}: {spec.path} is not {spec.encoding or 'UTF-8'} text; set 'encoding' (e.g. GBK)"
        ) from None
    except shapely.errors.ShapelyError as exc:
        raise ManifestError(
            f"layer {spec.name!r}: {spec.path} has a geometry GEOS cannot build ({exc}); "
            "close every ring and give it at least 4 points"
        ) from None
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    polygonal = np.isin(shapely.get_type_id(frame.geometry.values), POLYGONAL_IDS)
    if not polygonal.all():
        log.warning(
            "layer %r: %d feature(s) that are not polygons were left out (FID %s)",
            spec.name, int((~polygonal).sum()), ", ".join(str(f) for f in frame.index[~polygonal][:5]),
        )  # fmt: skip
        frame = frame[polygonal]
    geometry = _to_working(frame.geometry.values, spec, working_crs, frame.index.to_numpy())
    ids = frame[spec.id_field].to_numpy(dtype=object) if spec.id_field else frame.index.to_numpy(dtype=object)
    names = frame[spec.name_field].to_numpy(dtype=object) if spec.name_field else np.full(len(frame), None, object)
    attributes = _records(frame.drop(columns=frame.geometry.name), spec.fields)
    classes = None
    if spec.role == "unit":
        classes = _unit_classes(frame[spec.class_field].to_numpy(dtype=object), ids, spec)
        for record, cls in zip(attributes, classes, strict=True):
            record["class"] = cls
    return LayerData(
        spec=spec,
        geometry=geometry,
        ids=np.array([_plain(v) for v in ids], dtype=object),
        names=names,
        classes=classes,
        attributes=attributes,
    )


def _to_working(geoms, spec: LayerSpec, working_crs: CRS, fids: np.ndarray) -> np.ndarray:
    """Reproject to the working CRS and repair invalid polygons, saying so."""
    from geopandas import GeoSeries

    series = GeoSeries(geoms, crs=spec.crs).to_crs(working_crs)
    out = series.values.to_numpy() if hasattr(series.values, "to_numpy") else np.asarray(series.values)
    out = shapely.force_2d(np.asarray(out, dtype=object))
    invalid = ~shapely.is_valid(out)
    if invalid.any():
        before = shapely.area(out[invalid])
        repaired = shapely.make_valid(out[invalid], method="structure", keep_collapsed=False)
        out[invalid] = repaired
        change = float(np.abs(shapely.area(repaired) - before).sum())
        log.warning(
            "layer %r: repaired %d invalid geometr%s (FID %s), area changed by %.1f m2; fix the source data",
            spec.name, int(invalid.sum()), "y" if invalid.sum() == 1 else "ies",
            ", ".join(str(f) for f in fids[invalid][:5]) + (" ..." if invalid.sum() > 5 else ""), change,
        )  # fmt: skip
    return out


def _unit_classes(raw: np.ndarray, ids: np.ndarray, spec: LayerSpec) -> np.ndarray:
    """Map published class values to priority / key / general, or fail naming the unit."""
    out = np.empty(len(raw), dtype=object)
    for i, value in enumerate(raw):
        key = str(_plain(value)).strip() if value is not None else ""
        cls = spec.class_map.get(key)
        if cls is None:
            raise ManifestError(
                f"layer {spec.name!r}: unit {_plain(ids[i])!r} has class {key!r}, which is not one of "
                f"{', '.join(UNIT_CLASSES)}; map it with class_map in the manifest entry"
            )
        out[i] = cls
    return out


def _plain(value: Any) -> Any:
    """Turn numpy scalars into plain Python values (JSON and CEL need them)."""
    return value.item() if isinstance(value, np.generic) else value


def _records(frame, declared: dict[str, str]) -> list[dict[str, Any]]:
    """Turn attribute rows into dicts for rule conditions.

    Numbers become floats (the rule language does not mix int and double),
    fields the file declares boolean become booleans (GDAL hands a boolean
    column with nulls over as 0.0 / 1.0 / NaN), and missing values are left
    out, so that ``has(feature.x)`` tells whether a value is set.
    """
    records = []
    columns = list(frame.columns)
    booleans = {c for c in columns if str(declared.get(c)) == "bool"}
    for row in frame.itertuples(index=False, name=None):
        record = {}
        for key, value in zip(columns, row, strict=True):
            value = _plain(value)
            if value is None or pd.isna(value) is True:  # None, NaN, pd.NA, NaT
                continue
            if key in booleans or isinstance(value, bool):
                record[key] = bool(value)
            elif isinstance(value, int | float):
                record[key] = float(value)
            elif hasattr(value, "isoformat"):
                record[key] = value.isoformat()
            else:
                record[key] = str(value)
        records.append(record)
    return records
