"""The titles and messages of fired rows: rendered only for what fired, only when read, a language at a time.

The first read of a message in one language (a trigger's
:class:`~threelines.engine.verdict.Texts`, or a batch record) renders it
for all the rows the rule fired (:class:`RuleTexts`): a template that only
reads values is filled placeholder by placeholder over the rows, one that
needs CEL once per distinct value of what it reads. A capacity trigger
leads with its charge sentence; an access-list trigger carries the clause
text, made once per clause and units covered (:class:`ClauseTexts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from threelines.engine.decisions import Fired
from threelines.engine.json_values import rounded
from threelines.engine.measure import M2_PER_MU
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


class RuleTexts:
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


class ClauseTexts:
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
