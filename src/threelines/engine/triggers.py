"""Step 4 of the flow: the fired rows become triggers, with their texts.

The rows a rule fired (or an access-list clause) are kept together: the
rule's fixed fields once, the rows' columns (:class:`FiredTriggers`). A
trigger object is made per row only when a verdict's triggers are first
read; a batch writes its records from the rows. Only what fired gets a text,
and only when it is read, a language at a time: the first read of a message
in one language (a trigger's :class:`~threelines.engine.verdict.Texts`, or a
batch record) renders it for all the rows the rule fired: a template that
only reads values is filled placeholder by placeholder over the rows, one
that needs CEL once per distinct value of what it reads. A capacity trigger
leads with its charge sentence; an access-list trigger carries the clause
text, made once per clause and units covered.
"""

from __future__ import annotations

from itertools import pairwise, repeat
from typing import Any

import numpy as np
import orjson

from threelines.engine.decisions import ClauseFired, Decisions, Fired
from threelines.engine.json_values import rounded
from threelines.engine.measure import M2_PER_MU
from threelines.engine.pairs import Measured
from threelines.engine.records import TriggerRows
from threelines.engine.verdict import FiredRow, Trigger
from threelines.layers.read import LayerData
from threelines.rules.access_list import DIMENSIONS_ZH, Clause
from threelines.rules.expr import bind
from threelines.rules.load import CAPACITY_NAMES, POLLUTANTS, Rule
from threelines.rules.templates import ABSENT, Template

#: Load units in Chinese.
UNITS_ZH = {"t/a": "吨/年", "m3/a": "立方米/年"}
LABELS_ZH = {"water": "用水量"}
#: What joins a capacity trigger's charge sentence to the rule's message, per language.
CHARGE_JOINS = {"en": "; ", "zh": "；"}
#: Per pollutant: its label and load unit, in English and in Chinese.
_LOAD_WORDS = {
    pollutant: (label, unit, LABELS_ZH.get(label, label), UNITS_ZH[unit])
    for pollutant, (_, unit, label) in POLLUTANTS.items()
}
#: The charge's names a capacity trigger carries.
CAPACITY_FIELDS = ("pollutant", "project_load", "remaining_load", "offset_ratio", "required_offset")


def build_triggers(rules: list[Rule], measured: Measured, decisions: Decisions, n: int) -> FiredTriggers:
    """The rows that fired as triggers, per project (``n`` of them) the rules' in file order, then the access list's.

    Parameters
    ----------
    rules : list of Rule
        In file order, as ``decisions.fired`` holds their rows.
    measured : Measured
        The layers, for the evidence features' ids and names.
    decisions : Decisions
    n : int
        The number of projects.

    Returns
    -------
    FiredTriggers
        The rows, each project's :class:`~threelines.engine.verdict.Trigger` objects made when first read.
    """
    parts, seen = [], 0
    for rule, fired in zip(rules, decisions.fired, strict=True):
        if len(fired):
            rows = _rule_rows(rule, measured.layers.get(rule.layer), fired, decisions.contexts)
            parts.append((fired.p, np.arange(seen, seen + len(fired)), rows))
            seen += len(fired)
    for p, positions, rows in _clause_rows(decisions.clause_fired):
        parts.append((p, positions + seen, rows))
    return FiredTriggers(parts, n)


class FiredTriggers:
    """The triggers of a screening's projects, held as the rows that fired, made into objects when first read.

    A batch writes each trigger's JSON record straight from the rows (see
    :func:`~threelines.engine.chunk_records.batch_results`): an object per
    row would be made for nothing. A verdict's triggers
    (:attr:`~threelines.engine.verdict.Verdict.triggers`) are made on the
    first read of any of them, for all the projects at once.

    Parameters
    ----------
    parts : list of (numpy.ndarray, numpy.ndarray, TriggerRows)
        Rows made together (a rule's, a clause's): each row's project, its
        place among its project's triggers (a number that orders them), and
        the rows.
    n : int
        The number of projects.
    """

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray, TriggerRows]], n: int):
        self.parts, self.n = parts, n
        self._rows: list[list[FiredRow]] | None = None
        self._made: list[list[Trigger]] | None = None

    def rows(self) -> list[list[FiredRow]]:
        """Per project: its triggers as the rows that make them (and their rules and outcomes), in order."""
        if self._rows is None:
            flat = []
            for _, _, rows in self.parts:
                made = zip(repeat(rows), range(len(rows)))
                flat.extend(map(FiredRow, made, rows.field("rule"), rows.field("outcome")))
            self._rows = self._per_project(flat)
        return self._rows

    def triggers(self) -> list[list[Trigger]]:
        """Per project: its triggers, made now (all the projects') if not yet."""
        # Unlocked: two of the service's threads reading the verdicts of one pass may both make them, equal
        # triggers either way (a list is assigned whole); only the work is done twice.
        if self._made is None:
            self._made = self._per_project([trigger for _, _, rows in self.parts for trigger in rows.triggers()])
        return self._made

    def order(self) -> tuple[np.ndarray, list[int]]:
        """The rows, taken a part after another, in their projects' order (by project, then by position).

        Returns the rows' places in that order, and where each project's
        rows start and end in it (``n + 1`` bounds).
        """
        if not self.parts:
            return np.zeros(0, dtype=np.int64), [0] * (self.n + 1)
        p = np.concatenate([part[0] for part in self.parts])
        order = np.lexsort((np.concatenate([part[1] for part in self.parts]), p))
        return order, np.concatenate([[0], np.cumsum(np.bincount(p, minlength=self.n))]).tolist()

    def _per_project(self, flat: list) -> list[list]:
        """Values given a row at a time, in the order of the parts, grouped per project in their order."""
        order, bounds = self.order()
        ordered = list(map(flat.__getitem__, order.tolist()))
        return [ordered[start:end] for start, end in pairwise(bounds)]


def _rule_rows(rule: Rule, layer: LayerData | None, fired: Fired, contexts: list[dict]) -> TriggerRows:
    """The rows a rule fired, as triggers to be; the rule's fields are the same in all."""
    texts = _RuleTexts(rule, layer, fired, contexts)
    same = {"rule": rule.id, "title": rule.title, "outcome": rule.outcome, "dimension": rule.dimension,
            "layer": rule.layer, "basis": rule.basis}  # fmt: skip
    if rule.test == "zonal":
        same["statistic"] = rule.stat
        columns = {"value": list(fired.value)}
    elif fired.charge is not None:
        columns = _capacity_columns(rule, layer, fired, texts)
    else:
        columns = _pair_columns(layer, fired)
    return TriggerRows(same, columns, texts)


def _pair_columns(layer: LayerData, fired: Fired) -> dict[str, list]:
    """The evidence of each row: its feature and the pair's measures (None for all where no feature is)."""
    m2, f = fired.overlap_m2, fired.f.tolist()
    columns = {
        "feature_id": [layer.ids[i] if i >= 0 else None for i in f],
        "feature_name": [layer.names[i] if i >= 0 else None for i in f],
        "overlap_m2": m2.tolist(), "overlap_ha": (m2 / 1e4).tolist(), "overlap_mu": (m2 / M2_PER_MU).tolist(),
        "overlap_ratio": fired.overlap_ratio.tolist(), "distance_m": fired.distance_m.tolist(),
    }  # fmt: skip
    for i in np.flatnonzero(fired.f < 0).tolist():  # no feature is the evidence (a layer read near may have none)
        for name in _PAIR_MEASURES:
            columns[name][i] = None
    return columns


#: The measures of a pair a trigger carries.
_PAIR_MEASURES = ("overlap_m2", "overlap_ha", "overlap_mu", "overlap_ratio", "distance_m")


def _capacity_columns(rule: Rule, layer: LayerData, fired: Fired, texts: _RuleTexts) -> dict[str, list]:
    """A capacity rule's rows: a pollutant charged to a zone, over its remaining capacity or with an offset.

    A load that exceeds takes the rule's outcome; one that fits with an
    offset required is conditional.
    """
    columns = _pair_columns(layer, fired)
    offset_ratio = texts.column("offset_ratio")
    columns.update(
        outcome=[rule.outcome if ratio is None else "conditional" for ratio in offset_ratio],
        pollutant=fired.charge.pollutant, project_load=fired.charge.project_load.tolist(),
        remaining_load=texts.column("remaining_load"), offset_ratio=offset_ratio,
        required_offset=texts.column("required_offset"),
    )  # fmt: skip
    return columns


class _RuleTexts:
    """The messages of every row one rule fired, rendered a language at a time when first asked for.

    A template that only reads values is filled column by column; one that
    needs CEL is run once per distinct value of what it reads. A capacity
    row's message leads with its charge sentence. A batch record shows one
    language: the others are never rendered.
    """

    def __init__(self, rule: Rule, layer: LayerData | None, fired: Fired, contexts: list[dict]):
        self.rule, self.layer, self.fired, self.contexts = rule, layer, fired, contexts
        self.languages = rule.message.languages
        self._columns: dict[str, list] = {}
        self._messages: dict[str, list[str]] = {}  # by language ("" for a single unnamed text)
        self._keys: list | None = None  # per row, what the message reads (see _row_keys)
        self._bound: dict = {}  # per such key: the row's variables, and them bound for CEL

    def title(self, lang: str) -> str:
        """The rule's title in ``lang`` (its only title where it gives one)."""
        return dict(self.rule.titles).get(lang, self.rule.title)

    def messages(self, lang: str | None) -> list[str]:
        """Per row: the message in ``lang`` (None: the first language, or the only text), its charge sentence first."""
        templates = self.rule.message.templates
        lang = templates[0][0] if lang is None else lang
        if lang not in self._messages:
            texts = self._render(dict(templates)[lang])
            if self.fired.charge is not None:
                sentences = self._charge_sentences(lang or "en")
                if lang:
                    texts = [
                        sentence + CHARGE_JOINS[lang] + text for sentence, text in zip(sentences, texts, strict=True)
                    ]
                else:
                    texts = [
                        f"{sentence}; {text}" if text else sentence
                        for sentence, text in zip(sentences, texts, strict=True)
                    ]
            self._messages[lang] = texts
        return self._messages[lang]

    def column(self, name: str) -> list:
        """Per row: the value of a name the message may read (:data:`ABSENT` where the row has none)."""
        if name not in self._columns:
            self._columns[name] = self._read(name)
        return self._columns[name]

    def _read(self, name: str) -> list:
        fired, n = self.fired, len(self.fired)
        if name == "project":
            return [self.contexts[p] for p in fired.p.tolist()]
        if fired.value is not None:  # a zonal row sees the project, the value and its cells
            return {"value": fired.value, "cells": fired.cells}.get(name, [ABSENT] * n)
        has = (fired.k >= 0).tolist()
        if name == "feature":
            attributes = self.layer.attributes
            return [attributes[f] if f >= 0 else {} for f in fired.f.tolist()]
        pair = {
            "overlaps": fired.overlaps, "overlap_m2": fired.overlap_m2, "overlap_ha": fired.overlap_m2 / 1e4,
            "overlap_mu": fired.overlap_m2 / M2_PER_MU, "overlap_ratio": fired.overlap_ratio,
            "distance_m": fired.distance_m,
        }  # fmt: skip
        if name in pair:
            return [value if there else ABSENT for value, there in zip(pair[name].tolist(), has, strict=True)]
        if fired.charge is not None and name in CAPACITY_NAMES:
            return self._charge_column(name)
        return [ABSENT] * n

    def _charge_column(self, name: str) -> list:
        """A capacity name per row: ``offset_ratio`` and ``required_offset`` are None where the load exceeds."""
        charge = self.fired.charge
        if name == "pollutant":
            return charge.pollutant
        if name == "exceeds":
            return charge.exceeds.tolist()
        if name == "project_load":
            return charge.project_load.tolist()
        if name == "remaining_load":
            return [None if left != left else left for left in charge.remaining_load.tolist()]  # NaN: none kept
        rows = zip(charge.exceeds.tolist(), charge.project_load.tolist(), charge.offset_ratio.tolist(), strict=True)
        if name == "offset_ratio":
            return [None if exceeds else ratio for exceeds, _, ratio in rows]
        return [None if exceeds else load * ratio for exceeds, load, ratio in rows]  # required_offset

    def variables(self, i: int, names: tuple[str, ...]) -> dict[str, Any]:
        """The names of row ``i`` among ``names``, as a message sees them."""
        values = {name: self.column(name)[i] for name in names}
        return {name: value for name, value in values.items() if value is not ABSENT}

    def _render(self, template: Template) -> list[str]:
        """Per row: one language's template filled in."""
        n = len(self.fired)
        if not template.needs_cel:
            return template.render_rows(self.column, n)
        message = self.rule.message
        out, made = [], {}
        for i, key in enumerate(self._row_keys()):
            text = made.get(key)
            if text is None:
                if key not in self._bound:  # the same for every language: bound once
                    variables = self.variables(i, message.reads.names)
                    self._bound[key] = variables, bind(message.reads.slim(variables))
                text = made[key] = template.render(*self._bound[key])
            out.append(text)
        return out

    def _row_keys(self) -> list:
        """Per row: a hashable stand-in for what the message reads (types included: CEL tells 1.0 from true).

        Where a whole map is read (there is no cheap key), or a row's values
        cannot be hashed, the row gets a key of its own.
        """
        if self._keys is not None:
            return self._keys
        reads, n = self.rule.message.reads, len(self.fired)
        parts = []
        for name in reads.names:
            values = self.column(name)
            if name in ("project", "feature"):
                if name not in reads.keys:
                    self._keys = [object() for _ in range(n)]
                    return self._keys
                keys, made = reads.keys[name], {}
                for value in values:  # the same map for many rows: its key made once
                    if id(value) not in made:
                        made[id(value)] = tuple((v.__class__, v) for v in (value.get(k, ABSENT) for k in keys))
                parts.append([made[id(value)] for value in values])
            else:
                parts.append(list(zip(map(type, values), values, strict=True)))
        keys = list(zip(*parts, strict=True)) if parts else [()] * n
        try:
            dict.fromkeys(keys)
        except TypeError:  # some value is a list or a map
            keys = [key if _hashable(key) else object() for key in keys]
        self._keys = keys
        return keys

    def _charge_sentences(self, lang: str) -> list[str]:
        """Per capacity row, in ``lang`` (``en`` or ``zh``): the load charged to the zone and what it meets.

        The quantities are written a column at a time; zones repeat from row
        to row, and each is named once.
        """
        fired, layer, charge = self.fired, self.layer, self.fired.charge
        zones = {f: layer.names[f] or layer.ids[f] for f in set(fired.f.tolist())}
        zh = {"en": False, "zh": True}[lang]
        words = {
            pollutant: (label_zh, unit_zh) if zh else (label, unit)
            for pollutant, (label, unit, label_zh, unit_zh) in _LOAD_WORDS.items()
        }
        rows = zip(
            charge.pollutant, quantities(charge.project_load), charge.exceeds.tolist(),
            quantities(charge.remaining_load), quantities(charge.project_load * charge.offset_ratio),
            quantities(charge.offset_ratio), fired.overlap_ratio.tolist(), charge.total.tolist(), fired.f.tolist(),
            strict=True,
        )  # fmt: skip
        out = []
        for pollutant, load, exceeds, left, offset, ratio, share, total, f in rows:
            label, unit = words[pollutant]
            sentence, zone = f"{label} {load} {unit}", zones[f]
            if not share >= 1:  # a part of the load (NaN too)
                if zh:
                    sentence += f"（按面积占比{share:.0%}，总量{quantity(total)} {unit}）"
                else:
                    sentence += f" ({share:.0%} of {quantity(total)} {unit}, by area share)"
            if exceeds:
                if zh:
                    sentence += f"，超过{zone}剩余容量{left} {unit}"
                else:
                    sentence += f" exceeds the remaining capacity of {left} {unit} in {zone}"
            elif zh:
                sentence += f"：须在{zone}内削减替代{offset} {unit}（{ratio}倍）"
            else:
                sentence += f": offset {offset} {unit} ({ratio}x) required in {zone}"
            out.append(sentence)
        return out


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _clause_rows(fired: ClauseFired) -> list[tuple[np.ndarray, np.ndarray, TriggerRows]]:
    """The 禁止 / 限制 clauses that fired, as rows: a clause's rows made together (its fields alike in all).

    Each row's evidence is the covered unit of the largest share; the overlap
    is the footprint's area in all the units the clause covers.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray, TriggerRows)
        Per clause (in order of first row): its rows' projects, their positions in ``fired``, and the rows.
    """
    if not len(fired):
        return []
    units, width = fired.units, fired.width
    starts = np.cumsum(width) - width
    # Summed over the units each row covers, one after another from 0.0 in their order (np.bincount adds each
    # bin's weights in turn: the same floats as Python 3.11's sum, on any Python; 3.12's sum compensates).
    row_of = np.repeat(np.arange(len(fired)), width)
    overlap = np.bincount(row_of, weights=[u.overlap_m2 for u in units], minlength=len(fired))
    ratio = np.minimum(np.bincount(row_of, weights=[u.share for u in units], minlength=len(fired)), 1.0)
    codes = [u.code for u in units]
    covered = [tuple(codes[start : start + k]) for start, k in zip(starts.tolist(), width.tolist(), strict=True)]
    main = [units[start] for start in starts.tolist()]  # a row's evidence: its unit of the largest share
    # The rows of each clause, in order; the clauses in order of their first row.
    numbers: dict[int, int] = {}
    clause_of = np.fromiter((numbers.setdefault(id(c), len(numbers)) for c in fired.clause), np.intp, len(fired))
    order = np.argsort(clause_of, kind="stable")
    out = []
    for positions in np.split(order, np.cumsum(np.bincount(clause_of))[:-1].tolist()):
        clause, m2 = fired.clause[positions[0]], overlap[positions]
        mains = [main[i] for i in positions.tolist()]
        same = {"rule": clause.id, "title": f"准入清单 / access list ({clause.dimension})", "outcome": clause.outcome,
                "dimension": clause.dimension, "layer": fired.layer, "basis": clause.basis}  # fmt: skip
        columns = {
            "feature_id": [u.code for u in mains], "feature_name": [u.name for u in mains], "overlap_m2": m2.tolist(),
            "overlap_ha": (m2 / 1e4).tolist(), "overlap_mu": (m2 / M2_PER_MU).tolist(),
            "overlap_ratio": ratio[positions].tolist(), "distance_m": [0.0] * len(positions),
        }  # fmt: skip
        texts = _ClauseTexts(clause, list(map(covered.__getitem__, positions.tolist())))
        out.append((fired.p[positions], positions, TriggerRows(same, columns, texts)))
    return out


class _ClauseTexts:
    """The messages of a clause's rows: its text, the units it covers (when several), in English and Chinese.

    English is the default; a row's message depends on the units it covers
    alone: made once per distinct units.
    """

    languages = ("zh", "en")

    def __init__(self, clause: Clause, codes: list[tuple[str, ...]]):
        self.clause, self.codes = clause, codes
        self._messages: dict[str, list[str]] = {}

    def title(self, lang: str) -> str:
        """The clause trigger's title in ``lang``."""
        dimension = self.clause.dimension
        if lang == "zh":
            return f"准入清单（{DIMENSIONS_ZH[dimension]}）"
        return f"Access list ({dimension.replace('_', ' ')})"

    def messages(self, lang: str | None) -> list[str]:
        """Per row: the message in ``lang`` (``zh``; else English)."""
        lang = "zh" if lang == "zh" else "en"
        if lang not in self._messages:
            made = {codes: self._message(codes, lang) for codes in set(self.codes)}
            self._messages[lang] = list(map(made.__getitem__, self.codes))
        return self._messages[lang]

    def _message(self, codes: tuple[str, ...], lang: str) -> str:
        clause = self.clause
        prose = clause.source == "prose" and clause.matched
        if lang == "zh":
            message = clause.text + (f"（涉及单元 {'、'.join(codes)}）" if len(codes) > 1 else "")
            return message + (f"［由文本识别：{'、'.join(clause.matched)}］" if prose else "")
        others = f" (units {', '.join(codes)})" if len(codes) > 1 else ""
        return clause.text + others + (f" [from prose: {'、'.join(clause.matched)}]" if prose else "")


def quantity(value: float) -> str:
    """A quantity with at most two decimals: 12.5, 25, 0.33 (thousands grouped: 1,250)."""
    # Below 999.99 there are no thousands to group, and formatting without grouping is quicker.
    text = f"{value:.2f}" if abs(value) < 999.99 else f"{value:,.2f}"
    text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def quantities(values: np.ndarray) -> list[str]:
    """:func:`quantity` of each value, a column at a time.

    Below 999.99, a value's text is that of the value rounded to two
    decimals (see :func:`~threelines.engine.json_values.rounded`): the shortest
    text that reads back as it (as ``repr`` writes it, which orjson does
    for a whole column at once), a whole number without its ``.0``. Larger
    values, whose thousands are grouped, and NaN and infinities are written
    one by one.
    """
    values = np.asarray(values, dtype=float)
    plain = np.abs(values) < 999.99
    near = rounded(values[plain], 2)
    whole = near == np.trunc(near)
    texts = np.empty(len(near), dtype=object)
    texts[whole] = _number_texts(near[whole].astype(np.int64).tolist())  # -0.0 too: "0"
    texts[~whole] = _number_texts(near[~whole].tolist())
    out = np.empty(len(values), dtype=object)
    out[plain] = texts
    out[~plain] = [quantity(value) for value in values[~plain].tolist()]
    return out.tolist()


def _number_texts(numbers: list) -> np.ndarray:
    """Each number's shortest text (as ``repr``), written as one JSON array and cut at its commas."""
    return np.array(orjson.dumps(numbers).decode().strip("[]").split(",") if numbers else [], dtype=object)
