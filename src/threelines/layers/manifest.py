"""The layer manifest: which layers a jurisdiction has, checked against their files.

A manifest (YAML) lists the layers of one jurisdiction: red lines, control
units, quality-baseline zones, resource-cap zones, rasters and its boundary.
Loading a manifest checks everything that can be checked without reading
features (files, layers, fields, geometry types, CRS, encodings) and
chooses the working CRS; :mod:`threelines.layers.read` then reads the features.

A manifest that checked clean is kept as plain JSON next to its checked
document (see :mod:`threelines.yamlio`), with the size, modification time
and inode of every file its layers read: while the manifest's bytes and
those files are unchanged, the next run takes the layers' fields, extents
and CRSs from there instead of opening each file (which needs GDAL, through
pyogrio and rasterio). A manifest with a PostGIS layer is checked each run:
a table changes without a file to look at.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS

from threelines import industry, yamlio
from threelines.errors import CRSError, IndustryCodeError, ManifestError
from threelines.input.crs import bounds_to_lonlat, fitted_albers, parse_crs
from threelines.input.encoding import guess_encoding
from threelines.layers.postgis import PostgisSource, describe, is_postgis_path, parse_source

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
    source : PostgisSource or None
        For a layer in PostGIS: the connection and table or query (``path`` is then its label).
    geometry_column : str or None
        The geometry column of a PostGIS layer.
    """

    name: str
    role: str
    path: Path | str
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
    source: PostgisSource | None = None
    geometry_column: str | None = None

    @property
    def location(self) -> str:
        """The file, or the database table, as messages name it."""
        return self.source.label if self.source is not None else str(self.path)


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: its layers by name, the working CRS and the layers' lon/lat extent."""

    path: Path
    name: str
    layers: dict[str, LayerSpec]
    working_crs: CRS
    extent: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0)
    line_widths: dict[str, float] = field(default_factory=dict)
    jurisdiction: dict[str, Any] | None = None
    rules: Path | None = None

    @property
    def jurisdiction_name(self) -> str:
        """The jurisdiction's name for messages: its ``jurisdiction.name``, else the manifest's name."""
        return str((self.jurisdiction or {}).get("name") or self.name)

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
    manifest, problems = check_manifest(path)
    if problems:
        raise ManifestError(problems[0])
    return manifest


def check_manifest(path: str | Path) -> tuple[Manifest | None, list[str]]:
    """Check a manifest and list every problem in it (see :func:`load_manifest`).

    Returns
    -------
    (Manifest or None, list of str)
        The manifest when it has no problem, and one message per problem.

    Raises
    ------
    ManifestError
        If the file cannot be read or is not YAML.
    """
    path = Path(path)
    doc, problems = yamlio.load_checked(path, "manifest.schema.json", ManifestError, "manifest (--layers)")
    if problems:
        return None, problems
    key = _kept_key(doc)
    kept = _read_kept(key, doc)
    if kept is not None:
        return kept, []
    manifest, problems = _check_document(doc)
    if manifest is not None:
        _keep(key, manifest, doc)
    return manifest, problems


def _check_document(doc: yamlio.Located) -> tuple[Manifest | None, list[str]]:
    """Check a manifest's document, which fits the schema, against its layers' files."""
    path, problems = doc.path, []
    specs: dict[str, LayerSpec] = {}
    for i, entry in enumerate(doc.data["layers"]):
        where = doc.where("layers", i)
        if entry["name"] in specs:
            problems.append(f"{where}: layer name {entry['name']!r} is used twice; names must be unique")
            continue
        try:
            specs[entry["name"]] = _check_entry(entry, path.parent, where)
        except ManifestError as exc:
            problems.append(str(exc))
    units = [s.name for s in specs.values() if s.role == "unit"]
    if len(units) > 1:
        problems.append(f"{path}: {len(units)} layers have role 'unit' ({', '.join(units)}); give exactly one")
    working = None
    if "working_crs" in doc.data:
        try:
            working = parse_crs(doc.data["working_crs"], what=f"{doc.where('working_crs')}: working_crs")
        except CRSError as exc:
            problems.append(str(exc))
        if working is not None and not _equal_area_metres(working):
            given = " ".join(str(doc.data["working_crs"]).split())
            shown = given if len(given) <= 120 else given[:117] + "..."
            named = f" ({working.name})" if working.name and working.name != "unknown" else ""
            problems.append(
                f"{doc.where('working_crs')}: working_crs {shown!r}{named} is not an equal-area projection in metres "
                "(areas would be wrong); use e.g. '+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=m', "
                "or leave it out to have one fitted to the layers"
            )
    if problems:
        return None, problems
    extent = _union_lonlat(specs.values())
    if working is None:
        working = fitted_albers(extent)
    name = doc.data.get("name", path.stem)
    widths = {}
    for prefix, width in doc.data.get("line_widths", {}).items():
        try:
            widths[prefix if prefix == "*" else industry.normalise(prefix, what="line_widths code")] = float(width)
        except IndustryCodeError as exc:
            return None, [f"{doc.where('line_widths', prefix)}: {exc}"]
    jurisdiction = _jurisdiction(doc.data.get("jurisdiction"), name, path, doc.data.get("sample") is True)
    rules = path.parent / doc.data["rules"] if "rules" in doc.data else None
    manifest = Manifest(
        path=path, name=name, layers=specs, working_crs=working, extent=extent, line_widths=widths,
        jurisdiction=jurisdiction, rules=rules,
    )  # fmt: skip
    return manifest, []


#: Bumped whenever what a kept manifest holds, or how a manifest is checked, changes.
KEPT_FORMAT = 2


def _kept_key(doc: yamlio.Located) -> str:
    """The SHA-256 naming a kept manifest: the document, where it is (layer paths are relative to it), the libraries."""
    from importlib import metadata

    import pyproj

    versions = [pyproj.proj_version_str]
    for package in ("pyogrio", "rasterio"):  # each wheel carries its own GDAL
        try:
            versions.append(metadata.version(package))
        except metadata.PackageNotFoundError:
            versions.append(None)
    text = f"{KEPT_FORMAT}\0manifest\0{doc.key}\0{doc.path.resolve()}\0{versions}"
    return hashlib.sha256(text.encode()).hexdigest()


def layer_files(spec: LayerSpec) -> list[list]:
    """What tells that a layer's files are unchanged: path, size, modification time and inode of each.

    Every file beside the layer's that shares its name or its stem: a
    shapefile's sidecars (whose ``.cpg``, in either case, decides whether the
    encoding is guessed), a GeoPackage's write-ahead log, a raster's world
    file and ``.aux.xml``.
    """
    path = Path(spec.path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    else:
        near = {*path.parent.glob(f"{glob.escape(path.stem)}.*"), *path.parent.glob(f"{glob.escape(path.name)}*")}
        files = sorted(p for p in near if p.is_file())
    out = []
    for file in files:
        info = file.stat()
        out.append([str(file), info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev])
    return out


def _keep(key: str, manifest: Manifest, doc: yamlio.Located) -> None:
    """Keep a manifest that checked clean, if every CRS in it comes back the same from its text (see :func:`_kept_crs`).

    Not kept: one with a PostGIS layer, or a shapefile whose encoding was
    guessed (the note saying so is given on every run).
    """
    specs = list(manifest.layers.values())
    if any(s.source is not None for s in specs):
        return
    given = {entry["name"]: entry.get("encoding") for entry in doc.data["layers"]}
    if any(s.encoding is not None and given.get(s.name) is None for s in specs):
        return
    crs_texts = {spec.name: _kept_crs(spec.crs) for spec in specs}
    if None in crs_texts.values():
        return
    try:
        layers = [
            {
                "name": s.name, "role": s.role, "path": str(s.path), "layer": s.layer, "id_field": s.id_field,
                "name_field": s.name_field, "class_field": s.class_field, "class_map": s.class_map,
                "crs": crs_texts[s.name], "encoding": s.encoding, "fields": s.fields, "bounds": list(s.bounds),
                "band": s.band, "files": layer_files(s),
            }
            for s in specs
        ]  # fmt: skip
    except OSError:
        return
    entry = {
        "name": manifest.name, "layers": layers, "extent": [float(v) for v in manifest.extent],
        "line_widths": manifest.line_widths, "jurisdiction": manifest.jurisdiction,
    }  # fmt: skip
    yamlio.keep(key, entry, doc.path)


def _kept_crs(crs: CRS) -> str | None:
    """The text a kept manifest holds for a layer's CRS; None when no text reads back as the same CRS.

    The text the CRS was made from (mostly an EPSG code), but for a WKT the
    WKT2 that PROJ writes, when that reads back as exactly the same CRS:
    GDAL's WKT1 of a raster names its datum with underscores, which PROJ
    takes about 25 ms to match against its database on every run that reads
    it; its own WKT2 reads back in half a millisecond.
    """
    srs = crs.srs
    if not isinstance(srs, str):
        return None
    if "[" in srs:
        wkt = crs.to_wkt()
        back = CRS.from_user_input(wkt) if wkt is not None else None
        # The same CRS, and named by the same code: `layers push` takes a table's SRID from it.
        if back is not None and back.is_exact_same(crs) and back.to_authority() == crs.to_authority():
            return wkt
    return srs if CRS.from_user_input(srs) == crs else None


def _read_kept(key: str, doc: yamlio.Located) -> Manifest | None:
    """The manifest kept under ``key``, or None when there is none or any layer file has changed."""
    entry = yamlio.read_kept(key, doc.path)
    if entry is None:
        return None
    try:
        specs = {}
        for layer in entry["layers"]:
            files = layer.pop("files")
            spec = LayerSpec(**{**layer, "path": Path(layer["path"]), "crs": CRS.from_user_input(layer["crs"]),
                                "bounds": tuple(layer["bounds"])})  # fmt: skip
            if layer_files(spec) != files:
                return None
            specs[spec.name] = spec
        extent = tuple(np.float64(v) for v in entry["extent"])
        if "working_crs" in doc.data:
            working = parse_crs(doc.data["working_crs"], what=f"{doc.where('working_crs')}: working_crs")
        else:
            working = fitted_albers(extent)
        return Manifest(
            path=doc.path, name=entry["name"], layers=specs, working_crs=working, extent=extent,
            line_widths=entry["line_widths"], jurisdiction=entry["jurisdiction"],
            rules=doc.path.parent / doc.data["rules"] if "rules" in doc.data else None,
        )  # fmt: skip
    except (OSError, KeyError, TypeError, ValueError, CRSError) as exc:
        log.info("%s: kept manifest %s cannot be used (%s); checking the layers again", doc.path, key, exc)
        return None


def _jurisdiction(entry: dict[str, Any] | None, name: str, path: Path, marked: bool) -> dict[str, Any] | None:
    """The manifest's ``jurisdiction`` block with all four keys (null where not given); None without one.

    The bundled sample's carries ``sample``: the mark every report of it
    shows. So does a manifest ``marked`` (``sample: true``): a copy of the
    sample's layers elsewhere, such as the one ``layers push`` writes.
    """
    from threelines import sample

    out = None if entry is None else {k: None if entry.get(k) is None else str(entry[k]) for k in JURISDICTION_KEYS}
    if marked or sample.is_sample(path):
        out = (out or {k: None for k in JURISDICTION_KEYS}) | {"sample": sample.SAMPLE_MARK}
        out["name"] = out["name"] or name
    return out


#: The keys of a manifest's ``jurisdiction`` block, as results carry it.
JURISDICTION_KEYS = ("name", "adcode", "version", "published")


#: Projection methods that preserve area (pyproj method names).
EQUAL_AREA_METHODS = (
    "Albers Equal Area", "Lambert Azimuthal Equal Area", "Lambert Cylindrical Equal Area", "Equal Earth",
    "Mollweide", "Sinusoidal",
)  # fmt: skip

#: Geometry types a layer may declare (GDAL names); "Unknown" covers mixed files, checked per feature.
POLYGON_TYPES = ("Polygon", "MultiPolygon", "Polygon Z", "MultiPolygon Z", "3D Polygon", "3D MultiPolygon", "Unknown")

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


def _union_lonlat(specs) -> tuple[float, float, float, float]:
    """Return the lon/lat extent of all layers together."""
    boxes = np.array([bounds_to_lonlat(s.bounds, s.crs) for s in specs if np.all(np.isfinite(s.bounds))])
    if len(boxes) == 0:
        raise ManifestError("every layer in the manifest is empty; there is nothing to screen against")
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
