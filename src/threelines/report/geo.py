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
from contextlib import contextmanager
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
    from threelines.report import refuse_existing

    for target in targets:
        refuse_existing(target, overwrite=overwrite)
    national = frame.to_crs(NATIONAL)
    versions = [("evidence_4490", national)]
    if source_crs is not None and source_crs != NATIONAL:
        versions.append(("evidence_source", frame.to_crs(source_crs)))
    if fmt == "gpkg":
        with written_atomically(path) as tmp:
            for layer, data in versions:
                pyogrio.write_dataframe(data, tmp, layer=layer, driver="GPKG", append=layer != "evidence_4490")
            if provenance is not None:
                table = gpd.pd.DataFrame({"json": [json.dumps(provenance, ensure_ascii=False)]})
                pyogrio.write_dataframe(table, tmp, layer="provenance", driver="GPKG", append=True)
    else:
        for target, (layer, data) in zip(targets, versions, strict=False):
            with written_atomically(target) as tmp:
                pyogrio.write_dataframe(data, tmp, layer=layer, driver="GeoJSON")
                if provenance is not None:
                    collection = json.loads(tmp.read_text("utf-8"))
                    collection["provenance"] = provenance  # a foreign member: GIS software ignores it
                    tmp.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return targets


@contextmanager
def written_atomically(path: Path):
    """A temporary path beside ``path`` for GDAL to create; renamed onto ``path`` when the block succeeds.

    On failure the temporary file is removed and the error names ``path``.
    """
    import pyogrio

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist; create it or give another -o")
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # GDAL creates the file itself
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise OutputError(f"{path}: cannot write it ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
