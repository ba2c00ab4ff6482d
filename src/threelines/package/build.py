"""``threelines init``: turn a published package into a ready jurisdiction folder.

The folder holds ``layers.yaml`` (with the ``jurisdiction`` block),
``rules.yaml`` (the shipped template of rules that need no prose, limited to
the layers found), ``access_list.csv`` (the clause table: every prose clause
at its level, see :mod:`threelines.package.clauses`), the layers as GeoPackages under
``layers/``, and ``IMPORT.md``, the review report. It is built in a
temporary folder beside the target and moved into place only when the
result loads: on any error nothing is written.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from threelines.errors import RuleError, feature_at
from threelines.layers.check import SLIVER_WIDTH_M, TILING_TOLERANCE_M2
from threelines.layers.spec import DEFAULT_CLASS_MAP
from threelines.limits import MAX_PACKAGE_FEATURES
from threelines.package import PackageError
from threelines.package import fields as F
from threelines.package.clauses import CLAUSE_COLUMNS, list_rows, unit_prose, zone_prose
from threelines.package.prose import load_keywords
from threelines.package.read import Item, open_package, survey

#: A unit whose name says it is an industrial park (is_park, for the chemical-park rules).
PARK_NAME = re.compile(r"园区|开发区|工业园|产业园|工业集中区|化工集中区|高新区|经济技术开发区")


@dataclass
class Jurisdiction:
    """What ``init`` built, for the command's summary."""

    folder: Path
    name: str
    adcode: str | None
    layers: list[str]
    clauses: int
    review: int
    unrecognised: list[str] = field(default_factory=list)


def init_package(
    package: str | Path,
    out: str | Path,
    *,
    units: str | None = None,
    redline: str | None = None,
    encoding: str | None = None,
    crs: str | None = None,
    overwrite: bool = False,
    name: str | None = None,
    adcode: str | None = None,
    version: str | None = None,
    published: str | None = None,
    keywords: str | Path | None = None,
) -> Jurisdiction:
    """Read a published package and write a ready jurisdiction folder.

    Parameters
    ----------
    package : str or Path
        A folder, zip, ``.gdb``, ``.gpkg``, or list table.
    out : str or Path
        The folder to write; it must not exist unless ``overwrite``.
    units : str, optional
        The file (or ``file:layer``) of the control units when several layers look like units.
    redline : str, optional
        The red-line file when its name does not say 红线.
    encoding : str, optional
        The encoding of shapefiles without ``.cpg`` (e.g. ``GBK``); guessed otherwise.
    crs : str, optional
        The CRS of layers that have none.
    overwrite : bool
        Replace ``out`` if it exists.
    name, adcode, version, published : str, optional
        The jurisdiction block; the name and adcode default to what the units say.
    keywords : str or Path, optional
        The jurisdiction's own industry keyword table (``word,codes``), which
        extends the shipped one; it is copied into the folder.

    Returns
    -------
    Jurisdiction

    Raises
    ------
    PackageError
        For anything ambiguous or unusable, naming the file and the fix; nothing is written then.
    """
    package, out = Path(package), Path(out)
    if out.exists() and not overwrite:
        raise PackageError(f"{out}: exists; give --overwrite to replace it, or another -o folder")
    try:
        table = load_keywords(keywords)
    except RuleError as exc:
        raise PackageError(str(exc)) from None
    if not out.parent.is_dir():
        raise PackageError(f"{out}: the folder {out.parent} does not exist; create it first (nothing is written)")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as work:
        work = Path(work)
        root, sources, others = open_package(package, work)
        items = survey(sources, root, encoding=encoding, redline=redline)
        items += [Item(label=str(p.relative_to(root)), path=p, layer=None, columns=[]) for p in others]
        stage = work / "jurisdiction"
        (stage / "layers").mkdir(parents=True)
        result = _build(items, stage, package=package, units=units, crs=crs, keywords=table,
                        block={"name": name, "adcode": adcode, "version": version, "published": published})  # fmt: skip
        if keywords is not None:
            shutil.copyfile(keywords, stage / "industry_keywords.csv")
        _check_loads(stage)
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    result.folder = out
    return result


def _build(items: list[Item], stage: Path, *, package: Path, units: str | None, crs: str | None, keywords, block):
    """Recognise, check and write everything into ``stage``; return the summary."""
    unit_item = _pick_units(items, units)
    unit_frame = _read(unit_item, crs)
    codes = _unit_columns(unit_item, unit_frame)
    rows: list[dict] = []
    rows += unit_prose(unit_item, unit_frame, codes, keywords)
    layers = [_layer_entry("units", "unit", "环境管控单元", "code", "name", "class")]
    _write(unit_frame, codes, stage / "layers" / "units.gpkg", unit_item)

    zones_written = []
    for item in (i for i in items if i.kind == "zone"):
        frame = _read(item, crs)
        zone_cols = _zone_columns(item, frame)
        name = item.zone if item.zone not in zones_written else f"{item.zone}_{len(zones_written)}"
        _write_zone(frame, zone_cols, stage / "layers" / f"{name}.gpkg")
        zones_written.append(name)
        layers.append(_layer_entry(name, "quality", f"{item.zone} 要素管控分区", "zone_id", "name"))
        rows += zone_prose(item, frame, zone_cols, unit_frame, codes, keywords)

    if _write_redline([i for i in items if i.kind == "redline"], stage, crs, package):
        layers.append(_layer_entry("redline", "redline", "生态保护红线", "id", "name"))

    for item in (i for i in items if i.kind == "list"):
        rows += list_rows(item, unit_frame, codes, keywords)

    j = _jurisdiction(unit_frame, codes, block)
    _write_clauses(rows, stage / "access_list.csv")
    available = {entry["name"] for entry in layers}
    rule_count = _write_rules(stage / "rules.yaml", available, j["name"])
    _write_manifest(stage / "layers.yaml", layers, j)
    unrecognised = [i.label for i in items if i.kind is None]
    review = sum(1 for r in rows if r["类型"] == "待审")
    _write_import(stage / "IMPORT.md", package, items, rows, review, rule_count, j)
    return Jurisdiction(stage, j["name"], j["adcode"], sorted(available), len(rows), review, unrecognised)


def _write_redline(red: list[Item], stage: Path, crs: str | None, package: Path) -> bool:
    """Write the red-line layer (id, name) if the package has one; two candidates need --redline."""
    if len(red) > 1:
        raise PackageError(
            f"{package}: {len(red)} layers look like red lines ({', '.join(i.label for i in red)}); "
            "name the one with --redline FILE"
        )
    if not red:
        return False
    frame = _read(red[0], crs)
    code = F.find(frame.columns, F.REDLINE_FIELDS["code"])
    name = F.find(frame.columns, F.REDLINE_FIELDS["name"]) or code
    if code is None:
        raise PackageError(
            f"{red[0].label}: red-line layer without a code field (one of {', '.join(F.REDLINE_FIELDS['code'])}); "
            "add one"
        )
    out = gpd.GeoDataFrame({"id": frame[code].astype(str).values, "name": frame[name].astype(str).values},
                           geometry=frame.geometry.values, crs=frame.crs)  # fmt: skip
    pyogrio.write_dataframe(out, stage / "layers" / "redline.gpkg", layer="redline")
    return True


def _pick_units(items: list[Item], chosen: str | None) -> Item:
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


def _read(item: Item, crs: str | None) -> gpd.GeoDataFrame:
    """Read a layer, with its CRS or --crs, within the feature limit."""
    if item.count > MAX_PACKAGE_FEATURES:
        raise PackageError(f"{item.label}: {item.count:,} features, more than the limit of {MAX_PACKAGE_FEATURES:,}")
    try:
        frame = pyogrio.read_dataframe(item.path, layer=item.layer, encoding=item.encoding)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, UnicodeDecodeError, LookupError) as exc:
        raise PackageError(f"{item.label}: cannot read its features ({str(exc).splitlines()[0]})") from None
    if frame.crs is None:
        if crs is None:
            raise PackageError(
                f"{item.label}: has no CRS (a shapefile needs its .prj); give it with --crs, e.g. --crs 4490"
            )
        frame = frame.set_crs(_parse_crs(crs), allow_override=True)
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    bad = ~frame.geometry.is_valid
    if bad.any():
        frame.loc[bad, "geometry"] = shapely.make_valid(frame.geometry[bad].values)
    return frame


def _parse_crs(value: str):
    from threelines.errors import CRSError
    from threelines.input.crs import parse_crs

    try:
        return parse_crs(value, what="--crs")
    except CRSError as exc:
        raise PackageError(str(exc)) from None


def _unit_columns(item: Item, frame: gpd.GeoDataFrame) -> dict[str, str | None]:
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
    classes = frame[cols["class"]].map(_class)
    unknown = frame.loc[classes.isna(), cols["class"]]
    if len(unknown):
        raise PackageError(
            f"{item.label}: class value {unknown.iloc[0]!r} of unit {code[unknown.index[0]]} ({cols['class']}) is not "
            "1 / 2 / 3 or 优先保护 / 重点管控 / 一般管控; correct it in the data"
        )
    _check_overlaps(item, frame, code)
    return cols


def _class(value: object) -> str | None:
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


def _zone_columns(item: Item, frame) -> dict[str, str | None]:
    codes, names = F.ZONE_FIELDS[item.zone]
    cols = {"code": F.find(frame.columns, codes), "name": F.find(frame.columns, names),
            "class": F.find(frame.columns, F.UNIT_FIELDS["class"])}  # fmt: skip
    cols |= {key: F.find(frame.columns, names) for key, names in F.ZONE_EXTRA.items()}
    if cols["class"] is not None:
        bad = frame[cols["class"]].map(_class).isna()
        if bad.any():
            raise PackageError(
                f"{item.label}: class value {frame.loc[bad, cols['class']].iloc[0]!r} is not 1 / 2 / 3 or "
                "优先保护 / 重点管控 / 一般管控; correct it in the data"
            )
    return cols


def _write_zone(frame, cols, path: Path) -> None:
    def column(key):
        return frame[cols[key]].astype(str).values if cols.get(key) else np.full(len(frame), "", dtype=object)

    out = gpd.GeoDataFrame(
        {"zone_id": column("code"), "name": column("name"),
         "class": frame[cols["class"]].map(_class).values if cols["class"] else np.full(len(frame), "general"),
         "element": column("element"), "subclass": column("subclass"), "basin": column("basin"),
         "reach": column("reach")},
        geometry=frame.geometry.values, crs=frame.crs,
    )  # fmt: skip
    pyogrio.write_dataframe(out, path, layer=path.stem)


def _jurisdiction(units, cols, block: dict) -> dict:
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


def _write(frame, cols, path: Path, item: Item) -> None:
    """The units as a GeoPackage: code, name, class (priority / key / general), is_park, and the published fields."""
    code = frame[cols["code"]].astype(str).str.strip()
    name = frame[cols["name"]].astype(str) if cols["name"] else code
    keep = {c: frame[c] for c in frame.columns if c != "geometry" and F.normal(c) not in ("CODE", "NAME", "CLASS")}
    out = gpd.GeoDataFrame(
        {"code": code.values, "name": name.values, "class": frame[cols["class"]].map(_class).values,
         "is_park": name.str.contains(PARK_NAME).values, **{k: v.values for k, v in keep.items()}},
        geometry=frame.geometry.values, crs=frame.crs,
    )  # fmt: skip
    pyogrio.write_dataframe(out, path, layer="units")


def _layer_entry(name, role, title, id_field, name_field, class_field=None) -> dict:
    entry = {"name": name, "role": role, "title": title, "path": f"layers/{name}.gpkg", "layer": name,
             "id_field": id_field, "name_field": name_field}  # fmt: skip
    if class_field:
        entry["class_field"] = class_field
    return entry


def _write_clauses(rows: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CLAUSE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _write_rules(path: Path, available: set[str], name: str) -> int:
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


def _write_manifest(path: Path, layers: list[dict], j: dict) -> None:
    import yaml

    doc = {"version": 1, "name": f"{j['name']}三线一单", "rules": "rules.yaml",
           "jurisdiction": {k: v for k, v in j.items() if v is not None}, "layers": layers}  # fmt: skip
    header = "# Layers of this jurisdiction, written by threelines init from its published package.\n"
    path.write_text(header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120), encoding="utf-8")


def _write_import(path, package, items, rows, review, rule_count, j) -> None:
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


def _check_loads(stage: Path) -> None:
    """The folder must load as it will be used; any problem is the package's, and nothing is written."""
    from threelines.errors import ThreelinesError
    from threelines.layers.manifest import load_manifest
    from threelines.rules import load_rules

    try:
        manifest = load_manifest(stage / "layers.yaml")
        load_rules(stage / "rules.yaml", manifest)
    except ThreelinesError as exc:
        raise PackageError(f"the imported jurisdiction does not load: {exc}") from None
