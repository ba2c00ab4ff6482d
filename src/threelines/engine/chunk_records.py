"""A batch chunk's records written as JSON text, a field at a time for all its triggers.

The batch's last step for a chunk: :mod:`threelines.batch.workers` screens
the chunk's projects, and :func:`batch_results` gives each verdict's record,
ready to dump, and its tally for the summary. A batch reads none of its
records back, so no trigger object is made: each trigger is a place in the
:class:`~threelines.engine.records.TriggerRows` that fired it
(:class:`_FiredPlaces`), each field is written for all the chunk's tables
in one call (:func:`~threelines.engine.json_values.column_texts`), and each
verdict's triggers become one JSON array of that text. The rest of a record
is made as for any screening (:func:`~threelines.engine.records.assemble_records`),
so the text is what dumping :func:`~threelines.engine.records.verdict_records`
would give.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from itertools import repeat
from typing import Any

import numpy as np
import orjson

from threelines.engine.json_values import JSON_OPTIONS, column_texts, json_number
from threelines.engine.records import (
    TRIGGER_PLACES,
    TriggerRows,
    assemble_records,
    split_by_sizes,
    trigger_records,
)
from threelines.engine.verdict import VERDICTS, Later, Trigger, Verdict


def batch_records(verdicts: Sequence[Verdict], lang: str | None = None) -> list[dict[str, Any]]:
    """The verdicts' records, each one's triggers (and other lists) already JSON text (:class:`orjson.Fragment`).

    The records are those of :func:`~threelines.engine.records.verdict_records`.
    A batch writes them with :data:`JSON_OPTIONS` and reads none of them
    back: the triggers (most of a record) are written from the columns of
    the rows that fired, a field at a time (see :class:`_FiredPlaces`), into
    the text that dumping their records would give; the unresolved rules,
    requirements and clauses, shared by many projects, are written once per
    distinct list.
    """
    return batch_results(verdicts, lang)[0]


def batch_results(
    verdicts: Sequence[Verdict], lang: str | None = None
) -> tuple[list[dict[str, Any]], list[tuple[int, int, int, str]]]:
    """:func:`batch_records`, and each verdict's tally for the batch summary, made from the same columns.

    A tally is ``(reject, conditional, unresolved, rules)``: the verdict's
    triggers of each of those outcomes, its unresolved rules, and the ids of
    the rules that fired (each once, in order, joined by commas).
    """
    fired = _FiredPlaces(verdicts)  # no trigger made
    arrays = list(map(orjson.Fragment, fired.json_arrays(lang)))
    records, counts = assemble_records(verdicts, arrays, fired.sizes, fired.ranks(), _ListTexts())
    unresolved = [len(verdict.unresolved) for verdict in verdicts]
    return records, list(zip(*counts, unresolved, fired.rules_named(), strict=True))


class _ListTexts:
    """A verdict's unresolved rules, requirements or clauses as JSON text, each distinct list written once.

    The access list's requirements and clauses are the same objects in many
    projects' verdicts (a few hundred for thousands of projects), and so are
    many unresolved notes: a list of the same objects is written once, and
    its text used again. Objects are known by their ids while the verdicts
    hold them, which they do as long as this lives.
    """

    def __init__(self) -> None:
        self._made: dict[tuple[int, ...], orjson.Fragment] = {}

    def __call__(self, items: Sequence[Any], form: Callable[[Any], dict[str, Any]]) -> list | orjson.Fragment:
        if not items:
            return []
        key = (id(form), *map(id, items))  # the same objects may be written by another form
        text = self._made.get(key)
        if text is None:
            text = self._made[key] = orjson.Fragment(orjson.dumps(list(map(form, items)), option=JSON_OPTIONS))
        return text


class _FiredPlaces:
    """Every trigger of some verdicts, in their order, as a place in a table: which table, which of its rows.

    The tables are the :class:`TriggerRows` that made the triggers and,
    last, the triggers made alone (verdicts read back from a pickle, say):
    their records. The verdicts of one screening whose triggers are not
    made yet (see :class:`~threelines.engine.verdict.Later`) take their
    places from its rows all at once, in the order that
    ``FiredTriggers.rows`` gives: by project, then by position. Nothing is
    made per trigger but its text, and that a field at a time (see
    :meth:`json_arrays`).

    Attributes
    ----------
    tables : list of TriggerRows
    alone : list of Trigger
        The triggers made alone, the table after ``tables``.
    table, row : numpy.ndarray
        Per trigger: its table and its row in it.
    sizes : list of int
        Per verdict: its number of triggers.
    """

    def __init__(self, verdicts: Sequence[Verdict]):
        self.tables: list[TriggerRows] = []
        self.alone: list[Trigger] = []
        numbers: dict[TriggerRows, int] = {}  # each table's place in tables
        screenings: dict[Any, tuple[int, list[int]]] = {}  # per screening: its first place, its projects' bounds
        tables, rows = [], []  # the places, a screening or a verdict with its triggers made at a time
        starts, self.sizes = [], []  # per verdict: where its places start among them, and how many
        placed = 0
        for verdict in verdicts:
            triggers = verdict.pending()  # (a Later: not made, and no row made for it either)
            if type(triggers) is Later:
                if triggers.fired not in screenings:
                    table, row, bounds = self._screening(triggers.fired, numbers)
                    screenings[triggers.fired] = placed, bounds
                    tables.append(table)
                    rows.append(row)
                    placed += len(table)
                first, bounds = screenings[triggers.fired]
                starts.append(first + bounds[triggers.p])
                self.sizes.append(bounds[triggers.p + 1] - bounds[triggers.p])
            else:
                table, row = self._made(triggers, numbers)
                tables.append(table)
                rows.append(row)
                starts.append(placed)
                self.sizes.append(len(table))
                placed += len(table)
        for made in tables:  # a trigger made alone was numbered among the alone ones: their table is the last
            made[made < 0] = len(self.tables)
        # Each verdict's places, one after another.
        sizes = np.array(self.sizes, dtype=np.int64)
        ends = np.cumsum(sizes)
        taken = np.repeat(np.array(starts, dtype=np.int64) - (ends - sizes), sizes) + np.arange(int(sizes.sum()))
        self.table = np.concatenate([*tables, np.zeros(0, np.int64)])[taken]
        self.row = np.concatenate([*rows, np.zeros(0, np.int64)])[taken]

    def _number(self, rows: TriggerRows, numbers: dict[TriggerRows, int]) -> int:
        if rows not in numbers:
            numbers[rows] = len(self.tables)
            self.tables.append(rows)
        return numbers[rows]

    def _screening(self, fired: Any, numbers: dict[TriggerRows, int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """A screening's rows (a ``FiredTriggers``) in its projects' order, and where each project's start and end."""
        order, bounds = fired.order()
        if not fired.parts:
            return order, order, bounds
        table = np.concatenate([np.full(len(rows), self._number(rows, numbers)) for _, _, rows in fired.parts])
        row = np.concatenate([np.arange(len(rows)) for _, _, rows in fired.parts])
        return table[order], row[order], bounds

    def _made(self, triggers: list[Trigger], numbers: dict[TriggerRows, int]) -> tuple[np.ndarray, np.ndarray]:
        """The places of triggers made: their rows', or (made alone) a number among the alone ones, as -1."""
        table, row = [], []
        for trigger in triggers:
            if trigger.row is None:
                table.append(-1)
                row.append(len(self.alone))
                self.alone.append(trigger)
            else:
                table.append(self._number(trigger.row[0], numbers))
                row.append(trigger.row[1])
        return np.array(table, dtype=np.int64), np.array(row, dtype=np.int64)

    def _column(self, name: str) -> list:
        """One field of every row of every table (the alone ones last), the tables one after another."""
        out = []
        for rows in self.tables:
            out += rows.field(name)
        return out + [getattr(trigger, name) for trigger in self.alone]

    @cached_property
    def _places(self) -> list[int]:
        """Per trigger: its place in :meth:`_column` (the tables' rows laid end to end, the alone ones last)."""
        sizes = [*map(len, self.tables), len(self.alone)]
        return ((np.cumsum(sizes) - sizes)[self.table] + self.row).tolist()

    def ranks(self) -> np.ndarray:
        """Per trigger: its outcome's place in :data:`VERDICTS`.

        An outcome not among them raises, as :func:`~threelines.engine.verdict.worst` does.
        """
        outcomes = self._column("outcome")
        ranks = np.fromiter(map(VERDICTS.index, outcomes), dtype=np.int64, count=len(outcomes))
        return ranks[self._places]

    def rules_named(self) -> list[str]:
        """Per verdict: the rules that fired, each once, in order, joined by commas."""
        rules = list(map(self._column("rule").__getitem__, self._places))
        return [", ".join(dict.fromkeys(named)) for named in split_by_sizes(rules, self.sizes)]

    def json_arrays(self, lang: str | None) -> list[bytes]:
        """Per verdict: its triggers' JSON forms (as :data:`JSON_OPTIONS` writes their records), as a JSON array.

        Each table's keys and the fields its rows have alike are written
        once, into the pieces between its other fields, which are written a
        field at a time for all the tables together (see :func:`_texts`); a
        row's text is its pieces and values joined, in C (``map`` over
        ``zip``), with no Python code run per row.
        """
        rows: list[bytes] = []
        sizes = [*map(len, self.tables), len(self.alone)]
        texts = [*_texts(self.tables, lang), _alone_texts(self.alone, lang)]
        for size, (pieces, columns) in zip(sizes, texts, strict=True):
            parts = [repeat(pieces[0], size)]
            for piece, column in zip(pieces[1:], columns, strict=True):
                parts += (column, repeat(piece, size))
            rows += map(b"".join, zip(*parts, strict=True))
        ordered = list(map(rows.__getitem__, self._places))
        join = b",".join
        return [join(listed).join(_BRACKETS) for listed in split_by_sizes(ordered, self.sizes)]


#: What a JSON array's values, joined by commas, are joined into.
_BRACKETS = (b"[", b"]")


def _texts(tables: Sequence[TriggerRows], lang: str | None) -> list[tuple[list[bytes], list[list[bytes]]]]:
    """Per table: the pieces of its rows' JSON text, and between them, the columns of its other fields' texts.

    Each field is written for all the tables together (see
    :func:`column_texts`): a batch's chunk holds a few tables of some
    hundred rows, and a call per table and field costs more than writing
    the values.
    """
    fields = [_folded(*table.record_fields(lang)) for table in tables]
    gathered: dict[str, list] = {}
    for same, columns in fields:
        if not columns.keys() <= same.keys():  # the pieces hold the record's keys: a field beyond them is lost
            raise ValueError(f"trigger fields outside the record's keys: {sorted(columns.keys() - same.keys())}")
        for key, values in columns.items():
            gathered.setdefault(key, []).extend(values)
    written = {key: column_texts(values, TRIGGER_PLACES.get(key)) for key, values in gathered.items()}
    taken = dict.fromkeys(written, 0)
    out = []
    for same, columns in fields:
        pieces, texts = [b""], []
        for k, key in enumerate(sorted(same)):  # the columns' names are among the fields alike
            pieces[-1] += (b"," if k else b"{") + orjson.dumps(key) + b":"
            if key in columns:
                column, quoted = written[key]
                texts.append(column[taken[key] : taken[key] + len(columns[key])])
                taken[key] += len(columns[key])
                if quoted:  # the insides of strings: quoted here
                    pieces[-1] += b'"'
                pieces.append(b'"' if quoted else b"")
            else:
                pieces[-1] += orjson.dumps(same[key], option=JSON_OPTIONS)
        pieces[-1] += b"}"
        out.append((pieces, texts))
    return out


def _folded(same: dict[str, Any], columns: dict[str, list]) -> tuple[dict[str, Any], dict[str, list]]:
    """A table's fields, its columns of one value (written alike: 0.0 is not -0.0) moved among those alike.

    Many are: the distance of rows that overlap, a capacity rule's outcome
    and offset ratio, the evidence of a table of one row.
    """
    alike = {}
    for key, values in columns.items():
        first = values[0] if values else None
        if values and values[-1] == first and values.count(first) == len(values):
            text = orjson.dumps(first, option=JSON_OPTIONS)
            if orjson.dumps(values, option=JSON_OPTIONS) == b",".join(repeat(text, len(values))).join(_BRACKETS):
                alike[key] = json_number(first, TRIGGER_PLACES.get(key))
    if not alike:
        return same, columns
    return {**same, **alike}, {key: values for key, values in columns.items() if key not in alike}


def _alone_texts(triggers: list[Trigger], lang: str | None) -> tuple[list[bytes], list[list[bytes]]]:
    """Triggers made alone as a table of :func:`_texts`: their whole texts, between empty pieces."""
    return [b"", b""], [[orjson.dumps(record, option=JSON_OPTIONS) for record in trigger_records(triggers, lang)]]
