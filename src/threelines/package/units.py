"""The package's control units and element zones: which layer they are, their convention columns, checked.

A unit layer's codes must be unique, its classes known (1 / 2 / 3 or
优先保护 / 重点管控 / 一般管控) and its units must tile the territory
(no overlaps beyond digitising noise); the jurisdiction's block (name,
adcode) is taken from what all its units share when it is not given.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from threelines.errors import feature_at
from threelines.layers.check import SLIVER_WIDTH_M, TILING_TOLERANCE_M2
from threelines.layers.spec import DEFAULT_CLASS_MAP
from threelines.package import PackageError
from threelines.package import fields as F
from threelines.package.read import Item


def pick_units(items: list[Item], chosen: str | None) -> Item:
    """The control-unit layer: the one candidate, or the one --units names."""
    candidates = [i for i in items if i.kind == "unit"]
    if chosen is not None:
        picked = [i for i in candidates + [i for i in items if i.kind is None] if chosen in (i.label, i.path.name)
                  or i.label.endswith(chosen)]  # fmt: skip
        if not picked:
            raise PackageError(f"--units {chosen}: no layer of the package has that name; layers: "
                               + ", ".join(i.label for i in items if i.path.suffix.lower() != ".xlsx"))  # fmt: skip
        picked[0].kind = "unit"
        for other in candidates:
            if other is not picked[0]:
                other.kind = None
        return picked[0]
    if not candidates:
        raise PackageError(
            "no layer of the package has control-unit fields (HJZHGKDYBM / 环境管控单元编码 and ZHGKDYFL / "
            "管控单元分类); name the unit layer with --units FILE"
        )
    if len(candidates) > 1:
        raise PackageError(
            f"{len(candidates)} layers look like control units ({', '.join(i.label for i in candidates)}); "
            "name the one to use with --units FILE"
        )
    return candidates[0]


def unit_columns(item: Item, frame: gpd.GeoDataFrame) -> dict[str, str | None]:
    """The unit layer's convention columns, with codes unique, classes known and no overlaps."""
    cols = {key: F.find(frame.columns, names) for key, names in F.UNIT_FIELDS.items()}
    if cols["code"] is None:
        raise PackageError(
            f"{item.label}: looks like the control units but has no code field "
            f"(one of {', '.join(F.UNIT_FIELDS['code'])}); add it"
        )
    if cols["class"] is None:
        raise PackageError(
            f"{item.label}: the control units have no class field (one of {', '.join(F.UNIT_FIELDS['class'])}); add it"
        )
    code = frame[cols["code"]].astype(str).str.strip()
    empty = frame.index[(code == "") | frame[cols["code"]].isna()]
    if len(empty):
        raise PackageError(f"{item.label}: {feature_at(empty[0])} has an empty unit code ({cols['code']}); fill it in")
    twice = code[code.duplicated()]
    if len(twice):
        raise PackageError(
            f"{item.label}: unit code {twice.iloc[0]!r} is used by {int((code == twice.iloc[0]).sum())} features; "
            "codes must be unique: fix the data (or dissolve the parts of one unit)"
        )
    classes = frame[cols["class"]].map(unit_class)
    unknown = frame.loc[classes.isna(), cols["class"]]
    if len(unknown):
        raise PackageError(
            f"{item.label}: class value {unknown.iloc[0]!r} of unit {code[unknown.index[0]]} ({cols['class']}) is not "
            "1 / 2 / 3 or 优先保护 / 重点管控 / 一般管控; correct it in the data"
        )
    _check_overlaps(item, frame, code)
    return cols


def unit_class(value: object) -> str | None:
    """A published class value (1 / 2 / 3, 优先保护 ..., 1.0) as priority / key / general; None for another."""
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    return DEFAULT_CLASS_MAP.get(text) or DEFAULT_CLASS_MAP.get(text.lower())


def _check_overlaps(item: Item, frame: gpd.GeoDataFrame, code: pd.Series) -> None:
    """Units tile a territory: two that overlap (beyond digitising noise) make every verdict ambiguous."""
    from threelines.input.crs import fitted_albers

    lonlat = frame.to_crs(4490).total_bounds
    geoms = frame.to_crs(fitted_albers(tuple(lonlat))).geometry.values
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return
    pieces = shapely.intersection(geoms[left], geoms[right])
    areas, perimeter = shapely.area(pieces), shapely.length(pieces)
    # The tolerance of `threelines layers check`: rounding slivers are noise, not overlaps.
    width = np.divide(2 * areas, perimeter, out=np.zeros_like(areas), where=perimeter > 0)
    areas = np.where((areas > TILING_TOLERANCE_M2) & (width >= SLIVER_WIDTH_M), areas, 0.0)
    worst = int(np.argmax(areas))
    if areas[worst] > 0:
        a, b = code.iloc[left[worst]], code.iloc[right[worst]]
        raise PackageError(
            f"{item.label}: units {a} and {b} overlap by {areas[worst]:,.0f} m2; units must tile the territory: "
            "fix the boundaries in the data"
        )


def zone_columns(item: Item, frame) -> dict[str, str | None]:
    """An element zone layer's convention columns (code, name, class and the extra ones), its classes known."""
    codes, names = F.ZONE_FIELDS[item.zone]
    cols = {"code": F.find(frame.columns, codes), "name": F.find(frame.columns, names),
            "class": F.find(frame.columns, F.UNIT_FIELDS["class"])}  # fmt: skip
    cols |= {key: F.find(frame.columns, names) for key, names in F.ZONE_EXTRA.items()}
    if cols["class"] is not None:
        bad = frame[cols["class"]].map(unit_class).isna()
        if bad.any():
            raise PackageError(
                f"{item.label}: class value {frame.loc[bad, cols['class']].iloc[0]!r} is not 1 / 2 / 3 or "
                "优先保护 / 重点管控 / 一般管控; correct it in the data"
            )
    return cols


def jurisdiction_block(units, cols, block: dict) -> dict:
    """The jurisdiction block: given values, else the province / city / county that all units share."""
    codes = units[cols["code"]].astype(str).str.strip()
    digits = codes.str.extract(r"^[A-Za-z]*(\d{6})")[0].dropna()
    parts, auto = [], None
    for level, width in (("province", 2), ("city", 4), ("county", 6)):
        column = cols.get(level)
        names = units[column].dropna().astype(str).str.strip().unique() if column else []
        prefixes = digits.str[:width].unique() if len(digits) == len(codes) else []
        if (column and len(names) != 1) or (not column and len(prefixes) != 1):
            break
        if column:
            parts.append(names[0])
        if len(prefixes) == 1:
            auto = prefixes[0] + "0" * (6 - width)
    return {
        "name": block.get("name") or "".join(dict.fromkeys(parts)) or "imported jurisdiction",
        "adcode": block.get("adcode") or auto,
        "version": block.get("version"),
        "published": block.get("published"),
    }
