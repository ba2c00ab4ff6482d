"""Uploads and request bodies, checked before any work: names, archives, GeoJSON and its footprints.

No request can name a path on the server (:func:`safe_upload_name`), an
archive is refused before it is unpacked when it is a zip bomb or points
outside itself (:func:`check_archive`), and a GeoJSON body becomes projects
as ``screen`` reads a file (:func:`geojson_projects`), each footprint's
vertices bounded first.
"""

from __future__ import annotations

import io
import re
import zipfile
from functools import lru_cache
from pathlib import PurePosixPath

import numpy as np
import orjson
import shapely

from threelines import limits
from threelines.errors import feature_at
from threelines.serve.problems import ServiceError, limit_error, refuse_over

#: Suffixes an upload may have (what ``screen`` reads); a name is kept only with one of them.
UPLOAD_SUFFIXES = (
    ".zip",
    ".kmz",
    ".kml",
    ".dxf",
    ".gpkg",
    ".geojson",
    ".json",
    ".fgb",
    ".gml",
    ".parquet",
    ".geoparquet",
    ".csv",
    ".xlsx",
    ".xls",
)

#: Zip local-file magic: a .kmz, .zip, .xlsx (itself a zip) are checked as archives.
ZIP_MAGIC = b"PK\x03\x04"


def read_json(body: bytes, label: str):
    """A request body as JSON, refused (422) with one line when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(
            422, "Invalid JSON", f"{label}: is not JSON ({exc}); send a GeoJSON Feature or FeatureCollection"
        ) from None


def geojson_projects(body: bytes, label: str, working_crs, *, crs=None, line_widths=None):
    """Projects in the working CRS from a GeoJSON Feature, FeatureCollection or bare geometry.

    The properties are the projects' attributes, checked as ``screen``
    checks a file's (:func:`~threelines.input.footprint.projects_from_arrays`).
    A body that is no usable GeoJSON raises :class:`ServiceError`; a file-level
    problem (no CRS fits) raises the reader's error, the projects' own problems
    are in their ``problems``.
    """
    from threelines.input.attributes import attribute_names, plain_cells
    from threelines.input.footprint import projects_from_arrays

    doc, geoms, columns = geojson_features(body, label)
    cells = {name: plain_cells(columns[column]) for name, column in attribute_names(columns).items()}
    return projects_from_arrays(
        geoms, _declared_crs(doc, label), cells, working_crs, label=label, crs=crs, line_widths=line_widths
    )


def geojson_features(body: bytes, label: str) -> tuple[dict, np.ndarray, dict[str, list]]:
    """The document, geometries and property columns of a GeoJSON Feature, FeatureCollection or bare geometry.

    RFC 7946 GeoJSON is WGS84 lon/lat; an old-style ``crs`` member (as GDAL
    writes, e.g. ``urn:ogc:def:crs:EPSG::4490``) is honoured, as ``screen``
    does for a file (see :func:`_declared_crs`). Each property is a column
    (in the order first seen) of one value per feature, None where a feature
    lacks it; nested values are JSON text. A property named ``geometry`` is
    left out: the footprint takes its place.
    """
    doc = read_json(body, label)
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise ServiceError(422, "Invalid GeoJSON", f"{label}: a FeatureCollection needs a 'features' array")
    elif kind == "Feature":
        features = [doc]
    elif kind in ("Polygon", "MultiPolygon", "LineString", "MultiLineString", "Point", "MultiPoint"):
        features = [{"type": "Feature", "properties": {}, "geometry": doc}]
    else:
        raise ServiceError(
            422,
            "Invalid GeoJSON",
            f"{label}: is not a GeoJSON Feature or FeatureCollection "
            f'(its type is {kind!r}); send {{"type": "Feature", "geometry": ..., "properties": ...}}',
        )
    if not features:
        raise ServiceError(422, "Invalid GeoJSON", f"{label}: has no features; send at least one footprint")
    refuse_over(
        f"{label}: features",
        len(features),
        "MAX_PROJECTS_PER_REQUEST",
        "split them over several requests, or use `threelines batch`",
    )
    columns: dict[str, list] = {}
    texts, names = [], []
    for n, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise ServiceError(422, "Invalid GeoJSON", f"{label}: {feature_at(n)}: is not a GeoJSON Feature object")
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise ServiceError(422, "Invalid GeoJSON", f"{label}: {feature_at(n)}: 'properties' must be an object")
        # Nested values are no attribute: as text, they are refused by the attribute's own check.
        row = {k: orjson.dumps(v).decode() if isinstance(v, dict | list) else v for k, v in props.items()}
        for key, value in row.items():
            columns.setdefault(key, [None] * len(features))[n] = value
        names.append(f"{label}: {feature_at(n)}" if row.get("id") is None else f"{label}: project {str(row['id'])!r}")
        geometry = feature.get("geometry")
        texts.append(None if geometry is None else orjson.dumps(geometry))
    columns.pop("geometry", None)
    geoms = np.empty(len(texts), dtype=object)
    present = [i for i, t in enumerate(texts) if t is not None]
    if present:
        parsed = shapely.from_geojson(np.array([texts[i] for i in present], dtype=object), on_invalid="ignore")
        bad = [present[k] for k in np.flatnonzero(shapely.is_missing(parsed)).tolist()]
        if bad:
            raise ServiceError(
                422,
                "Invalid GeoJSON",
                f"{label}: {feature_at(bad[0])}: its geometry is not valid "
                "GeoJSON (type and coordinates); fix it or leave the feature out",
            )
        geoms[present] = parsed
    # Before any work on them: a footprint of too many vertices is refused here.
    check_vertices(geoms, names)
    return doc, geoms, columns


def _declared_crs(doc: dict, label: str):
    """The CRS of a GeoJSON document: its old-style ``crs`` member, else WGS84 (RFC 7946)."""
    from pyproj.exceptions import CRSError

    member = doc.get("crs")
    if member is None:
        return _crs("EPSG:4326")
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    try:
        return _crs(str(name))
    except (CRSError, TypeError):
        raise ServiceError(
            422,
            "Invalid GeoJSON",
            f"{label}: its 'crs' member names no known CRS ({name!r}); leave it out (WGS84) or give ?crs=",
        ) from None


@lru_cache(maxsize=64)
def _crs(name: str):
    """A CRS by name, kept (building one from the PROJ database takes about a millisecond)."""
    from pyproj import CRS

    return CRS.from_user_input(name)


def check_vertices(geoms: np.ndarray, names: list[str]) -> None:
    """Refuse a footprint of more vertices than the limit, naming it (``names``: one per geometry)."""
    counts = shapely.get_num_coordinates(geoms)
    over = np.flatnonzero(counts > limits.MAX_VERTICES_PER_FOOTPRINT)
    if len(over):
        k = int(over[0])
        raise limit_error(
            f"{names[k]}: vertices",
            int(counts[k]),
            "MAX_VERTICES_PER_FOOTPRINT",
            "simplify the footprint",
        )


def safe_upload_name(filename: str | None) -> str:
    """The upload's name reduced to a plain file name (no folder, no path), with a suffix ``screen`` reads.

    No request can name a path on the server: only the last part of the
    name is kept, and only letters, digits, ``-``, ``_`` and ``.`` of it.
    """
    raw = PurePosixPath((filename or "").replace("\\", "/")).name
    suffix = PurePosixPath(raw).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ServiceError(
            422,
            "Unsupported upload",
            f"upload {raw or '(no name)'!r}: not a format screen reads by "
            f"its name; send one of {', '.join(UPLOAD_SUFFIXES)} (a shapefile zipped with its .shx, .dbf and .prj)",
        )
    stem = re.sub(r"[^\w-]", "_", PurePosixPath(raw).stem)[:64].strip("._") or "upload"
    return stem + suffix


def check_archive(data: bytes, name: str) -> None:
    """Refuse an archive that is unreadable, a zip bomb, too many members, or has members outside itself."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ServiceError(422, "Unreadable archive", f"{name}: is not a readable zip archive ({exc})") from None
    refuse_over(f"{name}: members", len(members), "MAX_UPLOAD_ARCHIVE_MEMBERS", "send fewer files")
    total = sum(m.file_size for m in members)
    refuse_over(f"{name}: uncompressed bytes", total, "MAX_UPLOAD_ARCHIVE_BYTES", "send a smaller archive")
    for member in members:
        path = member.filename.replace("\\", "/")
        if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or ".." in PurePosixPath(path).parts:
            raise ServiceError(
                422,
                "Unsafe archive",
                f"{name}: member {member.filename!r} points outside the archive "
                "(absolute or '..'); pack the files with relative names",
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024**2:  # a small member cannot be a bomb, however well it compresses
            refuse_over(
                f"{name}: member {member.filename!r}: compression ratio", ratio, "MAX_COMPRESSION_RATIO",
                "this looks like a zip bomb",
            )  # fmt: skip
