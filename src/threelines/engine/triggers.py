"""Step 4 of the flow: the fired rows become triggers, with their texts.

Only what fired gets a text, and only when it is read: a trigger holds
:class:`~threelines.engine.verdict.Texts` that render the rule's message for
its row on first use (once per distinct value of what CEL placeholders read,
in each language the rule gives); a capacity trigger leads with its charge
sentence, an access-list trigger carries the clause text.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from threelines.engine.decisions import ClauseFired, Decisions, Fired
from threelines.engine.measure import M2_PER_MU
from threelines.engine.pairs import Measured
from threelines.engine.verdict import Texts, Trigger
from threelines.layers.read import LayerData
from threelines.rules.access_list import DIMENSIONS_ZH
from threelines.rules.expr import bind
from threelines.rules.load import POLLUTANTS, Rule, offset_fields

#: Load units in Chinese.
UNITS_ZH = {"t/a": "吨/年", "m3/a": "立方米/年"}
LABELS_ZH = {"water": "用水量"}
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
        layer = measured.layers.get(rule.layer)
        cache: dict = {}  # rendered messages, by language and the values their placeholders read
        for row in fired:
            out[row.p].append(_trigger(rule, layer, row, cache))
    for row in decisions.clause_fired:
        out[row.p].append(_clause_trigger(row))
    return out


def _trigger(rule: Rule, layer: LayerData | None, row: Fired, cache: dict) -> Trigger:
    """The trigger of one fired row."""
    if row.charge is not None:
        return _capacity_trigger(rule, layer, row, cache)
    extra = {"statistic": rule.stat, "value": row.value} if rule.test == "zonal" else {}
    return _build(rule, layer, row.f, row.variables, Texts(partial(rule_texts, rule, row.variables, cache)), **extra)


def _build(rule: Rule, layer: LayerData | None, f: int | None, variables: dict, texts: Texts, **extra) -> Trigger:
    """A trigger with feature ``f`` of ``layer`` as evidence (None: no feature); ``extra`` sets more fields."""
    has_pair = f is not None
    return Trigger(
        rule=rule.id,
        title=rule.title,
        outcome=extra.pop("outcome", rule.outcome),
        dimension=rule.dimension,
        layer=rule.layer,
        feature_id=layer.ids[f] if has_pair else None,
        feature_name=layer.names[f] if has_pair else None,
        overlap_m2=variables["overlap_m2"] if has_pair else None,
        overlap_ha=variables["overlap_ha"] if has_pair else None,
        overlap_mu=variables["overlap_mu"] if has_pair else None,
        overlap_ratio=variables["overlap_ratio"] if has_pair else None,
        distance_m=variables["distance_m"] if has_pair else None,
        texts=texts,
        basis=rule.basis,
        **extra,
    )


def _capacity_trigger(rule: Rule, layer: LayerData, row: Fired, cache: dict) -> Trigger:
    """A pollutant charged to a zone: over its remaining capacity, or fitting with an offset required.

    The message is the charge sentence, then the rule's own message, per language.
    """
    charge, variables = row.charge, row.variables
    pollutant, load = charge["pollutant"], charge["project_load"]
    extra = {"pollutant": pollutant, "project_load": load, "remaining_load": charge["remaining_load"]}
    if charge["exceeds"]:
        extra["exceeds"], outcome = True, rule.outcome
    else:
        feature = variables["feature"]
        ratio = next(feature[f] for f in offset_fields(pollutant) if f in feature)
        extra.update(offset_ratio=ratio, required_offset=load * ratio, exceeds=False)
        outcome = "conditional"
    names = {"offset_ratio": None, "required_offset": None, **variables, **extra}
    zone = layer.names[row.f] or layer.ids[row.f]
    texts = Texts(partial(_capacity_texts, rule, names, charge["total"], zone, cache))
    fields = {name: names[name] for name in CAPACITY_FIELDS}
    return _build(rule, layer, row.f, names, texts, outcome=outcome, **fields)


def _capacity_texts(rule: Rule, names: dict[str, Any], total: float, zone: str, cache: dict) -> tuple:
    """A capacity trigger's ``(message, translations)``: the charge sentence, then the rule's message."""
    pollutant, load, remaining = names["pollutant"], names["project_load"], names["remaining_load"]
    _, unit, label = POLLUTANTS[pollutant]
    load_text = _charged(label, load, total, names["overlap_ratio"], unit)
    if names["exceeds"]:
        sentence = {
            "en": f"{load_text['en']} exceeds the remaining capacity of {quantity(remaining)} {unit} in {zone}",
            "zh": f"{load_text['zh']}，超过{zone}剩余容量{quantity(remaining)} {UNITS_ZH[unit]}",
        }
    else:
        ratio = names["offset_ratio"]
        offset = quantity(load * ratio)
        sentence = {
            "en": f"{load_text['en']}: offset {offset} {unit} ({quantity(ratio)}x) required in {zone}",
            "zh": f"{load_text['zh']}：须在{zone}内削减替代{offset} {UNITS_ZH[unit]}（{quantity(ratio)}倍）",
        }
    message, translations = rule_texts(rule, names, cache)
    joins = {"en": "; ", "zh": "；"}
    translations = {
        lang: {**text, "message": sentence[lang] + joins[lang] + text["message"]}
        for lang, text in (translations or {}).items()
    } or None
    if translations:
        return next(iter(translations.values()))["message"], translations
    return sentence["en"] + (f"; {message}" if message else ""), None


def _clause_trigger(row: ClauseFired) -> Trigger:
    """The trigger of a 禁止 / 限制 clause: one per clause, with the covered unit of the largest share as evidence.

    The overlap is the footprint's area in all the units the clause covers.
    """
    clause, covered = row.clause, row.covered
    main = covered[0]
    overlap = sum(u.overlap_m2 for u in covered)
    others = f" (units {', '.join(u.code for u in covered)})" if len(covered) > 1 else ""
    prose = f" [from prose: {'、'.join(clause.matched)}]" if clause.source == "prose" and clause.matched else ""
    message = clause.text + others + prose
    codes = "、".join(u.code for u in covered)
    message_zh = clause.text + (f"（涉及单元 {codes}）" if len(covered) > 1 else "")
    message_zh += f"［由文本识别：{'、'.join(clause.matched)}］" if prose else ""
    translations = {
        "zh": {"title": f"准入清单（{DIMENSIONS_ZH[clause.dimension]}）", "message": message_zh},
        "en": {"title": f"Access list ({clause.dimension.replace('_', ' ')})", "message": message},
    }
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
        texts=Texts.given(message, translations),
        basis=clause.basis,
    )


def _charged(label: str, load: float, total: float, share: float, unit: str) -> dict[str, str]:
    """The load charged to a zone, in both languages."""
    if share >= 1:
        zh = LABELS_ZH.get(label, label)
        return {"en": f"{label} {quantity(load)} {unit}", "zh": f"{zh} {quantity(load)} {UNITS_ZH[unit]}"}
    return {
        "en": f"{label} {quantity(load)} {unit} ({share:.0%} of {quantity(total)} {unit}, by area share)",
        "zh": f"{LABELS_ZH.get(label, label)} {quantity(load)} {UNITS_ZH[unit]}"
        f"（按面积占比{share:.0%}，总量{quantity(total)} {UNITS_ZH[unit]}）",
    }


def quantity(value: float) -> str:
    """A quantity with at most two decimals: 12.5, 25, 0.33."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def rule_texts(rule: Rule, variables: dict[str, Any], cache: dict) -> tuple[str, dict[str, dict[str, str]] | None]:
    """A trigger's ``(message, translations)``: the message in the rule's first language, and each language's.

    All the languages are rendered together, once per distinct value of what
    their placeholders read (``cache``; rows with equal values share the
    result, which is read, never changed); a rule that names no language has
    no translations.
    """
    key = rule.message.reads.key(variables)
    if key is None:
        return _rule_texts(rule, variables)
    if key not in cache:
        cache[key] = _rule_texts(rule, variables)
    return cache[key]


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
