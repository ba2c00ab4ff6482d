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
import unicodedata
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely

from threelines.errors import FootprintError

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

#: Column -> the headers it may have (compared without case, spaces or brackets' content).
HEADERS = {
    "northing": ("x", "x坐标", "北坐标", "纵坐标", "northing"),
    "easting": ("y", "y坐标", "东坐标", "横坐标", "easting"),
    "lon": ("lon", "lng", "longitude", "经度", "东经"),
    "lat": ("lat", "latitude", "纬度", "北纬"),
    "parcel": ("parcel", "地块", "地块号", "地块编号", "地块名称", "宗地号", "项目编号"),
    "ring": ("ring", "圈号", "环", "环号"),
    "point": ("point", "点号", "序号", "拐点号", "界址点号"),
}

TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")

_DMS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[°度:\s]\s*(\d+(?:\.\d+)?)?\s*[′'分:\s]?\s*(\d+(?:\.\d+)?)?\s*[″\"秒]?\s*$")


def is_table(path: str | Path) -> bool:
    """Tell whether a path names a table this module reads."""
    return Path(str(path)).suffix.lower() in TABLE_SUFFIXES


def read_corners(
    path: str | Path, *, label: str | None = None, encoding: str | None = None
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Read a corner-coordinate table into polygons, one per parcel.

    Parameters
    ----------
    path : str or Path
        A CSV (UTF-8 or GB18030; comma, semicolon or tab) or XLSX file. Title
        rows above the header are skipped.
    label : str, optional
        How to name the table in messages (default: its path).
    encoding : str, optional
        The CSV's encoding when it is neither UTF-8 nor GB18030.

    Returns
    -------
    (geopandas.GeoDataFrame, list of str)
        One row per sound parcel with its polygon and the parcel's other
        columns (their first value); no CRS (lon/lat tables are marked
        EPSG:4490). And one ``file:row: ...`` message per parcel that could
        not be built (the others go on).

    Raises
    ------
    FootprintError
        For an unreadable or empty table, or one without coordinate columns.
    """
    import geopandas as gpd
    import pandas as pd

    path = Path(path)
    label = label or str(path)
    table = _read(path, label, encoding)
    columns = _columns(table)
    if "northing" in columns and "easting" in columns:
        xs, ys, crs = columns["easting"], columns["northing"], None
    elif "lon" in columns and "lat" in columns:
        xs, ys, crs = columns["lon"], columns["lat"], "EPSG:4490"
    else:
        raise FootprintError(
            f"{label}: no coordinate columns; give X and Y (survey northing and easting) or 经度 and 纬度 "
            "(longitude and latitude), with a 地块 (parcel) column for several parcels"
        )
    table = table[~(table == "").all(axis=1)]  # rows left blank (or only commas)
    if table.empty:
        raise FootprintError(f"{label}: the table has no rows; a corner table needs one row per corner point")
    rows = table.index.to_numpy() + table.attrs.get("first_row", 2)
    x, bad_x = _numbers(table[xs], xs, degrees=crs is not None, rows=rows)
    y, bad_y = _numbers(table[ys], ys, degrees=crs is not None, rows=rows)
    # Merged or blank parcel cells continue the parcel above.
    parcel = (table[columns["parcel"]].replace("", np.nan).ffill().fillna("1").astype(str)
              if "parcel" in columns else pd.Series(["1"] * len(table), index=table.index))  # fmt: skip
    ring = table[columns["ring"]].replace("", np.nan).ffill().fillna("1").astype(str) if "ring" in columns else None
    attributes = [c for c in table.columns if c not in (xs, ys, columns.get("ring"), columns.get("point"))]
    rings = None if ring is None else ring.to_numpy()
    build = _simple_parcels if rings is None else _parcels_with_rings
    polygons, problems, firsts = build(_groups(parcel), x, y, bad_x, bad_y, rings, rows, label, table, xs, ys)
    records = table.iloc[firsts][attributes].to_dict("records")
    frame = (
        gpd.GeoDataFrame(records, geometry=polygons, crs=crs) if polygons else gpd.GeoDataFrame(geometry=[], crs=crs)
    )
    if "parcel" in columns and len(frame):
        frame["id"] = frame[columns["parcel"]].astype(str)
    return frame, problems


def _parcels_with_rings(groups, x, y, bad_x, bad_y, rings, rows, label, table, xs, ys):
    """Polygons (with holes) of a table with a ring column, parcel by parcel; their problems; first rows."""
    names, order, counts = groups
    polygons, problems, firsts = [], [], []
    for name, positions in zip(names, np.split(order, np.cumsum(counts)[:-1]), strict=True):
        bad = (bad_x | bad_y)[positions]
        if bad.any():
            problems.append(_row_problem(label, table, rows, positions[bad], xs, ys, bad_x))
            continue
        try:
            polygons.append(_polygon(x, y, positions, rings, rows, name, label))
        except FootprintError as exc:
            problems.append(str(exc))
            continue
        firsts.append(positions[0])
    return polygons, problems, firsts


def _simple_parcels(groups, x, y, bad_x, bad_y, rings, rows, label, table, xs, ys):
    """Polygons of a table without a ring column, all parcels at once; their problems; first rows.

    As :func:`_parcels_with_rings` gives them, without a shapely call per
    parcel (the cost of a table of thousands of parcels).
    """
    names, order, counts = groups
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    parcel_of = np.repeat(np.arange(len(names)), counts)
    bad_rows = (bad_x | bad_y)[order]
    bad = np.bincount(parcel_of, weights=bad_rows, minlength=len(names)) > 0
    coords = np.column_stack([x[order], y[order]])
    last = starts + counts - 1
    closed = (counts > 1) & (coords[starts] == coords[last]).all(axis=1)  # closed tables repeat the first point
    points = counts - closed
    few = ~bad & (points < 3)
    problems = {}
    for k in np.flatnonzero(bad):
        mine = order[starts[k] : last[k] + 1]
        problems[k] = _row_problem(label, table, rows, mine[bad_rows[starts[k] : last[k] + 1]], xs, ys, bad_x)
    for k in np.flatnonzero(few):
        problems[k] = (
            f"{label}:{rows[order[starts[k]]]}: parcel {names[k]!r} ring '1' has {points[k]} "
            "point(s); a polygon needs at least 3"
        )
    good = ~bad & ~few
    keep = good[parcel_of].copy()
    keep[last[closed]] = False
    polygons = []
    if good.any():
        ring_of = np.repeat(np.arange(good.sum()), points[good])  # consecutive, as linearrings wants
        polygons = list(shapely.polygons(shapely.linearrings(coords[keep], indices=ring_of)))
    firsts = order[starts[good]].tolist()
    return polygons, [problems[k] for k in sorted(problems)], firsts


def _row_problem(label, table, rows, bad, xs, ys, bad_x) -> str:
    """The message for a parcel's first row (of the positions ``bad``, in table order) without a number."""
    first = int(bad.min())
    column = xs if bad_x[first] else ys
    value = table[column].iloc[first]
    return f"{label}:{rows[first]}: {column} {value!r} is not a number (nor degrees-minutes-seconds)"


def _groups(parcel: pd.Series):
    """Parcel names in order of first appearance; row positions by parcel (rows in table order); rows per parcel."""
    import pandas as pd

    codes, names = pd.factorize(parcel.to_numpy(), sort=False)
    order = np.argsort(codes, kind="stable")
    return names, order, np.bincount(codes, minlength=len(names))


def _polygon(x, y, positions, ring, rows, name, label) -> shapely.Polygon:
    """A parcel's polygon from its rows: ring 1 (or the first) is the outline, the others holes."""
    names = ["1"] if ring is None else list(dict.fromkeys(ring[positions]))
    names.sort(key=lambda r: (0, float(r)) if r.replace(".", "", 1).isdigit() else (1, 0.0))
    rings = []
    for ring_name in names:
        mine = positions if ring is None else positions[ring[positions] == ring_name]
        coords = np.column_stack([x[mine], y[mine]])
        if len(coords) > 1 and (coords[0] == coords[-1]).all():
            coords = coords[:-1]  # closed tables repeat the first point
        if len(coords) < 3:
            raise FootprintError(
                f"{label}:{rows[mine[0]]}: parcel {name!r} ring {ring_name!r} has {len(coords)} "
                "point(s); a polygon needs at least 3"
            )
        rings.append(coords)
    return shapely.Polygon(rings[0], rings[1:])


def _read(path: Path, label: str, encoding: str | None) -> pd.DataFrame:
    """Read all cells as text, with the header found below any title rows."""
    import zipfile

    import pandas as pd

    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            raw = pd.read_excel(path, dtype=object, keep_default_na=False, header=None)
            raw = raw.map(lambda v: "" if v is None else v)
        else:
            data = path.read_bytes()
            for candidate in ([encoding] if encoding else []) + ["utf-8-sig", "gb18030"]:
                try:
                    text = data.decode(candidate)
                    break
                except (UnicodeDecodeError, LookupError):
                    continue
            else:
                raise FootprintError(f"{label}: the table is neither UTF-8 nor GB18030 text; save it as UTF-8")
            lines = [line for line in text.splitlines() if line.strip()]
            if not lines:
                raise FootprintError(f"{label}: the table has no rows; a corner table needs one row per corner point")
            sep = max(("\t", ";", ","), key=lambda c: max(line.count(c) for line in lines[:10]))
            width = max(line.count(sep) for line in lines) + 1  # title rows may have fewer cells
            raw = pd.read_csv(
                StringIO(text), sep=sep, dtype=object, keep_default_na=False, header=None,
                index_col=False, skip_blank_lines=False, names=range(width),
            )  # fmt: skip
    except FootprintError:
        raise
    except (ValueError, OSError, KeyError, IndexError, zipfile.BadZipFile, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FootprintError(f"{label}: cannot read it as a table ({first})") from None
    header = _header_row(raw)
    table = raw.iloc[header + 1 :].copy()
    table.columns = [str(c).strip() if str(c).strip() else f"column{i + 1}" for i, c in enumerate(raw.iloc[header])]
    names = table.columns
    table = pd.DataFrame({i: _stripped(table.iloc[:, i]) for i in range(table.shape[1])}).reset_index(drop=True)
    table.columns = names
    table.attrs["first_row"] = header + 2  # file row of the first data row
    return table


def _stripped(column: pd.Series) -> pd.Series:
    """The column with its text cells stripped of surrounding spaces (other cells as they are)."""
    try:
        stripped = column.str.strip()  # NaN for the cells that are not text (numbers of an XLSX)
    except AttributeError:  # no text at all
        return column
    return stripped.where(stripped.notna(), column)


def _header_row(raw: pd.DataFrame) -> int:
    """The first of the top rows that names coordinate columns (title rows may sit above it)."""
    for i in range(min(len(raw), 10)):
        names = {_normal(v) for v in raw.iloc[i]}
        if any(n in names for key in ("northing", "easting", "lon", "lat") for n in HEADERS[key]):
            return i
    return 0


def _normal(value: object) -> str:
    return re.sub(r"\s+|\(.*?\)|（.*?）", "", unicodedata.normalize("NFKC", str(value))).lower()


def _columns(table: pd.DataFrame) -> dict[str, str]:
    normal = {_normal(c): c for c in table.columns}
    out = {}
    for key, names in HEADERS.items():
        found = next((normal[n] for n in names if n in normal), None)
        if found is not None:
            out[key] = found
    return out


def _numbers(column: pd.Series, name: str, *, degrees: bool, rows) -> tuple[np.ndarray, np.ndarray]:
    """Parse coordinates (numbers, or DMS for lon/lat); return values and a mask of bad ones."""
    import pandas as pd

    # Plain numbers at once; only the other cells (full-width digits, separators, DMS) one by one.
    try:  # the usual CSV: every cell the text of a plain number (not an XLSX's booleans, refused below)
        if pd.api.types.infer_dtype(column, skipna=False) != "string":
            raise TypeError
        out = column.to_numpy().astype(float)
    except (ValueError, TypeError):
        out = np.array(pd.to_numeric(column, errors="coerce"), dtype=float)
    cells = column.tolist()
    for i in np.flatnonzero(np.isnan(out)):
        value = cells[i]
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = float(value)
            continue
        text = unicodedata.normalize("NFKC", str(value)).strip().replace("′′", "″").replace("''", '"')
        if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", text):
            text = text.replace(",", "")  # thousands separators
        try:
            out[i] = float(text)
            continue
        except ValueError:
            pass
        if degrees:
            out[i] = _dms(text)
    return out, ~np.isfinite(out)


def _dms(text: str) -> float:
    """Degrees-minutes-seconds (116°23′45.6″, 116 23 45.6, 28°30′N) to decimal degrees, NaN if not valid."""
    hemisphere = ""
    if text[-1:].upper() in "NSEW":
        text, hemisphere = text[:-1].strip(), text[-1].upper()
    try:
        value = float(text)  # decimal degrees with a hemisphere letter
        return -abs(value) if hemisphere in ("S", "W") else value
    except ValueError:
        pass
    found = _DMS.match(text)
    if found is None:
        return float("nan")
    d, m, sec = (float(g) if g else 0.0 for g in found.groups())
    whole_degrees = float(found.group(1)).is_integer()
    if m >= 60 or sec >= 60 or (not whole_degrees and (found.group(2) or found.group(3))):
        return float("nan")  # 116°75′ or 116.5°30′: not degrees-minutes-seconds
    if found.group(3) and not float(m).is_integer():
        return float("nan")
    value = abs(d) + m / 60 + sec / 3600
    negative = text.lstrip().startswith("-") or hemisphere in ("S", "W")
    return -value if negative else value
