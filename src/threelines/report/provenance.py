"""Provenance: what a verdict was computed from, so it can be reproduced and checked later.

Every report carries the tool version, the sha256 of the manifest, of each
layer's files and of the rule files (the rule file and its access list),
the working CRS, the project input and its sha256, the options that shaped
the projects, and the time of screening. ``threelines verify`` re-screens
from this block and compares.

A layer or input that is a Shapefile is hashed with its sidecar files
(``.shp``, ``.shx``, ``.dbf``, ``.prj``, ``.cpg``, in that order), since
each of them changes what is read; a folder is hashed file by file in name
order. A batch remembers the hashes in its cache folder (:class:`HashMemo`),
so that layer files that have not changed are not read again on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from threelines.limits import MAX_HASH_MEMO, MAX_HASH_MEMO_BYTES

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


#: The file of a cache folder that holds a :class:`HashMemo`, and the format its first key names.
HASH_MEMO, HASH_MEMO_FORMAT = "sha256-memo.json", "threelines sha256 memo 1"

#: A file changed this recently (ns) when it is hashed is not remembered (see :class:`HashMemo`).
SETTLED_NS = 2_000_000_000


class HashMemo:
    """Files' sha256 remembered by the files' identity, in a cache folder, as git's index remembers its files.

    A file's identity is its device, inode, size, modification time and
    change time (ns). The kernel sets the change time on every write and
    every change of the file's metadata, and no tool can set it back
    (``touch -d`` and ``cp -p`` set the modification time only), so a file
    changed in place, even to the same size and modification time, no
    longer has the identity it was hashed with, and is hashed again. So is
    one replaced by another file (a new inode). File systems stamp times in
    ticks (up to 2 s), so a second write within the tick of a first could
    leave the identity unchanged: a file changed less than
    :data:`SETTLED_NS` before it was hashed is not remembered.

    The memo is one JSON file (:data:`HASH_MEMO`) of at most
    :data:`~threelines.limits.MAX_HASH_MEMO` entries, the most recently
    used; it is written to a temporary file that is renamed into place. A
    memo that cannot be read, is of another format, is not a regular file or
    is larger than :data:`~threelines.limits.MAX_HASH_MEMO_BYTES` is an
    empty one: the files are hashed again.

    Parameters
    ----------
    folder : Path
        The cache folder (see :func:`threelines.cachedir.cache_folder`).
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / HASH_MEMO
        self.changed = False
        try:
            memo = orjson.loads(_read_memo(self.path))
            entries = memo[HASH_MEMO_FORMAT]
            self.entries: dict[str, Any] = entries if isinstance(entries, dict) else {}
        except Exception:  # none yet, damaged, another program's: every file is hashed again
            self.entries = {}

    def sha256(self, files: list[Path]) -> str:
        """One sha256 over the files' bytes, as :func:`sha256_files` gives it: remembered, or hashed and noted.

        Raises
        ------
        OSError
            If a file cannot be read.
        """
        key = "\n".join(os.path.abspath(f) for f in files)
        before, now = _identities(files), time.time_ns()
        known = self.entries.pop(key, None)
        if isinstance(known, dict) and known.get("files") == before and _is_sha256(known.get("sha256")):
            self.entries[key] = known  # the most recently used last: the oldest go first
            return known["sha256"]
        self.changed = self.changed or known is not None
        digest = sha256_files(files)
        settled = all(now - max(i[3], i[4]) >= SETTLED_NS for i in before)
        if settled and _identities(files) == before:  # not written to while it was read
            self.entries[key] = {"files": before, "sha256": digest}
            self.changed = True
        return digest

    def save(self) -> None:
        """Write the memo, if it changed (a memo that cannot be written only costs hashing next time)."""
        if not self.changed:
            return
        kept = dict(list(self.entries.items())[-MAX_HASH_MEMO:])
        tmp = None
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(orjson.dumps({HASH_MEMO_FORMAT: kept}))
            os.replace(tmp, self.path)
            tmp = None
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        self.changed = False


def _read_memo(path: Path) -> bytes:
    """The memo's bytes, if it is a regular file of at most :data:`~threelines.limits.MAX_HASH_MEMO_BYTES`.

    Raises
    ------
    OSError, ValueError
        If it is missing, a link, a pipe or device (which could block or never end), or too large.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_HASH_MEMO_BYTES:
            raise ValueError("not a regular file of at most MAX_HASH_MEMO_BYTES")
        data = fh.read(MAX_HASH_MEMO_BYTES + 1)
    if len(data) > MAX_HASH_MEMO_BYTES:  # grown since
        raise ValueError("larger than MAX_HASH_MEMO_BYTES")
    return data


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _identities(files: list[Path]) -> list[list[int]]:
    """Each file's identity: device, inode, size, modification and change time (ns)."""
    out = []
    for path in files:
        info = os.stat(path)
        out.append([info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns])
    return out


def dataset_sha256(path: str | Path, memo: HashMemo | None = None) -> str | None:
    """The sha256 of a dataset's files (remembered in ``memo`` if given), or None when it cannot be read."""
    try:
        files = data_files(path)
        if not files:
            return None
        return memo.sha256(files) if memo is not None else sha256_files(files)
    except OSError:
        return None


def layer_sha256(spec, memo: HashMemo | None = None) -> str | None:
    """A layer's sha256: of its files, or for a PostGIS layer of its rows (see :func:`postgis.content_sha256`)."""
    if spec.source is not None:
        from threelines.layers.postgis import content_sha256

        return content_sha256(spec.source, spec.id_field)
    return dataset_sha256(spec.path, memo)


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
    memo: HashMemo | None = None,
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
    memo : HashMemo, optional
        Remembers the manifest's, layers' and rule files' hashes from run to
        run (None: every file is hashed).

    Returns
    -------
    dict
        ``tool_version``, ``manifest``, ``layers``, ``rules``, ``input``,
        ``crs``, ``options``, ``screened_at`` and, when given, ``project_count``.
    """
    block = with_input(setup_provenance(manifest, rules, options, screened_at, memo), source, wkt)
    return block if project_count is None else {**block, "project_count": project_count}


def setup_provenance(
    manifest,
    rules,
    options: dict[str, Any] | None = None,
    screened_at: datetime | None = None,
    memo: HashMemo | None = None,
    crs_wkt: str | None = None,
):
    """The part of a provenance block every project of a run shares (hashed once): all but ``input``.

    ``memo`` remembers the files' hashes from run to run (None: every file is hashed). ``crs_wkt`` is
    the working CRS's WKT when the caller has it (None: it is written here, through PROJ).
    """
    from threelines import __version__

    when = (screened_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "tool_version": __version__,
        "manifest": {"path": str(Path(manifest.path).resolve()), "sha256": dataset_sha256(manifest.path, memo)},
        "layers": [
            {
                "name": spec.name,
                "path": spec.location if spec.source is not None else str(Path(spec.path).resolve()),
                "sha256": layer_sha256(spec, memo),
            }
            for spec in manifest.layers.values()
        ],
        "rules": [{"path": str(p.resolve()), "sha256": dataset_sha256(p, memo)} for p in rule_files(rules)],
        "crs": manifest.working_crs.to_wkt() if crs_wkt is None else crs_wkt,
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
