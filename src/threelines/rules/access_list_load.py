"""The access list a rule file names: read, its unit codes checked against the unit layer, kept once clean.

A list that read clean is kept as JSON next to its table (see
:mod:`threelines.yamlio`), keyed by the table's bytes and the unit layer's
files, so that the next run neither parses the table nor reads the unit
layer's codes again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from threelines import yamlio
from threelines.layers.kept import layer_files
from threelines.layers.read import unit_codes
from threelines.layers.spec import LayerSpec, Manifest
from threelines.rules.access_list import Clause, read_access_list

log = logging.getLogger(__name__)


def load_access_list(doc: yamlio.Located, manifest: Manifest, problems: list[str]) -> tuple[list[Clause], str | None]:
    """Read the access list a rule file names, checking its unit codes against the unit layer."""
    entry = doc.data.get("access_list")
    if entry is None:
        return [], None
    where = doc.where("access_list")
    name = entry.get("layer") or (manifest.unit_layer.name if manifest.unit_layer else None)
    spec = manifest.layers.get(name) if name else None
    if spec is None or spec.role != "unit":
        problems.append(f"{where}: access_list: needs a unit layer; {name!r} is not one in {manifest.path}")
        return [], None
    table = doc.path.parent / entry["path"]
    if table.exists() and not table.is_file():  # a FIFO would hang the read
        problems.append(f"{where}: access_list: {entry['path']} is not a regular file; give the table's file")
        return [], None
    key = _kept_key(table, spec)
    kept = _read_kept(key, table)
    if kept is not None:
        return kept, name
    clauses, bad = read_access_list(table)
    problems += bad
    codes = unit_codes(spec)
    unknown = [c for c in clauses if not c.codes <= codes]
    problems += [
        f"{c.where}: unit: {sorted(c.codes - codes)[0]!r} is not a unit code of layer {name!r}" for c in unknown
    ]
    if key is not None and not bad and not unknown:
        _keep(key, clauses, table)
    return [c for c in clauses if c not in unknown], name


#: Bumped whenever what a kept access list holds, or how one is read, changes.
KEPT_FORMAT = 1


def _kept_key(table: Path, spec: LayerSpec) -> str | None:
    """The SHA-256 naming a kept access list: the table's bytes and name, and the unit layer it was checked against.

    None when it cannot be kept: a PostGIS unit layer changes without a file
    to look at, and a table that cannot be read is read afresh to say why.
    """
    import hashlib

    from threelines import __version__

    if spec.source is not None:
        return None
    try:
        raw = table.read_bytes()
        unit = [spec.name, str(spec.path), spec.layer, spec.id_field, spec.encoding, layer_files(spec)]
    except OSError:
        return None
    digest = hashlib.sha256(f"{KEPT_FORMAT}\0access_list\0{__version__}\0{table}\0{unit}\0".encode())
    digest.update(raw)
    return digest.hexdigest()


def _keep(key: str, clauses: list[Clause], table: Path) -> None:
    """Keep an access list that read clean, if its clauses come back the same from JSON."""
    entry = [{**dataclasses.asdict(c), "units": sorted(c.units)} for c in clauses]  # a set is written sorted
    if _clauses(json.loads(json.dumps(entry))) == clauses:
        yamlio.keep(key, entry, table)


def _read_kept(key: str | None, table: Path) -> list[Clause] | None:
    """The clauses kept under ``key``, or None."""
    entry = yamlio.read_kept(key, table) if key is not None else None
    if entry is None:
        return None
    try:
        return _clauses(entry)
    except (TypeError, ValueError, KeyError) as exc:
        log.info("%s: kept access list %s cannot be used (%s); reading the table again", table, key, exc)
        return None


def _clauses(entry: list[dict[str, Any]]) -> list[Clause]:
    tuples = ("industry", "exclude", "matched")
    return [Clause(**{**row, **{k: tuple(row[k]) for k in tuples}, "units": frozenset(row["units"])}) for row in entry]
