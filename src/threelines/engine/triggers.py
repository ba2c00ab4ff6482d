"""Step 4 of the flow: the fired rows become triggers, with their texts.

A trigger is made per fired row from the rule's fixed fields and the row's
columns. Only what fired gets a text, and only when it is read: a trigger
holds :class:`~threelines.engine.verdict.Texts` that render, on the first
read of any of them, the messages of all the rows the rule fired: a
template that only reads values is filled placeholder by placeholder over
the rows, one that needs CEL once per distinct value of what it reads, in
each language the rule gives. A capacity trigger leads with its charge
sentence; an access-list trigger carries the clause text, made once per
clause and units covered.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from threelines.engine.decisions import ClauseFired, Decisions, Fired
from threelines.engine.measure import M2_PER_MU
from threelines.engine.pairs import Measured
from threelines.engine.verdict import Texts, Trigger, TriggerRows
from threelines.layers.read import LayerData
from threelines.rules.access_list import DIMENSIONS_ZH, Clause
from threelines.rules.expr import Reads, bind
from threelines.rules.load import CAPACITY_NAMES, POLLUTANTS, Rule
from threelines.rules.templates import ABSENT

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


def build_triggers(rules: list[Rule], measured: Measured, decisions: Decisions, n: int) -> list[list[Trigger]]:
    """Per project (``n`` of them): its triggers, the rules' in file order, then the access list's.

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
    list of list of Trigger
    """
    out: list[list[Trigger]] = [[] for _ in range(n)]
    for rule, fired in zip(rules, decisions.fired, strict=True):
        if len(fired):
            _rule_triggers(rule, measured.layers.get(rule.layer), fired, decisions.contexts, out)
    texts: dict[tuple, Texts] = {}  # a clause's texts, by the clause and the units it covers
    for row in decisions.clause_fired:
        out[row.p].append(_clause_trigger(row, texts))
    return out


def _rule_triggers(rule: Rule, layer: LayerData | None, fired: Fired, contexts: list[dict], out: list[list]) -> None:
    """A trigger per row the rule fired, added to its project's; the rule's fields are the same in all."""
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
    rows = TriggerRows(same, columns, texts.render)
    for p, trigger in zip(fired.p.tolist(), rows.triggers(), strict=True):
        out[p].append(trigger)


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
    """The messages of every row one rule fired, rendered together when the first of them is read.

    A template that only reads values is filled column by column; one that
    needs CEL is run once per distinct value of what it reads. A capacity
    row's message leads with its charge sentence.
    """

    def __init__(self, rule: Rule, layer: LayerData | None, fired: Fired, contexts: list[dict]):
        self.rule, self.layer, self.fired, self.contexts = rule, layer, fired, contexts
        self._columns: dict[str, list] = {}

    def render(self) -> list[tuple[str, dict[str, dict[str, str]] | None]]:
        """Every row's ``(message, translations)``."""
        messages = self._messages()
        if self.fired.charge is None:
            return messages
        return _with_charges(self._charge_sentences(), messages)

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

    def _messages(self) -> list[tuple]:
        """Per row: the rule's ``(message, translations)``."""
        rule, message, n = self.rule, self.rule.message, len(self.fired)
        if not message.needs_cel:
            per_language = [template.render_rows(self.column, n) for _, template in message.templates]
            if not message.languages:
                return [(text, None) for text in per_language[0]]
            titles = dict(rule.titles)
            heads = [(lang, titles.get(lang, rule.title)) for lang, _ in message.templates]
            rows = [
                {lang: {"title": title, "message": text} for (lang, title), text in zip(heads, texts, strict=True)}
                for texts in zip(*per_language, strict=True)
            ]
            return [(next(iter(translations.values()))["message"], translations) for translations in rows]
        reads = message.reads
        keys = self._keys(reads)
        if keys is None:  # no cheap key: every row rendered
            return [_rule_texts(rule, self.variables(i, reads.names)) for i in range(n)]
        out, kept = [], {}
        for i, key in enumerate(keys):
            found = kept.get(key)
            if found is None:
                found = kept[key] = _rule_texts(rule, self.variables(i, reads.names))
            out.append(found)
        return out

    def _keys(self, reads: Reads) -> list | None:
        """Per row: a hashable stand-in for what ``reads`` reads (types included: CEL tells 1.0 from true).

        None when a whole map is read (there is no cheap key); a row whose
        values cannot be hashed gets a key of its own.
        """
        n = len(self.fired)
        parts = []
        for name in reads.names:
            values = self.column(name)
            if name in ("project", "feature"):
                if name not in reads.keys:
                    return None
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
        return keys

    def _charge_sentences(self) -> dict[str, list[str]]:
        """Per language, per capacity row: the load charged to the zone and what it meets.

        Zones, remaining capacities and offset ratios repeat from row to row:
        each is written once.
        """
        fired, layer, charge = self.fired, self.layer, self.fired.charge
        zones = {f: layer.names[f] or layer.ids[f] for f in set(fired.f.tolist())}
        said: dict[float, str] = {}  # a repeating quantity's text
        en, zh = [], []
        rows = zip(
            charge.pollutant, charge.exceeds.tolist(), charge.project_load.tolist(), charge.total.tolist(),
            charge.remaining_load.tolist(), charge.offset_ratio.tolist(), fired.overlap_ratio.tolist(),
            fired.f.tolist(), strict=True,
        )  # fmt: skip
        for pollutant, exceeds, load, total, left, ratio, share, f in rows:
            label, unit, label_zh, unit_zh = _LOAD_WORDS[pollutant]
            load_text, zone = quantity(load), zones[f]
            if share >= 1:
                row_en, row_zh = f"{label} {load_text} {unit}", f"{label_zh} {load_text} {unit_zh}"
            else:
                total_text = quantity(total)
                row_en = f"{label} {load_text} {unit} ({share:.0%} of {total_text} {unit}, by area share)"
                row_zh = f"{label_zh} {load_text} {unit_zh}（按面积占比{share:.0%}，总量{total_text} {unit_zh}）"
            if exceeds:
                left = said.get(left) or said.setdefault(left, quantity(left))
                row_en += f" exceeds the remaining capacity of {left} {unit} in {zone}"
                row_zh += f"，超过{zone}剩余容量{left} {unit_zh}"
            else:
                offset, ratio = quantity(load * ratio), said.get(ratio) or said.setdefault(ratio, quantity(ratio))
                row_en += f": offset {offset} {unit} ({ratio}x) required in {zone}"
                row_zh += f"：须在{zone}内削减替代{offset} {unit_zh}（{ratio}倍）"
            en.append(row_en)
            zh.append(row_zh)
        return {"en": en, "zh": zh}


def _with_charges(sentences: dict[str, list[str]], messages: list[tuple]) -> list[tuple]:
    """Capacity rows' ``(message, translations)``: each row's charge sentence, then the rule's message."""
    out = []
    for i, (message, translations) in enumerate(messages):
        if translations:  # each language's title and message (see _rule_texts), the first language's leading
            translations = {
                lang: {"title": text["title"], "message": sentences[lang][i] + CHARGE_JOINS[lang] + text["message"]}
                for lang, text in translations.items()
            }
            out.append((next(iter(translations.values()))["message"], translations))
        else:
            out.append((sentences["en"][i] + (f"; {message}" if message else ""), None))
    return out


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _clause_trigger(row: ClauseFired, kept: dict[tuple, Texts]) -> Trigger:
    """The trigger of a 禁止 / 限制 clause: one per clause, with the covered unit of the largest share as evidence.

    The overlap is the footprint's area in all the units the clause covers.
    Its texts depend on the clause and those units alone: made once for
    them (``kept``), shared by the projects they are the same for.
    """
    clause, covered = row.clause, row.covered
    main = covered[0]
    overlap = sum(u.overlap_m2 for u in covered)
    codes = tuple(u.code for u in covered)
    texts = kept.get((id(clause), codes))
    if texts is None:
        texts = kept[(id(clause), codes)] = _clause_texts(clause, codes)
    return Trigger(
        rule=clause.id,
        title=f"准入清单 / access list ({clause.dimension})",
        outcome=clause.outcome,
        dimension=clause.dimension,
        layer=row.layer,
        feature_id=main.code,
        feature_name=main.name,
        overlap_m2=overlap,
        overlap_ha=overlap / 1e4,
        overlap_mu=overlap / M2_PER_MU,
        overlap_ratio=min(sum(u.share for u in covered), 1.0),
        distance_m=0.0,
        texts=texts,
        basis=clause.basis,
    )


def _clause_texts(clause: Clause, codes: tuple[str, ...]) -> Texts:
    """A clause trigger's message and translations, for the units it covers (their codes, largest share first)."""
    others = f" (units {', '.join(codes)})" if len(codes) > 1 else ""
    prose = f" [from prose: {'、'.join(clause.matched)}]" if clause.source == "prose" and clause.matched else ""
    message = clause.text + others + prose
    message_zh = clause.text + (f"（涉及单元 {'、'.join(codes)}）" if len(codes) > 1 else "")
    message_zh += f"［由文本识别：{'、'.join(clause.matched)}］" if prose else ""
    translations = {
        "zh": {"title": f"准入清单（{DIMENSIONS_ZH[clause.dimension]}）", "message": message_zh},
        "en": {"title": f"Access list ({clause.dimension.replace('_', ' ')})", "message": message},
    }
    return Texts.given(message, translations)


def quantity(value: float) -> str:
    """A quantity with at most two decimals: 12.5, 25, 0.33 (thousands grouped: 1,250)."""
    # Below 999.99 there are no thousands to group, and formatting without grouping is quicker.
    text = f"{value:.2f}" if abs(value) < 999.99 else f"{value:,.2f}"
    text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _rule_texts(rule: Rule, variables: dict[str, Any]) -> tuple[str, dict[str, dict[str, str]] | None]:
    """Render every language of a rule's message for one row (CEL given only what the placeholders read)."""
    message = rule.message
    bound = bind(message.reads.slim(variables)) if message.needs_cel else None
    if not message.languages:
        return message.templates[0][1].render(variables, bound), None
    titles = dict(rule.titles)
    translations = {
        lang: {"title": titles.get(lang, rule.title), "message": template.render(variables, bound)}
        for lang, template in message.templates
    }
    return next(iter(translations.values()))["message"], translations
