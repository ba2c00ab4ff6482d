"""A manifest that checked clean, kept so that the next run need not open its layers' files.

It is kept as plain JSON next to its checked document (see
:mod:`threelines.yamlio`), with the size, modification time and inode of
every file its layers read (:func:`layer_files`): while the manifest's bytes
and those files are unchanged, the next run takes the layers' fields,
extents and CRSs from there instead of opening each file (which needs GDAL,
through pyogrio and rasterio).
"""

from __future__ import annotations

import glob
import hashlib
import logging
from pathlib import Path

import numpy as np
from pyproj import CRS

from threelines import yamlio
from threelines.errors import CRSError
from threelines.input.crs import fitted_albers, parse_crs
from threelines.layers.spec import LayerSpec, Manifest

log = logging.getLogger(__name__)


#: Bumped whenever what a kept manifest holds, or how a manifest is checked, changes.
KEPT_FORMAT = 2


def kept_key(doc: yamlio.Located) -> str:
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


def keep(key: str, manifest: Manifest, doc: yamlio.Located) -> None:
    """Keep a manifest that checked clean, if every CRS in it comes back the same from its text (see :func:`kept_crs`).

    Not kept: one with a PostGIS layer, or a shapefile whose encoding was
    guessed (the note saying so is given on every run).
    """
    specs = list(manifest.layers.values())
    if any(s.source is not None for s in specs):
        return
    given = {entry["name"]: entry.get("encoding") for entry in doc.data["layers"]}
    if any(s.encoding is not None and given.get(s.name) is None for s in specs):
        return
    crs_texts = {spec.name: kept_crs(spec.crs) for spec in specs}
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


def kept_crs(crs: CRS) -> str | None:
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


def read_kept(key: str, doc: yamlio.Located) -> Manifest | None:
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
