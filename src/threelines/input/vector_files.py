"""Vector files read with GDAL (pyogrio): whole or a piece at a time, repaired where GDAL refuses, and explained.

A file's sidecars are checked before GDAL opens it (:func:`check_files`), a
large GeoJSON file is read without GDAL's JSON parser, a DXF drawing keeps
its outlines, and GDAL's reasons are put in words for a user. What the
sources of an input are (a zip, a folder, standard input) is
:mod:`threelines.input.sources`.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import shapely

from threelines.collector import collector_held
from threelines.errors import FootprintError
from threelines.input.corners import is_table
from threelines.input.encoding import guess_encoding
from threelines.input.geojson_coords import NotPlain, geojson_features, geojson_geometries
from threelines.input.shapefile_check import check_shapefile

if TYPE_CHECKING:
    import geopandas as gpd


log = logging.getLogger(__name__)

#: Files that only ever carry attributes in their declared encoding; --encoding is for the others.
ENCODED = (".shp", ".dbf")

#: DXF entities that are not outlines: labels, hatches (which repeat an outline), points, blocks.
_CAD_NOISE = ("AcDbText", "AcDbMText", "AcDbHatch", "AcDbPoint", "AcDbBlockReference", "AcDbAttribute")


def file_and_layer(text: str) -> tuple[str, str | None]:
    """A file and the layer in it, from ``file`` or ``file:layer`` (a path that exists is a file, colons and all)."""
    if not Path(text).exists() and ":" in text:
        file, layer = text.rsplit(":", 1)
        return file, layer
    return text, None


def check_files(path: Path, label: str) -> None:
    """A missing file, one that is not a regular file, or a shapefile that is incomplete or broken."""
    if not path.exists():
        raise FootprintError(f"{label}: file not found")
    if not path.is_file():  # a pipe or a device would block the reader for ever
        raise FootprintError(f"{label}: is not a regular file (a pipe, device or folder); give a file")
    if path.suffix.lower() == ".shp":
        sidecars = {}
        for ending, role in ((".shx", "index"), (".dbf", "attribute table")):
            found = next((path.with_suffix(s) for s in (ending, ending.upper()) if path.with_suffix(s).exists()), None)
            if found is None:
                raise FootprintError(
                    f"{label}: the shapefile's {role} {path.with_suffix(ending).name} is missing; "
                    "copy every file of the shapefile (.shp, .shx, .dbf, .prj, .cpg) together"
                )
            sidecars[ending] = found
        check_shapefile(path, sidecars[".shx"], sidecars[".dbf"], label)


@dataclass
class VectorFile:
    """One plain vector file (one layer), to read in pieces of features.

    Attributes
    ----------
    text, layer : str
        The file and the layer in it (None: its only layer).
    label, stem : str
        As for :class:`~threelines.input.sources.Source`.
    encoding : str or None
        The attribute encoding, given or guessed once for the whole file.
    features : int
        How many features it holds.
    bounds : tuple of float or None
        The extent of all its features, in the file's coordinates (None if
        the driver cannot tell).
    plain : bool
        A plain GeoPackage, whose pieces are read without GDAL where they can be.
    """

    text: str
    layer: str | None
    label: str
    stem: str
    encoding: str | None
    features: int
    bounds: tuple[float, float, float, float] | None
    plain: bool = False

    def pieces(self, size: int):
        """Yield ``(position of the first feature, features)`` for consecutive pieces of ``size`` features.

        The features are a GeoDataFrame as GDAL reads them, or a plain
        GeoPackage's :class:`~threelines.input.geopackage.PlainGeoPackage`.

        Raises
        ------
        FootprintError
            If a piece cannot be read.
        """
        from threelines.input.geopackage import read_plain_geopackage

        for start in range(0, self.features, size):
            found = read_plain_geopackage(self.text, self.layer, skip=start, limit=size) if self.plain else None
            if found is None:
                found = read_vector(self.text, self.layer, self.label, self.encoding, skip=start, limit=size)
            yield start, found


def open_vector_file(path: str | Path, encoding: str | None = None) -> VectorFile | None:
    """The input as a plain vector file to read in pieces, or None for any other kind of input.

    Folders, zips, standard input, corner tables, GeoParquet, DXF and KML
    (whose reading needs the whole file) give None: read those with
    :func:`~threelines.input.sources.open_sources`.

    Raises
    ------
    FootprintError
        For a file that cannot be read, as :func:`~threelines.input.sources.read_source` would.
    """
    text = str(path)
    if text == "-" or Path(text).is_dir() or (Path(text).suffix.lower() == ".zip" and Path(text).is_file()):
        return None
    text, layer = file_and_layer(text)
    label = text if layer is None else f"{text}:{layer}"
    suffix = Path(text).suffix.lower()
    if is_table(text) or suffix in (".parquet", ".geoparquet", ".dxf", ".kml", ".kmz") or not Path(text).is_file():
        return None
    check_files(Path(text), label)
    plain = _plain_geopackage_file(text, layer, label)
    if plain is not None:
        return plain
    import pyogrio

    _layer_names(text, layer, label)
    encoding = (encoding if suffix in ENCODED else None) or guess_encoding(text)
    try:
        info = pyogrio.read_info(
            text, layer=layer, encoding=encoding, force_feature_count=True, force_total_bounds=True
        )
    except pyogrio.errors.DataSourceError as exc:
        raise _unreadable(label, exc) from None
    except pyogrio.errors.DataLayerError as exc:
        raise FootprintError(f"{label}: cannot read it ({gdal_reason(exc)})") from None
    extent = info.get("total_bounds")
    bounds = tuple(float(b) for b in extent) if extent is not None else None
    return VectorFile(text, layer, label, Path(text).stem, encoding, int(info["features"]), bounds)


def _plain_geopackage_file(text: str, layer: str | None, label: str) -> VectorFile | None:
    """A plain GeoPackage that declares its extent, to read in pieces without GDAL; None for GDAL to open."""
    from threelines.input.geopackage import count_features, extent

    features = count_features(text, layer)
    bounds = extent(text, layer) if features is not None else None
    if bounds is None:
        return None
    return VectorFile(text, layer, label, Path(text).stem, None, features, bounds, plain=True)


#: Formats that hold one layer: listing it would parse a GeoJSON once more (a second over a 45 MB file).
_ONE_LAYER = (".geojson", ".json", ".shp", ".fgb")


def _layer_names(text: str, layer: str | None, label: str) -> list[str]:
    """The file's layer names, checking that the layer to read is clear ([None] for a one-layer format)."""
    import pyogrio

    if layer is None and Path(text).suffix.lower() in _ONE_LAYER:
        return [None]
    try:
        layers = pyogrio.list_layers(text)
    except pyogrio.errors.DataSourceError as exc:
        raise _unreadable(label, exc) from None
    names = [str(row[0]) for row in layers]
    many = Path(text).suffix.lower() in (".kml", ".kmz")  # placemarks sit in folders, each a layer
    if layer is None and len(names) > 1 and not many:
        raise FootprintError(f"{label}: holds {len(names)} layers ({', '.join(names)}); pick one as {label}:LAYER")
    if not names:
        raise FootprintError(f"{label}: has no features; a footprint file needs at least one polygon, line or point")
    return names


def read_vector(
    text: str, layer: str | None, label: str, encoding: str | None, *, skip: int = 0, limit: int | None = None
) -> gpd.GeoDataFrame:
    """Read a vector file (every layer of a KML), or ``limit`` features from position ``skip``."""
    import pyogrio

    if _fast_geojson(text, layer, limit):
        frame = _read_geojson_fast(text)
        if frame is not None:
            return frame
    names = _layer_names(text, layer, label)
    many = Path(text).suffix.lower() in (".kml", ".kmz")  # placemarks sit in folders, each a layer
    encoding = encoding or guess_encoding(text)
    frames = []
    piece = {"skip_features": skip, "max_features": limit} if limit is not None else {}
    options = _open_options(text)
    for name in [layer] if layer is not None else (names if many else [None]):
        try:
            with warnings.catch_warnings():
                # pyogrio says so when a column of JSON text is not all JSON; attributes.py checks each cell.
                warnings.filterwarnings("ignore", "Could not parse column", UserWarning)
                # shapely's note on NaN coordinates: the footprint reader names each such feature.
                warnings.filterwarnings("ignore", "invalid value encountered in from_wkb", RuntimeWarning)
                frames.append(pyogrio.read_dataframe(text, layer=name, encoding=encoding, **piece, **options))
        except pyogrio.errors.DataSourceError as exc:
            raise _unreadable(label, exc) from None
        except pyogrio.errors.DataLayerError as exc:
            raise FootprintError(f"{label}: cannot read it ({gdal_reason(exc)})") from None
        except shapely.errors.ShapelyError:
            frames.append(_read_repairing(text, name, encoding, label, **piece))
        except UnicodeDecodeError:
            raise FootprintError(
                f"{label}: its attribute names or values are not {encoding or 'UTF-8'} text; "
                "give the right --encoding (GBK for most Chinese shapefiles)"
            ) from None
        except LookupError:
            raise FootprintError(f"{label}: unknown encoding {encoding!r}; try GBK or UTF-8") from None
    if len(frames) == 1:
        frame = frames[0]
    else:  # a KML's folders
        import geopandas as gpd
        import pandas as pd

        frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    if not hasattr(frame, "geometry"):
        raise FootprintError(
            f"{label}: has no geometry (a plain table?); give a vector file, or a corner table with X/Y or "
            "经度/纬度 columns saved as .csv or .xlsx"
        )
    return frame


#: GeoJSON files from this size on are read by :func:`_read_geojson_fast` (GDAL's JSON parser takes
#: 5 s and 700 MiB for a 45 MB polygon); smaller ones are quick either way and keep GDAL's reader.
FAST_GEOJSON_BYTES = 4 * 1024**2


def _fast_geojson(text: str, layer: str | None, limit: int | None) -> bool:
    """Whether to try :func:`_read_geojson_fast`: a whole GeoJSON file, big enough for GDAL's parser to cost."""
    path = Path(text)
    return (
        limit is None and layer is None and path.suffix.lower() in (".geojson", ".json")
        and path.stat().st_size >= FAST_GEOJSON_BYTES
    )  # fmt: skip


def _read_geojson_fast(text: str) -> gpd.GeoDataFrame | None:
    """Read a plain GeoJSON file as GDAL would, a parse and a few vectorised calls instead of GDAL's JSON parser.

    The document is parsed with orjson; the coordinates of each geometry type
    become one numpy array and :func:`shapely.from_ragged_array` builds the
    geometries. GDAL still reads the rest (the document with every geometry
    null, which is small), so that attribute types, ids, JSON text of lists
    and objects, and the legacy ``crs`` member come out exactly as from the
    file itself.

    Parameters
    ----------
    text : str
        A GeoJSON file: a FeatureCollection, a Feature or a bare geometry.

    Returns
    -------
    geopandas.GeoDataFrame or None
        The features, or None for anything unusual (broken JSON, geometry
        collections, empty, unclosed or 3D geometries, a CRS on
        a geometry, ...), which GDAL's reader then reads and judges as usual.
    """
    import geopandas as gpd
    import pyogrio

    try:
        with collector_held():  # millions of small lists: the collector's passes over them cost more than the parse
            doc = orjson.loads(Path(text).read_bytes())
            features, skeleton = geojson_features(doc)
            geometries = geojson_geometries([f.get("geometry") for f in features])
            for feature in features:
                feature["geometry"] = None
            del doc
    except (NotPlain, orjson.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError):
        return None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Could not parse column", UserWarning)  # as in read_vector
            frame = pyogrio.read_dataframe(orjson.dumps(skeleton), **_open_options(text))
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, UnicodeDecodeError):
        return None  # GDAL's reading of the file itself says what is wrong
    if len(frame) != len(geometries):
        return None
    return frame.set_geometry(gpd.GeoSeries(geometries, index=frame.index, crs=frame.crs))


def _read_repairing(text: str, layer: str | None, encoding: str | None, label: str, **piece) -> gpd.GeoDataFrame:
    """Read a file whose rings GEOS refuses (unclosed, too few points), closing them, and say so."""
    import geopandas as gpd
    import pandas as pd
    from pyogrio.raw import read

    meta, _, wkb, fields = read(text, layer=layer, encoding=encoding, **piece, **_open_options(text))
    geoms = shapely.from_wkb(wkb, on_invalid="fix")
    if (shapely.is_missing(geoms) | shapely.is_empty(geoms)).all():
        raise FootprintError(f"{label}: no geometry GEOS can build, even with its rings closed; check the drawing")
    log.warning("%s: closed rings that were not closed (or dropped ones with too few points); check the drawing", label)
    table = pd.DataFrame(dict(zip(meta["fields"], fields, strict=True)))
    return gpd.GeoDataFrame(table, geometry=geoms, crs=meta["crs"])


def read_parquet(text: str, label: str) -> gpd.GeoDataFrame:
    """A GeoParquet file (the ``parquet`` extra), or why it cannot be read."""
    import geopandas as gpd

    from threelines.extras import ExtraMissing, require

    try:
        require("parquet", f"{label}: reading GeoParquet")
    except ExtraMissing as exc:
        raise FootprintError(str(exc)) from None
    try:
        return gpd.read_parquet(text)
    except (ValueError, OSError, TypeError, ImportError) as exc:
        raise FootprintError(f"{label}: cannot read it as GeoParquet ({first_line(exc)})") from None


def cad_outlines(frame: gpd.GeoDataFrame, label: str) -> gpd.GeoDataFrame:
    """Keep a drawing's outlines: closed polylines become polygons, open ones stay lines.

    Labels (the 拐点 numbers), hatches (which repeat an outline), points and
    block references are not footprints and are left out, with a note.
    """
    import pandas as pd

    noise = frame["SubClasses"].fillna("").str.contains("|".join(_CAD_NOISE)) if "SubClasses" in frame else False
    kinds = shapely.get_type_id(frame.geometry.values)
    keep = ~noise & pd.Series(kinds, index=frame.index).isin(
        [shapely.GeometryType.LINESTRING, shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON]
    )
    if (~keep).any():
        log.info("%s: left out %d drawing entities that are not outlines (text, hatches, points)", label, (~keep).sum())
    frame = frame[keep].copy()
    geoms = frame.geometry.values.copy()
    closed = (shapely.get_type_id(geoms) == shapely.GeometryType.LINESTRING) & shapely.is_closed(geoms)
    closed &= shapely.get_num_coordinates(geoms) >= 4
    if closed.any():
        coords, index = shapely.get_coordinates(geoms[closed], return_index=True)
        geoms[closed] = shapely.polygons(shapely.linearrings(coords, indices=index))
        frame = frame.set_geometry(geoms)
    if frame.empty:
        raise FootprintError(f"{label}: the drawing has no polylines or polygons to screen")
    return frame


def _unreadable(label: str, exc: Exception) -> FootprintError:
    return FootprintError(
        f"{label}: cannot read it as a vector file ({gdal_reason(exc)}); give a Shapefile, GeoJSON, "
        "GeoPackage, KML, DXF, FlatGeobuf, GeoParquet or a corner-coordinate table"
    )


def _open_options(text: str) -> dict[str, str]:
    """GDAL open options for a file: a GeoJSON property holding a list stays that feature's own JSON text.

    Without it GDAL turns the whole column into lists when one feature has
    a list, and every feature of the file would be refused for it.
    """
    return {"ARRAY_AS_STRING": "YES"} if Path(text).suffix.lower() in (".geojson", ".json") else {}


def gdal_reason(exc: Exception) -> str:
    """GDAL's reason, in words for a user (not its advice to prefix the path with a driver name)."""
    text = first_line(exc)
    if "not recognized as being in a supported file format" in text:
        return "its content is not in any vector format GDAL reads, whatever its name ends with"
    return text


def first_line(exc: Exception) -> str:
    """An exception's first line of text (its type's name when it has none)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
