"""Triggers as rules fire: their texts in each language the rule gives, and the charge sentences of capacity rules.

Messages are rendered once per distinct value of what their placeholders
read (a cache per rule and language), since many pairs share them.
"""

from __future__ import annotations

from typing import Any

from threelines.engine.verdict import Trigger
from threelines.layers.read import LayerData
from threelines.rules.expr import bind
from threelines.rules.load import Rule
from threelines.rules.templates import Template

#: Load units in Chinese.
UNITS_ZH = {"t/a": "吨/年", "m3/a": "立方米/年"}
LABELS_ZH = {"water": "用水量"}


def charged(label: str, load: float, total: float, share: float, unit: str) -> dict[str, str]:
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


def render_message(template: Template, variables: dict[str, Any], cache: dict) -> str:
    """Render a message; with CEL placeholders, once per distinct value of what they read."""
    if not template.needs_cel:
        return template.render(variables)
    reads = template.reads
    key = reads.key(variables)
    if key is None:
        return template.render(variables, bind(reads.slim(variables)))
    if key not in cache:
        cache[key] = template.render(variables, bind(reads.slim(variables)))
    return cache[key]


def build_trigger(
    rule: Rule, layer: LayerData | None, f: int | None, variables: dict[str, Any], texts: dict[str, Any], **extra
) -> Trigger:
    """Build the trigger for a rule that fired (no feature: ``f`` is None).

    ``texts`` holds the ``message`` and ``translations`` (see :func:`_texts`); ``extra`` sets more fields.
    """
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
        basis=rule.basis,
        **texts,
        **extra,
    )


def rule_texts(rule: Rule, variables: dict[str, Any], cache: dict) -> dict[str, Any]:
    """A trigger's ``message`` (in the rule's first language) and its ``translations``.

    Each template is rendered once per distinct value of what it reads (``cache``); a rule that names no
    language has no translations.
    """
    if not rule.message.languages:
        return {"message": render_message(rule.message.templates[0][1], variables, cache), "translations": None}
    titles = dict(rule.titles)
    translations = {}
    for lang, template in rule.message.templates:
        message = render_message(template, variables, cache.setdefault(lang, {}))
        translations[lang] = {"title": titles.get(lang, rule.title), "message": message}
    return {"message": next(iter(translations.values()))["message"], "translations": translations}
