"""Open a published package and recognise what each file holds, by its fields.

A package is a folder, a zip, a File Geodatabase (``.gdb``), a GeoPackage,
or list tables (XLSX / CSV). Every vector layer and table is listed with what
it was recognised as (control units, element zones, red lines, a prose list)
or as unrecognised, for ``IMPORT.md``.
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyogrio

from threelines.input.encoding import guess_encoding
from threelines.limits import MAX_LIST_ROWS, MAX_PACKAGE_BYTES, MAX_PACKAGE_MEMBERS
from threelines.package import PackageError
from threelines.package import fields as F

VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".fgb")
TABLE_SUFFIXES = (".xlsx", ".xlsm", ".csv")


@dataclass
class Item:
    """One layer or table of the package and what it was recognised as.

    ``kind`` is ``unit``, ``zone``, ``redline``, ``list`` or None (unrecognised);
    ``zone`` is the element (ecological / water / air) of a zone layer.
    """

    label: str
    path: Path
    layer: str | None
    columns: list[str]
    kind: str | None = None
    zone: str | None = None
    encoding: str | None = None
    crs: str | None = None
    count: int = 0
    notes: list[str] = field(default_factory=list)


#: Files that belong to a shapefile (or its metadata): read with it, not on their own.
SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".fix", ".xml", ".qmd", ".lock")


def open_package(package: Path, workdir: Path) -> tuple[Path, list[Path], list[Path]]:
    """The package's root folder, its data sources (files, .gdb folders) and the other files (not read).

    A zip is extracted into ``workdir``.

    Raises
    ------
    PackageError
        For a missing package, a bad zip, or one beyond the limits on members and size.
    """
    if not package.exists():
        raise PackageError(f"{package}: not found; give the package's folder, zip, .gdb, .gpkg or list table")
    if package.is_file() and package.suffix.lower() == ".zip":
        root = Path(tempfile.mkdtemp(dir=workdir))
        _extract(package, root)
    elif package.is_dir() and package.suffix.lower() != ".gdb":
        root = package
    else:
        return package.parent, [package], []
    sources, others = [], []
    members = 0
    for path in sorted(root.rglob("*")):
        members += 1
        if members > MAX_PACKAGE_MEMBERS:
            raise PackageError(f"{package}: more than {MAX_PACKAGE_MEMBERS:,} files; give the package's data only")
        if any(part.startswith((".", "__MACOSX")) for part in path.relative_to(root).parts):
            continue
        if any(p.suffix.lower() == ".gdb" for p in path.relative_to(root).parents if p != Path(".")):
            continue  # inside a geodatabase: the .gdb folder is the source
        if (path.is_dir() and path.suffix.lower() == ".gdb") or (
            path.is_file() and path.suffix.lower() in VECTOR_SUFFIXES + TABLE_SUFFIXES
        ):
            sources.append(path)
        elif path.is_file() and path.suffix.lower() not in SIDECARS:
            others.append(path)
    return root, sources, others


def _extract(package: Path, root: Path) -> None:
    """Extract a zip within the limits on members, total size and compression ratio."""
    from threelines.limits import MAX_COMPRESSION_RATIO

    try:
        with zipfile.ZipFile(package) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_PACKAGE_MEMBERS:
                raise PackageError(f"{package}: {len(infos):,} members, more than the limit of {MAX_PACKAGE_MEMBERS:,}")
            total = sum(i.file_size for i in infos)
            if total > MAX_PACKAGE_BYTES:
                raise PackageError(
                    f"{package}: {total:,} bytes uncompressed, more than the limit of {MAX_PACKAGE_BYTES:,}"
                )
            for info in infos:
                if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
                    raise PackageError(
                        f"{package}: member {info.filename} expands {info.file_size / info.compress_size:.0f} times, "
                        f"more than the limit of {MAX_COMPRESSION_RATIO}; it looks like a zip bomb"
                    )
                target = (root / info.filename).resolve()
                if not target.is_relative_to(root.resolve()):
                    raise PackageError(f"{package}: member {info.filename} points outside the archive")
            zf.extractall(root)
    except zipfile.BadZipFile as exc:
        raise PackageError(f"{package}: not a readable zip ({exc})") from None


def survey(sources: list[Path], root: Path, *, encoding: str | None, redline: str | None) -> list[Item]:
    """List every layer and table of the sources, each recognised by its fields."""
    items = []
    for source in sources:
        if source.suffix.lower() in TABLE_SUFFIXES:
            items.append(_table_item(source, root))
            continue
        try:
            layers = [str(row[0]) for row in pyogrio.list_layers(source)]
        except pyogrio.errors.DataSourceError as exc:
            raise PackageError(f"{source}: cannot read it ({str(exc).splitlines()[0]})") from None
        for layer in layers:
            items.append(_vector_item(source, layer if len(layers) > 1 or source.is_dir() else None, root, encoding))
    for item in items:
        if (item.kind is None and item.layer is not None) or item.kind is None:
            _recognise(item, redline)
    return items


def _label(path: Path, root: Path, layer: str | None) -> str:
    try:
        name = str(path.relative_to(root))
    except ValueError:
        name = str(path)
    return f"{name}:{layer}" if layer else name


def _vector_item(path: Path, layer: str | None, root: Path, encoding: str | None) -> Item:
    enc = encoding if path.suffix.lower() == ".shp" else None
    if path.suffix.lower() == ".shp" and enc is None and not path.with_suffix(".cpg").exists():
        enc = guess_encoding(path)
    try:
        info = pyogrio.read_info(path, layer=layer, encoding=enc)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, UnicodeDecodeError, LookupError) as exc:
        raise PackageError(
            f"{_label(path, root, layer)}: cannot read it ({str(exc).splitlines()[0]}); "
            "for a shapefile in another encoding give --encoding GBK"
        ) from None
    return Item(
        label=_label(path, root, layer), path=path, layer=layer, columns=list(info["fields"]), encoding=enc,
        crs=info["crs"], count=int(info["features"]),
    )  # fmt: skip


def _table_item(path: Path, root: Path) -> Item:
    table = read_table(path, _label(path, root, None))
    return Item(label=_label(path, root, None), path=path, layer=None, columns=[str(c) for c in table.columns],
                count=len(table))  # fmt: skip


def read_table(path: Path, label: str) -> pd.DataFrame:
    """A list table's cells as text (XLSX, or CSV in UTF-8 or GB18030)."""
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            table = pd.read_excel(path, dtype=str, keep_default_na=False, nrows=MAX_LIST_ROWS + 1)
        else:
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("gb18030")
            from io import StringIO

            table = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False, nrows=MAX_LIST_ROWS + 1)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PackageError(f"{label}: cannot read the list ({str(exc).splitlines()[0]}); give XLSX or CSV") from None
    if len(table) > MAX_LIST_ROWS:
        raise PackageError(f"{label}: more than {MAX_LIST_ROWS:,} rows, the limit for a list table")
    return table


def _recognise(item: Item, redline: str | None) -> None:
    """Say what an item holds, from its fields (and, for red lines, its name or --redline)."""
    cols = item.columns
    if item.path.suffix.lower() in TABLE_SUFFIXES:
        if F.find(cols, F.UNIT_FIELDS["code"]) and F.dimension_columns(cols):
            item.kind = "list"
        return
    for zone, (codes, _names) in F.ZONE_FIELDS.items():
        if F.find(cols, codes):
            item.kind, item.zone = "zone", zone
            return
    if F.find(cols, F.UNIT_FIELDS["code"]) or (F.find(cols, F.UNIT_FIELDS["class"]) and F.dimension_columns(cols)):
        item.kind = "unit"
        return
    name = item.label.lower()
    chosen = redline is not None and (Path(redline).name in item.label or redline == item.label)
    if chosen or (redline is None and any(w in name for w in F.REDLINE_WORDS)):
        item.kind = "redline"
