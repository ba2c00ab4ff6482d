"""Project attributes: their names, the column names files use for them, and how each is checked.

A footprint file's columns are matched to :data:`ATTRIBUTES` in any case,
under the 10-character names a shapefile truncates to, and under the
Chinese headers of :data:`COLUMN_ALIASES`. Each value is then normalised
(GB/T 4754 codes, fuel and water-source words in Chinese or English,
non-negative numbers) or refused with a message naming the project.
"""

from __future__ import annotations

import json
from itertools import repeat
from typing import Any

import numpy as np

from threelines import industry, limits
from threelines.errors import FootprintError

#: Project kinds.
KINDS = ("area", "linear", "point")

#: Annual quantities a project declares: emissions in t/a, water in m3/a.
QUANTITIES = ("emit_so2", "emit_nox", "emit_vocs", "emit_pm", "emit_cod", "emit_nh3n", "water_m3")

#: Fuel values, with the Chinese words consultants write for them.
FUELS = {
    "coal": "coal", "煤": "coal", "燃煤": "coal", "煤炭": "coal",
    "heavy_oil": "heavy_oil", "重油": "heavy_oil",
    "diesel": "diesel", "柴油": "diesel",
    "gas": "gas", "natural_gas": "gas", "天然气": "gas",
    "lpg": "lpg", "液化石油气": "lpg",
    "biomass": "biomass", "生物质": "biomass",
    "electricity": "electricity", "电": "electricity", "电力": "electricity",
    "none": "none", "无": "none",
}  # fmt: skip

#: Water sources, with their Chinese words.
WATER_SOURCES = {
    "groundwater": "groundwater", "地下水": "groundwater",
    "surface": "surface", "地表水": "surface",
    "municipal": "municipal", "自来水": "municipal", "市政供水": "municipal",
    "reclaimed": "reclaimed", "再生水": "reclaimed", "中水": "reclaimed",
    "none": "none", "无": "none",
}  # fmt: skip

#: The plausible upper bound of each number a project declares, and its unit (see :mod:`threelines.limits`).
UPPER_BOUNDS = {
    "width": (limits.MAX_WIDTH_M, "m"),
    "radius": (limits.MAX_RADIUS_M, "m"),
    **{name: (limits.MAX_EMISSION_T, "t/a") for name in QUANTITIES if name != "water_m3"},
    "water_m3": (limits.MAX_WATER_M3, "m3/a"),
}

#: How each attribute's one value is described when a cell holds several.
_ONE_VALUE = {"industry": "a code; give one code as text", "id": "an id; give one id as text",
              "name": "a name; give one name as text"}  # fmt: skip

#: Cell types that are one value for certain.
_PLAIN = frozenset({int, float, bool})

#: Every project attribute, in output order.
ATTRIBUTES = ("id", "name", "industry", "kind", "width", "radius", "fuel", "water_source", *QUANTITIES)

#: Other column names consultants' files use for the same attributes.
COLUMN_ALIASES = {
    "id": ("项目编号", "编号", "project_id"),
    "name": ("项目名称", "名称", "project_name"),
    "industry": ("行业代码", "行业类别代码", "industry_code"),
    "width": ("宽度",),
    "radius": ("半径",),
}


def plain_column(column) -> list[Any]:
    """A column's cells as plain Python values, None for a missing (None, NaN, NA, NaT) or blank one."""
    missing = column.isna().to_numpy()
    out = []
    for value, gone in zip(column.tolist(), missing, strict=True):
        if isinstance(value, np.generic):
            value = value.item()
        if gone or (isinstance(value, str) and not value.strip()):
            value = None
        out.append(value)
    return out


def column_cells(column) -> list[Any] | np.ndarray:
    """A table column's cells for :func:`check_columns`: a column of numbers as its numpy array (NaN: missing)."""
    if column.dtype.kind in "iuf" and isinstance(column.dtype, np.dtype):
        return column.to_numpy()
    return plain_column(column)


def plain_cells(values: list[Any]) -> list[Any]:
    """JSON property values (one per feature) as :func:`plain_column` gives a table's column of them.

    Blank text is None, and whole numbers beside a missing or fractional one
    are floats (``7`` is ``7.0``), as a table's column of numbers holds them.
    """
    kinds = {type(v) for v in values}
    if int in kinds and kinds & {float, type(None)} and kinds <= {int, float, type(None)}:
        return [None if v is None else float(v) for v in values]
    return [None if type(v) is str and not v.strip() else v for v in values]


def attribute_columns(frame) -> dict[str, str]:
    """Map attribute names to the frame's columns (any case, aliases, 10-character shapefile names)."""
    return attribute_names([c for c in frame.columns if c != frame.geometry.name])


def attribute_names(columns) -> dict[str, Any]:
    """Map attribute names to column names (any case, aliases, 10-character shapefile names); the last one wins."""
    by_lower = {str(c).lower(): c for c in columns}
    out = {}
    for name in ATTRIBUTES:
        for candidate in (name, name[:10], *COLUMN_ALIASES.get(name, ())):
            if candidate.lower() in by_lower:
                out[name] = by_lower[candidate.lower()]
                break
    return out


def check_attributes(values: dict[str, Any], label: str) -> dict[str, Any]:
    """Validate and normalise one project's attributes.

    Parameters
    ----------
    values : dict
        Every name of :data:`ATTRIBUTES`, as read (None where not given).
    label : str
        The source, for messages.

    Returns
    -------
    dict
        The normalised attributes.

    Raises
    ------
    FootprintError
        For a value that is not one scalar (a list or object in GeoJSON), a
        kind, fuel or water source not known, or a number that is not finite,
        negative or beyond its plausible bound (:data:`UPPER_BOUNDS`).
    """
    where = f"{label}: project {values['id']!r}"
    for name in ATTRIBUTES:
        value = values[name]
        if not _plain_scalar(value):
            _check_scalar(name, value, where)
    out: dict[str, Any] = {"id": values["id"]}
    for name in _CHECKED:
        out[name] = _normalised(name, values[name], where)
    return out


#: The attributes :func:`_normalised` checks, in the order :func:`check_attributes` checks them (and outputs them).
_CHECKED = ("name", "industry", "kind", "fuel", "water_source", "width", "radius", *QUANTITIES)


def _plain_scalar(value: Any) -> bool:
    """Whether a cell is one value for certain: missing, a number or plain text (most cells are)."""
    return value is None or type(value) in _PLAIN or (type(value) is str and not value.startswith(("[", "{")))


def _normalised(name: str, value: Any, where: str) -> Any:
    """One attribute's value as a project holds it, or the project's error (``where`` names the project)."""
    if value is None:
        return None
    if name == "name":
        return str(value)
    if name == "industry":
        return industry.from_cell(value, what=f"{where}: industry")
    if name == "kind":
        if str(value).strip().lower() not in KINDS:
            raise FootprintError(f"{where}: kind {value!r} is not one of {', '.join(KINDS)}")
        return str(value).strip().lower()
    if name in ("fuel", "water_source"):
        vocabulary = FUELS if name == "fuel" else WATER_SOURCES
        key = str(value).strip()
        if key.lower() not in vocabulary and key not in vocabulary:
            raise FootprintError(
                f"{where}: {name} {value!r} is not known; use one of {', '.join(sorted(set(vocabulary.values())))}"
            )
        return vocabulary.get(key.lower(), vocabulary.get(key))
    return _bounded_number(name, value, where)


def check_columns(ids: list[str], cells: dict[str, Any], overrides: dict[str, Any]) -> list[dict[str, Any] | None]:
    """Check and normalise whole attribute columns at once, as :func:`check_attributes` does one project.

    Per row, its attributes, or None for a row that :func:`check_attributes`
    has to judge (see :func:`checked_columns`).
    """
    return checked_columns(ids, cells, overrides)[0]


def checked_columns(
    ids: list[str], cells: dict[str, Any], overrides: dict[str, Any]
) -> tuple[list[dict[str, Any] | None], dict[str, list[Any]]]:
    """Check and normalise whole attribute columns at once, as :func:`check_attributes` does one project.

    Numbers are checked over the column with numpy, other values once per
    distinct value. A row with a value that fails (or that is not plainly
    one value) is left to :func:`check_attributes`, which gives that
    project's message.

    Parameters
    ----------
    ids : list of str
        Each row's project id.
    cells : dict
        Per attribute given, one cell per row: a list of plain values (None:
        missing) or a numeric numpy array (NaN: missing).
    overrides : dict
        Values for every row, which replace the cells.

    Returns
    -------
    rows : list
        Per row, its attributes as :func:`check_attributes` gives them, or
        None for a row that :func:`check_attributes` has to judge.
    columns : dict
        Per name of :data:`ATTRIBUTES`, the column the rows were made of
        (a doubted row's cell in it is not its value).
    """
    count = len(ids)
    if {*map(type, ids)} <= {str}:  # the usual ids: text, doubtful only if it starts like a list or an object
        doubtful = np.fromiter(map(str.startswith, ids, repeat(("[", "{"))), dtype=bool, count=count)
    else:
        doubtful = np.fromiter((not _plain_scalar(pid) for pid in ids), dtype=bool, count=count)
    columns = []
    for name in _CHECKED:
        if name in overrides:
            column: Any = [overrides[name]] * count
        elif name in cells:
            column = cells[name]
        else:
            columns.append([None] * count)
            continue
        if name in UPPER_BOUNDS and _numeric(column):
            values, bad = _number_column(name, column)
        else:
            values, bad = _distinct_column(name, plain_values(column))
        columns.append(values)
        doubtful |= bad
    names = ("id", *_CHECKED)
    rows = [
        None if bad else dict(zip(names, row, strict=True))
        for bad, row in zip(doubtful.tolist(), zip(ids, *columns, strict=True), strict=True)
    ]
    return rows, dict(zip(names, (ids, *columns), strict=True))


def plain_values(column) -> list[Any]:
    """A column's cells as plain Python values: a numeric array's NaN is None, as :func:`plain_column` gives it."""
    if not isinstance(column, np.ndarray):
        return column
    values = column.astype(object)
    if column.dtype.kind == "f":
        values[np.isnan(column)] = None
    return values.tolist()


def _numeric(column) -> bool:
    """Whether a column is all numbers (and missing cells), to be checked with numpy."""
    if isinstance(column, np.ndarray):
        return column.dtype.kind in "iuf"
    return {type(v) for v in column} <= {int, float, type(None)}


def _number_column(name: str, column) -> tuple[list[Any], np.ndarray]:
    """A column of numbers checked over the array: the values, and the rows :func:`_bounded_number` would refuse."""
    if isinstance(column, np.ndarray):
        values = column.astype(float)
        missing = np.isnan(values)
    else:
        missing = np.fromiter((v is None for v in column), dtype=bool, count=len(column))
        try:
            values = np.array([np.nan if v is None else v for v in column], dtype=float)
        except OverflowError:  # an integer beyond any float: that row's own message
            return [None] * len(column), ~missing
    bound, _ = UPPER_BOUNDS[name]
    with np.errstate(invalid="ignore"):
        good = missing | (np.isfinite(values) & (values >= 0) & (values <= bound))
    out = values.astype(object)
    out[missing] = None
    return out.tolist(), ~good


#: A value that :func:`_normalised` refuses, in a column's cache of distinct values.
_REFUSED = object()


def _distinct_column(name: str, column: list[Any]) -> tuple[list[Any], np.ndarray]:
    """A column checked once per distinct value: the values, and the rows with a value refused or not plain."""
    keys = list(zip(map(type, column), column, strict=True))  # by type too: 1, 1.0 and True read differently
    try:
        distinct = dict.fromkeys(keys)
    except TypeError:  # an unhashable cell (a list): every row of the column is judged on its own
        return [None] * len(column), np.ones(len(column), dtype=bool)
    for key in distinct:
        value = key[1]
        try:
            distinct[key] = _normalised(name, value, "") if _plain_scalar(value) else _REFUSED
        except Exception:  # whatever it is, check_attributes meets it again and says so
            distinct[key] = _REFUSED
    values = [distinct[key] for key in keys]
    if not any(v is _REFUSED for v in distinct.values()):  # most columns: every value accepted
        return values, np.zeros(len(values), dtype=bool)
    return values, np.fromiter((v is _REFUSED for v in values), dtype=bool, count=len(values))


def _bounded_number(name: str, raw: Any, where: str) -> float:
    """A declared number: finite, >= 0 and within its plausible bound, or the project's error."""
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise FootprintError(f"{where}: {name} {raw!r} is not a number") from None
    bound, unit = UPPER_BOUNDS[name]
    if not np.isfinite(value):
        raise FootprintError(f"{where}: {name} {raw!r} is not a finite number; give it in {unit}")
    if value < 0:
        raise FootprintError(f"{where}: {name} {raw!r} must be a number >= 0")
    if value > bound:
        raise FootprintError(
            f"{where}: {name} {value:g} {unit} is beyond the plausible limit of {bound:g} {unit}; give it in {unit}"
        )
    return value


def _check_scalar(name: str, value: Any, where: str) -> None:
    """Refuse a cell that holds a list or an object (GeoJSON allows them; a project attribute is one value).

    GDAL reads such a GeoJSON property as its JSON text (the reader asks it
    to, so that the scalar cells of the same column stay scalars).
    """
    if isinstance(value, str):
        if name == "name":
            return  # a name is any text
        try:
            value = json.loads(value)
        except ValueError:
            return  # text that merely starts with a bracket
        if not isinstance(value, list | dict):
            return
    elif not isinstance(value, list | tuple | dict | set | np.ndarray):
        return
    if isinstance(value, np.ndarray):
        value = value.tolist()
    one = _ONE_VALUE.get(name, "a number; give one number" if name in UPPER_BOUNDS else f"a {name}; give one value")
    raise FootprintError(f"{where}: {name} {value!r} is not {one}")
