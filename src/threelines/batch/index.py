"""What a batch output holds so far, kept on disk so that a batch's memory does not grow with its size.

A SQLite file inside the output folder (:data:`INDEX_NAME`) with the input
hashes of the projects already screened (to resume), and one summary row
per record key, with the line of ``results.jsonl`` that holds the record.
A record's key is where its project came from, ``(file, layer, feature)``,
never its id: two projects with one id stay two rows. A later record for a
key replaces the earlier one in its place (a retry, a re-screen), and the
earlier line is noted as stale, to be dropped from ``results.jsonl`` at the
end of the run. The index is rebuilt from ``results.jsonl`` at the start of
every run and deleted at the end; one left behind by a killed run is
rebuilt the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from threelines.batch.summary import SUMMARY_COLUMNS

#: The index's file in the output folder.
INDEX_NAME = ".threelines-index.sqlite"

#: Where a summary row says its record came from.
_SOURCE, _LAYER, _FEATURE = (SUMMARY_COLUMNS.index(c) for c in ("source", "layer", "feature"))


def _key(row: tuple, line: int) -> str:
    """A summary row's key in the index: where its record came from, and its line for a record without a feature."""
    return orjson.dumps([row[_SOURCE], row[_LAYER], row[_FEATURE], line if row[_FEATURE] is None else None]).decode()


class RunIndex:
    """Screened hashes and summary rows of a batch output, in a SQLite file in the output folder.

    Use as a context manager; the file is removed on exit.

    Parameters
    ----------
    folder : Path
        The batch's output folder.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / INDEX_NAME
        for leftover in (self.path, self.path.with_name(INDEX_NAME + "-journal")):
            leftover.unlink(missing_ok=True)  # a killed run's: rebuilt from results.jsonl
        self._db = sqlite3.connect(self.path)
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE done (hash TEXT PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TABLE staged (hash TEXT);"
            "CREATE TABLE rows (key TEXT PRIMARY KEY, file TEXT, loose INTEGER, line INTEGER, id TEXT, row TEXT);"
            # Only the loose rows are looked up by file (once per file): the index holds just them.
            "CREATE INDEX rows_loose ON rows (file) WHERE loose = 1;"
            "CREATE TABLE stale (line INTEGER);"
            # A row replaced in its place leaves its line stale: noted by SQLite as it updates, not by a query per row.
            "CREATE TRIGGER replaced AFTER UPDATE OF line ON rows BEGIN INSERT INTO stale VALUES (old.line); END;"
        )
        self._seen: set[str] = set()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)

    def mark_done(self, hashes: Iterable[str]) -> None:
        """Record projects as screened."""
        self._db.executemany("INSERT OR IGNORE INTO done VALUES (?)", ((h,) for h in hashes))

    def stage(self, hashes: Iterable[str]) -> None:
        """Record projects that count as screened once :meth:`commit` is called (after their input)."""
        self._db.executemany("INSERT INTO staged VALUES (?)", ((h,) for h in hashes))

    def commit(self) -> None:
        """Count the staged projects as screened."""
        self._db.execute("INSERT OR IGNORE INTO done SELECT hash FROM staged")
        self._db.execute("DELETE FROM staged")

    def new(self, hashes: list[str]) -> list[bool]:
        """For each hash, whether it has not been screened yet."""
        cursor = self._db.cursor()
        if cursor.execute("SELECT 1 FROM done LIMIT 1").fetchone() is None:  # a first run: none has
            return [True] * len(hashes)
        return [cursor.execute("SELECT 1 FROM done WHERE hash = ?", (h,)).fetchone() is None for h in hashes]

    def put(self, rows: list[tuple], first: int, *, earlier: bool = False) -> None:
        """Add records by their summary rows, on consecutive lines of ``results.jsonl`` from line ``first``.

        A record for a key already there replaces its row in its place, and
        the replaced line becomes stale. A record of this run (not
        ``earlier``) from a file also makes stale that file's earlier records
        without a feature (errors about the whole file, records of an older
        format), which it answers anew.
        """
        db = self._db
        if not earlier:
            files = {row[_SOURCE] for row in rows}
            for file in files - self._seen:  # before this batch's own rows of the file are written
                db.execute("INSERT INTO stale SELECT line FROM rows WHERE file = ? AND loose = 1", (file,))
                db.execute("DELETE FROM rows WHERE file = ? AND loose = 1", (file,))
            self._seen |= files
        # Records without a feature never replace each other: each is its own row (its key holds its line).
        entries = [
            (_key(row, line), row[_SOURCE], int(row[_FEATURE] is None), line, None if row[0] is None else str(row[0]),
             orjson.dumps(row))
            for line, row in enumerate(rows, first)
        ]  # fmt: skip
        # One statement for all, run row after row: a key twice among them is written, then replaced in its place
        # (the trigger makes stale the lines replaced).
        db.executemany(
            "INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE "
            "SET line = excluded.line, id = excluded.id, row = excluded.row",
            entries,
        )

    def replaced(self) -> int:
        """How many records were replaced so far (see :meth:`stale`)."""
        return self._db.execute("SELECT COUNT(*) FROM stale").fetchone()[0]

    def stale(self) -> set[int]:
        """Lines of ``results.jsonl`` whose records were replaced."""
        return {line for (line,) in self._db.execute("SELECT line FROM stale")}

    def rows(self) -> Iterator[tuple]:
        """Every summary row, in the order each key first appeared."""
        for (text,) in self._db.execute("SELECT row FROM rows ORDER BY rowid"):
            yield tuple(orjson.loads(text))

    def shared_ids(self) -> list[tuple[str, int]]:
        """Project ids that several projects carry, with how many (ids of whole-file errors left out)."""
        query = "SELECT id, COUNT(*) FROM rows WHERE loose = 0 GROUP BY id HAVING COUNT(*) > 1 ORDER BY MIN(rowid)"
        return [(pid, n) for pid, n in self._db.execute(query)]
