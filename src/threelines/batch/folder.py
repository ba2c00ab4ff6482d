"""A batch's output folder: what it holds, made (or an earlier batch's accepted), cleared, locked while it runs.

A folder that holds anything but a batch's own files is refused (unless
``--overwrite``), so that a mistyped ``-o`` never mixes results into
another folder; a second batch on the same folder is refused while the
first holds its lock file (``fcntl``, Linux and other POSIX systems).
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from threelines.batch.index import INDEX_NAME
from threelines.batch.results import DAMAGED, RESULTS, cannot_write
from threelines.batch.summary import partial
from threelines.errors import OutputError

#: Files a batch writes into its output folder, besides results.jsonl (see :mod:`threelines.batch.results`).
SUMMARY_CSV, SUMMARY_XLSX, PROVENANCE = "summary.csv", "summary.xlsx", "provenance.json"
#: The lock file held by a running batch.
LOCK = ".threelines.lock"
#: The summary tables while they are written (see :class:`~threelines.batch.summary.SummaryStream`).
PARTIAL = (partial(Path(SUMMARY_CSV)).name, partial(Path(SUMMARY_XLSX)).name)
#: Everything a batch keeps in its output folder.
OWN_FILES = (RESULTS, SUMMARY_CSV, SUMMARY_XLSX, PROVENANCE, DAMAGED, LOCK, INDEX_NAME, *PARTIAL)


def prepare(out: Path, overwrite: bool) -> Path:
    """Create the output folder, or accept an earlier batch's, or refuse a foreign one."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; a batch writes a folder of results")
    foreign = out.exists() and not overwrite and not (out / RESULTS).exists()
    if foreign and any(p.name not in OWN_FILES for p in out.iterdir()):
        raise OutputError(f"{out}: exists and is not a batch output; give another -o, or --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the folder ({exc.strerror})") from None
    return out


def clear(out: Path) -> None:
    """Remove an earlier batch's files (for ``overwrite``)."""
    for name in (RESULTS, SUMMARY_CSV, SUMMARY_XLSX, PROVENANCE, DAMAGED, *PARTIAL):
        (out / name).unlink(missing_ok=True)


@contextmanager
def locked(out: Path):
    """Hold the output folder's lock file for the run: a second run on the same folder is refused."""
    try:
        fh = (out / LOCK).open("a")
    except OSError as exc:
        raise cannot_write(out, exc) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(
                f"{out}: another batch is writing into this folder (it holds {LOCK}); "
                "wait for it to finish, or give another -o"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
