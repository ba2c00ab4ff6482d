"""The evidence layer: footprints and overlap pieces with the triggers' attributes, for QGIS and ArcGIS.

Written in EPSG:4490 (CGCS2000 geographic, the national datum) and in the
CRS the footprint came in: a GeoPackage holds both as two layers
(``evidence_4490`` and ``evidence_source``); a GeoJSON file is written in
EPSG:4490 and a sibling ``NAME.source.geojson`` in the footprint's CRS.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import geopandas as gpd
from pyproj import CRS

from threelines.errors import OutputError

NATIONAL = CRS.from_epsg(4490)


def evidence_paths(path: Path, fmt: str, source_crs: CRS | None) -> list[Path]:
    """The files an evidence layer of ``fmt`` takes (checked before anything is written)."""
    if fmt == "gpkg" or source_crs is None or source_crs == NATIONAL:
        return [path]
    return [path, path.with_name(f"{path.name.removesuffix(path.suffix)}.source{path.suffix}")]


def write_evidence(
    frame: gpd.GeoDataFrame,
    path: str | Path,
    fmt: str,
    source_crs: CRS | None,
    *,
    overwrite: bool = False,
    provenance: dict | None = None,
) -> list[Path]:
    """Write the evidence layer (``fmt`` ``geojson`` or ``gpkg``) without replacing files unless asked.

    The provenance block goes with it: a ``provenance`` member of each
    GeoJSON FeatureCollection, a ``provenance`` table (one row, the block as
    JSON) in a GeoPackage.

    Returns
    -------
    list of Path
        The files written.
    """
    import pyogrio

    path = Path(path)
    targets = evidence_paths(path, fmt, source_crs)
    for target in targets:
        if target.exists() and not overwrite:
            raise OutputError(f"{target}: exists; give --overwrite to replace it, or another -o")
    national = frame.to_crs(NATIONAL)
    versions = [("evidence_4490", national)]
    if source_crs is not None and source_crs != NATIONAL:
        versions.append(("evidence_source", frame.to_crs(source_crs)))
    try:
        if fmt == "gpkg":
            tmp = _temp_beside(path)
            for layer, data in versions:
                pyogrio.write_dataframe(data, tmp, layer=layer, driver="GPKG", append=layer != "evidence_4490")
            if provenance is not None:
                table = gpd.pd.DataFrame({"json": [json.dumps(provenance, ensure_ascii=False)]})
                pyogrio.write_dataframe(table, tmp, layer="provenance", driver="GPKG", append=True)
            os.replace(tmp, path)
        else:
            for target, (layer, data) in zip(targets, versions, strict=False):
                tmp = _temp_beside(target)
                pyogrio.write_dataframe(data, tmp, layer=layer, driver="GeoJSON")
                if provenance is not None:
                    collection = json.loads(tmp.read_text("utf-8"))
                    collection["provenance"] = provenance  # a foreign member: GIS software ignores it
                    tmp.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
                os.replace(tmp, target)
    except (OSError, pyogrio.errors.DataSourceError) as exc:
        raise OutputError(f"{path}: cannot write the evidence layer ({exc})") from None
    return targets


def _temp_beside(path: Path) -> Path:
    folder = path.parent if str(path.parent) else "."
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    os.unlink(name)  # GDAL creates the file itself
    return Path(name)
