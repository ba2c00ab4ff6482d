"""What a batch output holds so far, kept on disk so that a batch's memory does not grow with its size.

Two tables in a temporary SQLite file: the input hashes of the projects
already screened (to resume), and one summary row per (input, project id),
a later row replacing an earlier one in its place (a retry, a re-screen).
It is rebuilt from ``results.jsonl`` at the start of every run and deleted
at the end.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


class RunIndex:
    """Screened hashes and summary rows of a batch output, in a temporary SQLite database.

    Use as a context manager; the database is removed on exit.
    """

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="threelines-run-")
        self._db = sqlite3.connect(Path(self._folder.name) / "index.sqlite")
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE done (hash TEXT PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TABLE staged (hash TEXT);"
            "CREATE TABLE rows (source TEXT, id TEXT, row TEXT, PRIMARY KEY (source, id));"
        )

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc) -> None:
        self._db.close()
        self._folder.cleanup()

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
        return [cursor.execute("SELECT 1 FROM done WHERE hash = ?", (h,)).fetchone() is None for h in hashes]

    def put_rows(self, rows: Iterable[tuple]) -> None:
        """Add summary rows; a row for an (input, id) already there replaces it in its place."""
        self._db.executemany(
            "INSERT INTO rows VALUES (?, ?, ?) ON CONFLICT (source, id) DO UPDATE SET row = excluded.row",
            ((str(row[2]), str(row[0]), json.dumps(row, ensure_ascii=False)) for row in rows),
        )

    def rows(self) -> Iterator[tuple]:
        """Every summary row, in the order each (input, id) first appeared."""
        for (text,) in self._db.execute("SELECT row FROM rows ORDER BY rowid"):
            yield tuple(json.loads(text))
