"""Verdicts and triggers as JSON records: the form a report, the service and a batch write.

The last step of a screening's output: the :class:`~threelines.engine.verdict.Verdict`
objects (and their triggers, units and projects) become records, made for
many at once so that their measures are rounded a column at a time (see
:mod:`threelines.engine.json_values`). :class:`TriggerRows` holds the
triggers one rule fired as columns (made by :mod:`threelines.engine.triggers`),
and writes their records. A batch writes a chunk's records as JSON text
straight from those columns (:mod:`threelines.engine.chunk_records`), with
the verdict's record assembled here (:func:`assemble_records`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from functools import partial
from operator import itemgetter, methodcaller
from typing import Any, Protocol

import numpy as np

from threelines.engine.json_values import decimals, json_column, json_numbers
from threelines.engine.verdict import VERDICTS, Texts, Trigger, UnitShare, Verdict


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
    :func:`~threelines.engine.chunk_records.batch_results` writes them as
    JSON straight from those columns (:meth:`record_fields`), a field at a
    time for all the tables of a chunk. Only the language a record shows is
    rendered.

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

    def record_fields(self, lang: str | None) -> tuple[dict[str, Any], dict[str, list]]:
        """All the fields of a row's JSON form (those alike set), and the columns of the others, as they are.

        Title and message are in ``lang`` where the rule has it.
        """
        same = {name: self.same.get(name) for name in _RECORD_KEYS}  # in the record's order, each row's set after
        if lang and lang in self.texts.languages:
            same["title"] = self.texts.title(lang)
            return same, {**self.columns, "message": self.texts.messages(lang)}
        return same, {**self.columns, "message": self.texts.messages(None)}

    def _json_columns(self, lang: str | None) -> tuple[dict[str, Any], dict[str, list]]:
        """As :meth:`record_fields`, the measures rounded as the JSON form keeps them, a column at a time."""
        if self._rounded is None:
            self._rounded = {
                name: json_column(values, TRIGGER_PLACES[name]) if name in TRIGGER_PLACES else values
                for name, values in self.columns.items()
            }
        same, columns = self.record_fields(lang)
        return same, {**columns, **self._rounded}


def verdict_records(verdicts: Sequence[Verdict], lang: str | None = None) -> list[dict[str, Any]]:
    """The JSON form of each verdict (see :meth:`Verdict.to_dict`), made for many at once.

    The triggers, units and projects of all the verdicts are made as
    columns, so that their measures are rounded a column at a time rather
    than value by value: a batch writes every record it screens.
    """
    triggers = trigger_records([t for verdict in verdicts for t in verdict.triggers], lang)
    sizes = [len(verdict.triggers) for verdict in verdicts]
    listed = split_by_sizes(triggers, sizes)
    ranks = np.fromiter((VERDICTS.index(t["outcome"]) for t in triggers), dtype=np.int64, count=len(triggers))
    return assemble_records(verdicts, listed, sizes, ranks, _listed)[0]


def _listed(items: Sequence[Any], form: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's JSON form (``form`` of it), in a new list."""
    return list(map(form, items))  # mostly empty: map costs least then


def assemble_records(
    verdicts: Sequence[Verdict],
    triggers: list,
    sizes: list[int],
    ranks: np.ndarray,
    lists: Callable[[Sequence[Any], Callable], Any],
) -> tuple[list[dict[str, Any]], tuple[list[int], list[int]]]:
    """Each verdict's record, given its triggers' form, their number, and the rank of their outcomes (all in order).

    ``lists`` makes its other lists from their items and the form of each
    (see :func:`_listed`). Also returns each verdict's count of reject and
    of conditional triggers. :func:`verdict_records` gives it the triggers'
    records; a batch, their JSON text
    (:func:`~threelines.engine.chunk_records.batch_results`).
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
    json_numbers(made_alone, _columns(map(_trigger_numbers, made_alone), TRIGGER_PLACES), TRIGGER_PLACES)
    return records


def split_by_sizes(values: list, sizes: list[int]) -> list[list]:
    """``values`` cut into consecutive lists of ``sizes``."""
    ends = np.cumsum(sizes).tolist()
    return [values[end - size : end] for end, size in zip(ends, sizes, strict=True)]


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
TRIGGER_PLACES = {f.name: decimals(f.name) for f in fields(Trigger) if "float" in str(f.type) or f.name == "feature_id"}
_trigger_numbers = itemgetter(*TRIGGER_PLACES)
#: The fields a trigger is made of, and those of its JSON form (``message`` for ``texts``), in order.
_TRIGGER_FIELDS = tuple(f.name for f in fields(Trigger) if f.init)
_RECORD_KEYS = (*(name for name in _TRIGGER_FIELDS if name != "texts"), "message")
_UNIT_PLACES = {"overlap_m2": decimals("overlap_m2"), "share": decimals("share")}
