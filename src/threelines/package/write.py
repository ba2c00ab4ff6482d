"""What ``threelines init`` writes: the layers as GeoPackages, the clause table, rules, manifest and IMPORT.md."""

from __future__ import annotations

import csv
import re
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from threelines.package import fields as F
from threelines.package.clauses import CLAUSE_COLUMNS
from threelines.package.read import Item
from threelines.package.units import unit_class

#: A unit whose name says it is an industrial park (is_park, for the chemical-park rules).
PARK_NAME = re.compile(r"园区|开发区|工业园|产业园|工业集中区|化工集中区|高新区|经济技术开发区")


def write_zone(frame, cols, path: Path) -> None:
    """An element zone layer as a GeoPackage: zone_id, name, class and the published extra fields."""

    def column(key):
        return frame[cols[key]].astype(str).values if cols.get(key) else np.full(len(frame), "", dtype=object)

    out = gpd.GeoDataFrame(
        {"zone_id": column("code"), "name": column("name"),
         "class": frame[cols["class"]].map(unit_class).values if cols["class"] else np.full(len(frame), "general"),
         "element": column("element"), "subclass": column("subclass"), "basin": column("basin"),
         "reach": column("reach")},
        geometry=frame.geometry.values, crs=frame.crs,
    )  # fmt: skip
    pyogrio.write_dataframe(out, path, layer=path.stem)


def write_units(frame, cols, path: Path, item: Item) -> None:
    """The units as a GeoPackage: code, name, class (priority / key / general), is_park, and the published fields."""
    code = frame[cols["code"]].astype(str).str.strip()
    name = frame[cols["name"]].astype(str) if cols["name"] else code
    keep = {c: frame[c] for c in frame.columns if c != "geometry" and F.normal(c) not in ("CODE", "NAME", "CLASS")}
    out = gpd.GeoDataFrame(
        {"code": code.values, "name": name.values, "class": frame[cols["class"]].map(unit_class).values,
         "is_park": name.str.contains(PARK_NAME).values, **{k: v.values for k, v in keep.items()}},
        geometry=frame.geometry.values, crs=frame.crs,
    )  # fmt: skip
    pyogrio.write_dataframe(out, path, layer="units")


def layer_entry(name, role, title, id_field, name_field, class_field=None) -> dict:
    """A layer's entry in the written manifest (its GeoPackage under ``layers/``)."""
    entry = {"name": name, "role": role, "title": title, "path": f"layers/{name}.gpkg", "layer": name,
             "id_field": id_field, "name_field": name_field}  # fmt: skip
    if class_field:
        entry["class_field"] = class_field
    return entry


def write_clauses(rows: list[dict], path: Path) -> None:
    """The clause table (access_list.csv), its columns in the order the access list reads them."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CLAUSE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def write_rules(path: Path, available: set[str], name: str) -> int:
    """The shipped template, without the rules of layers the package lacks."""
    import yaml

    template = resources.files("threelines") / "data" / "package_rules.yaml"
    doc = yaml.safe_load(template.read_text(encoding="utf-8"))
    doc["rules"] = [r for r in doc["rules"] if r["layer"] in available]
    doc = {"version": 1, "name": f"{name}三线一单准入规则", "access_list": {"path": "access_list.csv"}, **doc}
    header = (
        "# Rules of this jurisdiction: the constraints that need no prose, from threelines' template\n"
        "# (edit freely). The access list read from the package's prose is access_list.csv.\n"
    )
    path.write_text(header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120), encoding="utf-8")
    return len(doc["rules"])


def write_manifest(path: Path, layers: list[dict], j: dict) -> None:
    """layers.yaml: the layers written and the jurisdiction block."""
    import yaml

    doc = {"version": 1, "name": f"{j['name']}三线一单", "rules": "rules.yaml",
           "jurisdiction": {k: v for k, v in j.items() if v is not None}, "layers": layers}  # fmt: skip
    header = "# Layers of this jurisdiction, written by threelines init from its published package.\n"
    path.write_text(header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120), encoding="utf-8")


def write_import(path, package, items, rows, review, rule_count, j) -> None:
    """IMPORT.md: every layer and field recognised or not, and the clauses to review."""
    lines = [f"# Import of {package.name}", "", f"Jurisdiction: {j['name']} (adcode {j['adcode'] or 'unknown'})", ""]
    lines += ["## Layers and tables", "", "| file / layer | recognised as | features / rows | fields recognised | "
              "fields not recognised |", "|---|---|--:|---|---|"]  # fmt: skip
    groups = (F.UNIT_FIELDS, F.DIMENSION_FIELDS, F.ZONE_EXTRA, F.LIST_FIELDS, F.REDLINE_FIELDS,
              {k: v[0] + v[1] for k, v in F.ZONE_FIELDS.items()})  # fmt: skip
    for item in items:
        what = {"unit": "control units (环境管控单元)", "zone": f"{item.zone} element zones (要素管控分区)",
                "redline": "ecological protection red lines (生态保护红线)", "list": "access list (准入清单)",
                None: "**not recognised**"}[item.kind]  # fmt: skip
        if not item.columns and item.kind is None:
            what += " (not a data file: not read)"
        if item.encoding:
            what += f"; attributes read as {item.encoding}"
        used = F.known(item.columns, groups) if item.kind else set()
        rest = [c for c in item.columns if c not in used]
        lines.append(f"| {item.label} | {what} | {item.count:,} | {', '.join(sorted(used)) or '—'} | "
                     f"{', '.join(rest) or '—'} |")  # fmt: skip
    counts = pd.Series([r["类型"] for r in rows]).value_counts().to_dict() if rows else {}
    lines += ["", "## Clauses", "", f"{len(rows)} clauses read from prose: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()), "",
              f"{rule_count} rules from the template in rules.yaml.", ""]  # fmt: skip
    if review:
        lines += ["## Clauses to review (待审)", "", "Each is listed with finding `review` for every project in its "
                  "units until a person gives it a type (禁止 / 限制 / 要求) and industries in access_list.csv.", "",
                  "| clause | level | text | why |", "|---|---|---|---|"]  # fmt: skip
        review_rows = [r for r in rows if r["类型"] == "待审"]
        lines += [f"| {r['编号']} | {r['层级']} | {r['管控要求']} | {r['待审原因']} |" for r in review_rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
