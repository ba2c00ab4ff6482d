"""PostGIS as a layer source: a table or a query in a spatial database, read near the footprints.

A manifest layer names its database by a ``postgresql://`` URL in ``path``
(``?table=schema.name``) or by a ``source:`` block whose connection string
comes from an environment variable. Passwords never go in a manifest: libpq
takes them from ``PGPASSWORD`` or ``~/.pgpass``. Reads go through the
table's GiST index (``geom && envelope``) in read-only transactions, and a
manifest's query must be one SELECT; a database role that may only read is
the real safeguard against a manifest from an untrusted source.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import numpy as np

from threelines.errors import ManifestError
from threelines.limits import PG_STATEMENT_TIMEOUT_S

#: PostgreSQL column types and the numpy dtype names the manifest checks use (as pyogrio reports files).
PG_DTYPES = {
    "smallint": "int16", "integer": "int32", "bigint": "int64", "real": "float32", "double precision": "float64",
    "numeric": "float64", "boolean": "bool", "date": "datetime64[D]", "timestamp without time zone": "datetime64[ms]",
    "timestamp with time zone": "datetime64[ms]",
}  # fmt: skip

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


@dataclass(frozen=True)
class PostgisSource:
    """Where a layer's features are: a connection string and a table or a query.

    Attributes
    ----------
    dsn : str
        libpq connection string or URL, without a password.
    table : str or None
        ``schema.name`` or ``name``.
    query : str or None
        A SELECT whose result has a geometry column (instead of ``table``).
    label : str
        How messages and provenance name it (the URL without credentials, or ``$VAR`` + table).
    srid : int
        The geometries' SRID, once the manifest check has read it (0 before).
    timeout_s : float
        How long one statement may run before the server cancels it.
    """

    dsn: str
    table: str | None
    query: str | None
    label: str
    srid: int = 0
    timeout_s: float = PG_STATEMENT_TIMEOUT_S

    def relation(self, with_params: bool = False):
        """The FROM item: the table, or the query as a subselect.

        ``with_params``: the statement is run with parameters, so a ``%`` in
        the query (``LIKE '%x%'``) is doubled, not read as a placeholder.
        """
        from psycopg import sql

        if self.table:
            return sql.Identifier(*self.table.split("."))
        return sql.SQL("({}) AS q").format(sql.SQL(self.query.replace("%", "%%") if with_params else self.query))


def is_postgis_path(text: str) -> bool:
    """Tell whether a manifest ``path`` names a database instead of a file."""
    return text.startswith(("postgresql://", "postgres://"))


def parse_source(entry: dict[str, Any], where: str) -> PostgisSource:
    """The source of a manifest entry that names a database (``path`` URL or ``source`` block).

    Raises
    ------
    ManifestError
        For a password in the manifest, a missing environment variable, or a bad table name.
    ExtraMissing
        Without psycopg (the postgis extra).
    """
    from threelines.extras import require

    name = entry["name"]
    require("postgis", f"{where}: layer {name!r} (a PostGIS source)")
    if "source" in entry:
        block = entry["source"]
        var = block["dsn_env"]
        dsn = os.environ.get(var)
        if not dsn:
            raise ManifestError(
                f"{where}: layer {name!r}: environment variable {var} is not set; "
                f"export {var}=postgresql://user@host:5432/db"
            )
        table, query = block.get("table"), block.get("query")
        label = f"${var}" + (f"?table={table}" if table else "?query")
        timeout = float(block.get("statement_timeout_s", PG_STATEMENT_TIMEOUT_S))
    else:
        parts = urlsplit(entry["path"])
        if parts.password:
            raise ManifestError(
                f"{where}: layer {name!r}: the path holds a password; remove it and give it in PGPASSWORD "
                "or ~/.pgpass instead"
            )
        params = parse_qs(parts.query)
        table = (params.pop("table", [None]) or [None])[0]
        query = None
        if not table:
            raise ManifestError(
                f"{where}: layer {name!r}: the URL names no table; end it with ?table=schema.name "
                "(or use a source: block with a query)"
            )
        rest = "&".join(f"{k}={v[0]}" for k, v in params.items())
        dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        label = urlunsplit((parts.scheme, parts.netloc, parts.path, f"table={table}", ""))
        timeout = PG_STATEMENT_TIMEOUT_S
    if table and not IDENTIFIER.match(table):
        raise ManifestError(f"{where}: layer {name!r}: table {table!r} is not a plain [schema.]name")
    if query is not None and (not query.lstrip().lower().startswith(("select", "with")) or ";" in query):
        raise ManifestError(f"{where}: layer {name!r}: query must be one SELECT, without ';'")
    return PostgisSource(dsn=dsn, table=table, query=query, label=label, timeout_s=timeout)


def connect(source: PostgisSource):
    """A connection whose transactions are read-only (on the server's side too), with a statement timeout.

    This keeps a mistaken query from writing; the real safeguard against a
    hostile manifest is a database role that may only read. The server
    cancels a statement that runs past ``source.timeout_s`` (a query with
    ``pg_sleep``, or one that scans far more than it should), so no backend
    outlives the run by more than that; Ctrl-C cancels it at once (psycopg
    sends a cancel request on KeyboardInterrupt).
    """
    import psycopg

    timeout_ms = max(1, round(source.timeout_s * 1000))
    options = f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}"
    conn = psycopg.connect(source.dsn, connect_timeout=10, options=options)
    conn.read_only = True
    return conn


def describe(source: PostgisSource, where: str, name: str) -> dict[str, Any]:
    """What the manifest checks need: fields and dtypes, geometry column and type, SRID, extent.

    Raises
    ------
    ManifestError
        If the database cannot be reached or the relation has no single-SRID geometry column.
    """
    import psycopg
    from psycopg import sql

    try:
        with connect(source) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(source.relation()))
            columns = [(d.name, d.type_code) for d in cur.description]
            types = dict(cur.execute("SELECT oid, format_type(oid, NULL) FROM pg_type").fetchall())
            geometry = [c for c, oid in columns if types.get(oid) == "geometry"]
            if len(geometry) != 1:
                raise ManifestError(
                    f"{where}: layer {name!r}: {source.label} has {len(geometry)} geometry columns; it needs one"
                )
            geom = sql.Identifier(geometry[0])
            srids, kinds, box = cur.execute(
                sql.SQL(
                    "SELECT array_agg(DISTINCT ST_SRID({g})), array_agg(DISTINCT GeometryType({g})), "
                    "ST_Extent({g})::box2d::text FROM {r}"
                ).format(g=geom, r=source.relation())
            ).fetchone()
    except psycopg.Error as exc:
        raise ManifestError(f"{where}: layer {name!r}: cannot read {source.label}: {_problem(exc, source)}") from None
    srids = [s for s in (srids or []) if s is not None]
    if len(srids) > 1 or (srids and srids[0] == 0):
        raise ManifestError(
            f"{where}: layer {name!r}: {source.label} has SRID {srids}; give the geometries one SRID "
            "(UPDATE ... SET geom = ST_SetSRID(geom, 4490))"
        )
    fields = {c: PG_DTYPES.get(types.get(oid, ""), "object") for c, oid in columns if c != geometry[0]}
    bounds = tuple(float(v) for v in re.findall(r"-?[\d.e+-]+", box)) if box else (np.nan,) * 4
    return {
        "geometry": geometry[0],
        "srid": srids[0] if srids else None,
        "kinds": [k for k in (kinds or []) if k],
        "fields": fields,
        "bounds": bounds,
    }


def read_frame(source: PostgisSource, geometry: str, crs, bbox=None, order_by: str | None = None):
    """The features (all, or those whose box meets ``bbox``, in the layer's CRS) as a GeoDataFrame.

    Rows come in ``order_by`` order, so results do not depend on how the
    server scans; the index is the row's position.
    """
    import geopandas as gpd
    import pandas as pd
    import psycopg
    import shapely
    from psycopg import sql

    geom = sql.Identifier(geometry)
    query = sql.SQL("SELECT *, ST_AsBinary({g}) AS __wkb FROM {r}").format(g=geom, r=source.relation(True))
    params: tuple = ()
    if bbox is not None:
        query = sql.SQL("{} WHERE {g} && ST_MakeEnvelope(%s, %s, %s, %s, %s)").format(query, g=geom)
        params = (*(float(v) for v in bbox), source.srid)
    if order_by:
        query = sql.SQL("{} ORDER BY {}").format(query, sql.Identifier(order_by))
    try:
        with connect(source) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
    except psycopg.Error as exc:
        raise ManifestError(f"cannot read {source.label}: {_problem(exc, source)}") from None
    frame = pd.DataFrame(rows, columns=names).drop(columns=[geometry])
    wkb = frame.pop("__wkb").to_numpy(dtype=object)
    geoms = shapely.from_wkb(np.array([bytes(b) if b is not None else None for b in wkb], dtype=object))
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=crs)


def content_sha256(source: PostgisSource, order_by: str | None) -> str | None:
    """A sha256 over every row of the relation (each row's md5 as the server prints it, in id order).

    It changes when any attribute or geometry does, like a file's sha256 does; None if unreachable.
    """
    import psycopg
    from psycopg import sql

    # Rows sharing an id (or without one) are ordered by their own hash, so the order is stable.
    order = sql.SQL(" ORDER BY {}, 1").format(sql.Identifier(order_by)) if order_by else sql.SQL(" ORDER BY 1")
    query = sql.SQL("SELECT md5(t::text) FROM {} AS t{}").format(
        sql.Identifier(*source.table.split(".")) if source.table else sql.SQL("({})").format(sql.SQL(source.query)),
        order,
    )
    digest = hashlib.sha256()
    try:
        with connect(source) as conn, conn.cursor() as cur:
            for (row,) in cur.execute(query):
                digest.update(row.encode())
    except psycopg.Error:
        return None
    return digest.hexdigest()


def _problem(exc: Exception, source: PostgisSource) -> str:
    """What went wrong, in one line; a statement timeout says which limit and where to raise it."""
    import psycopg

    if isinstance(exc, psycopg.errors.QueryCanceled):
        return (
            f"the server cancelled the query after the statement timeout of {source.timeout_s:g} s; "
            "make it faster, or raise statement_timeout_s in the layer's source block"
        )
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
