"""Read a plain GeoPackage footprint without GDAL: its geometries, CRS and attribute cells, through sqlite3.

A GeoPackage is an SQLite database: one table per layer, each geometry a
short header followed by standard WKB. Reading it here takes a query and
one vectorised :func:`shapely.from_wkb`, and spares a batch the import of
pyogrio (which imports pandas, geopandas and pyarrow: half a second before
the first project is read). It answers only where the answer is certainly
the one GDAL's reader gives (:func:`threelines.input.sources.read_source`):
a file of one feature table (or the layer named) in a CRS given by its EPSG
code, with text, integer and real columns holding values of their declared
type and geometries of the plain WKB types. Anything else (dates, booleans,
extended or empty geometries, curves, a CRS without its EPSG code, several
tables, a damaged file, ...) gives None, and GDAL reads the file.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from threelines.input.attributes import attribute_names

#: ``PRAGMA application_id`` of a GeoPackage ('GPKG').
_APPLICATION_ID = 0x47504B47

#: The bytes of a geometry header's envelope, by its envelope code (bits 1-3 of the flags byte).
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}

#: Flags of a geometry header this reader leaves to GDAL: an empty geometry, an extended (non-WKB) one.
_EMPTY, _EXTENDED = 0b10000, 0b100000

#: Declared column types and how GDAL reads them: text, 64-bit or 32-bit integers, doubles.
_TEXT = re.compile(r"TEXT(\(\d+\))?")
_INTEGERS, _REALS = ("INTEGER", "MEDIUMINT"), ("REAL", "DOUBLE")

#: Tables of the GeoPackage itself and of its extensions, not layers.
_OWN_TABLES = ("gpkg_", "gpkgext_", "rtree_", "sqlite_")


@dataclass
class PlainGeoPackage:
    """A GeoPackage footprint as :func:`~threelines.input.footprint.projects_from_arrays` takes it.

    Attributes
    ----------
    geometries : numpy.ndarray of shapely geometries
        One per feature (None: no geometry), in the table's order.
    crs : str
        The declared CRS, as GDAL names it (``EPSG:4490``).
    cells : dict
        Per attribute of :data:`~threelines.input.attributes.ATTRIBUTES`
        given, its column: text as a list (None where missing or blank),
        numbers as a numpy array (NaN where missing), as GDAL's reader gives them.
    """

    geometries: np.ndarray
    crs: str
    cells: dict[str, Any]


def count_features(text: str, layer: str | None = None) -> int | None:
    """How many features a plain GeoPackage's table holds, or None for a file GDAL is to read."""
    with _opened(text) as db:
        found = _table(db, layer) if db is not None else None
        return None if found is None else found[3]


def extent(text: str, layer: str | None = None) -> tuple[float, float, float, float] | None:
    """The extent a plain GeoPackage's table declares, as GDAL reports it; None when it declares none."""
    with _opened(text) as db:
        found = _table(db, layer) if db is not None else None
        if found is None:
            return None
        try:
            bounds = db.execute(
                "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?", (found[0],)
            ).fetchone()
        except sqlite3.Error:
            return None
    if bounds is None or not all(isinstance(b, int | float) for b in bounds):
        return None  # GDAL works the extent out from the geometries (or its spatial index)
    return tuple(float(b) for b in bounds)


def read_plain_geopackage(
    text: str, layer: str | None = None, *, skip: int = 0, limit: int | None = None
) -> PlainGeoPackage | None:
    """The features of a plain GeoPackage file (its one table, or ``layer``), or None when GDAL is to read it.

    Parameters
    ----------
    text : str
        The file.
    layer : str, optional
        The table to read; None: the file's only one.
    skip, limit : int, optional
        Read ``limit`` features from position ``skip`` (in the table's order, as GDAL reads them).

    Returns
    -------
    PlainGeoPackage or None
    """
    with _opened(text) as db:
        found = _table(db, layer) if db is not None else None
        if found is None:
            return None
        table, geometry, columns, _, crs = found
        piece = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(skip)}"
        try:
            rows = db.execute(
                f"SELECT {', '.join(_quoted(c) for c in (geometry, *columns))} FROM {_quoted(table)}{piece}"
            ).fetchall()
        except sqlite3.Error:  # text that is not UTF-8, a damaged page: GDAL says what is wrong
            return None
    if not rows:
        return None
    cells_by_column = dict(zip((geometry, *columns), map(list, zip(*rows, strict=True)), strict=True))
    geometries = _geometries(cells_by_column.pop(geometry))
    if geometries is None:
        return None
    cells = {}
    for name, column in attribute_names(list(columns)).items():
        cells[name] = _cells(cells_by_column[column], columns[column])
        if cells[name] is None:
            return None
    return PlainGeoPackage(geometries, crs, cells)


class _opened:
    """The file opened read-only (None when SQLite cannot open it as a GeoPackage); closed at the end."""

    def __init__(self, text: str) -> None:
        self.db: sqlite3.Connection | None = None
        path = Path(text)
        if path.suffix.lower() != ".gpkg" or not path.is_file():
            return
        try:
            self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            if self.db.execute("PRAGMA application_id").fetchone()[0] != _APPLICATION_ID:
                self.close()
        except sqlite3.Error:
            self.close()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def __enter__(self) -> sqlite3.Connection | None:
        return self.db

    def __exit__(self, *exc) -> None:
        self.close()


def _table(db: sqlite3.Connection, layer: str | None):
    """The feature table to read: ``(table, geometry column, {column: declared type}, features, crs)``, or None."""
    try:
        contents = db.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall()
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        if layer is None:  # GDAL's only layer: one table in the file, and not a view or an unregistered table
            own = [t for t in tables if not t.lower().startswith(_OWN_TABLES)]
            if len(contents) != 1 or len(own) != 1 or own[0] != contents[0][0]:
                return None
            layer = own[0]
        if (layer, "features") not in contents:
            return None
        described = db.execute(
            "SELECT g.column_name, g.z, g.m, s.organization, s.organization_coordsys_id, s.definition "
            "FROM gpkg_geometry_columns g JOIN gpkg_spatial_ref_sys s ON s.srs_id = g.srs_id WHERE g.table_name = ?",
            (layer,),
        ).fetchall()
        if len(described) != 1:
            return None
        geometry, _, m, organization, code, definition = described[0]
        crs = _epsg(organization, code, definition)
        info = db.execute(f"PRAGMA table_info({_quoted(layer)})").fetchall()
        columns = {name: str(kind).upper() for _, name, kind, _, _, pk in info if not pk and name != geometry}
        keys = [str(kind).upper() for _, _, kind, _, _, pk in info if pk]
        if m or crs is None or keys != ["INTEGER"] or geometry not in {row[1] for row in info} or _json(db, layer):
            return None
        if not all(_TEXT.fullmatch(kind) or kind in _INTEGERS + _REALS for kind in columns.values()):
            return None  # dates, booleans, blobs, 32-bit reals: GDAL's types for them
        features = _counted(db, layer)
        if features is None:  # GDAL counts the rows (and otherwise believes the count it keeps, as here)
            features = db.execute(f"SELECT count(*) FROM {_quoted(layer)}").fetchone()[0]
        if not features:
            return None  # no features: GDAL's refusal
    except sqlite3.Error:
        return None
    return layer, geometry, columns, features, crs


def _counted(db: sqlite3.Connection, table: str) -> int | None:
    """The feature count GDAL keeps in ``gpkg_ogr_contents`` (None: none kept)."""
    try:
        row = db.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = ?", (table,)).fetchone()
    except sqlite3.OperationalError:  # the file has no such table
        return None
    return None if row is None else row[0]


def _json(db: sqlite3.Connection, table: str) -> bool:
    """Whether a column of the table holds JSON (``gpkg_data_columns``), which GDAL's reader parses."""
    try:
        row = db.execute(
            "SELECT 1 FROM gpkg_data_columns WHERE table_name = ? AND mime_type IS NOT NULL", (table,)
        ).fetchone()
    except sqlite3.OperationalError:  # the file has no such table
        return False
    return row is not None


@functools.lru_cache(maxsize=16)  # a file is opened a few times (counted, then read): its CRS parsed once
def _epsg(organization, code, definition) -> str | None:
    """``EPSG:code`` for a CRS the file names by its EPSG code and defines as that code does; None otherwise."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    if str(organization).upper() != "EPSG" or type(code) is not int or not isinstance(definition, str):
        return None
    try:
        defined, named = CRS.from_wkt(definition), CRS.from_epsg(code)
    except CRSError:
        return None
    if defined.to_json_dict().get("id") != {"authority": "EPSG", "code": code} or defined != named:
        return None
    return f"EPSG:{code}"


def _geometries(blobs: list[Any]) -> np.ndarray | None:
    """Shapely geometries of GeoPackage geometry blobs (None stays None), or None when one is not plain WKB."""
    given = [blob for blob in blobs if blob is not None]
    if {*map(type, given)} - {bytes} or (given and min(map(len, given)) < 8):
        return None
    starts = {}  # per header start (magic, version, flags), checked once: where its WKB starts
    for head in {blob[:4] for blob in given}:
        if head[:3] != b"GP\x00" or head[3] & (_EMPTY | _EXTENDED):
            return None
        envelope = _ENVELOPE_BYTES.get((head[3] >> 1) & 0b111)
        if envelope is None:
            return None
        starts[head] = 8 + envelope
    wkbs = [None if blob is None else blob[starts[blob[:4]] :] for blob in blobs]
    try:
        with warnings.catch_warnings():
            # shapely's note on NaN coordinates: the footprint reader names each such feature (as from GDAL).
            warnings.filterwarnings("ignore", "invalid value encountered in from_wkb", RuntimeWarning)
            geometries = shapely.from_wkb(np.array(wkbs, dtype=object))
    except shapely.errors.ShapelyError:  # curves, unclosed rings: GDAL's reading of them
        return None
    if shapely.has_m(geometries).any():
        return None
    return geometries


def _cells(values: list[Any], kind: str):
    """A column's cells as GDAL's reader gives them, or None for values not of the declared type."""
    types = set(map(type, values))
    if kind in _INTEGERS and types <= {int, type(None)}:
        if None in values:  # integers with a gap come out as reals, NaN for the gap
            return np.array([np.nan if v is None else v for v in values], dtype=float)
        return np.array(values, dtype=np.int64)
    if kind in _REALS and types <= {float, type(None)}:
        return np.array([np.nan if v is None else v for v in values] if None in values else values, dtype=float)
    if _TEXT.fullmatch(kind) and types <= {str, type(None)}:
        given = [v for v in values if v is not None]
        if "\x00" in "".join(given):
            return None  # GDAL's text ends at a NUL
        if all(map(str.strip, given)):  # no blank text: the column as it is
            return values
        return [None if v is None or not v.strip() else v for v in values]
    return None


def _quoted(name: str) -> str:
    """An SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
