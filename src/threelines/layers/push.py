"""``layers push``: load a file-based manifest's layers into PostGIS and write a manifest that points at them.

Each vector layer becomes a table ``schema.name`` with the file's FID kept
as ``fid`` (the primary key), every attribute, and a GiST-indexed geometry
column in the layer's own CRS; raster layers stay files and the new
manifest names them by absolute path. Verdicts from the new manifest equal
those from the files: the same features, ids and attributes, and the sample
mark for the bundled sample's layers (``sample: true``).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import shapely

from threelines.errors import ManifestError, OutputError
from threelines.layers.postgis import IDENTIFIER
from threelines.layers.spec import Manifest

#: Declared field types (numpy dtype names, as the manifest check reads them) and the PostgreSQL type that keeps them.
PG_TYPES = {"int": "bigint", "uint": "bigint", "float": "double precision", "bool": "boolean", "datetime": "timestamp"}


def push_layers(
    manifest: Manifest,
    url: str,
    out: str | Path,
    *,
    schema: str = "public",
    dsn_env: str | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Copy every vector layer of ``manifest`` into PostGIS and write the new manifest ``out``.

    Parameters
    ----------
    manifest : Manifest
    url : str
        ``postgresql://user@host:port/db`` (no password: libpq takes it from
        ``PGPASSWORD`` or ``~/.pgpass``).
    out : str or Path
        The manifest to write.
    schema : str
        The schema the tables go in (created if missing).
    dsn_env : str, optional
        Write ``source: {dsn_env: ...}`` blocks naming this environment
        variable instead of the URL.
    overwrite : bool
        Replace existing tables and an existing ``out``.

    Returns
    -------
    list of str
        One line per layer: where it went and how many features.
    """
    from threelines.extras import require

    require("postgis", "layers push")
    import psycopg
    from psycopg import sql

    from threelines import yamlio
    from threelines.layers.read import read_frame

    if urlsplit(url).password:
        raise ManifestError("--to: the URL holds a password; give it in PGPASSWORD or ~/.pgpass instead")
    if not IDENTIFIER.match(schema) or "." in schema:
        raise ManifestError(f"--schema: {schema!r} is not a plain name (letters, digits, _)")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: exists; give --overwrite to replace it, or another -o")
    doc = yamlio.load_checked(manifest.path, "manifest.schema.json", ManifestError, "manifest")[0].data
    entries = {e["name"]: dict(e) for e in doc["layers"]}
    lines = []
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            for spec in manifest.layers.values():
                entry = entries[spec.name]
                if spec.role == "raster":
                    entry["path"] = str(Path(spec.path).resolve())
                    lines.append(f"{spec.name}: raster, stays the file {entry['path']}")
                    continue
                if spec.source is not None:
                    raise ManifestError(f"layer {spec.name!r} is in PostGIS already ({spec.location})")
                frame = read_frame(spec)
                table = f"{schema}.{spec.name}"
                count, srid = _copy_table(conn, table, frame, spec, overwrite)
                for key in ("layer", "encoding", "path", "source"):
                    entry.pop(key, None)
                if dsn_env:
                    entry["source"] = {"dsn_env": dsn_env, "table": table}
                else:
                    entry["path"] = _table_url(url, table)
                if srid != spec.crs.to_epsg():  # stored in CGCS2000 lon/lat: the SRID says so
                    entry.pop("crs", None)
                entry.setdefault("id_field", "fid")  # the file's FIDs were its ids; the table keeps them
                lines.append(f"{spec.name}: {count} features -> {table}")
    except psycopg.Error as exc:
        raise ManifestError(f"--to {url}: {str(exc).strip().splitlines()[0]}") from None
    doc["layers"] = [entries[e["name"]] for e in doc["layers"]]
    if (manifest.jurisdiction or {}).get("sample"):  # the sample's layers, wherever they are, keep its mark
        doc["sample"] = True
    _write_yaml(doc, out, manifest.path)
    return lines


def _table_url(url: str, table: str) -> str:
    """The push URL with ``table=`` added to whatever query it has (``sslmode=...``)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, f"table={table}") if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _copy_table(conn, table: str, frame, spec, overwrite: bool) -> tuple[int, int]:
    """Create ``table`` for a layer's frame and copy its rows in; return the row count and the SRID."""
    from psycopg import sql

    name = sql.Identifier(*table.split("."))
    # The name as the table is created (quoted): to_regclass would fold an unquoted one to lower case.
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name.as_string(conn),)).fetchone()[0]
    if exists and not overwrite:
        raise OutputError(f"table {table} exists; give --overwrite to replace it")
    srid = spec.crs.to_epsg()
    geoms = frame.geometry.values
    if srid is None:  # a CRS with no EPSG code: stored in CGCS2000 lon/lat instead
        geoms, srid = np.asarray(frame.geometry.to_crs(4490).values, dtype=object), 4490
    attrs = frame.drop(columns=frame.geometry.name)
    # The declared types, not the frame's: GDAL reads a nullable boolean as a float.
    columns = [(str(c), PG_TYPES.get(re.sub(r"[^a-z].*", "", spec.fields.get(c, "")), "text")) for c in attrs.columns]
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
    conn.execute(
        sql.SQL("CREATE TABLE {} (fid bigint PRIMARY KEY, {}, geom geometry(Geometry, {}))").format(
            name,
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns),
            sql.Literal(srid),
        )
        if columns
        else sql.SQL("CREATE TABLE {} (fid bigint PRIMARY KEY, geom geometry(Geometry, {}))").format(
            name, sql.Literal(srid)
        )
    )
    wkb = shapely.to_wkb(shapely.set_srid(np.asarray(geoms, dtype=object), srid), hex=True, include_srid=True)
    buffer = io.StringIO()
    for fid, row, geom in zip(frame.index, attrs.itertuples(index=False), wkb, strict=True):
        cells = [str(int(fid)), *(_cell(v, t) for v, (_, t) in zip(row, columns, strict=True))]
        cells.append("\\N" if geom is None else geom)
        buffer.write("\t".join(cells) + "\n")
    fields = sql.SQL(", ").join(sql.Identifier(c) for c in ["fid", *(c for c, _ in columns), "geom"])
    with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(name, fields)) as copy:
        copy.write(buffer.getvalue())
    conn.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(name))
    conn.execute(sql.SQL("ANALYZE {}").format(name))
    return len(frame), srid


def _cell(value: Any, pg_type: str) -> str:
    """One value in COPY's text format (a missing value is COPY's null marker)."""
    import pandas as pd

    try:
        missing = value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        missing = False
    if missing:
        return "\\N"
    if pg_type == "boolean":
        return "t" if value else "f"
    if pg_type == "bigint":
        return str(int(value))
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _write_yaml(doc: dict[str, Any], out: Path, original: Path) -> None:
    """Write the new manifest (plain YAML, Chinese kept), paths of files made absolute."""
    import yaml

    from threelines.report import write_output

    base = original.parent
    for entry in doc["layers"]:
        path = entry.get("path")
        if path and not path.startswith(("postgresql://", "postgres://")) and not Path(path).is_absolute():
            entry["path"] = str((base / path).resolve())
    header = f"# Layers of {original.name}, pushed to PostGIS by threelines layers push.\n"
    write_output(header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), out, overwrite=True)
