"""Verdicts and triggers as JSON records: the form a report, the service and a batch write.

The last step of a screening's output: the :class:`~threelines.engine.verdict.Verdict`
objects (and their triggers, units and projects) become records, made for
many at once so that their measures are rounded a column at a time (see
:mod:`threelines.engine.json_values`). :class:`TriggerRows` holds the
triggers one rule fired as columns (made by :mod:`threelines.engine.triggers`),
and writes their records, or straight their JSON text for a batch
(:func:`batch_results`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from functools import cached_property, partial
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import Any, Protocol

import numpy as np
import orjson

from threelines.engine.json_values import (
    JSON_OPTIONS,
    column_texts,
    decimals,
    json_column,
    json_number,
    json_numbers,
)
from threelines.engine.verdict import VERDICTS, Later, Texts, Trigger, UnitShare, Verdict


class RowTexts(Protocol):
    """The messages of rows made together (see :class:`TriggerRows`), each language rendered when first asked for."""

    #: The languages the rule names (none for a single unnamed text); the default is what ``messages(None)`` gives.
    languages: tuple[str, ...]

    def title(self, lang: str) -> str:
        """The rule's title in ``lang``."""

    def messages(self, lang: str | None) -> list[str]:
        """Per row: the message in ``lang``, one of :attr:`languages` (None: the default, or the only text)."""


class TriggerRows:
    """Triggers made together from columns (the rows one rule fired), and their JSON records, made together too.

    A batch writes the record of every trigger: made for all the rows of a
    rule at once, each measure is rounded a column at a time and the fields
    the rule gives every row are set once, rather than trigger by trigger;
    :func:`batch_results` writes them as JSON straight from those columns,
    a field at a time for all the tables of a chunk. Only the language a
    record shows is rendered.

    Parameters
    ----------
    same : dict
        The fields every row has alike (the rule's id, title, ...): text or None.
    columns : dict
        The other fields of :class:`Trigger` (but ``texts``): a list with a value per row.
    texts : RowTexts
        Every row's message, a language at a time.
    """

    def __init__(self, same: dict[str, Any], columns: dict[str, list], texts: RowTexts):
        self.same, self.columns, self.texts = same, columns, texts
        self._texts: list[tuple] | None = None
        self._rounded: dict[str, list] | None = None  # the columns as the JSON form keeps them
        self._records: dict[str | None, tuple] = {}  # per language: the fields alike, and each row's own

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def text(self, i: int) -> tuple[str, dict[str, dict[str, str]] | None]:
        """Row ``i``'s ``(message, translations)``, every row's in every language rendered on the first call."""
        if self._texts is None:
            self._texts = self._all_texts()
        return self._texts[i]

    def _all_texts(self) -> list[tuple[str, dict[str, dict[str, str]] | None]]:
        texts = self.texts
        if not texts.languages:
            return [(message, None) for message in texts.messages(None)]
        heads = [(lang, texts.title(lang)) for lang in texts.languages]
        out = []
        rows = zip(texts.messages(None), *(texts.messages(lang) for lang in texts.languages), strict=True)
        for default, *messages in rows:
            translations = {
                lang: {"title": title, "message": message}
                for (lang, title), message in zip(heads, messages, strict=True)
            }
            out.append((default, translations))
        return out

    def field(self, name: str) -> list:
        """Per row: the value of one of :class:`Trigger`'s fields (but ``texts``)."""
        return self.columns[name] if name in self.columns else [self.same.get(name)] * len(self)

    def triggers(self) -> list[Trigger]:
        """A trigger per row, each knowing its row (see :meth:`record`)."""
        alike = {name: self.same.get(name) for name in _TRIGGER_FIELDS}  # in the fields' order, each row's set after
        own = [name for name in _TRIGGER_FIELDS if name in self.columns]
        made = []
        for i, values in enumerate(zip(*(self.columns[name] for name in own), strict=True)):
            fields = alike.copy()
            fields.update(zip(own, values, strict=True))
            fields.update(texts=Texts(partial(self.text, i)), row=(self, i))
            # A frozen dataclass's __init__ sets its 22 fields one object.__setattr__ at a time: far slower.
            trigger = object.__new__(Trigger)
            object.__setattr__(trigger, "__dict__", fields)
            made.append(trigger)
        return made

    def record(self, i: int, lang: str | None) -> dict[str, Any]:
        """Row ``i``'s JSON form (as :meth:`Trigger.to_dict`): the fields every row has alike, then its own."""
        if lang not in self._records:
            same, columns = self._json_columns(lang)
            self._records[lang] = same, tuple(columns), list(zip(*columns.values(), strict=True))
        same, names, rows = self._records[lang]
        record = same.copy()
        record.update(zip(names, rows[i], strict=True))
        return record

    def _fields(self, lang: str | None) -> tuple[dict[str, Any], dict[str, list]]:
        """All the fields of a row's JSON form (those alike set), and the columns of the others, as they are.

        Title and message are in ``lang`` where the rule has it.
        """
        same = {name: self.same.get(name) for name in _RECORD_KEYS}  # in the record's order, each row's set after
        if lang and lang in self.texts.languages:
            same["title"] = self.texts.title(lang)
            return same, {**self.columns, "message": self.texts.messages(lang)}
        return same, {**self.columns, "message": self.texts.messages(None)}

    def _json_columns(self, lang: str | None) -> tuple[dict[str, Any], dict[str, list]]:
        """As :meth:`_fields`, the measures rounded as the JSON form keeps them, a column at a time."""
        if self._rounded is None:
            self._rounded = {
                name: json_column(values, _TRIGGER_PLACES[name]) if name in _TRIGGER_PLACES else values
                for name, values in self.columns.items()
            }
        same, columns = self._fields(lang)
        return same, {**columns, **self._rounded}


def verdict_records(verdicts: Sequence[Verdict], lang: str | None = None) -> list[dict[str, Any]]:
    """The JSON form of each verdict (see :meth:`Verdict.to_dict`), made for many at once.

    The triggers, units and projects of all the verdicts are made as
    columns, so that their measures are rounded a column at a time rather
    than value by value: a batch writes every record it screens.
    """
    triggers = trigger_records([t for verdict in verdicts for t in verdict.triggers], lang)
    sizes = [len(verdict.triggers) for verdict in verdicts]
    listed = _split(triggers, sizes)
    ranks = np.fromiter((VERDICTS.index(t["outcome"]) for t in triggers), dtype=np.int64, count=len(triggers))
    return _verdict_records(verdicts, listed, sizes, ranks, _listed)[0]


def batch_records(verdicts: Sequence[Verdict], lang: str | None = None) -> list[dict[str, Any]]:
    """:func:`verdict_records`, each record's triggers (and other lists) already JSON text (:class:`orjson.Fragment`).

    A batch writes its records with :data:`JSON_OPTIONS` and reads none of
    them back: the triggers (most of a record) are written from the
    columns of the rows that fired, a field at a time (see
    :class:`_FiredPlaces`), into the text that dumping their records would
    give; the unresolved rules, requirements and clauses, shared by many
    projects, are written once per distinct list.
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
    records, counts = _verdict_records(verdicts, arrays, fired.sizes, fired.ranks(), _ListTexts())
    unresolved = [len(verdict.unresolved) for verdict in verdicts]
    return records, list(zip(*counts, unresolved, fired.rules_named(), strict=True))


def _listed(items: Sequence[Any], form: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's JSON form (``form`` of it), in a new list."""
    return list(map(form, items))  # mostly empty: map costs least then


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


def _verdict_records(
    verdicts: Sequence[Verdict],
    triggers: list,
    sizes: list[int],
    ranks: np.ndarray,
    lists: Callable[[Sequence[Any], Callable], Any],
) -> tuple[list[dict[str, Any]], tuple[list[int], list[int]]]:
    """Each verdict's record, given its triggers' form, their number, and the rank of their outcomes (all in order).

    ``lists`` makes its other lists from their items and the form of each
    (see :func:`_listed`). Also returns each verdict's count of reject and
    of conditional triggers.
    """
    units = unit_records([u for verdict in verdicts for u in verdict.units])
    # A column at a time: the worst outcome is reject if any is, else conditional if any is.
    owner = np.repeat(np.arange(len(verdicts)), sizes)  # each trigger's verdict
    rejects = np.bincount(owner[ranks == 2], minlength=len(verdicts))
    conditionals = np.bincount(owner[ranks == 1], minlength=len(verdicts))
    worsts = [VERDICTS[rank] for rank in np.where(rejects > 0, 2, conditionals > 0).tolist()]
    records, u = [], 0
    for verdict, project, verdict_worst, verdict_triggers in zip(
        verdicts, project_json_records([v.project for v in verdicts]), worsts, triggers, strict=True
    ):
        u_end = u + len(verdict.units)
        records.append(
            {
                "project": project,
                "verdict": verdict_worst,
                "triggers": verdict_triggers,
                "units": units[u:u_end],
                "unresolved": lists(verdict.unresolved, _to_dict),
                "requirements": lists(verdict.requirements, _fields),
                "warnings": list(verdict.warnings),
                "clauses": lists(verdict.clauses, _to_dict),
                "jurisdiction": verdict.jurisdiction,
            }
        )
        u = u_end
    return records, (rejects.tolist(), conditionals.tolist())


_to_dict = methodcaller("to_dict")


def _fields(item: Any) -> dict[str, Any]:
    """A dataclass's fields as a new dict (plain values: asdict's deep copies are not needed)."""
    return dict(vars(item))


def trigger_records(triggers: Sequence[Trigger], lang: str | None = None) -> list[dict[str, Any]]:
    """The JSON form of each trigger (see :meth:`Trigger.to_dict`).

    A trigger made by :class:`TriggerRows` takes its record from them (made
    for all their rows at once); one made alone is made here.
    """
    records: list[dict[str, Any]] = []
    alone = []
    for trigger in triggers:
        if trigger.row is None:
            alone.append(len(records))
            records.append(_alone_record(trigger, lang))
        else:
            rows, i = trigger.row
            records.append(rows.record(i, lang))
    made_alone = [records[i] for i in alone]
    json_numbers(made_alone, _columns(map(_trigger_numbers, made_alone), _TRIGGER_PLACES), _TRIGGER_PLACES)
    return records


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
        """Per trigger: its outcome's place in :data:`VERDICTS` (raising as :func:`worst` for another)."""
        outcomes = self._column("outcome")
        ranks = np.fromiter(map(VERDICTS.index, outcomes), dtype=np.int64, count=len(outcomes))
        return ranks[self._places]

    def rules_named(self) -> list[str]:
        """Per verdict: the rules that fired, each once, in order, joined by commas."""
        rules = list(map(self._column("rule").__getitem__, self._places))
        return [", ".join(dict.fromkeys(named)) for named in _split(rules, self.sizes)]

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
        return [join(listed).join(_BRACKETS) for listed in _split(ordered, self.sizes)]


def _split(values: list, sizes: list[int]) -> list[list]:
    """``values`` cut into consecutive lists of ``sizes``."""
    ends = np.cumsum(sizes).tolist()
    return [values[end - size : end] for end, size in zip(ends, sizes, strict=True)]


#: What a JSON array's values, joined by commas, are joined into.
_BRACKETS = (b"[", b"]")


def _texts(tables: Sequence[TriggerRows], lang: str | None) -> list[tuple[list[bytes], list[list[bytes]]]]:
    """Per table: the pieces of its rows' JSON text, and between them, the columns of its other fields' texts.

    Each field is written for all the tables together (see
    :func:`column_texts`): a batch's chunk holds a few tables of some
    hundred rows, and a call per table and field costs more than writing
    the values.
    """
    fields = [_folded(*table._fields(lang)) for table in tables]
    gathered: dict[str, list] = {}
    for same, columns in fields:
        if not columns.keys() <= same.keys():  # the pieces hold the record's keys: a field beyond them is lost
            raise ValueError(f"trigger fields outside the record's keys: {sorted(columns.keys() - same.keys())}")
        for key, values in columns.items():
            gathered.setdefault(key, []).extend(values)
    written = {key: column_texts(values, _TRIGGER_PLACES.get(key)) for key, values in gathered.items()}
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
                alike[key] = json_number(first, _TRIGGER_PLACES.get(key))
    if not alike:
        return same, columns
    return {**same, **alike}, {key: values for key, values in columns.items() if key not in alike}


def _alone_texts(triggers: list[Trigger], lang: str | None) -> tuple[list[bytes], list[list[bytes]]]:
    """Triggers made alone as a table of :func:`_texts`: their whole texts, between empty pieces."""
    return [b"", b""], [[orjson.dumps(record, option=JSON_OPTIONS) for record in trigger_records(triggers, lang)]]


def _alone_record(trigger: Trigger, lang: str | None) -> dict[str, Any]:
    """The JSON form of a trigger made alone, its measures not yet rounded."""
    record = trigger.__dict__.copy()  # plain values: asdict's deep copies are not needed
    record.pop("row", None)  # set only on a trigger made by TriggerRows
    record["message"], translations = record.pop("texts").get()
    if lang and translations and lang in translations:
        record.update(translations[lang])
    return record


def unit_records(units: Sequence[UnitShare]) -> list[dict[str, Any]]:
    """The JSON form of each unit share (see :meth:`UnitShare.to_dict`)."""
    areas = json_column([u.overlap_m2 for u in units], _UNIT_PLACES["overlap_m2"])
    shares = json_column([u.share for u in units], _UNIT_PLACES["share"])
    return [
        {"code": u.code, "name": u.name, "class": u.class_, "overlap_m2": area, "share": share}
        for u, area, share in zip(units, areas, shares, strict=True)
    ]


def project_json_records(projects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Projects' attributes as the JSON form keeps them: each float rounded by its name (see :func:`decimals`).

    Projects with the same attributes (all of one input, usually) are
    rounded together, a column per attribute.
    """
    records = [dict(project) for project in projects]
    alike: dict[tuple[str, ...], list[int]] = {}
    for i, project in enumerate(projects):
        alike.setdefault(tuple(project), []).append(i)
    for keys, positions in alike.items():
        rows = [records[i] for i in positions]
        json_numbers(rows, _columns(map(dict.values, rows), keys), {key: decimals(key) for key in keys})
    return records


def _columns(rows: Iterable[Iterable[Any]], keys: Iterable[str]) -> dict[str, tuple]:
    """Rows of values (in the order of ``keys``) as a column per key."""
    return dict(zip(keys, zip(*rows, strict=True), strict=False))  # no rows: no columns


#: The number fields of a trigger, with the decimals the JSON form keeps.
_TRIGGER_PLACES = {
    f.name: decimals(f.name) for f in fields(Trigger) if "float" in str(f.type) or f.name == "feature_id"
}
_trigger_numbers = itemgetter(*_TRIGGER_PLACES)
#: The fields a trigger is made of, and those of its JSON form (``message`` for ``texts``), in order.
_TRIGGER_FIELDS = tuple(f.name for f in fields(Trigger) if f.init)
_RECORD_KEYS = (*(name for name in _TRIGGER_FIELDS if name != "texts"), "message")
_UNIT_PLACES = {"overlap_m2": decimals("overlap_m2"), "share": decimals("share")}
