"""The prepared-layer cache: layers read whole, reprojected, repaired and converted, kept on disk.

A batch's workers read every layer whole. Parsing a GeoPackage, reprojecting
and repairing its features and converting its attributes for the rules is
the same work on every run while the layer file does not change, so the
result is kept on disk: one file per layer, holding the working-CRS
geometries as coordinate arrays and, per feature, its id, name, unit class
and rule attributes (in one JSON document, which gives back exactly the
values the rules saw). It is read with numpy and
orjson, never unpickling anything (the folder may be written by anyone).

The geometries are kept as shapely's ragged arrays (one array of all the
coordinates and the offsets of the rings, polygons and parts: the layout of
GeoArrow), one set per geometry type, so that a worker builds them straight
from the coordinates in one vectorised call per type, without cutting out
each feature's bytes: 0.08 s for 12,000 red-line polygons of 4.3 million
vertices, against 0.47 s from WKB (0.13 s cutting out, 0.34 s parsing). Each geometry comes back exactly as it was
stored: the same type, parts, rings and coordinates bit for bit, in the same
order; a layer whose geometries the arrays would not give back identically
is not cached. (An ``.npz`` archive took half as long again to read: its
members go through zipfile in small chunks.)

The file is named after a SHA-256 of everything the result depends on: the
bytes of the layer's files (with a shapefile's sidecars), the manifest
entry's reading options, the working CRS, the GEOS and PROJ versions and
:data:`CACHE_FORMAT` with how long edges are densified
(:data:`threelines.densify.DENSIFY_VERSION` and the step). A changed layer file therefore misses and is read
afresh; old entries (of another format too) are never read again and the folder can be emptied at
any time. A cache entry that cannot be read is ignored and rebuilt; writes
go to a temporary file that is renamed into place, so a reader never sees
half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
from itertools import pairwise
from pathlib import Path

import numpy as np
import orjson
import pyproj
import shapely
from pyproj import CRS

from threelines.densify import DENSIFY_VERSION, densify_step
from threelines.layers.read import LayerData, read_layer
from threelines.layers.spec import LayerSpec
from threelines.rawio import read_into
from threelines.report.provenance import data_files, sha256_files

log = logging.getLogger(__name__)

#: Bumped whenever what a cache entry holds, or how a layer is prepared, changes.
CACHE_FORMAT = 5

#: The suffix of a cache entry's file.
CACHE_SUFFIX = ".layer"

#: The first bytes of a cache entry. It goes on: the length of a JSON header (8 bytes, little-endian), the header
#: (format, feature count, warnings, the size of each array), the features' JSON document, zero bytes up to a
#: multiple of 8, and the arrays of each geometry type in turn: its features' positions in the layer (int64),
#: its coordinates (x, y float64 pairs) and its offsets (int64, innermost first), as :func:`shapely.to_ragged_array`.
_MAGIC = b"THREELINES-LAYER\n"


def cache_key(spec: LayerSpec, working_crs: CRS) -> str:
    """The SHA-256 naming a layer's cache entry (see the module's description)."""
    digest = hashlib.sha256()
    options = {
        "format": CACHE_FORMAT, "name": spec.name, "role": spec.role, "layer": spec.layer,
        "id_field": spec.id_field, "name_field": spec.name_field, "class_field": spec.class_field,
        "class_map": sorted(spec.class_map.items()), "crs": spec.crs.to_wkt(), "encoding": spec.encoding,
        "fields": sorted(spec.fields.items()), "working_crs": working_crs.to_wkt(),
        "geos": shapely.geos_version_string, "proj": pyproj.proj_version_str,
        "densify": [DENSIFY_VERSION, densify_step(spec.crs)],
    }  # fmt: skip
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    digest.update(files_sha256(data_files(spec.path)).encode())
    return digest.hexdigest()


#: The sha256 of layer files already hashed in this process (a batch's provenance), by the files' identity.
_HASHED: dict[tuple, str] = {}


def remember_sha256(spec: LayerSpec, sha256: str | None) -> None:
    """Note a layer's files' sha256, computed elsewhere (for provenance), so that :func:`cache_key` need not hash them.

    It is used only while every file keeps its size, modification time and
    inode; worker processes started afterwards inherit it.
    """
    if spec.source is None and sha256 is not None:
        with contextlib.suppress(OSError):  # a file gone: cache_key says so when it hashes it
            _HASHED[_identity(data_files(spec.path))] = sha256


def files_sha256(files: list[Path]) -> str:
    """One sha256 over the files' bytes, as :func:`threelines.report.provenance.sha256_files`, or the one noted."""
    known = _HASHED.get(_identity(files))
    return known if known is not None else sha256_files(files)


def _identity(files: list[Path]) -> tuple:
    """What tells that files have not changed since they were hashed: path, size, modification time, inode."""
    out = []
    for path in files:
        info = path.stat()
        out.append((str(path), info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev))
    return tuple(out)


def read_layer_cached(spec: LayerSpec, working_crs: CRS, folder: Path | None) -> LayerData:
    """Read a layer whole, from the cache in ``folder`` when it holds it (``folder`` None: no cache).

    Parameters
    ----------
    spec : LayerSpec
    working_crs : pyproj.CRS
    folder : Path or None
        The cache folder (see :func:`threelines.cachedir.cache_folder`).

    Returns
    -------
    LayerData
        The same as :func:`threelines.layers.read.read_layer` gives; its warnings
        are logged again when it comes from the cache.

    Raises
    ------
    ManifestError
        As :func:`threelines.layers.read.read_layer`, when the layer is read afresh.
    """
    if folder is None or spec.source is not None:  # a database table changes without a file to hash
        return read_layer(spec, working_crs)
    try:
        path = folder / f"{cache_key(spec, working_crs)}{CACHE_SUFFIX}"
    except OSError:
        return read_layer(spec, working_crs)  # the layer file itself cannot be read: read_layer says so
    if path.exists():
        layer = _load(path, spec)
        if layer is not None:
            for message in layer.warnings:
                log.warning("%s", message)
            return layer
    layer = read_layer(spec, working_crs)
    _store(layer, path, working_crs)
    return layer


def _load(path: Path, spec: LayerSpec) -> LayerData | None:
    """A cache entry's layer, or None (with a note at -v) if it cannot be read."""
    try:
        # Read, not mapped: a mapped file that another process cuts short would kill this one (SIGBUS).
        with path.open("rb", buffering=0) as entry:
            size = os.fstat(entry.fileno()).st_size
            if len(_MAGIC) + 8 > size or _read(entry, 0, len(_MAGIC), size).tobytes() != _MAGIC:
                raise ValueError("not a cache entry")
            header_size = int(_read(entry, len(_MAGIC), 1, size, "<u8")[0])
            start = len(_MAGIC) + 8 + header_size
            header = orjson.loads(memoryview(_read(entry, len(_MAGIC) + 8, header_size, size)))
            if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
                raise ValueError(f"not a format {CACHE_FORMAT} cache entry")
            n, text_size = int(header["features"]), int(header["text"])
            text = memoryview(_read(entry, start, text_size, size))
            try:
                rows = orjson.loads(text)
            except orjson.JSONDecodeError:  # an attribute of Infinity, which only the json module writes and reads
                rows = json.loads(bytes(text))
            if len(rows) != n:
                raise ValueError("the geometries do not match the features")
            geometry = _geometries(entry, _aligned(start + text_size), header["geometry"], n, size)
        ids, names, classes, attributes = (list(column) for column in zip(*rows, strict=True)) if rows else ([],) * 4
        layer = LayerData(
            spec=spec,
            geometry=geometry,
            ids=_objects(ids),
            names=_objects(names),
            classes=_objects(classes) if spec.role == "unit" else None,
            attributes=attributes,
            warnings=list(header.get("warnings", [])),
        )
    except Exception as exc:  # any damage to a cache file means: read the layer afresh
        log.info("layer %r: cache entry %s cannot be used (%s); reading the layer again", spec.name, path, exc)
        return None
    return layer


def _read(entry, at: int, count: int, size: int, dtype: str = "u1", into: np.ndarray | None = None) -> np.ndarray:
    """``count`` values of ``dtype`` from byte ``at`` of the entry (into the start of ``into``, when given).

    The extent is checked against the entry's ``size`` before anything is
    allocated, so that a damaged header cannot ask for more memory than the
    file holds; a file cut short while it is read raises too.

    Raises
    ------
    ValueError
        If the values do not lie within the entry.
    """
    out = None if into is None else into[:count]
    width = np.dtype(dtype).itemsize
    if count < 0 or at < 0 or at + width * count > size or (out is not None and len(out) < count):
        raise ValueError("cut short, or a count out of range")  # (numpy would read a count of -1 as "all")
    out = np.empty(count, dtype=dtype) if out is None else out
    entry.seek(at)
    if not read_into(entry, out):  # cut short while it was read
        raise ValueError("cut short")
    return out


#: Coordinates (x, y pairs) made into geometries at a time when an entry is read: 4 MiB, read into one buffer
#: used again for each slice. Read whole, the red lines' entry of the hard benchmark set (70.7 MB) was a fresh
#: copy of itself in memory, and a fresh page costs the kernel a fault (0.3 us, and 4-10 us on the benchmark's
#: host when its hypervisor has taken free memory back); in slices it is read into the same pages again.
SLICE_COORDS = 256 * 1024


def _geometries(entry, at: int, groups: list[dict], n: int, size: int) -> np.ndarray:
    """The ``n`` geometries of a cache entry of ``size`` bytes, from its arrays from ``at`` on (as ``groups`` says).

    The offsets are checked before GEOS sees them (:func:`_check_offsets`):
    damaged arrays fail here, and nothing is read past them.
    The coordinates are read a slice of whole features at a time (see
    :data:`SLICE_COORDS`).
    """
    geometry = np.full(n, None, dtype=object)
    if sum(int(group["rows"]) for group in groups) != n:
        raise ValueError("the geometries do not match the features")
    buffer = np.empty(0, dtype="<f8")
    for group in groups:
        rows, kind, coords = int(group["rows"]), shapely.GeometryType(int(group["type"])), int(group["coords"])
        if min(rows, coords, *map(int, group["offsets"])) < 0:
            raise ValueError("a negative count")
        where = _read(entry, at, rows, size, "<i8")
        at += 8 * rows
        coords_at = at
        at += 16 * coords
        offsets = []
        for count in map(int, group["offsets"]):
            offsets.append(_read(entry, at, count, size, "<i8"))
            at += 8 * count
        if _check_offsets(kind, offsets, coords) != rows or not ((where >= 0) & (where < n)).all():
            raise ValueError("the geometries do not match the features")
        starts = np.arange(rows + 1)  # each feature's first coordinate (and the end of the last)
        for level in reversed(offsets):
            starts = level[starts]
        for first, last in _slices(starts):
            sliced, low, high = [], first, last
            for level in reversed(offsets):  # outermost first: each level's part, from 0, and what it spans below
                sliced.append(level[low : high + 1] - level[low])
                low, high = int(level[low]), int(level[high])
            if high == low and not sliced[0].any():  # features without parts (shapely's builder wants coordinates)
                geometry[where[first:last]] = shapely.from_wkt(f"{kind.name} EMPTY")
                continue
            if len(buffer) < 2 * (high - low):  # one buffer for every slice (a feature larger than a slice: larger)
                buffer = np.empty(2 * max(high - low, min(SLICE_COORDS, coords)), dtype="<f8")
            xy = _read(entry, coords_at + 16 * low, 2 * (high - low), size, "<f8", buffer)
            made = shapely.from_ragged_array(kind, xy.reshape(-1, 2), tuple(reversed(sliced)) or None)
            geometry[where[first:last]] = made  # (GEOS has copied the coordinates: the buffer is free again)
    if at != size:
        raise ValueError("cut short or too long")
    if shapely.is_missing(geometry).any():  # n positions, one given twice: another is left without its geometry
        raise ValueError("a feature without its geometry")
    return geometry


#: The levels of offsets of each geometry type's ragged arrays (innermost first: into the coordinates, ...).
RAGGED_LEVELS = {
    shapely.GeometryType.POINT: 0, shapely.GeometryType.LINESTRING: 1, shapely.GeometryType.POLYGON: 2,
    shapely.GeometryType.MULTIPOINT: 1, shapely.GeometryType.MULTILINESTRING: 2, shapely.GeometryType.MULTIPOLYGON: 3,
}  # fmt: skip


def _check_offsets(kind: shapely.GeometryType, offsets: list[np.ndarray], coords: int) -> int:
    """Refuse ragged offsets that shapely's builder must not see; returns how many geometries they make.

    Each level starts at 0, never goes back (compared value by value: a
    difference could wrap round) and ends at the count of the level below,
    so that every offset lies within what it points into. Rings without
    coordinates and polygons of a multipolygon without rings, which no
    layer gives, are refused too: shapely builds them by reading past its
    arrays.

    Raises
    ------
    ValueError
        If they are refused.
    """
    if RAGGED_LEVELS.get(kind) != len(offsets):
        raise ValueError(f"offsets of another geometry type than {kind.name}")
    inner = coords
    for level in offsets:
        if not len(level) or level[0] != 0 or level[-1] != inner or (level[1:] < level[:-1]).any():
            raise ValueError("offsets out of order")
        inner = len(level) - 1
    polygonal = kind in (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)
    for level in offsets[: 2 if kind == shapely.GeometryType.MULTIPOLYGON else 1 if polygonal else 0]:
        if (level[1:] == level[:-1]).any():
            raise ValueError("a ring without coordinates, or a polygon of a multipolygon without rings")
    return inner


def _slices(starts: np.ndarray) -> list[tuple[int, int]]:
    """Ranges of whole features holding at most :data:`SLICE_COORDS` coordinates (or one feature), from their starts."""
    cuts = [0]
    while cuts[-1] < len(starts) - 1:
        first = cuts[-1]
        last = int(np.searchsorted(starts, starts[first] + SLICE_COORDS, side="right")) - 1
        cuts.append(min(max(last, first + 1), len(starts) - 1))
    return list(pairwise(cuts))


def _store(layer: LayerData, path: Path, working_crs: CRS) -> None:
    """Write a layer's cache entry atomically; a cache that cannot be written is only noted (at -v)."""
    classes = layer.classes if layer.classes is not None else [None] * len(layer)
    rows = [list(row) for row in zip(layer.ids, layer.names, classes, layer.attributes, strict=True)]
    tmp = None
    try:
        text = json.dumps(rows, ensure_ascii=False).encode()
        groups, arrays = _ragged(np.asarray(layer.geometry, dtype=object))
        header = orjson.dumps({"format": CACHE_FORMAT, "layer": layer.spec.name, "crs": working_crs.to_wkt(),
                               "warnings": list(layer.warnings), "features": len(layer), "text": len(text),
                               "geometry": groups})  # fmt: skip
        head = [_MAGIC, struct.pack("<Q", len(header)), header, text]
        padding = bytes(_aligned(sum(map(len, head))) - sum(map(len, head)))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.writelines([*head, padding, *(a.tobytes() for a in arrays)])
        os.replace(tmp, path)
    except Exception as exc:  # the cache only saves time: never fail a run over it
        log.info("layer %r: cannot write the cache entry %s (%s)", layer.spec.name, path, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _ragged(geometry: np.ndarray) -> tuple[list[dict], list[np.ndarray]]:
    """The ragged arrays of each geometry type's features, and what the header says of them.

    Raises
    ------
    ValueError
        If the arrays would not give back a geometry identically (a
        geometry collection) or hold more than x and y (a z).
    """
    groups, arrays = [], []
    types = shapely.get_type_id(geometry)
    for kind in np.unique(types).tolist():
        where = np.flatnonzero(types == kind)
        ragged_type, coords, offsets = shapely.to_ragged_array(geometry[where])
        offsets = [np.asarray(level, dtype="<i8") for level in offsets]
        _check_offsets(ragged_type, offsets, len(coords))  # what a reader would refuse is not written
        back = shapely.from_ragged_array(ragged_type, coords, tuple(offsets) or None)
        if coords.shape[1] != 2 or not shapely.equals_identical(back, geometry[where]).all():
            raise ValueError("geometries that coordinate arrays do not give back as they are")
        groups.append({"type": int(ragged_type), "rows": len(where), "coords": len(coords),
                       "offsets": [len(level) for level in offsets]})  # fmt: skip
        arrays += [where.astype("<i8"), np.ascontiguousarray(coords, dtype="<f8"), *offsets]
    return groups, arrays


def _aligned(size: int) -> int:
    """``size`` rounded up to a multiple of 8 (where the arrays start: each value on its own 8 bytes)."""
    return -(-size // 8) * 8


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
