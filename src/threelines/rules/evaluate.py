"""Apply rules to measured (project, feature) pairs and produce triggers.

For each rule: projects are first filtered by kind, industry and ``when``;
then the layer's measured pairs are filtered by the spatial test and the
``condition``. A rule that needs an attribute the project (or a feature) does
not give is reported as unresolved for that project, never silently passed
and never silently fired.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import shapely

from threelines.layers import LayerData
from threelines.measure import M2_PER_MU, OVERLAP_FLOOR_M2, Pairs
from threelines.rules.decide import Decision, applies, decide, not_given
from threelines.rules.expr import Expr, attribute_refs, bind
from threelines.rules.load import POLLUTANTS, Rule, offset_fields, remaining_fields
from threelines.verdict import Trigger, Unresolved


def evaluate_rule(
    rule: Rule,
    projects: list[dict[str, Any]],
    footprints: np.ndarray,
    areas: np.ndarray,
    layer: LayerData,
    pairs: Pairs,
) -> tuple[list[tuple[int, Trigger]], list[tuple[int, Unresolved]]]:
    """Apply one rule to every project.

    Parameters
    ----------
    rule : Rule
    projects : list of dict
        The ``project`` maps (see :func:`project_context`).
    footprints : numpy.ndarray of shapely geometries
        The footprints in the working CRS.
    areas : numpy.ndarray
        Footprint areas in m2.
    layer : LayerData
        The rule's layer.
    pairs : Pairs
        The measured pairs of the footprints against that layer.

    Returns
    -------
    (list of (int, Trigger), list of (int, Unresolved))
        Triggers and unresolved notes, each with the project's position.
    """
    context = _Context(rule, projects, areas, layer, pairs)
    if rule.test in ("inside", "outside"):
        return context.containment(footprints)
    if rule.test == "capacity":
        return context.capacity()
    if rule.test == "overlaps":
        spatial = context.overlapping & (pairs.overlap_m2 > rule.min_overlap_m2) | (
            (areas[pairs.project] == 0) & (pairs.distance_m == 0)
        )
    else:
        spatial = pairs.distance_m <= rule.distance_m
    return context.per_feature(spatial)


class _Context:
    """One rule against one layer: project decisions and pair conditions, computed once."""

    def __init__(self, rule: Rule, projects, areas, layer: LayerData, pairs: Pairs):
        self.rule, self.projects, self.areas, self.layer, self.pairs = rule, projects, areas, layer, pairs
        self.decisions = [applies(rule, p) for p in projects]
        # Applies, or might apply if the missing information were given.
        self.relevant = np.array([d.holds or d.missing is not None for d in self.decisions], dtype=bool)
        positive = areas[pairs.project] > 0
        self.overlapping = np.where(positive, pairs.overlap_m2 > OVERLAP_FLOOR_M2, pairs.distance_m == 0)
        # A point on the boundary of n features counts 1/n in each, as it does for control units.
        self.touches = np.bincount(pairs.project[self.overlapping & ~positive], minlength=len(projects))
        self.triggers: list[tuple[int, Trigger]] = []
        self.unresolved: list[tuple[int, Unresolved]] = []
        self._noted: set[int] = set()
        self._bound: dict[int, Any] = {}
        self._reads: tuple[set[str], dict[str, set[str]]] | None = None
        # Most conditions look at the feature alone (zone_type, is_park, class): decide those
        # once per feature, not once per pair.
        self._per_feature: dict[tuple[int, int], Decision] = {}

    def variables(self, k: int) -> dict[str, Any]:
        """The names a condition or message sees for pair ``k``."""
        p, f = int(self.pairs.project[k]), int(self.pairs.feature[k])
        overlap = float(self.pairs.overlap_m2[k])
        return {
            "project": self.projects[p],
            "feature": self.layer.attributes[f],
            "overlaps": bool(self.overlapping[k]),
            "overlap_m2": overlap,
            "overlap_ha": overlap / 1e4,
            "overlap_mu": overlap / M2_PER_MU,
            "overlap_ratio": self.ratio(k),
            "distance_m": float(self.pairs.distance_m[k]),
        }

    def ratio(self, k: int) -> float:
        """The share of the footprint that pair ``k`` covers (a point: 1/n of the features it touches)."""
        p = int(self.pairs.project[k])
        if self.areas[p] > 0:
            return min(float(self.pairs.overlap_m2[k]) / float(self.areas[p]), 1.0)
        return 1.0 / self.touches[p] if self.overlapping[k] else 0.0

    def condition(self, k: int) -> Decision:
        """The rule's condition for pair ``k`` (true when it has none)."""
        if self.rule.condition is None:
            return Decision(True)
        return self.feature_decision(self.rule.condition, k, slot=0)

    def feature_decision(self, expr: Expr, k: int, slot: int) -> Decision:
        """Decide ``expr`` for pair ``k``, once per feature when it reads nothing but the feature."""
        if set(expr.program.variables()) <= {"feature"}:
            key = (slot, int(self.pairs.feature[k]))
            if key not in self._per_feature:
                self._per_feature[key] = decide(expr, {"feature": self.layer.attributes[key[1]]})
            return self._per_feature[key]
        variables = self.variables(k)
        return decide(expr, variables, self.bound(k, variables))

    def slim(self, variables: dict[str, Any]) -> dict[str, Any]:
        """Only the names (and map keys) the rule's expressions read.

        Converting the rest for CEL (the whole project map above all) costs
        far more than evaluating.
        """
        if self._reads is None:
            exprs = [e for e in (self.rule.condition, self.rule.attains) if e is not None]
            exprs += self.rule.message.expressions
            names = set().union(*(e.program.variables() for e in exprs)) if exprs else set()
            refs = set().union(*(attribute_refs(e.source) for e in exprs)) if exprs else set()
            keys = {var: {n for v, n in refs if v == var} for var in ("project", "feature")}
            self._reads = (names, keys)
        names, keys = self._reads
        out = {}
        for name in names & set(variables):
            value = variables[name]
            if name in keys and keys[name] and isinstance(value, dict):
                value = {k: value[k] for k in keys[name] if k in value}  # absent keys stay absent for has()
            out[name] = value
        return out

    def bound(self, k: int, variables: dict[str, Any]):
        """Pair ``k``'s variables converted for CEL, once for its condition and message."""
        if k not in self._bound:
            self._bound[k] = bind(self.slim(variables))
        return self._bound[k]

    def note(self, p: int, reason: str, feature_id=None) -> None:
        """Record that the rule could not be decided for project ``p`` (once per project)."""
        if p not in self._noted:
            self._noted.add(p)
            self.unresolved.append((p, Unresolved(rule=self.rule.id, reason=reason, feature_id=feature_id)))

    def fire(self, p: int, k: int | None) -> None:
        """Record a trigger for project ``p``, with pair ``k`` as evidence (or none)."""
        if k is None:
            variables = {"project": self.projects[p], "feature": {}}
            self.triggers.append((p, _trigger(self.rule, self.layer, None, variables)))
        else:
            variables = self.variables(k)
            bound = self.bound(k, variables)
            self.triggers.append((p, _trigger(self.rule, self.layer, int(self.pairs.feature[k]), variables, bound)))

    def per_feature(self, spatial: np.ndarray):
        """``overlaps`` and ``within_distance``: one trigger per feature that meets the test."""
        for k in np.flatnonzero(spatial & self.relevant[self.pairs.project]).tolist():
            p = int(self.pairs.project[k])
            decision = self.decisions[p]
            pair = self.condition(k)
            if decision.holds and pair.holds:
                self.fire(p, k)
            elif decision.missing and (pair.holds or pair.missing):
                self.note(p, decision.missing)
            elif pair.missing and decision.holds:
                self.note(p, pair.missing, self.layer.ids[int(self.pairs.feature[k])])
        return self.triggers, self.unresolved

    def capacity(self):
        """``capacity``: charge each zone its area share of the project's loads.

        A load beyond the zone's ``remaining_<pollutant>`` fires with the
        rule's outcome; a load that fits in a zone that does not attain its
        target (``attains`` is false) is conditional, with the offset it
        needs at the zone's ``offset_ratio_<pollutant>`` (or ``offset_ratio``).
        """
        rule, pairs = self.rule, self.pairs
        zones: dict[tuple[int, Any], list[int]] = {}  # (project, zone id) -> its pairs
        for k in np.flatnonzero(self.overlapping & self.relevant[pairs.project]).tolist():
            p, f = int(pairs.project[k]), int(pairs.feature[k])
            zone = self.condition(k)
            if not (zone.holds or zone.missing):
                continue
            missing = [POLLUTANTS[x][0] for x in rule.pollutants if POLLUTANTS[x][0] not in self.projects[p]]
            reason = self.decisions[p].missing or zone.missing or (not_given("project", missing) if missing else None)
            if reason:
                self.note(p, reason, self.layer.ids[f] if zone.missing else None)
            if not (self.decisions[p].missing or zone.missing):
                # A zone stored as several features (same id) is charged as one.
                zones.setdefault((p, self.layer.ids[f]), []).append(k)
        for (p, _), ks in zones.items():
            variables = self.variables(ks[0])
            overlap = float(pairs.overlap_m2[ks].sum())
            variables.update(
                overlap_m2=overlap, overlap_ha=overlap / 1e4, overlap_mu=overlap / M2_PER_MU,
                overlap_ratio=min(sum(self.ratio(k) for k in ks), 1.0),
            )  # fmt: skip
            attains = self.feature_decision(rule.attains, ks[0], slot=1) if rule.attains is not None else Decision(True)
            for pollutant in rule.pollutants:
                self._charge(p, ks[0], variables, pollutant, attains)
        return self.triggers, self.unresolved

    def _charge(self, p: int, k: int, variables: dict[str, Any], pollutant: str, attains: Decision) -> None:
        """Charge one pollutant of project ``p`` to the zone of pair ``k``."""
        attribute, unit, label = POLLUTANTS[pollutant]
        total = self.projects[p].get(attribute)
        if not total:
            return
        feature, share = variables["feature"], variables["overlap_ratio"]
        load = total * share
        fid = self.layer.ids[int(self.pairs.feature[k])]
        declared = [f for f in remaining_fields(pollutant) if f in self.layer.spec.fields]
        remaining = next((feature[f] for f in declared if f in feature), None)
        if declared and not isinstance(remaining, float):
            # The layer keeps a remaining load for this pollutant, but not (as a number) for this zone.
            self.note(p, f"feature attribute {declared[0]!r} is {'not a number' if remaining else 'not given'}", fid)
            return
        zone = self.layer.names[int(self.pairs.feature[k])] or self.layer.ids[int(self.pairs.feature[k])]
        charged = _charged(label, load, total, share, unit)
        extra = {"pollutant": pollutant, "project_load": load, "remaining_load": remaining}
        if remaining is not None and load > remaining:
            sentence = {
                "en": f"{charged['en']} exceeds the remaining capacity of {_num(remaining)} {unit} in {zone}",
                "zh": f"{charged['zh']}，超过{zone}剩余容量{_num(remaining)} {UNITS_ZH[unit]}",
            }
            self._fire_capacity(p, k, variables, {**extra, "exceeds": True}, self.rule.outcome, sentence)
        elif attains.missing:
            self.note(p, attains.missing, fid)
        elif not attains.holds:
            ratio = next((feature[f] for f in offset_fields(pollutant) if f in feature), None)
            if not isinstance(ratio, float):
                given = "not a number" if ratio else "not given"
                self.note(p, f"feature attribute 'offset_ratio_{pollutant}' is {given}", fid)
                return
            offset = _num(load * ratio)
            sentence = {
                "en": f"{charged['en']}: offset {offset} {unit} ({_num(ratio)}x) required in {zone}",
                "zh": f"{charged['zh']}：须在{zone}内削减替代{offset} {UNITS_ZH[unit]}（{_num(ratio)}倍）",
            }
            extra.update(offset_ratio=ratio, required_offset=load * ratio, exceeds=False)
            self._fire_capacity(p, k, variables, extra, "conditional", sentence)

    def _fire_capacity(self, p, k, variables, extra, outcome, sentence: dict[str, str]) -> None:
        """Record a capacity trigger: the charge sentence, then the rule's own message, per language."""
        names = {"offset_ratio": None, "required_offset": None, **variables, **extra}
        trigger = _trigger(self.rule, self.layer, int(self.pairs.feature[k]), names, bind(self.slim(names)))
        joins = {"en": "; ", "zh": "；"}
        translations = {
            lang: {**text, "message": sentence[lang] + joins[lang] + text["message"]}
            for lang, text in (trigger.translations or {}).items()
        } or None
        message = sentence["en"] + (f"; {trigger.message}" if trigger.message else "")
        self.triggers.append(
            (
                p,
                replace(
                    trigger,
                    outcome=outcome,
                    message=next(iter(translations.values()))["message"] if translations else message,
                    translations=translations,
                    pollutant=extra["pollutant"],
                    project_load=extra["project_load"],
                    remaining_load=extra["remaining_load"],
                    offset_ratio=extra.get("offset_ratio"),
                    required_offset=extra.get("required_offset"),
                ),
            )
        )

    def containment(self, footprints: np.ndarray):
        """``inside`` and ``outside``: whether the footprint lies within the union of qualifying features.

        A footprint spread over two adjacent qualifying features (a park cut
        into two units) is inside their union. ``inside`` fires once per
        qualifying feature it overlaps; ``outside`` fires once, with the
        qualifying feature it overlaps most (else the nearest within reach)
        as evidence.
        """
        pairs = self.pairs
        candidates = np.flatnonzero(self.relevant[pairs.project]).tolist()
        state = {k: self.condition(k) for k in candidates if self.overlapping[k] or self.rule.test == "outside"}
        qualifying = {k for k, d in state.items() if d.holds}
        unsure = {k: d.missing for k, d in state.items() if d.missing}
        by_project: dict[int, list[int]] = {}
        for k in qualifying | set(unsure):
            by_project.setdefault(int(pairs.project[k]), []).append(k)
        for p in np.flatnonzero(self.relevant).tolist():
            mine = sorted(by_project.get(p, []))
            sure = [k for k in mine if k in qualifying and self.overlapping[k]]
            maybe = [k for k in mine if self.overlapping[k]]
            covered = self._covered(p, footprints[p], sure)
            decision = self.decisions[p]
            if not covered and self._covered(p, footprints[p], maybe):
                self.note(p, unsure[next(k for k in maybe if k in unsure)])
                continue
            if decision.missing:
                if covered == (self.rule.test == "inside"):
                    self.note(p, decision.missing)
                continue
            if self.rule.test == "inside" and covered:
                for k in sure:
                    self.fire(p, k)
            elif self.rule.test == "outside" and not covered:
                reach = [k for k in mine if k in qualifying and pairs.distance_m[k] <= self.rule.reach_m]
                best = min(reach, key=lambda k: (-pairs.overlap_m2[k], pairs.distance_m[k]), default=None)
                self.fire(p, best)
        return self.triggers, self.unresolved

    def _covered(self, p: int, footprint, ks: list[int]) -> bool:
        """Whether the features of pairs ``ks`` together cover the footprint."""
        if not ks:
            return False
        if self.pairs.inside[ks].any():
            return True
        area = self.areas[p]
        if area == 0 or self.pairs.overlap_m2[ks].sum() < area - OVERLAP_FLOOR_M2:
            return False  # even all together they do not reach the footprint's area
        union = shapely.union_all(self.layer.geometry[self.pairs.feature[ks]])
        return bool(area - shapely.area(shapely.intersection(footprint, union)) <= OVERLAP_FLOOR_M2)


#: Load units in Chinese.
UNITS_ZH = {"t/a": "吨/年", "m3/a": "立方米/年"}
LABELS_ZH = {"water": "用水量"}


def _charged(label: str, load: float, total: float, share: float, unit: str) -> dict[str, str]:
    """The load charged to a zone, in both languages."""
    if share >= 1:
        zh = LABELS_ZH.get(label, label)
        return {"en": f"{label} {_num(load)} {unit}", "zh": f"{zh} {_num(load)} {UNITS_ZH[unit]}"}
    return {
        "en": f"{label} {_num(load)} {unit} ({share:.0%} of {_num(total)} {unit}, by area share)",
        "zh": f"{LABELS_ZH.get(label, label)} {_num(load)} {UNITS_ZH[unit]}"
        f"（按面积占比{share:.0%}，总量{_num(total)} {UNITS_ZH[unit]}）",
    }


def _num(value: float) -> str:
    """A quantity with at most two decimals: 12.5, 25, 0.33."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _trigger(rule: Rule, layer: LayerData | None, f: int | None, variables: dict[str, Any], bound=None) -> Trigger:
    """Build the trigger for a rule that fired, rendering its message (no feature: ``f`` is None)."""
    has_pair = f is not None
    return Trigger(
        rule=rule.id,
        title=rule.title,
        outcome=rule.outcome,
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
        **rule_texts(rule, variables, bound),
    )


def rule_texts(rule: Rule, variables: dict[str, Any], bound=None) -> dict[str, Any]:
    """A trigger's ``message`` (in the rule's first language), and its ``translations`` when the rule names them."""
    if not rule.message.languages:
        return {"message": rule.message.render(variables, bound), "translations": None}
    messages = rule.message.render_all(variables, bound)
    titles = dict(rule.titles)
    translations = {lang: {"title": titles.get(lang, rule.title), "message": m} for lang, m in messages.items()}
    return {"message": next(iter(messages.values())), "translations": translations}


def evaluate_zonal(rule: Rule, projects: list[dict[str, Any]], stats) -> tuple[list, list]:
    """Apply a zonal rule: test each footprint's raster statistic with the rule's condition.

    Parameters
    ----------
    rule : Rule
        A ``zonal`` rule.
    projects : list of dict
        The ``project`` maps.
    stats : list of threelines.zonal.Zonal
        The statistic over each footprint.

    Returns
    -------
    (list of (int, Trigger), list of (int, Unresolved))
    """
    triggers, unresolved = [], []
    for p, (project, zonal) in enumerate(zip(projects, stats, strict=True)):
        decision = applies(rule, project)
        if not (decision.holds or decision.missing):
            continue
        if np.isnan(zonal.value):
            if decision.holds:
                unresolved.append(
                    (p, Unresolved(rule=rule.id, reason=f"layer {rule.layer!r} has no data under the footprint"))
                )
            continue
        variables = {"project": project, "value": zonal.value, "cells": float(zonal.cells)}
        pair = decide(rule.condition, variables)
        if decision.missing and (pair.holds or pair.missing):
            unresolved.append((p, Unresolved(rule=rule.id, reason=decision.missing)))
        elif pair.missing and decision.holds:
            unresolved.append((p, Unresolved(rule=rule.id, reason=pair.missing)))
        elif decision.holds and pair.holds:
            trigger = replace(_trigger(rule, None, None, variables), statistic=rule.stat, value=zonal.value)
            triggers.append((p, trigger))
    return triggers, unresolved
