"""Open whatever a consultant was sent as footprint sources: one file, a zip, a folder, stdin.

Vector files (Shapefile, GeoJSON, GeoPackage, KML/KMZ, DXF, FlatGeobuf,
GeoParquet and anything else GDAL reads), corner-coordinate tables (CSV,
XLSX), zip archives and folders of them (each file inside is a source), and
GeoJSON on standard input (``-``). Each source is a GeoDataFrame with a
label for messages and a stem for default project ids.
"""

from __future__ import annotations

import io
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from threelines.corners import TABLE_SUFFIXES, is_table, read_corners
from threelines.encoding import guess_encoding
from threelines.errors import FootprintError

#: File endings read as vector data from a folder or a zip (other members are skipped).
VECTOR_SUFFIXES = (".shp", ".geojson", ".json", ".gpkg", ".kml", ".kmz", ".dxf", ".fgb", ".parquet", ".gml")


@dataclass
class Source:
    """One readable input: its features, how to name it, and the stem of default ids."""

    frame: gpd.GeoDataFrame
    label: str
    stem: str


def open_sources(path: str | Path, encoding: str | None = None) -> tuple[list[Source], list[str]]:
    """Open a footprint input as one or more sources.

    Parameters
    ----------
    path : str or Path
        A file (``file.gpkg:layer`` picks a layer), a zip or a folder of
        files, or ``-`` for GeoJSON on standard input.
    encoding : str, optional
        Attribute encoding for shapefiles without a .cpg.

    Returns
    -------
    (list of Source, list of str)
        The sources, and one message per member of a zip or folder that
        could not be read (the others go on).

    Raises
    ------
    FootprintError
        If the input (a single file) cannot be read, or a zip or folder holds
        nothing readable.
    """
    text = str(path)
    if text == "-":
        return [_read_stdin()], []
    plain = Path(text)
    if plain.is_dir():
        members = sorted(p for p in plain.rglob("*") if p.suffix.lower() in (*VECTOR_SUFFIXES, *TABLE_SUFFIXES))
        return _several([str(m) for m in members], text, encoding, what="folder")
    if plain.suffix.lower() == ".zip" and plain.is_file():
        try:
            with zipfile.ZipFile(plain) as archive:
                names = [n for n in archive.namelist() if Path(n).suffix.lower() in VECTOR_SUFFIXES]
        except zipfile.BadZipFile:
            raise FootprintError(f"{text}: is not a readable zip archive") from None
        return _several([f"/vsizip/{plain}/{n}" for n in sorted(names)], text, encoding, what="zip")
    return [read_source(text, encoding)], []


def _several(members: list[str], label: str, encoding: str | None, *, what: str):
    if not members:
        raise FootprintError(
            f"{label}: the {what} holds no vector file or corner table ({', '.join(VECTOR_SUFFIXES + TABLE_SUFFIXES)})"
        )
    sources, problems = [], []
    for member in members:
        try:
            sources.append(read_source(member, encoding))
        except FootprintError as exc:
            problems.append(str(exc))
    return sources, problems


def read_source(text: str, encoding: str | None = None) -> Source:
    """Read one file (``file:layer`` picks a layer) into a source, or explain why not."""
    layer = None
    if not text.startswith("/vsi") and not Path(text).exists() and ":" in text:
        text, layer = text.rsplit(":", 1)
    label = text.replace("/vsizip/", "") if layer is None else f"{text}:{layer}"
    stem = Path(text).stem
    if not text.startswith("/vsi"):
        _check_files(Path(text), label)
    if is_table(text):
        return Source(read_corners(text), label, stem)
    suffix = Path(text).suffix.lower()
    if suffix in (".parquet", ".geoparquet"):
        return Source(_read_parquet(text, label), label, stem)
    frame = _read_vector(text, layer, label, encoding)
    if suffix == ".dxf":
        frame = _close_cad_rings(frame)
    return Source(frame, label, stem)


def _check_files(path: Path, label: str) -> None:
    """A missing file, or a shapefile missing the sidecar files it cannot be read without."""
    if not path.exists():
        raise FootprintError(f"{label}: file not found")
    if path.suffix.lower() == ".shp":
        for ending, role in ((".shx", "index"), (".dbf", "attribute table")):
            if not any(path.with_suffix(s).exists() for s in (ending, ending.upper())):
                raise FootprintError(
                    f"{label}: the shapefile's {role} {path.with_suffix(ending).name} is missing; "
                    "copy every file of the shapefile (.shp, .shx, .dbf, .prj, .cpg) together"
                )


def _read_vector(text: str, layer: str | None, label: str, encoding: str | None) -> gpd.GeoDataFrame:
    try:
        layers = pyogrio.list_layers(text)
    except pyogrio.errors.DataSourceError as exc:
        raise FootprintError(
            f"{label}: cannot read it as a vector file ({_first_line(exc)}); give a Shapefile, GeoJSON, "
            "GeoPackage, KML, DXF, FlatGeobuf, GeoParquet or a corner-coordinate table"
        ) from None
    names = [str(row[0]) for row in layers]
    if layer is None and len(names) > 1 and Path(text).suffix.lower() not in (".kml", ".kmz"):
        raise FootprintError(f"{label}: holds {len(names)} layers ({', '.join(names)}); pick one as {label}:LAYER")
    encoding = encoding or (guess_encoding(text) if not text.startswith("/vsi") else None)
    # A KML/KMZ keeps placemarks in folders, each a layer: read them all.
    wanted = [layer] if layer is not None else (names if Path(text).suffix.lower() in (".kml", ".kmz") else [None])
    frames = []
    for name in wanted:
        try:
            frames.append(pyogrio.read_dataframe(text, layer=name, encoding=encoding))
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise FootprintError(f"{label}: cannot read it ({_first_line(exc)})") from None
        except shapely.errors.ShapelyError:
            frames.append(_read_repairing(text, name, encoding, label))
        except UnicodeDecodeError:
            raise FootprintError(
                f"{label}: its attribute names or values are not {encoding or 'UTF-8'} text; "
                "give the right --encoding (GBK for most Chinese shapefiles)"
            ) from None
        except LookupError:
            raise FootprintError(f"{label}: unknown encoding {encoding!r}; try GBK or UTF-8") from None
    frame = frames[0] if len(frames) == 1 else gpd.GeoDataFrame(_concat(frames), crs=frames[0].crs)
    if not hasattr(frame, "geometry"):
        raise FootprintError(
            f"{label}: has no geometry (a plain table?); give a vector file, or a corner table with X/Y or "
            "经度/纬度 columns saved as .csv or .xlsx"
        )
    return frame


def _read_repairing(text: str, layer: str | None, encoding: str | None, label: str) -> gpd.GeoDataFrame:
    """Read a file whose rings GEOS refuses (unclosed, too few points), closing them, and say so."""
    import logging

    import pandas as pd
    from pyogrio.raw import read

    meta, _, wkb, fields = read(text, layer=layer, encoding=encoding)
    geoms = shapely.from_wkb(wkb, on_invalid="fix")
    broken = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if broken.all():
        raise FootprintError(f"{label}: no geometry GEOS can build, even with its rings closed; check the drawing")
    logging.getLogger(__name__).warning(
        "%s: closed rings that were not closed (or dropped ones with too few points); check the drawing", label
    )
    table = pd.DataFrame(dict(zip(meta["fields"], fields, strict=True)))
    return gpd.GeoDataFrame(table, geometry=geoms, crs=meta["crs"])


def _concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _read_parquet(text: str, label: str) -> gpd.GeoDataFrame:
    try:
        return gpd.read_parquet(text)
    except (ValueError, OSError, TypeError, ImportError) as exc:
        raise FootprintError(f"{label}: cannot read it as GeoParquet ({_first_line(exc)})") from None


def _read_stdin() -> Source:
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    if not data.strip():
        raise FootprintError("<stdin>: nothing was given; pipe a GeoJSON document in, or name a file")
    try:
        frame = pyogrio.read_dataframe(io.BytesIO(data))
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise FootprintError(f"<stdin>: cannot read it as GeoJSON ({_first_line(exc)})") from None
    return Source(frame, "<stdin>", "stdin")


def _close_cad_rings(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """CAD drawings store outlines as polylines: a closed one is a polygon, an open one stays a line."""
    geoms = np.asarray(frame.geometry.values, dtype=object)
    lines = shapely.get_type_id(geoms) == shapely.GeometryType.LINESTRING
    closed = lines & shapely.is_closed(geoms) & (shapely.get_num_coordinates(geoms) >= 4)
    if closed.any():
        geoms = geoms.copy()
        coords, index = shapely.get_coordinates(geoms[closed], return_index=True)
        geoms[closed] = shapely.polygons(shapely.linearrings(coords, indices=index))
        frame = frame.set_geometry(geoms)
    return frame


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
