"""Corner-coordinate tables (拐点坐标表): footprints as consultants receive them in CSV or XLSX.

One row per corner point, in drawing order, closed or not. Coordinates are
either survey coordinates, labelled the Chinese survey way (X = northing,
Y = easting, often with the Gauss-Kruger zone number before the easting),
or longitude/latitude, in decimal degrees or degrees-minutes-seconds. A
parcel column (地块) makes several parcels, each one project; a ring column
(圈号) gives a parcel holes (ring 1 is the outline, the others are holes).
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from threelines.errors import FootprintError

#: Column -> the headers it may have (compared without case, spaces or brackets' content).
HEADERS = {
    "northing": ("x", "x坐标", "北坐标", "纵坐标", "northing"),
    "easting": ("y", "y坐标", "东坐标", "横坐标", "easting"),
    "lon": ("lon", "lng", "longitude", "经度", "东经"),
    "lat": ("lat", "latitude", "纬度", "北纬"),
    "parcel": ("parcel", "地块", "地块号", "地块编号", "地块名称", "宗地号", "id", "项目编号"),
    "ring": ("ring", "圈号", "环", "环号"),
    "point": ("point", "点号", "序号", "拐点号", "界址点号"),
}

TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")

_DMS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[°度:\s]\s*(\d+(?:\.\d+)?)?\s*[′'分:\s]?\s*(\d+(?:\.\d+)?)?\s*[″\"秒]?\s*$")


def is_table(path: str | Path) -> bool:
    """Tell whether a path names a table this module reads."""
    return Path(str(path)).suffix.lower() in TABLE_SUFFIXES


def read_corners(path: str | Path) -> gpd.GeoDataFrame:
    """Read a corner-coordinate table into polygons, one per parcel.

    Parameters
    ----------
    path : str or Path
        A CSV (UTF-8 or GB18030) or XLSX file.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per parcel with its polygon and the parcel's other columns
        (their first value); no CRS (lon/lat tables are marked EPSG:4490).

    Raises
    ------
    FootprintError
        Naming the file and row: no coordinate columns, a value that is not
        a number, a parcel with fewer than 3 points, an empty table.
    """
    path = Path(path)
    table = _read(path)
    if table.empty:
        raise FootprintError(f"{path}: the table has no rows; a corner table needs one row per corner point")
    columns = _columns(table)
    if "northing" in columns and "easting" in columns:
        xs, ys, crs = columns["easting"], columns["northing"], None
    elif "lon" in columns and "lat" in columns:
        xs, ys, crs = columns["lon"], columns["lat"], "EPSG:4490"
    else:
        raise FootprintError(
            f"{path}: no coordinate columns; give X and Y (survey northing and easting) or 经度 and 纬度 "
            "(longitude and latitude), with a 地块 (parcel) column for several parcels"
        )
    x = _numbers(table[xs], path, xs, degrees=crs is not None)
    y = _numbers(table[ys], path, ys, degrees=crs is not None)
    parcel = table[columns["parcel"]].astype(str) if "parcel" in columns else pd.Series(["1"] * len(table))
    ring = table[columns["ring"]].astype(str) if "ring" in columns else pd.Series(["1"] * len(table))
    rows, polygons = [], []
    attributes = [c for c in table.columns if c not in (xs, ys, columns.get("ring"), columns.get("point"))]
    for name in dict.fromkeys(parcel):
        in_parcel = (parcel == name).to_numpy()
        rings = []
        for ring_name in dict.fromkeys(ring[in_parcel]):
            mask = in_parcel & (ring == ring_name).to_numpy()
            coords = np.column_stack([x[mask], y[mask]])
            if len(coords) > 1 and (coords[0] == coords[-1]).all():
                coords = coords[:-1]  # closed tables repeat the first point
            if len(coords) < 3:
                first = int(np.flatnonzero(mask)[0]) + 2
                raise FootprintError(
                    f"{path}:{first}: parcel {name!r} ring {ring_name!r} has {len(coords)} point(s); "
                    "a polygon needs at least 3"
                )
            rings.append(coords)
        polygons.append(shapely.Polygon(rings[0], rings[1:]))
        first_row = table[in_parcel].iloc[0]
        rows.append({c: first_row[c] for c in attributes})
    frame = gpd.GeoDataFrame(rows, geometry=polygons, crs=crs)
    if "parcel" in columns and "id" not in {str(c).lower() for c in frame.columns}:
        frame["id"] = frame[columns["parcel"]].astype(str)
    return frame


def _read(path: Path) -> pd.DataFrame:
    import zipfile

    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            return pd.read_excel(path, dtype=object, keep_default_na=False)
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise FootprintError(f"{path}: the table is neither UTF-8 nor GB18030 text; save it as UTF-8")
        sep = "\t" if "\t" in text.splitlines()[0] else ","
        return pd.read_csv(StringIO(text), sep=sep, dtype=str, keep_default_na=False, index_col=False)
    except FootprintError:
        raise
    except (ValueError, OSError, KeyError, IndexError, zipfile.BadZipFile, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FootprintError(f"{path}: cannot read it as a table ({first})") from None


def _columns(table: pd.DataFrame) -> dict[str, str]:
    normal = {re.sub(r"\s+|\(.*?\)|（.*?）", "", str(c)).lower(): c for c in table.columns}
    out = {}
    for key, names in HEADERS.items():
        found = next((normal[n] for n in names if n in normal), None)
        if found is not None:
            out[key] = found
    return out


def _numbers(column: pd.Series, path: Path, name: str, *, degrees: bool) -> np.ndarray:
    """Parse coordinates: numbers, or degrees-minutes-seconds for lon/lat; name the bad row."""
    out = np.empty(len(column))
    for i, value in enumerate(column.tolist()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = float(value)
            continue
        text = str(value).strip().replace("，", ".")
        try:
            out[i] = float(text)
            continue
        except ValueError:
            pass
        found = _DMS.match(text) if degrees else None
        if found is None:
            raise FootprintError(f"{path}:{i + 2}: {name} {value!r} is not a number (nor degrees-minutes-seconds)")
        d, m, sec = (float(g) if g else 0.0 for g in found.groups())
        out[i] = np.copysign(abs(d) + m / 60 + sec / 3600, d if d != 0 else 1)
    if not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise FootprintError(f"{path}:{bad + 2}: {name} is not a finite number")
    return out
