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

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

from threelines.errors import RuleError
from threelines.limits import MAX_PACKAGE_FEATURES
from threelines.package import PackageError
from threelines.package import fields as F
from threelines.package.clauses import list_rows, unit_prose, zone_prose
from threelines.package.prose import load_keywords
from threelines.package.read import Item, open_package, survey
from threelines.package.units import jurisdiction_block, pick_units, unit_columns, zone_columns
from threelines.package.write import (
    layer_entry,
    write_clauses,
    write_import,
    write_manifest,
    write_rules,
    write_units,
    write_zone,
)


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
    unit_item = pick_units(items, units)
    unit_frame = _read(unit_item, crs)
    codes = unit_columns(unit_item, unit_frame)
    rows: list[dict] = []
    rows += unit_prose(unit_item, unit_frame, codes, keywords)
    layers = [layer_entry("units", "unit", "环境管控单元", "code", "name", "class")]
    write_units(unit_frame, codes, stage / "layers" / "units.gpkg", unit_item)

    zones_written = []
    for item in (i for i in items if i.kind == "zone"):
        frame = _read(item, crs)
        zone_cols = zone_columns(item, frame)
        name = item.zone if item.zone not in zones_written else f"{item.zone}_{len(zones_written)}"
        write_zone(frame, zone_cols, stage / "layers" / f"{name}.gpkg")
        zones_written.append(name)
        layers.append(layer_entry(name, "quality", f"{item.zone} 要素管控分区", "zone_id", "name"))
        rows += zone_prose(item, frame, zone_cols, unit_frame, codes, keywords)

    if _write_redline([i for i in items if i.kind == "redline"], stage, crs, package):
        layers.append(layer_entry("redline", "redline", "生态保护红线", "id", "name"))

    for item in (i for i in items if i.kind == "list"):
        rows += list_rows(item, unit_frame, codes, keywords)

    j = jurisdiction_block(unit_frame, codes, block)
    write_clauses(rows, stage / "access_list.csv")
    available = {entry["name"] for entry in layers}
    rule_count = write_rules(stage / "rules.yaml", available, j["name"])
    write_manifest(stage / "layers.yaml", layers, j)
    unrecognised = [i.label for i in items if i.kind is None]
    review = sum(1 for r in rows if r["类型"] == "待审")
    write_import(stage / "IMPORT.md", package, items, rows, review, rule_count, j)
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
