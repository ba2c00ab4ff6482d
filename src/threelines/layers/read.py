"""The layers of a manifest, read near the footprints, reprojected and indexed.

:func:`read_layer` reads the features of one layer (all, or those meeting a
box, through the file's spatial index), reprojects them once to the working
CRS, repairs invalid polygons with a warning, and indexes them. GDAL
(pyogrio) and pandas are imported only when a layer is read from its file:
one read back from the prepared-layer cache needs neither.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer

from threelines.densify import densify
from threelines.errors import ManifestError
from threelines.layers.spec import UNIT_CLASSES, LayerSpec

log = logging.getLogger(__name__)

#: shapely type ids of polygons and multipolygons.
POLYGONAL_IDS = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


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
    attributes : list of dict
        Per feature, the attributes rule conditions see.
    warnings : list of str
        What was logged while reading (repairs, features left out), to tell
        again when the layer comes from the prepared-layer cache.
    """

    spec: LayerSpec
    geometry: np.ndarray
    ids: np.ndarray
    names: np.ndarray
    classes: np.ndarray | None
    attributes: list[dict[str, Any]] = field(repr=False)
    warnings: list[str] = field(default_factory=list, repr=False)

    @cached_property
    def tree(self) -> shapely.STRtree:
        """A spatial index over the features, built once on first use."""
        return shapely.STRtree(self.geometry)

    @cached_property
    def derived(self) -> dict:
        """Columns derived from the features alone (feature codes, numbers), kept with the layer for every pass."""
        return {}

    @cached_property
    def coverage(self):
        """The union of the features, built once on first use (to find where footprints leave the units)."""
        return shapely.union_all(self.geometry)

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
    import pyogrio

    native_bbox = None
    if bbox is not None:
        to_native = Transformer.from_crs(working_crs, spec.crs, always_xy=True)
        native_bbox = tuple(to_native.transform_bounds(*bbox, densify_pts=21))
    try:
        frame = read_frame(spec, native_bbox)
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
    geoms = frame.geometry.values
    frame = frame[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    polygonal = np.isin(shapely.get_type_id(frame.geometry.values), POLYGONAL_IDS)
    warnings = []
    if not polygonal.all():
        warnings.append(
            f"layer {spec.name!r}: {int((~polygonal).sum())} feature(s) that are not polygons were left out "
            f"(FID {', '.join(str(f) for f in frame.index[~polygonal][:5])})"
        )
        frame = frame[polygonal]
    geometry = _to_working(frame.geometry.values, spec, working_crs, frame.index.to_numpy(), warnings)
    for message in warnings:
        log.warning("%s", message)
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
        warnings=warnings,
    )


def _to_working(geoms, spec: LayerSpec, working_crs: CRS, fids: np.ndarray, warnings: list[str]) -> np.ndarray:
    """Reproject to the working CRS and repair invalid polygons, saying so (in ``warnings``).

    Long edges are cut into pieces first, in the layer's own CRS, so that they
    stay where GIS draws them (see :func:`threelines.densify.densify`).
    """
    from geopandas import GeoSeries

    if not spec.crs.equals(working_crs):
        geoms = densify(np.asarray(geoms, dtype=object), spec.crs)
    series = GeoSeries(geoms, crs=spec.crs).to_crs(working_crs)
    out = series.values.to_numpy() if hasattr(series.values, "to_numpy") else np.asarray(series.values)
    out = shapely.force_2d(np.asarray(out, dtype=object))
    invalid = ~shapely.is_valid(out)
    if invalid.any():
        before = shapely.area(out[invalid])
        repaired = shapely.make_valid(out[invalid], method="structure", keep_collapsed=False)
        out[invalid] = repaired
        change = float(np.abs(shapely.area(repaired) - before).sum())
        listed = ", ".join(str(f) for f in fids[invalid][:5]) + (" ..." if invalid.sum() > 5 else "")
        warnings.append(
            f"layer {spec.name!r}: repaired {int(invalid.sum())} invalid geometr{'y' if invalid.sum() == 1 else 'ies'} "
            f"(FID {listed}), area changed by {change:.1f} m2; fix the source data"
        )
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
    import pandas as pd

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


def read_frame(spec: LayerSpec, native_bbox=None):
    """A layer's features as they are stored (all, or those whose box meets ``native_bbox``), FIDs as index.

    Files are read through pyogrio (with the file's spatial index), PostGIS
    layers through the table's GiST index, rows in ``id_field`` order.
    """
    if spec.source is not None:
        from threelines.layers.postgis import read_frame as read_table

        try:
            return read_table(spec.source, spec.geometry_column, spec.crs, native_bbox, order_by=spec.id_field)
        except ManifestError as exc:  # a timeout or a lost connection: say which layer
            raise ManifestError(f"layer {spec.name!r}: {exc}") from None
    import pyogrio

    return pyogrio.read_dataframe(
        spec.path, layer=spec.layer, bbox=native_bbox, encoding=spec.encoding, fid_as_index=True
    )


def unit_codes(spec: LayerSpec) -> set[str]:
    """The unit codes of a unit layer (its ``id_field``, or FIDs), read without geometry."""
    if spec.source is not None:
        return {str(_plain(v)) for v in read_frame(spec)[spec.id_field]}
    import pyogrio

    try:
        frame = pyogrio.read_dataframe(
            spec.path, layer=spec.layer, encoding=spec.encoding, read_geometry=False, fid_as_index=True,
            columns=[spec.id_field] if spec.id_field else [],
        )  # fmt: skip
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise ManifestError(f"layer {spec.name!r}: cannot read {spec.path}: {exc}") from None
    values = frame[spec.id_field] if spec.id_field else frame.index
    return {str(_plain(v)) for v in values}
