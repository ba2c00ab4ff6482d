"""Open whatever a consultant was sent as footprint sources: one file, a zip, a folder, stdin.

Vector files (Shapefile, GeoJSON, GeoPackage, KML/KMZ, DXF, FlatGeobuf,
GeoParquet and anything else GDAL reads: see :mod:`threelines.input.vector_files`),
corner-coordinate tables (CSV, XLSX), zip archives and folders of them (each
file inside is a source), and GeoJSON or KML on standard input (``-``).
Each source is a GeoDataFrame with a label for messages and a stem for
default project ids. A zip is unpacked into a temporary folder first, so
that everything that works on a file (encoding guesses, sidecar checks,
tables, GeoParquet) works inside zips too.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from threelines.errors import FootprintError
from threelines.input.archives import check_zip_file, extract_zip
from threelines.input.corners import TABLE_SUFFIXES, is_table, read_corners
from threelines.input.vector_files import (
    ENCODED,
    cad_outlines,
    check_files,
    file_and_layer,
    read_parquet,
    read_vector,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from threelines.input.geojson import PlainGeoJSON

log = logging.getLogger(__name__)

#: File endings read as vector data from a folder or a zip (other members are skipped).
VECTOR_SUFFIXES = (".shp", ".geojson", ".json", ".gpkg", ".kml", ".kmz", ".dxf", ".fgb", ".parquet", ".gml")


class Problem(str):
    """A message about a feature or file that could not be used, which also says where it came from.

    A ``str`` (every message reads as before) with ``file``, ``layer`` and
    ``feature`` (the 0-based position in the file, None for the whole file or
    a row without one), so that a batch gives it a record of its own.
    """

    file: str | None = None
    layer: str | None = None
    feature: int | None = None

    def __new__(cls, message: str, file: str | None, layer: str | None = None, feature: int | None = None):
        """The message, and where it came from."""
        self = super().__new__(cls, message)
        self.file, self.layer, self.feature = file, layer, feature
        return self

    @classmethod
    def at(cls, message: str, file: str | None, layer: str | None = None) -> Problem:
        """The message keyed to a file, unless it already says where it came from."""
        return message if isinstance(message, Problem) else cls(message, file, layer)


@dataclass
class Source:
    """One readable input: its features, how to name it, the stem of default ids, row problems, and its layer.

    ``frame`` holds the features as GDAL read them; a plain GeoJSON read
    without GDAL has them in ``plain`` instead (and ``frame`` None).
    """

    frame: gpd.GeoDataFrame | None
    label: str
    stem: str
    problems: list[str] = field(default_factory=list)
    layer: str | None = None
    plain: PlainGeoJSON | None = None

    @property
    def file(self) -> str:
        """The file the features come from (the label without its ``:layer``)."""
        return self.label.removesuffix(f":{self.layer}") if self.layer else self.label


def open_sources(
    path: str | Path, encoding: str | None = None, *, plain: bool = False
) -> tuple[list[Source], list[str]]:
    """Open a footprint input as one or more sources.

    Parameters
    ----------
    path : str or Path
        A file (``file.gpkg:layer`` picks a layer), a zip or a folder of
        files, or ``-`` for GeoJSON or KML on standard input.
    encoding : str, optional
        Attribute encoding for shapefiles (and tables) that do not declare one.
    plain : bool
        Read a plain GeoJSON file or standard input without GDAL, into the
        source's ``plain`` (see :mod:`threelines.input.geojson`).

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
        return [_read_stdin(encoding, plain)], []
    given = Path(text)
    if given.is_dir():
        return _several(_members(given), given, text, encoding, what="folder")
    if given.suffix.lower() == ".zip" and given.is_file():
        with tempfile.TemporaryDirectory(prefix="threelines-zip-") as folder:
            extract_zip(given, Path(folder), text)  # within the archive limits, checked before unpacking
            # Everything is read into memory before the folder goes away.
            return _several(_members(Path(folder)), Path(folder), text, encoding, what="zip", inside=True)
    if plain and given.suffix.lower() in (".geojson", ".json") and given.is_file():
        features = _plain_geojson(given.read_bytes())
        if features is not None:
            return [Source(None, text, given.stem, plain=features)], []
    if plain:
        source = _plain_geopackage(text)
        if source is not None:
            return [source], []
    return [read_source(text, encoding)], []


def _plain_geojson(data: bytes) -> PlainGeoJSON | None:
    """The features of a plain GeoJSON document read without GDAL, or None for GDAL to read."""
    from threelines.input.geojson import read_plain_geojson

    return read_plain_geojson(data)


def _plain_geopackage(text: str) -> Source | None:
    """A plain GeoPackage file (``file.gpkg:layer`` picks a layer) read without GDAL, or None for GDAL to read."""
    from threelines.input.geopackage import read_plain_geopackage

    file, layer = file_and_layer(text)
    if Path(file).suffix.lower() != ".gpkg":
        return None
    features = read_plain_geopackage(file, layer)
    return None if features is None else Source(None, text, Path(file).stem, layer=layer, plain=features)


def _members(folder: Path) -> list[Path]:
    """Footprint files in a folder tree, without system clutter (dot files, __MACOSX).

    A symbolic link that leads out of the folder is skipped with a warning:
    an input folder is read, not what it points at elsewhere.
    """
    wanted = (*VECTOR_SUFFIXES, *(s for s in TABLE_SUFFIXES if s != ".txt"))
    root = folder.resolve()
    members = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in wanted or any(
            part.startswith((".", "__MACOSX")) for part in p.relative_to(folder).parts
        ):
            continue
        target = p.resolve()
        if target != root and root not in target.parents:
            log.warning("%s: skipped: it is a link to %s, outside the input folder", p, target)
            continue
        if p.is_file():
            members.append(p)
    return members


def _several(members: list[Path], root: Path, label: str, encoding: str | None, *, what: str, inside: bool = False):
    if not members:
        raise FootprintError(
            f"{label}: the {what} holds no vector file or corner table ({', '.join(VECTOR_SUFFIXES + TABLE_SUFFIXES)})"
        )
    sources, problems = [], []
    for member in members:
        name = f"{label}!{member.relative_to(root)}" if inside else str(member)
        try:
            source = read_source(str(member), encoding, label=name)
        except FootprintError as exc:
            problems.append(Problem(str(exc), name))
            continue
        sources.append(source)
    return sources, problems


def read_source(text: str, encoding: str | None = None, *, label: str | None = None) -> Source:
    """Read one file (``file:layer`` picks a layer) into a source, or explain why not."""
    text, layer = file_and_layer(text)
    label = label or (text if layer is None else f"{text}:{layer}")
    path = Path(text)
    check_files(path, label)
    suffix = path.suffix.lower()
    if suffix in (".kmz", ".xlsx", ".xlsm"):  # zips inside: held to the archive limits before a reader unpacks them
        check_zip_file(path, label)
    if is_table(text):
        frame, problems = read_corners(text, label=label, encoding=encoding)
        return Source(frame, label, path.stem, problems)
    if suffix in (".parquet", ".geoparquet"):
        return Source(read_parquet(text, label), label, path.stem)
    frame = read_vector(text, layer, label, encoding if suffix in ENCODED else None)
    if suffix == ".dxf":
        frame = cad_outlines(frame, label)
    return Source(frame, label, path.stem, layer=layer)


def _read_stdin(encoding: str | None, plain: bool = False) -> Source:
    """Standard input, GeoJSON or KML (told apart by the first character), read like a file."""
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    if not data.strip():
        raise FootprintError("<stdin>: nothing was given; pipe a GeoJSON document in, or name a file")
    suffix = ".kml" if data.lstrip().startswith(b"<") else ".geojson"
    features = _plain_geojson(data) if plain and suffix == ".geojson" else None
    if features is not None:
        return Source(None, "<stdin>", "stdin", plain=features)
    with tempfile.TemporaryDirectory(prefix="threelines-stdin-") as folder:
        path = Path(folder) / f"stdin{suffix}"
        path.write_bytes(data)
        source = read_source(str(path), encoding, label="<stdin>")
    source.stem = "stdin"
    return source
