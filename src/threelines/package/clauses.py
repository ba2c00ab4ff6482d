"""The clause table of ``threelines init``: every prose clause of a published package, at its level.

:func:`~threelines.package.build.init_package` gathers the rows of
``access_list.csv`` from three places: the control units' own prose cells
(:func:`unit_prose`, one unit each), the element zones' prose, which applies
in the units a zone covers (:func:`zone_prose`), and the list tables, whose
rows name a unit or an area (province, city, county) of the units
(:func:`list_rows`). Each cell is split into clauses by
:func:`~threelines.package.prose.parse_prose`; a clause whose type or
industries are unclear is kept for review, never dropped.
"""

from __future__ import annotations

import zlib

import numpy as np
import shapely

from threelines.errors import RuleError
from threelines.package import PackageError
from threelines.package import fields as F
from threelines.package.prose import parse_prose
from threelines.package.read import Item, read_table
from threelines.rules.access_list import DIMENSIONS_ZH

#: Abbreviations of the dimensions in clause ids.
DIM_ABBR = {"spatial_layout": "KJ", "emission_control": "PW", "risk_prevention": "FX", "resource_efficiency": "ZY"}
LEVEL_ABBR = {"province": "SJ", "city": "CS", "county": "XQ"}
#: The clause table's columns (Chinese headers, as access_list reads them).
CLAUSE_COLUMNS = (
    "编号", "层级", "适用范围", "管控维度", "涉及行业", "除外行业",
    "类型", "管控要求", "依据", "来源", "匹配词", "待审原因",
)  # fmt: skip
TYPE_WORDS = {"reject": "禁止", "conditional": "限制", "requirement": "要求", "review": "待审"}


def unit_prose(item, frame, cols, keywords) -> list[dict]:
    """The rows of the control units' own prose cells, each clause scoped to its unit."""
    rows = []
    dims = F.dimension_columns(frame.columns)
    for code, values in zip(frame[cols["code"]].astype(str).str.strip(), frame[list(dims.values())].itertuples(
            index=False, name=None), strict=True):  # fmt: skip
        for (dimension, column), text in zip(dims.items(), values, strict=True):
            rows += _clauses(text, "unit", code, dimension, f"{item.label}: unit {code}: {column}", keywords)
    return rows


def _clauses(text, level, scope, dimension, where, keywords, basis="", head=None) -> list[dict]:
    """The clause-table rows of one prose cell; ids start with ``head`` (default: from the level and scope)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    try:
        parsed = parse_prose(str(text), level=level, keywords=keywords, where=where)
    except RuleError as exc:
        raise PackageError(str(exc)) from None
    if head is None:
        head = scope if level == "unit" and "、" not in scope else LEVEL_ABBR.get(level, "DY") + "-" + _short(scope)
    rows = []
    for n, c in enumerate(parsed, start=1):
        rows.append({
            "编号": f"{head}-{DIM_ABBR[dimension]}-{n}", "层级": level, "适用范围": scope,
            "管控维度": DIMENSIONS_ZH[dimension], "涉及行业": "、".join(c.industry), "除外行业": "、".join(c.exclude),
            "类型": TYPE_WORDS[c.outcome], "管控要求": c.text, "依据": basis, "来源": "prose",
            "匹配词": "、".join(c.matched), "待审原因": c.reason or "",
        })  # fmt: skip
    return rows


def _short(scope: str) -> str:
    """A short, stable label of a scope for clause ids (a checksum of a list of unit codes)."""
    return "ALL" if scope == "*" else f"{zlib.crc32(scope.encode()):08X}" if "、" in scope else scope


def zone_prose(item, frame, cols, units, unit_cols, keywords) -> list[dict]:
    """An element zone's prose applies in the units it covers: scope = those units' codes."""
    dims = F.dimension_columns(frame.columns)
    if not dims:
        return []
    zones = frame.to_crs(units.crs)
    tree = shapely.STRtree(units.geometry.values)
    zone_idx, unit_idx = tree.query(zones.geometry.values, predicate="intersects")
    areas = shapely.area(shapely.intersection(zones.geometry.values[zone_idx], units.geometry.values[unit_idx]))
    unit_area = shapely.area(units.geometry.values[unit_idx])
    hit = areas > 1e-4 * unit_area  # more than digitising noise
    codes = units[unit_cols["code"]].astype(str).str.strip().values
    rows = []
    for z in range(len(frame)):
        covered = sorted(set(codes[unit_idx[hit & (zone_idx == z)]]))
        if not covered:
            continue
        label = frame[cols["code"]].iloc[z] if cols["code"] else z
        for dimension, column in dims.items():
            where = f"{item.label}: zone {label}: {column}"
            rows += _clauses(frame[column].iloc[z], "unit", "、".join(covered), dimension, where, keywords,
                             basis=f"要素管控分区 {label}", head=str(label))  # fmt: skip
    return rows


def list_rows(item: Item, units, cols, keywords) -> list[dict]:
    """The rows of a list table at their level: a unit code, or an area (adcode or name) of the units."""
    table = read_table(item.path, item.label)
    code_col = F.find(table.columns, F.UNIT_FIELDS["code"])
    level_col = F.find(table.columns, F.LIST_FIELDS["level"])
    basis_col = F.find(table.columns, F.LIST_FIELDS["basis"])
    dims = F.dimension_columns(table.columns)
    unit_codes = units[cols["code"]].astype(str).str.strip()
    areas = _areas(units, cols, unit_codes)
    known = set(unit_codes)
    rows = []
    for i, row in enumerate(table.to_dict("records")):  # rows of prose, not geometries
        key = str(row[code_col]).strip()
        where = f"{item.label}:{i + 2}"
        if not key and not any(str(row[c]).strip() for c in dims.values()):
            continue
        if key in known:
            level, scope = "unit", key
        elif key in areas:
            level, members = areas[key]
            scope = "*" if len(members) == len(unit_codes) else "、".join(members)
        else:
            raise PackageError(
                f"{where}: {code_col} {key!r} is not a unit code of the unit layer, nor a province, city or county "
                "of its units; correct the list or give the layers that hold that unit"
            )
        if level_col and str(row[level_col]).strip():
            from threelines.rules.access_list import LEVELS

            level = LEVELS.get(str(row[level_col]).strip(), level)
        basis = str(row[basis_col]).strip() if basis_col else ""
        for dimension, column in dims.items():
            rows += _clauses(row[column], level, scope, dimension, f"{where}: {column}", keywords, basis=basis)
    return rows


def _areas(units, cols, codes) -> dict[str, tuple[str, list[str]]]:
    """Province, city and county names and adcodes of the units -> (level, unit codes)."""
    out: dict[str, tuple[str, list[str]]] = {}
    digits = codes.str.extract(r"^[A-Za-z]*(\d{6})")[0]
    for level, width in (("province", 2), ("city", 4), ("county", 6)):
        prefix = digits.str[:width]
        for value in prefix.dropna().unique():
            adcode = value + "0" * (6 - width)
            out[adcode] = (level, sorted(codes[prefix == value]))
        column = cols.get(level)
        if column:
            for value in units[column].dropna().astype(str).str.strip().unique():
                if value:
                    out[value] = (level, sorted(codes[units[column].astype(str).str.strip() == value]))
    return out
