"""Provenance: what a verdict was computed from, so it can be reproduced and checked later.

Every report carries the tool version, the sha256 of the manifest, of each
layer's files and of the rule files (the rule file and its access list),
the working CRS, the project input and its sha256, the options that shaped
the projects, and the time of screening. ``threelines verify`` re-screens
from this block and compares.

A layer or input that is a Shapefile is hashed with its sidecar files
(``.shp``, ``.shx``, ``.dbf``, ``.prj``, ``.cpg``, in that order), since
each of them changes what is read; a folder is hashed file by file in name
order.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Files that make up a Shapefile, in the order they are hashed.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def data_files(path: str | Path) -> list[Path]:
    """The files whose bytes a dataset is read from (a Shapefile's sidecars, a folder's members)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if path.suffix.lower() == ".shp":
        return [p for p in (path.with_suffix(s) for s in SHAPEFILE_PARTS) if p.is_file()]
    # Regular files only: reading a FIFO or a device named in a report would never end.
    return [path] if path.is_file() else []


def sha256_files(paths: list[Path]) -> str:
    """One sha256 over the bytes of several files, in order (a single file: its plain sha256)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def dataset_sha256(path: str | Path) -> str | None:
    """The sha256 of a dataset's files, or None when it cannot be read (gone, or not a file)."""
    try:
        files = data_files(path)
        return sha256_files(files) if files else None
    except OSError:
        return None


def layer_sha256(spec) -> str | None:
    """A layer's sha256: of its files, or for a PostGIS layer of its rows (see :func:`postgis.content_sha256`)."""
    if spec.source is not None:
        from threelines.layers.postgis import content_sha256

        return content_sha256(spec.source, spec.id_field)
    return dataset_sha256(spec.path)


def input_path(text: str) -> Path:
    """The file behind an input argument (``file.gpkg:layer`` names a layer of ``file.gpkg``)."""
    if not Path(text).exists() and ":" in text:
        return Path(text.rsplit(":", 1)[0])
    return Path(text)


def rule_files(rules) -> list[Path]:
    """The rule file and the access-list files it names."""
    files = [Path(rules.path)]
    files += sorted({Path(c.where.rsplit(":", 1)[0]) for c in rules.clauses})
    return files


def provenance(
    manifest,
    rules,
    *,
    source: str | None,
    wkt: str | None = None,
    options: dict[str, Any] | None = None,
    screened_at: datetime | None = None,
    project_count: int | None = None,
) -> dict[str, Any]:
    """The provenance block of one screening.

    Parameters
    ----------
    manifest : Manifest
    rules : RuleSet
    source : str or None
        The input as given on the command line (a path, ``file:layer``, or
        ``-`` for standard input); None for a ``--wkt`` footprint.
    wkt : str, optional
        The WKT footprint, when the input was given that way.
    options : dict, optional
        What shaped the projects besides the file: ``crs``, ``encoding`` and
        the attribute overrides, so that a re-screen can apply them again.
    screened_at : datetime, optional
        When; now (UTC) by default.
    project_count : int, optional
        How many projects the report holds: every project of the input
        that was screened. ``verify`` then checks that none is missing.

    Returns
    -------
    dict
        ``tool_version``, ``manifest``, ``layers``, ``rules``, ``input``,
        ``crs``, ``options``, ``screened_at`` and, when given, ``project_count``.
    """
    block = with_input(setup_provenance(manifest, rules, options, screened_at), source, wkt)
    return block if project_count is None else {**block, "project_count": project_count}


def setup_provenance(manifest, rules, options: dict[str, Any] | None = None, screened_at: datetime | None = None):
    """The part of a provenance block every project of a run shares (hashed once): all but ``input``."""
    from threelines import __version__

    when = (screened_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "tool_version": __version__,
        "manifest": {"path": str(Path(manifest.path).resolve()), "sha256": dataset_sha256(manifest.path)},
        "layers": [
            {
                "name": spec.name,
                "path": spec.location if spec.source is not None else str(Path(spec.path).resolve()),
                "sha256": layer_sha256(spec),
            }
            for spec in manifest.layers.values()
        ],
        "rules": [{"path": str(p.resolve()), "sha256": dataset_sha256(p)} for p in rule_files(rules)],
        "crs": manifest.working_crs.to_wkt(),
        "options": {k: v for k, v in (options or {}).items() if v is not None},
        "screened_at": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def with_input(block: dict[str, Any], source: str | None, wkt: str | None = None) -> dict[str, Any]:
    """A shared block completed with one input (its path and sha256, or the WKT)."""
    if wkt is not None:
        given = {"path": None, "wkt": wkt, "sha256": hashlib.sha256(wkt.encode()).hexdigest()}
    elif source in (None, "-"):
        given = {"path": source, "sha256": None}  # standard input: there is no file to hash again
    else:
        path = input_path(source)
        given = {"path": str(path.resolve()), "sha256": dataset_sha256(path)}
        if path != Path(source):
            given["layer"] = source.rsplit(":", 1)[1]
    return {**block, "input": given}


def setup_digest(block: dict[str, Any]) -> str:
    """One hash of what a shared block names: manifest, layers and rule files (not the time or options)."""
    parts = [block["manifest"]["sha256"]]
    parts += [f"{e['name']}:{e['sha256']}" for e in block["layers"]]
    parts += [f"{Path(e['path']).name}:{e['sha256']}" for e in block["rules"]]
    return hashlib.sha256("\n".join(str(p) for p in parts).encode()).hexdigest()
